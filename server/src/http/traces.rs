//! Trace endpoints: MLflow 3's `/api/3.0/mlflow/traces...` and the legacy v2 ones the
//! 3.17.2 client still calls (tags, delete, link-to-run, link-prompts) or falls back to.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::reply::reply;
use super::request::{required, required_str, Message};
use super::{ApiError, ApiResult, AppState};
use crate::domain::traces::{TraceInfo, TraceState};
use crate::error::MlflowError;
use crate::service::Paged;
use crate::wire::traces::{parse_trace_info, trace_info_json, trace_info_v2_json, trace_json};
use crate::wire::{self, KeyValue};

fn pairs(list: Vec<KeyValue>) -> Vec<(String, String)> {
    list.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

pub async fn start_v3(State(app): State<AppState>, msg: Message) -> ApiResult {
    let body = msg.0;
    let trace = required(body.get("trace").filter(|t| !t.is_null()), "trace")?;
    let info = parse_trace_info(trace.get("trace_info").unwrap_or(&Value::Null))?;
    let stored = app.tracking.start_trace(info).await?;
    reply(&json!({ "trace": { "trace_info": trace_info_json(&stored) } }))
}

pub async fn get_info_v3(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let info = app.tracking.get_trace_info(&id).await?;
    reply(&json!({ "trace": { "trace_info": trace_info_json(&info) } }))
}

#[derive(Deserialize)]
struct GetTrace {
    #[serde(default, deserialize_with = "wire::opt_string")]
    trace_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_bool")]
    allow_partial: Option<bool>,
}

pub async fn get_trace(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: GetTrace = msg.parse()?;
    let id = required_str(r.trace_id, "trace_id")?;
    let trace = app
        .tracking
        .get_trace(&id, r.allow_partial.unwrap_or(false))
        .await?;
    reply(&json!({ "trace": trace_json(&trace) }))
}

#[derive(Deserialize)]
struct BatchGet {
    #[serde(default, deserialize_with = "wire::string_list")]
    trace_ids: Vec<String>,
    #[serde(default)]
    experiment_ids: Option<Value>,
}

/// `experiment_ids` when the request names the field at all (an empty list scopes to none).
fn scope(v: Option<Value>) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) => Ok(Some(
            items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    other => Err(ApiError(MlflowError::invalid(format!(
                        "Invalid value {other} in 'experiment_ids': expected strings"
                    )))),
                })
                .collect::<Result<_, _>>()?,
        )),
        Some(other) => Err(ApiError(MlflowError::invalid(format!(
            "Invalid value {other} for parameter 'experiment_ids'"
        )))),
    }
}

pub async fn batch_get(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: BatchGet = msg.parse()?;
    if r.trace_ids.is_empty() {
        return Err(ApiError(MlflowError::missing("trace_ids")));
    }
    let exps = scope(r.experiment_ids)?;
    let traces = app
        .tracking
        .batch_get_traces(&r.trace_ids, exps.as_deref())
        .await?;
    let list: Vec<Value> = traces.iter().map(trace_json).collect();
    reply(&json!({ "traces": list }))
}

pub async fn batch_get_infos(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: BatchGet = msg.parse()?;
    if r.trace_ids.is_empty() {
        return Err(ApiError(MlflowError::missing("trace_ids")));
    }
    let exps = scope(r.experiment_ids)?;
    let infos = app
        .tracking
        .batch_get_trace_infos(&r.trace_ids, exps.as_deref())
        .await?;
    let list: Vec<Value> = infos.iter().map(trace_info_json).collect();
    reply(&json!({ "trace_infos": list }))
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    mlflow_experiment: Option<Value>,
}

#[derive(Deserialize)]
struct SearchV3 {
    #[serde(default)]
    locations: Option<Vec<Location>>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

/// Largest page of the trace search endpoints.
const SEARCH_TRACES_MAX: i64 = 500;

fn check_page_size(n: i64) -> Result<i64, ApiError> {
    if n > SEARCH_TRACES_MAX {
        return Err(ApiError(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied: must be at most \
             {SEARCH_TRACES_MAX}"
        ))));
    }
    Ok(n)
}

