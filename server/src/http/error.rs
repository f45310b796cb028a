//! Maps [`MlflowError`] to MLflow's error JSON and HTTP status, in one place.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{ErrorCode, MlflowError};

/// The error type every handler returns.
#[derive(Debug)]
pub struct ApiError(pub MlflowError);

impl From<MlflowError> for ApiError {
    fn from(err: MlflowError) -> Self {
        ApiError(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let MlflowError { code, message } = self.0;
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error_code = code.as_str(), %message, "request failed");
        } else {
            tracing::debug!(error_code = code.as_str(), %message, "request rejected");
        }
        let body = serde_json::json!({ "error_code": code.as_str(), "message": message });
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The answer for a route that does not exist; the client reads 404 as ENDPOINT_NOT_FOUND.
/// A path with repeated slashes (`//model-versions/get-artifact`) is redirected (308) to
/// its merged form first, as Flask's router does for MLflow.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.contains("//") {
        let mut merged = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && merged.ends_with('/')) {
                merged.push(c);
            }
        }
        if let Some(q) = uri.query() {
            merged = format!("{merged}?{q}");
        }
        if let Ok(location) = header::HeaderValue::from_str(&merged) {
            return (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
    }
    ApiError(MlflowError::new(
        ErrorCode::EndpointNotFound,
        format!("No API endpoint matches {path}"),
    ))
    .into_response()
}

/// The answer for a known route called with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let body = serde_json::json!({
        "error_code": ErrorCode::BadRequest.as_str(),
        "message": format!("Method {method} is not allowed for {}", uri.path()),
    });
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
