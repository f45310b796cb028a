//! `POST /v1/traces`: OTLP/HTTP trace export into the experiment named by the
//! `x-mlflow-experiment-id` header (protobuf or JSON, optionally gzip/deflate), answered in
//! the request's encoding. Errors are FastAPI-shaped (`{"detail": ...}`) as the Python
//! server's OTLP route answers them, except store errors, which are MLflow's error JSON.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};
use crate::domain::traces::otlp::{
    decode, decompress, empty_response, spans_of, Encoding, OtlpError, MAX_OTLP_BODY,
};

const EXPERIMENT_HEADER: &str = "x-mlflow-experiment-id";
const RUN_HEADER: &str = "x-mlflow-run-id";

fn detail(status: StatusCode, detail: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "detail": detail }).to_string(),
    )
        .into_response()
}

fn otlp_error(err: OtlpError) -> Response {
    let status = match err {
        OtlpError::Span => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    detail(status, json!(err.to_string()))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn export(State(app): State<AppState>, req: Request<Body>) -> Response {
    let headers = req.headers().clone();
    let Some(experiment_id) = header_str(&headers, EXPERIMENT_HEADER).map(str::to_string) else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{"type": "missing", "loc": ["header", EXPERIMENT_HEADER],
                    "msg": "Field required", "input": null}]),
        );
    };
    let encoding = match Encoding::from_content_type(header_str(&headers, "content-type")) {
        Ok(e) => e,
        Err(e) => return otlp_error(e),
    };
    let body = match to_bytes(req.into_body(), MAX_OTLP_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!(format!("Request body is larger than {MAX_OTLP_BODY} bytes")),
            )
        }
    };
    let parsed = decompress(&body, header_str(&headers, "content-encoding"))
        .and_then(|raw| decode(&raw, encoding))
        .and_then(|request| spans_of(&request));
    let spans = match parsed {
        Ok(s) => s,
        Err(e) => return otlp_error(e),
    };
    if !spans.is_empty() {
        if let Err(e) = app.tracking.log_spans(&experiment_id, &spans).await {
            return ApiError(e).into_response();
        }
        if let Some(run_id) = header_str(&headers, RUN_HEADER) {
            let mut roots: Vec<String> = spans
                .iter()
                .filter(|s| s.parent_id.is_none())
                .map(|s| s.trace_id.clone())
                .collect();
            roots.dedup();
            if !roots.is_empty() {
                if let Err(e) = app.tracking.link_traces_to_run(&roots, run_id).await {
                    tracing::warn!(error = %e, "cannot link OTLP traces to the run");
                }
            }
        }
    }
    let (content_type, body) = empty_response(encoding);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
