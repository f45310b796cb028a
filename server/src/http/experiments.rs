//! Experiment endpoints (`/mlflow/experiments/...`) and the seed's `GET /api/2.0/experiments`.

use axum::extract::State;
use serde::Deserialize;

use super::reply::{empty, reply, Field, PageReply};
use super::request::{required, required_str, Message};
use super::{ApiResult, AppState};
use crate::wire::{self, KeyValue, ViewType};

#[derive(Deserialize)]
struct Create {
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    artifact_location: Option<String>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Create = msg.parse()?;
    let name = required_str(r.name, "name")?;
    let id = app
        .tracking
        .create_experiment(&name, r.artifact_location, r.tags)
        .await?;
    reply(&Field("experiment_id", id))
}

#[derive(Deserialize)]
struct ById {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
}

pub async fn get(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ById = msg.parse()?;
    let id = required_str(r.experiment_id, "experiment_id")?;
    let exp = app.tracking.get_experiment(&id).await?;
    reply(&Field("experiment", exp))
}

#[derive(Deserialize)]
struct ByName {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_name: Option<String>,
}

pub async fn get_by_name(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ByName = msg.parse()?;
    let name = required_str(r.experiment_name, "experiment_name")?;
    let exp = app.tracking.get_experiment_by_name(&name).await?;
    reply(&Field("experiment", exp))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "wire::string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_view_type")]
    view_type: Option<ViewType>,
}

pub async fn search(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Search = msg.parse()?;
    // MLflow's handler treats an absent max_results as 0 and rejects it; the client always
    // sends one. Defaulting to the client's 1000 is kinder to curl users.
    let page = app
        .tracking
        .search_experiments(
            r.view_type.unwrap_or_default(),
            r.filter.as_deref(),
            &r.order_by,
            r.max_results.unwrap_or(1000),
            r.page_token.as_deref(),
        )
        .await?;
    reply(&PageReply::new("experiments", page))
}

#[derive(Deserialize)]
struct Update {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    new_name: Option<String>,
}

pub async fn update(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Update = msg.parse()?;
    let id = required_str(r.experiment_id, "experiment_id")?;
    let name = required(r.new_name, "new_name")?;
    app.tracking.rename_experiment(&id, &name).await?;
    empty()
}

pub async fn delete(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ById = msg.parse()?;
    let id = required_str(r.experiment_id, "experiment_id")?;
    app.tracking.delete_experiment(&id).await?;
    empty()
}

pub async fn restore(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ById = msg.parse()?;
    let id = required_str(r.experiment_id, "experiment_id")?;
    app.tracking.restore_experiment(&id).await?;
    empty()
}

#[derive(Deserialize)]
struct Tag {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    value: Option<String>,
}

pub async fn set_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Tag = msg.parse()?;
    let id = required_str(r.experiment_id, "experiment_id")?;
    let key = required(r.key, "key")?;
    let value = required(r.value, "value")?;
    app.tracking.set_experiment_tag(&id, &key, &value).await?;
    empty()
}

pub async fn delete_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Tag = msg.parse()?;
    let id = required_str(r.experiment_id, "experiment_id")?;
    let key = required(r.key, "key")?;
    app.tracking.delete_experiment_tag(&id, &key).await?;
    empty()
}

/// `GET /api/2.0/experiments`: the active experiments as a bare JSON array, so that the
/// seed's `curl .../api/2.0/experiments | jq '.[].name'` works.
pub async fn list_array(State(app): State<AppState>) -> ApiResult {
    let exps = app.tracking.list_active_experiments().await?;
    reply(&exps)
}