pub async fn search_v3(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: SearchV3 = msg.parse()?;
    let locations = required(r.locations, "locations")?;
    let exps: Vec<String> = locations
        .into_iter()
        .filter_map(|l| l.mlflow_experiment)
        .filter_map(|e| match e.get("experiment_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    let max = check_page_size(r.max_results.unwrap_or(100))?;
    let page = app
        .tracking
        .search_traces(
            &exps,
            r.filter.as_deref(),
            max,
            &r.order_by,
            r.page_token.as_deref(),
        )
        .await?;
    traces_page(page, trace_info_json)
}

/// `{"traces": [...], "next_page_token": ...}` with each info in the given form.
fn traces_page(page: Paged<TraceInfo>, form: fn(&TraceInfo) -> Value) -> ApiResult {
    let mut out = serde_json::Map::new();
    out.insert(
        "traces".into(),
        Value::Array(page.items.iter().map(form).collect()),
    );
    if let Some(t) = page.next_page_token {
        out.insert("next_page_token".into(), json!(t));
    }
    reply(&Value::Object(out))
}

#[derive(Deserialize)]
struct SearchV2 {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

pub async fn search_v2(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: SearchV2 = msg.parse()?;
    if r.experiment_ids.is_empty() {
        return Err(ApiError(MlflowError::missing("experiment_ids")));
    }
    let max = check_page_size(r.max_results.unwrap_or(100))?;
    let page = app
        .tracking
        .search_traces(
            &r.experiment_ids,
            r.filter.as_deref(),
            max,
            &r.order_by,
            r.page_token.as_deref(),
        )
        .await?;
    traces_page(page, trace_info_v2_json)
}

#[derive(Deserialize)]
struct DeleteTraces {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_timestamp_millis: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_traces: Option<i64>,
    #[serde(default, deserialize_with = "wire::string_list")]
    request_ids: Vec<String>,
}

pub async fn delete(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: DeleteTraces = msg.parse()?;
    let exp = required_str(r.experiment_id, "experiment_id")?;
    let n = app
        .tracking
        .delete_traces(&exp, r.max_timestamp_millis, r.max_traces, &r.request_ids)
        .await?;
    reply(&json!({ "traces_deleted": n }))
}

#[derive(Deserialize)]
struct SetTag {
    #[serde(default, deserialize_with = "wire::opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    value: Option<String>,
}

pub async fn set_tag(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: SetTag = msg.parse()?;
    let key = required(r.key, "key")?;
    app.tracking
        .set_trace_tag(&id, &key, &r.value.unwrap_or_default())
        .await?;
    super::reply::empty()
}

pub async fn delete_tag(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: SetTag = msg.parse()?;
    let key = required(r.key, "key")?;
    app.tracking.delete_trace_tag(&id, &key).await?;
    super::reply::empty()
}

#[derive(Deserialize)]
struct LinkToRun {
    #[serde(default, deserialize_with = "wire::string_list")]
    trace_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_id: Option<String>,
}

pub async fn link_to_run(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: LinkToRun = msg.parse()?;
    let run = required_str(r.run_id, "run_id")?;
    if r.trace_ids.is_empty() {
        return Err(ApiError(MlflowError::missing("trace_ids")));
    }
    app.tracking.link_traces_to_run(&r.trace_ids, &run).await?;
    super::reply::empty()
}

#[derive(Deserialize)]
struct PromptRef {
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    version: Option<String>,
}

#[derive(Deserialize)]
struct LinkPrompts {
    #[serde(default, deserialize_with = "wire::opt_string")]
    trace_id: Option<String>,
    #[serde(default)]
    prompt_versions: Option<Vec<PromptRef>>,
}

pub async fn link_prompts(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: LinkPrompts = msg.parse()?;
    let trace = required_str(r.trace_id, "trace_id")?;
    let versions = required(r.prompt_versions, "prompt_versions")?;
    let refs: Vec<(String, String)> = versions
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.version.unwrap_or_default()))
        .collect();
    app.tracking.link_prompts_to_trace(&trace, &refs).await?;
    super::reply::empty()
}

// ---- the legacy v2 trace-info endpoints ----

#[derive(Deserialize)]
struct StartV2 {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    timestamp_ms: Option<i64>,
    #[serde(default, deserialize_with = "wire::message_list")]
    request_metadata: Vec<KeyValue>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
}

pub async fn start_v2(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: StartV2 = msg.parse()?;
    let exp = required_str(r.experiment_id, "experiment_id")?;
    let info = app
        .tracking
        .start_trace_v2(
            &exp,
            r.timestamp_ms.unwrap_or(0),
            pairs(r.request_metadata),
            pairs(r.tags),
        )
        .await?;
    reply(&json!({ "trace_info": trace_info_v2_json(&info) }))
}

#[derive(Deserialize)]
struct EndV2 {
    #[serde(default, deserialize_with = "wire::opt_i64")]
    timestamp_ms: Option<i64>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default, deserialize_with = "wire::message_list")]
    request_metadata: Vec<KeyValue>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
}

pub async fn end_v2(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: EndV2 = msg.parse()?;
    let state = match r.status {
        None | Some(Value::Null) => TraceState::Unspecified,
        Some(Value::String(s)) => TraceState::parse(&s)
            .ok_or_else(|| ApiError(MlflowError::invalid(format!("Invalid trace status '{s}'"))))?,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(1) => TraceState::Ok,
            Some(2) => TraceState::Error,
            Some(3) => TraceState::InProgress,
            _ => TraceState::Unspecified,
        },
        Some(other) => {
            return Err(ApiError(MlflowError::invalid(format!(
                "Invalid trace status {other}"
            ))))
        }
    };
    let info = app
        .tracking
        .end_trace_v2(
            &id,
            r.timestamp_ms.unwrap_or(0),
            state,
            pairs(r.request_metadata),
            pairs(r.tags),
        )
        .await?;
    reply(&json!({ "trace_info": trace_info_v2_json(&info) }))
}

pub async fn get_info_v2(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let info = app.tracking.get_trace_info(&id).await?;
    reply(&json!({ "trace_info": trace_info_v2_json(&info) }))
}

#[derive(Deserialize)]
struct TraceArtifact {
    #[serde(default, deserialize_with = "wire::opt_string")]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    path: Option<String>,
}

/// `GET .../get-trace-artifact?request_id=...`: the trace's `traces.json` for the UI.
pub async fn trace_artifact(State(app): State<AppState>, msg: Message) -> ApiResult {
    use axum::http::header;
    use axum::response::IntoResponse;
    let r: TraceArtifact = msg.parse()?;
    let Some(id) = r.request_id.filter(|s| !s.is_empty()) else {
        return Err(ApiError(MlflowError::new(
            crate::error::ErrorCode::BadRequest,
            "Request must include the \"request_id\" query parameter.",
        )));
    };
    if r.path.is_some() {
        return Err(ApiError(MlflowError::new(
            crate::error::ErrorCode::NotImplemented,
            "Trace attachments are not served by this server",
        )));
    }
    let body = app.tracking.trace_data_json(&id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=traces.json",
            ),
        ],
        body,
    )
        .into_response())
}
