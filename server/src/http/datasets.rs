//! Evaluation dataset endpoints under `/api/3.0/mlflow/datasets`.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::reply::{empty, reply, Field, PageReply};
use super::request::{required_str, Message};
use super::{ApiResult, AppState};
use crate::wire::datasets::{dataset_json, records_text};
use crate::wire::{self};

#[derive(Deserialize)]
struct Create {
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    tags: Option<String>,
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Create = msg.parse()?;
    let name = required_str(r.name, "name")?;
    let d = app
        .tracking
        .create_dataset(&name, r.tags.as_deref(), r.experiment_ids)
        .await?;
    reply(&Field("dataset", dataset_json(&d)))
}

pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let d = app.tracking.get_dataset(&id).await?;
    reply(&Field("dataset", dataset_json(&d)))
}

pub async fn delete(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    app.tracking.delete_dataset(&id).await?;
    empty()
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter_string: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

pub async fn search(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Search = msg.parse()?;
    let page = app
        .tracking
        .search_datasets(
            r.experiment_ids,
            r.filter_string.as_deref(),
            r.max_results,
            &r.order_by,
            r.page_token.as_deref(),
        )
        .await?;
    let page = crate::service::Paged {
        items: page.items.iter().map(dataset_json).collect(),
        next_page_token: page.next_page_token,
    };
    reply(&PageReply::new("datasets", page).omit_empty())
}

#[derive(Deserialize)]
struct SetTags {
    #[serde(default, deserialize_with = "wire::opt_string")]
    tags: Option<String>,
}

pub async fn set_tags(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: SetTags = msg.parse()?;
    let tags = required_str(r.tags, "tags")?;
    app.tracking.set_dataset_tags(&id, &tags).await?;
    empty()
}

pub async fn delete_tag(
    State(app): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    app.tracking.delete_dataset_tag(&id, &key).await?;
    empty()
}

#[derive(Deserialize)]
struct Upsert {
    #[serde(default, deserialize_with = "wire::opt_string")]
    records: Option<String>,
}

pub async fn upsert_records(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: Upsert = msg.parse()?;
    let records = required_str(r.records, "records")?;
    let (inserted, updated) = app.tracking.upsert_dataset_records(&id, &records).await?;
    reply(&json!({"inserted_count": inserted, "updated_count": updated}))
}

#[derive(Deserialize)]
struct GetRecords {
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

pub async fn get_records(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: GetRecords = msg.parse()?;
    let (records, next) = app
        .tracking
        .dataset_records(&id, r.max_results, r.page_token.as_deref())
        .await?;
    let mut body = json!({ "records": records_text(&records) });
    if let Some(token) = next {
        body["next_page_token"] = json!(token);
    }
    reply(&body)
}

#[derive(Deserialize)]
struct DeleteRecords {
    #[serde(default, deserialize_with = "wire::string_list")]
    dataset_record_ids: Vec<String>,
}

pub async fn delete_records(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: DeleteRecords = msg.parse()?;
    let deleted = app
        .tracking
        .delete_dataset_records(&id, &r.dataset_record_ids)
        .await?;
    reply(&json!({ "deleted_count": deleted }))
}

pub async fn experiment_ids(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let ids = app.tracking.dataset_experiment_ids(&id).await?;
    if ids.is_empty() {
        return empty();
    }
    reply(&Field("experiment_ids", ids))
}

#[derive(Deserialize)]
struct Experiments {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
}

async fn change_experiments(app: AppState, id: String, msg: Message, add: bool) -> ApiResult {
    let r: Experiments = msg.parse()?;
    let d = app
        .tracking
        .change_dataset_experiments(&id, &r.experiment_ids, add)
        .await?;
    reply(&Field("dataset", dataset_json(&d)))
}

pub async fn add_experiments(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    change_experiments(app, id, msg, true).await
}

pub async fn remove_experiments(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    change_experiments(app, id, msg, false).await
}
