//! The basic-auth middleware: who is calling (HTTP Basic, with the failed-login limit), what
//! the route needs ([`crate::auth::rules`]), the resources behind the request's ids, and
//! MLflow's after-request work (creators get MANAGE, grants follow a registered model's
//! rename and delete, searches keep only what the caller may read). Answers 401 with
//! `WWW-Authenticate` and 403 "Permission denied" as MLflow does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use base64::Engine;
use serde_json::Value;

use super::auth_resolve::{requirements, strings, Params};
use super::request::{query_to_json, MAX_JSON_BODY};
use super::{ApiError, AppState};
use crate::auth::permissions::{Action, Key, Permission, EXPERIMENT, PROMPT, REGISTERED_MODEL};
use crate::auth::rules::{self, Rule};
use crate::auth::store::User;
use crate::auth::Auth;

const NOT_AUTHENTICATED: &str = "You are not authenticated. Please see \
     https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to \
     authenticate.";

/// The authenticated caller, for the users API handlers.
#[derive(Clone)]
pub struct Caller(pub User);

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"mlflow\""),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        NOT_AUTHENTICATED,
    )
        .into_response()
}

pub(super) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "Permission denied",
    )
        .into_response()
}

fn too_many(retry_after: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, retry_after.to_string()),
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
        ],
        "Too many failed logins from this address; try again later.",
    )
        .into_response()
}

/// `user:password` of an `Authorization: Basic` header.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The peer's address on a TLS connection (plain TCP ones carry axum's `SocketAddr`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, super::tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, super::tls::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<PeerAddr>>()
                .map(|c| c.0 .0.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The middleware; a no-op unless the server runs with `--app-name basic-auth`.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(auth) = state.auth.clone() else {
        return next.run(request).await;
    };
    let full_path = request.uri().path().to_string();
    let path = match state.config.static_prefix.as_deref() {
        Some(p) => full_path.strip_prefix(p).unwrap_or(&full_path).to_string(),
        None => full_path,
    };
    let method = request.method().clone();
    let rule = rules::rule(&method, &path);
    if rule == Rule::Public {
        return next.run(request).await;
    }
    let ip = client_ip(&request);
    if let Some(wait) = auth.limiter.blocked_for(ip) {
        return too_many(wait);
    }
    let Some((username, password)) = basic_credentials(&request) else {
        return unauthorized();
    };
    let user = match auth.authenticate(&username, &password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            auth.limiter.record_failure(ip);
            tracing::info!(%ip, username, "failed login");
            return unauthorized();
        }
        Err(e) => return ApiError(e).into_response(),
    };
    auth.limiter.record_success(ip);
    match authorize(&state, &auth, user, rule, request).await {
        Ok(Decision::Run(request, after)) => {
            let response = next.run(*request).await;
            if !response.status().is_success() || matches!(after, After::Nothing) {
                return response;
            }
            finish(&state, &auth, after, response).await
        }
        Ok(Decision::Answer(response)) => response,
        Err(e) => e.into_response(),
    }
}

