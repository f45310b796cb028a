//! The gateway's read-only settings for the UI (provider catalogue, provider auth forms,
//! whether secrets use the default passphrase) and the deployments proxy
//! (`/2.0/mlflow/gateway-proxy`).

use axum::extract::State;
use axum::http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::gateway::crypto::using_default_passphrase;
use crate::domain::gateway::providers::{provider_config, PROVIDERS};
use crate::error::{ErrorCode, MlflowError};
use crate::http::reply::reply;
use crate::http::request::Message;
use crate::http::{ApiError, ApiResult, AppState};
use crate::wire;

/// `GET .../3.0/mlflow/gateway/supported-providers`.
pub async fn providers() -> ApiResult {
    reply(&json!({ "providers": PROVIDERS }))
}

#[derive(Deserialize)]
struct ProviderReq {
    #[serde(default, deserialize_with = "wire::opt_string")]
    provider: Option<String>,
}

/// `GET .../3.0/mlflow/gateway/provider-config?provider=...`.
pub async fn config(msg: Message) -> ApiResult {
    let provider = msg
        .parse::<ProviderReq>()?
        .provider
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError(MlflowError::invalid("Provider parameter is required")))?;
    reply(&provider_config(&provider))
}

/// `GET .../3.0/mlflow/gateway/secrets/config`: secrets are always available; the UI warns
/// when the passphrase is MLflow's development default.
pub async fn secrets_config() -> ApiResult {
    reply(&json!({
        "secrets_available": true,
        "using_default_passphrase": using_default_passphrase(),
    }))
}

/// MLflow's environment variable naming the deployments server the proxy forwards to.
const DEPLOYMENTS_TARGET_ENV: &str = "MLFLOW_DEPLOYMENTS_TARGET";

fn invalid_path(path: &str, method: &Method) -> ApiError {
    ApiError(MlflowError::invalid(format!(
        "Invalid gateway_path: {path} for method: {method}"
    )))
}

/// Checks a proxied path as MLflow does: GET lists endpoints, POST invokes one.
fn check_gateway_path(method: &Method, path: Option<&str>) -> Result<String, ApiError> {
    let path = path.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError(MlflowError::invalid(
            "Deployments proxy request must specify a gateway_path.",
        ))
    })?;
    let trimmed = path.trim_matches('/');
    let ok = if method == Method::GET {
        trimmed == "api/2.0/endpoints"
    } else {
        let parts: Vec<&str> = trimmed.split('/').collect();
        matches!(parts.as_slice(), ["gateway", name, "invocations"] if !name.is_empty())
    };
    if ok {
        Ok(path.to_string())
    } else {
        Err(invalid_path(path, method))
    }
}

/// `GET|POST .../2.0/mlflow/gateway-proxy`: without a deployments target MLflow answers as
/// an empty gateway; with one, a valid `gateway_path` is forwarded there with `json_data`.
pub async fn gateway_proxy(
    State(_app): State<AppState>,
    method: Method,
    msg: Message,
) -> ApiResult {
    let Some(target) = std::env::var(DEPLOYMENTS_TARGET_ENV)
        .ok()
        .filter(|t| !t.is_empty())
    else {
        return reply(&json!({ "endpoints": [] }));
    };
    let path = check_gateway_path(&method, msg.0.get("gateway_path").and_then(Value::as_str))?;
    let url = format!(
        "{}/{}",
        target.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let client = reqwest::Client::new();
    let mut request = client.request(method, &url);
    if let Some(body) = msg.0.get("json_data").filter(|v| !v.is_null()) {
        request = request.json(body);
    }
    let unreachable = |e: reqwest::Error| {
        ApiError(MlflowError::new(
            ErrorCode::TemporarilyUnavailable,
            format!("Deployments proxy request failed: {e}"),
        ))
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let text = response.text().await.map_err(unreachable)?;
    if status.is_success() {
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        return reply(&body);
    }
    Err(ApiError(MlflowError::invalid(format!(
        "Deployments proxy request failed with error code {}. Error message: {text}",
        status.as_u16()
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_paths() {
        assert!(check_gateway_path(&Method::GET, Some("api/2.0/endpoints/")).is_ok());
        assert!(check_gateway_path(&Method::GET, Some("hello/world")).is_err());
        assert!(check_gateway_path(&Method::POST, Some("gateway/chat/invocations")).is_ok());
        assert!(check_gateway_path(&Method::POST, Some("foo/bar")).is_err());
        assert!(check_gateway_path(&Method::POST, None).is_err());
    }
}
