//! The routes only the web UI calls: artifact downloads by run or model version
//! (`/get-artifact`, `/model-versions/get-artifact`), the artifact upload of the run page
//! (`upload-artifact`), the experiment page's dataset list
//! (`experiments/search-datasets`) and the UI's telemetry (`ui-telemetry`, accepted and
//! dropped: this server sends no telemetry anywhere).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde::Deserialize;

use super::reply::{reply, Field};
use super::request::{query_to_json, required_str, Message};
use super::{artifacts, ApiError, ApiResult, AppState};
use crate::artifacts::RelPath;
use crate::error::MlflowError;
use crate::wire;

#[derive(Deserialize)]
struct VersionArtifact {
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    version: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    path: Option<String>,
}

/// An artifact path from a query, checked as MLflow checks it before anything is read:
/// any refusal is MLflow's one message, `Invalid path`.
pub(super) fn safe_path(raw: &str) -> Result<RelPath, ApiError> {
    RelPath::parse_file(raw).map_err(|err| {
        tracing::debug!(reason = %err.message, "artifact path refused");
        ApiError(MlflowError::invalid("Invalid path"))
    })
}

/// `GET /get-artifact?run_uuid=..&path=..`: a file of the run's artifacts.
pub async fn run_artifact(
    State(app): State<AppState>,
    headers: HeaderMap,
    msg: Message,
) -> Result<Response, ApiError> {
    let q: artifacts::RunList = msg.parse()?;
    let path = safe_path(&required_str(q.path, "path")?)?;
    let run_id = required_str(q.run_id.filter(|s| !s.is_empty()).or(q.run_uuid), "run_id")?;
    let run = app.tracking.get_run(&run_id).await?;
    send_below(&app, &headers, &run.info.artifact_uri, &path).await
}

/// `GET /model-versions/get-artifact?name=..&version=..&path=..`: a file of the version's
/// model.
pub async fn version_artifact(
    State(app): State<AppState>,
    headers: HeaderMap,
    msg: Message,
) -> Result<Response, ApiError> {
    let q: VersionArtifact = msg.parse()?;
    let path = safe_path(&required_str(q.path, "path")?)?;
    let name = required_str(q.name, "name")?;
    let version = required_str(q.version, "version")?;
    let mut root = app
        .tracking
        .get_model_version_download_uri(&name, &version)
        .await?;
    // A version registered from `runs:/RUN/PATH` lives in that run's artifacts.
    if let Some(rest) = root.strip_prefix("runs:/") {
        let (run_id, sub) = rest.split_once('/').unwrap_or((rest, ""));
        let run = app.tracking.get_run(run_id).await?;
        root = format!("{}/{sub}", run.info.artifact_uri.trim_end_matches('/'));
    }
    send_below(&app, &headers, &root, &path).await
}

/// Streams `path` below the artifact location `root`, which must lie in one of this
/// server's stores (a model-version source a client named elsewhere is refused with the
/// same 4xx whatever it points to).
pub(super) async fn send_below(
    app: &AppState,
    headers: &HeaderMap,
    root: &str,
    path: &RelPath,
) -> Result<Response, ApiError> {
    let located = app.roots.locate(root)?;
    let file = located.path.join(path);
    if !file.starts_with(&located.path) {
        return Err(ApiError(MlflowError::invalid("Invalid path")));
    }
    artifacts::send_file(&located.repo, &file, headers).await
}

#[derive(Deserialize)]
struct Upload {
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_uuid: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    path: Option<String>,
}

/// MLflow refuses UI uploads above 10 MB.
const MAX_UPLOAD: usize = 10 * 1024 * 1024;

/// `POST .../2.0/mlflow/upload-artifact?run_uuid=..&path=..` with the file as the raw
/// body: the UI's upload of one file into a run's artifacts. Checks run in MLflow's order
/// (run, path, path safety, size, data) before the run is read or anything written.
pub async fn upload_artifact(State(app): State<AppState>, uri: Uri, body: Body) -> ApiResult {
    let q: Upload = Message(query_to_json(uri.query().unwrap_or(""))).parse()?;
    let run_id = q
        .run_uuid
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError(MlflowError::invalid("Request must specify run_uuid.")))?;
    let raw = q
        .path
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError(MlflowError::invalid("Request must specify path.")))?;
    let path = safe_path(&raw)?;
    let too_large = || {
        ApiError(MlflowError::invalid(
            "Artifact size is too large. Max size is 10MB.",
        ))
    };
    let data = axum::body::to_bytes(body, MAX_UPLOAD)
        .await
        .map_err(|_| too_large())?;
    if data.is_empty() {
        return Err(MlflowError::invalid("Request must specify data.").into());
    }
    let run = app.tracking.get_run(&run_id).await?;
    let located = app.roots.locate(&run.info.artifact_uri)?;
    let file = located.path.join(&path);
    if !file.starts_with(&located.path) {
        return Err(ApiError(MlflowError::invalid("Invalid path")));
    }
    let chunk: Result<bytes::Bytes, std::convert::Infallible> = Ok(data);
    located
        .repo
        .put(&file, futures::stream::iter([chunk]))
        .await?;
    reply(&serde_json::json!({}))
}

#[derive(Deserialize)]
struct SearchDatasets {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
}

/// MLflow caps one request at this many experiments.
const MAX_EXPERIMENTS: usize = 20;

/// `POST .../mlflow/experiments/search-datasets`.
pub async fn search_datasets(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: SearchDatasets = msg.parse()?;
    if r.experiment_ids.is_empty() {
        return Err(MlflowError::invalid(
            "SearchDatasets request must specify at least one experiment_id.",
        )
        .into());
    }
    if r.experiment_ids.len() > MAX_EXPERIMENTS {
        return Err(MlflowError::invalid(format!(
            "SearchDatasets request cannot specify more than {MAX_EXPERIMENTS} experiment_ids. \
             Received {} experiment_ids.",
            r.experiment_ids.len()
        ))
        .into());
    }
    let summaries = app
        .tracking
        .store()
        .search_dataset_summaries(&r.experiment_ids)
        .await?;
    reply(&Field("dataset_summaries", summaries))
}

/// `GET .../3.0/mlflow/ui-telemetry`: the UI's telemetry stays off.
pub async fn telemetry_config() -> ApiResult {
    reply(&serde_json::json!({
        "disable_ui_telemetry": true,
        "disable_ui_events": [],
        "ui_rollout_percentage": 0,
    }))
}

/// `POST .../3.0/mlflow/ui-telemetry`: records are accepted and dropped.
pub async fn telemetry_records() -> ApiResult {
    reply(&serde_json::json!({ "status": "disabled" }))
}

/// `GET .../3.0/mlflow/assistant/config`: the UI's assistant panel; no provider is set up
/// on this server.
pub async fn assistant_config() -> ApiResult {
    reply(&serde_json::json!({
        "providers": {},
        "projects": {},
        "remote_access_allowed": false,
    }))
}

/// `GET .../3.0/mlflow/assistant/providers`: none is available here.
pub async fn assistant_providers() -> ApiResult {
    reply(&serde_json::json!({ "providers": [] }))
}