/// Work after a successful response.
pub(super) enum After {
    Nothing,
    /// Grant MANAGE on the created experiment / registered model to its creator.
    GrantCreator(User, &'static str),
    /// Drop or rename the grants of a deleted or renamed registered model.
    Retarget(String, Option<String>),
    /// Keep only the readable items of a search answer.
    Filter(User, &'static str),
}

pub(super) enum Decision {
    Run(Box<Request>, After),
    Answer(Response),
}

async fn authorize(
    state: &AppState,
    auth: &Auth,
    user: User,
    rule: Rule,
    request: Request,
) -> Result<Decision, ApiError> {
    let (mut parts, body) = request.into_parts();
    let streamed = matches!(rule, Rule::ArtifactProxy(..) | Rule::Otlp);
    let (stream, bytes, params) = if streamed {
        let params = query_to_json(parts.uri.query().unwrap_or(""));
        (Some(body), None, params)
    } else {
        let bytes = to_bytes(body, MAX_JSON_BODY).await.map_err(|_| {
            ApiError(crate::error::MlflowError::invalid(format!(
                "Request body is larger than the limit of {MAX_JSON_BODY} bytes"
            )))
        })?;
        // The UI's `upload-artifact` names its run in the query whatever its body holds (the
        // file), and its handler reads only the query: so does the check.
        let query_only = parts.uri.path().ends_with("/mlflow/upload-artifact");
        let params = if parts.method == Method::GET
            || query_only
            || bytes.iter().all(u8::is_ascii_whitespace)
        {
            query_to_json(parts.uri.query().unwrap_or(""))
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (None, Some(bytes), params)
    };
    let params = Params(params);
    let header_experiment = parts
        .headers
        .get("x-mlflow-experiment-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body_override: Option<Bytes> = None;
    let after = match &rule {
        Rule::CreateExperiment => After::GrantCreator(user.clone(), EXPERIMENT),
        Rule::CreateRegisteredModel => After::GrantCreator(user.clone(), REGISTERED_MODEL),
        Rule::RegisteredModel(Action::Delete) if parts.uri.path().ends_with("/delete") => params
            .str("name")
            .map_or(After::Nothing, |n| After::Retarget(n, None)),
        Rule::RegisteredModel(Action::Update) if parts.uri.path().ends_with("/rename") => {
            match (params.str("name"), params.str("new_name")) {
                (Some(n), Some(to)) => After::Retarget(n, Some(to)),
                _ => After::Nothing,
            }
        }
        Rule::FilterExperiments if !user.is_admin => After::Filter(user.clone(), EXPERIMENT),
        Rule::FilterRegisteredModels if !user.is_admin => {
            After::Filter(user.clone(), REGISTERED_MODEL)
        }
        Rule::FilterModelVersions if !user.is_admin => After::Filter(user.clone(), "versions"),
        _ => After::Nothing,
    };
    if !user.is_admin {
        match &rule {
            Rule::AdminOnly => return Ok(Decision::Answer(forbidden())),
            Rule::SelfOrAdmin if params.str("username").as_deref() != Some(&user.username) => {
                return Ok(Decision::Answer(forbidden()))
            }
            Rule::SearchRuns | Rule::SearchLoggedModels => {
                let ids = strings(params.0.get("experiment_ids"));
                let mut readable = Vec::new();
                for id in &ids {
                    let key = Key::new(EXPERIMENT, id.clone());
                    if auth.permission(&user, &key).await?.allows(Action::Read) {
                        readable.push(Value::String(id.clone()));
                    }
                }
                if readable.len() < ids.len() {
                    if readable.is_empty() {
                        return Ok(Decision::Answer(
                            ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
                        ));
                    }
                    let mut body = params.0.clone();
                    body["experiment_ids"] = Value::Array(readable);
                    body_override = Some(Bytes::from(body.to_string()));
                }
            }
            _ => {
                let needed = requirements(state, &rule, &params, header_experiment).await?;
                let allowed = match needed {
                    Some(needed) => auth.allows(&user, &needed).await?,
                    None => false,
                };
                if !allowed {
                    return Ok(Decision::Answer(forbidden()));
                }
            }
        }
    }
    parts.extensions.insert(Caller(user));
    let body = match (body_override, bytes, stream) {
        (Some(b), _, _) => {
            parts.headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from_str(&b.len().to_string())
                    .unwrap_or(HeaderValue::from_static("0")),
            );
            Body::from(b)
        }
        (None, Some(b), _) => Body::from(b),
        (None, None, Some(stream)) => stream,
        (None, None, None) => Body::empty(),
    };
    Ok(Decision::Run(
        Box::new(Request::from_parts(parts, body)),
        after,
    ))
}

async fn finish(state: &AppState, auth: &Auth, after: After, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let result = match after {
        After::Nothing => Ok(false),
        After::GrantCreator(user, kind) => grant_creator(auth, &user, kind, &value).await,
        After::Retarget(name, to) => retarget(auth, &name, to.as_deref()).await,
        After::Filter(user, kind) => filter(state, auth, &user, kind, &mut value).await,
    };
    match result {
        Ok(true) => {
            let mut response = Response::from_parts(parts, Body::from(value.to_string()));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        Ok(false) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn grant_creator(
    auth: &Auth,
    user: &User,
    kind: &'static str,
    value: &Value,
) -> crate::error::Result<bool> {
    let (resource_type, id) = if kind == EXPERIMENT {
        (EXPERIMENT, Params(value.clone()).str("experiment_id"))
    } else {
        let model = &value["registered_model"];
        let prompt = strings_tags(model)
            .iter()
            .any(|(k, v)| k == "mlflow.prompt.is_prompt" && v.eq_ignore_ascii_case("true"));
        let kind = if prompt { PROMPT } else { REGISTERED_MODEL };
        (kind, Params(model.clone()).str("name"))
    };
    if let Some(id) = id {
        auth.store
            .grant(user, resource_type, &id, Permission::Manage.name(), true)
            .await?;
    }
    Ok(false)
}

fn strings_tags(model: &Value) -> Vec<(String, String)> {
    model["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some((
                        t["key"].as_str()?.to_string(),
                        t["value"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn retarget(auth: &Auth, name: &str, to: Option<&str>) -> crate::error::Result<bool> {
    for kind in [REGISTERED_MODEL, PROMPT] {
        auth.store.retarget_grants(kind, name, to).await?;
    }
    Ok(false)
}

/// Drops the items of a search answer the user may not read.
async fn filter(
    state: &AppState,
    auth: &Auth,
    user: &User,
    kind: &'static str,
    value: &mut Value,
) -> crate::error::Result<bool> {
    let grants = auth
        .grants(user, &[EXPERIMENT, REGISTERED_MODEL, PROMPT])
        .await?;
    let default = auth.config.default_permission;
    let readable = |t: &'static str, id: &str| {
        crate::auth::permissions::effective(&grants, &Key::new(t, id), default).allows(Action::Read)
    };
    let _ = state;
    let (list, id_field, resource): (Option<&mut Vec<Value>>, &str, &'static str) = match kind {
        EXPERIMENT if value.is_array() => (value.as_array_mut(), "experiment_id", EXPERIMENT),
        EXPERIMENT => (
            value.get_mut("experiments").and_then(Value::as_array_mut),
            "experiment_id",
            EXPERIMENT,
        ),
        REGISTERED_MODEL => (
            value
                .get_mut("registered_models")
                .and_then(Value::as_array_mut),
            "name",
            REGISTERED_MODEL,
        ),
        _ => (
            value
                .get_mut("model_versions")
                .and_then(Value::as_array_mut),
            "name",
            REGISTERED_MODEL,
        ),
    };
    let Some(list) = list else {
        return Ok(false);
    };
    list.retain(|item| {
        let id = Params(item.clone()).str(id_field).unwrap_or_default();
        let prompt = strings_tags(item)
            .iter()
            .any(|(k, v)| k == "mlflow.prompt.is_prompt" && v.eq_ignore_ascii_case("true"));
        readable(if prompt { PROMPT } else { resource }, &id)
    });
    Ok(true)
}
