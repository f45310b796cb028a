//! The scoring server's HTTP side: MLflow's scoring protocol (`/ping`, `/health`,
//! `/version`, `/invocations`) over axum.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::ScoringError;
use super::input::{decode_json, Payload};
use super::pool::Answer;
use super::Scorer;

const CONTENT_TYPES: &str = "['text/csv', 'application/json', 'application/vnd.apache.parquet']";

struct AppState {
    scorer: Scorer,
    timeout: Duration,
}

/// The scoring routes.
pub fn router(scorer: Scorer, timeout: Duration) -> Router {
    let state = Arc::new(AppState { scorer, timeout });
    Router::new()
        .route("/ping", get(ping))
        .route("/health", get(ping))
        .route("/version", get(version))
        .route("/invocations", post(invocations))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves until SIGINT or SIGTERM, then lets requests in flight finish.
pub async fn serve(router: Router, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "Listening on http://{} (POST /invocations, GET /ping)",
        listener.local_addr()?
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn json_response(status: u16, body: String) -> Response {
    respond(Answer {
        status,
        content_type: "application/json".into(),
        body,
    })
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, answer.content_type)],
        answer.body,
    )
        .into_response()
}

fn text(status: u16, body: String) -> Response {
    respond(Answer {
        status,
        content_type: "text/plain; charset=utf-8".into(),
        body,
    })
}

async fn ping() -> Response {
    json_response(200, "\n".into())
}

async fn version() -> Response {
    json_response(200, crate::MLFLOW_COMPAT_VERSION.into())
}

async fn not_found() -> Response {
    json_response(404, r#"{"detail":"Not Found"}"#.into())
}

async fn invocations(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("None");
    let mut parts = content_type.split(';').map(str::trim);
    let mime = parts.next().unwrap_or_default().to_ascii_lowercase();
    let mut unknown = Vec::new();
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        if key == "charset" {
            if !value.trim_matches('"').eq_ignore_ascii_case("utf-8") {
                return text(415, "The scoring server only supports UTF-8".into());
            }
        } else {
            unknown.push(key.to_string());
        }
    }
    if !unknown.is_empty() {
        return text(
            415,
            format!(
                "Unrecognized content type parameters: {}. {}",
                unknown.join(", "),
                super::input::SCORING_PROTOCOL_CHANGE_INFO
            ),
        );
    }
    let payload = match mime.as_str() {
        "application/json" | "text/csv" => {
            let Ok(text) = std::str::from_utf8(&body) else {
                return respond(
                    ScoringError::invalid_input(
                        "Ensure that input is a valid UTF-8 encoded string.",
                    )
                    .into(),
                );
            };
            if mime == "text/csv" {
                Payload::Csv {
                    body: text.to_string(),
                }
            } else if let Some(frame) = app.scorer.numeric_frame(text) {
                // Numbers convert to every column type: the signature check left is the
                // required columns'.
                if let Some(schema) = app.scorer.input_schema() {
                    if let Err(e) = schema.check_columns(&frame.columns) {
                        return respond(e.into());
                    }
                }
                return within(app.timeout, app.scorer.score_numeric(frame)).await;
            } else {
                match decode_json(text, app.scorer.input_schema()) {
                    Ok(p) => p,
                    Err(e) => return respond(e.into()),
                }
            }
        }
        _ => {
            return text(
                415,
                format!(
                    "This predictor only supports the following content types: Types: \
                     {CONTENT_TYPES}. Got '{content_type}'."
                ),
            )
        }
    };
    if let (Payload::Frame { frame, .. }, Some(schema)) = (&payload, app.scorer.input_schema()) {
        if let Err(e) = schema.check_frame(frame) {
            return respond(e.into());
        }
    }
    within(app.timeout, app.scorer.score(payload)).await
}

async fn within(timeout: Duration, scoring: impl std::future::Future<Output = Answer>) -> Response {
    match tokio::time::timeout(timeout, scoring).await {
        Ok(answer) => respond(answer),
        Err(_) => json_response(504, "Request processing time exceeded limit".into()),
    }
}
