//! Logged-model endpoints (`/mlflow/logged-models...`), which MLflow 3's `log_model`,
//! `runs:/` downloads and model loading all go through, and the UI's listing and download
//! of a model's artifacts (`artifacts/directories`, `artifacts/files`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::reply::{empty, reply, Field, PageReply};
use super::request::{required, required_str, Message};
use super::{artifacts, ui_api, ApiError, ApiResult, AppState};
use crate::error::{ErrorCode, MlflowError};
use crate::service::{DatasetIn, ModelOrderIn};
use crate::wire::{self, KeyValue};

#[derive(Deserialize)]
struct Create {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_type: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    source_run_id: Option<String>,
    #[serde(default, deserialize_with = "wire::message_list")]
    params: Vec<KeyValue>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Create = msg.parse()?;
    let exp = required_str(r.experiment_id, "experiment_id")?;
    let model = app
        .tracking
        .create_logged_model(
            &exp,
            r.name,
            r.model_type,
            r.source_run_id,
            r.params,
            r.tags,
        )
        .await?;
    reply(&Field("model", model))
}

#[derive(Deserialize)]
struct GetQuery {
    #[serde(default, deserialize_with = "wire::opt_bool")]
    allow_deleted: Option<bool>,
}

pub async fn get(State(app): State<AppState>, Path(id): Path<String>, msg: Message) -> ApiResult {
    let q: GetQuery = msg.parse()?;
    let model = app
        .tracking
        .get_logged_model(&id, q.allow_deleted.unwrap_or(false))
        .await?;
    reply(&Field("model", model))
}

#[derive(Deserialize)]
struct Finalize {
    status: Option<Value>,
}

pub async fn finalize(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: Finalize = msg.parse()?;
    let raw = required(r.status.filter(|v| !v.is_null()), "status")?;
    let status = wire::logged_model_status_number(&raw).ok_or_else(|| {
        ApiError(MlflowError::invalid(format!(
            "Invalid logged model status {raw}"
        )))
    })?;
    let model = app.tracking.finalize_logged_model(&id, status).await?;
    reply(&Field("model", model))
}

pub async fn delete(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    app.tracking.delete_logged_model(&id).await?;
    empty()
}

#[derive(Deserialize)]
struct Entries {
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
    #[serde(default, deserialize_with = "wire::message_list")]
    params: Vec<KeyValue>,
}

pub async fn set_tags(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: Entries = msg.parse()?;
    app.tracking.set_logged_model_tags(&id, &r.tags).await?;
    empty()
}

pub async fn log_params(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: Entries = msg.parse()?;
    app.tracking.log_logged_model_params(&id, &r.params).await?;
    empty()
}

pub async fn delete_tag(
    State(app): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    app.tracking.delete_logged_model_tag(&id, &key).await?;
    empty()
}

#[derive(Deserialize)]
struct OrderIn {
    #[serde(default, deserialize_with = "wire::opt_string")]
    field_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_bool")]
    ascending: Option<bool>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    dataset_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
struct DatasetRef {
    #[serde(default, deserialize_with = "wire::opt_string")]
    dataset_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::message_list")]
    datasets: Vec<DatasetRef>,
    #[serde(default, deserialize_with = "wire::message_list")]
    order_by: Vec<OrderIn>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

pub async fn search(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Search = msg.parse()?;
    let order = r
        .order_by
        .into_iter()
        .map(|o| {
            Ok(ModelOrderIn {
                field_name: required_str(o.field_name, "order_by.field_name")?,
                ascending: o.ascending.unwrap_or(true),
                dataset_name: o.dataset_name,
                dataset_digest: o.dataset_digest,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let datasets = r
        .datasets
        .into_iter()
        .map(|d| DatasetIn {
            dataset_name: d.dataset_name,
            dataset_digest: d.dataset_digest,
        })
        .collect::<Vec<_>>();
    let page = app
        .tracking
        .search_logged_models(
            &r.experiment_ids,
            r.filter.as_deref(),
            &datasets,
            &order,
            r.max_results.unwrap_or(50),
            r.page_token.as_deref(),
        )
        .await?;
    reply(&PageReply::new("models", page).omit_empty())
}

#[derive(Deserialize)]
struct ArtifactDir {
    #[serde(default, deserialize_with = "wire::opt_string")]
    artifact_directory_path: Option<String>,
}

/// `GET .../mlflow/logged-models/{id}/artifacts/directories?artifact_directory_path=..`:
/// the entries directly below a directory of the model's artifacts (its root by default).
pub async fn list_artifacts(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let q: ArtifactDir = msg.parse()?;
    let sub = artifacts::checked_path(q.artifact_directory_path.as_deref().unwrap_or(""))?;
    let model = app.tracking.get_logged_model(&id, false).await?;
    let root_uri = model.info.artifact_uri;
    let files = artifacts::list_below(&app, &root_uri, &sub).await?;
    reply(&artifacts::Listing {
        root_uri: Some(root_uri),
        files,
    })
}

#[derive(Deserialize)]
struct ArtifactFile {
    #[serde(default, deserialize_with = "wire::opt_string")]
    artifact_file_path: Option<String>,
}

/// `GET /ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files?artifact_file_path=..`:
/// one file of the model's artifacts, sent as `/get-artifact` sends a run's.
pub async fn artifact_file(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    msg: Message,
) -> Result<Response, ApiError> {
    let q: ArtifactFile = msg.parse()?;
    let raw = q
        .artifact_file_path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            MlflowError::new(
                ErrorCode::BadRequest,
                "Request must include the \"artifact_file_path\" query parameter.",
            )
        })?;
    let path = ui_api::safe_path(&raw)?;
    let model = app.tracking.get_logged_model(&id, false).await?;
    ui_api::send_below(&app, &headers, &model.info.artifact_uri, &path).await
}
