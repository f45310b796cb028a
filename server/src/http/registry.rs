//! Model-registry endpoints (`/mlflow/registered-models/...`, `/mlflow/model-versions/...`):
//! what `log_model(registered_model_name=...)`, `models:/` loading, stages and aliases use.

use axum::extract::State;
use serde::{de, Deserialize, Deserializer};
use serde_json::Value;

use super::reply::{empty, reply, Field, PageReply};
use super::request::{required_str, Message};
use super::{ApiResult, AppState};
use crate::service::NewVersionRequest;
use crate::wire::{self, KeyValue};

/// A version number: the client sends a string, curl users may send a number.
fn opt_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(de::Error::custom("expected a version number")),
    }
}

/// The fields the registry requests share; each handler reads the ones it needs.
#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    new_name: Option<String>,
    #[serde(default, deserialize_with = "opt_version")]
    version: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    value: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    alias: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    stage: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_bool")]
    archive_existing_versions: Option<bool>,
    #[serde(default, deserialize_with = "wire::string_list")]
    stages: Vec<String>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    source: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_link: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

impl Fields {
    fn name(&self) -> Result<String, super::ApiError> {
        required_str(self.name.clone(), "name")
    }
    fn version(&self) -> Result<String, super::ApiError> {
        required_str(self.version.clone(), "version")
    }
    fn key(&self) -> Result<String, super::ApiError> {
        required_str(self.key.clone(), "key")
    }
    fn alias(&self) -> Result<String, super::ApiError> {
        required_str(self.alias.clone(), "alias")
    }
}

// ---- registered models ----

pub async fn create_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let name = f.name()?;
    let model = app
        .tracking
        .create_registered_model(&name, &f.tags, f.description.as_deref())
        .await?;
    let description = f.description.as_deref().unwrap_or("");
    app.webhooks
        .registered_model_created(&name, &f.tags, description);
    reply(&Field("registered_model", model))
}

pub async fn get_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let model = app.tracking.get_registered_model(&f.name()?).await?;
    reply(&Field("registered_model", model))
}

pub async fn rename_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let new_name = required_str(f.new_name.clone(), "new_name")?;
    let model = app
        .tracking
        .rename_registered_model(&f.name()?, &new_name)
        .await?;
    reply(&Field("registered_model", model))
}

pub async fn update_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let model = app
        .tracking
        .update_registered_model(&f.name()?, f.description.as_deref())
        .await?;
    reply(&Field("registered_model", model))
}

pub async fn delete_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    app.tracking.delete_registered_model(&f.name()?).await?;
    empty()
}

pub async fn search_models(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let page = app
        .tracking
        .search_registered_models(
            f.filter.as_deref(),
            &f.order_by,
            f.max_results.unwrap_or(100),
            f.page_token.as_deref(),
        )
        .await?;
    reply(&PageReply::new("registered_models", page).omit_empty())
}

pub async fn latest_versions(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let versions = app
        .tracking
        .get_latest_versions(&f.name()?, &f.stages)
        .await?;
    if versions.is_empty() {
        return empty();
    }
    reply(&Field("model_versions", versions))
}

pub async fn set_model_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let (name, key) = (f.name()?, f.key()?);
    let value = f.value.as_deref().unwrap_or("");
    app.tracking
        .set_registered_model_tag(&name, &key, value)
        .await?;
    let prompt = app.tracking.is_prompt(&name).await;
    app.webhooks
        .registered_model_tag(prompt, &name, &key, Some(value));
    empty()
}

pub async fn delete_model_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let (name, key) = (f.name()?, f.key()?);
    app.tracking
        .delete_registered_model_tag(&name, &key)
        .await?;
    let prompt = app.tracking.is_prompt(&name).await;
    app.webhooks.registered_model_tag(prompt, &name, &key, None);
    empty()
}

// ---- aliases ----

pub async fn set_alias(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let (name, alias, version) = (f.name()?, f.alias()?, f.version()?);
    app.tracking
        .set_registered_model_alias(&name, &alias, &version)
        .await?;
    let prompt = app.tracking.is_prompt(&name).await;
    app.webhooks.alias(prompt, &name, &alias, Some(&version));
    empty()
}

pub async fn delete_alias(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let (name, alias) = (f.name()?, f.alias()?);
    app.tracking
        .delete_registered_model_alias(&name, &alias)
        .await?;
    let prompt = app.tracking.is_prompt(&name).await;
    app.webhooks.alias(prompt, &name, &alias, None);
    empty()
}

pub async fn get_by_alias(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let version = app
        .tracking
        .get_model_version_by_alias(&f.name()?, &f.alias()?)
        .await?;
    reply(&Field("model_version", version))
}

// ---- model versions ----

pub async fn create_version(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let req = NewVersionRequest {
        name: f.name()?,
        source: required_str(f.source, "source")?,
        run_id: f.run_id,
        model_id: f.model_id,
        run_link: f.run_link,
        description: f.description,
        tags: f.tags,
    };
    let version = app
        .tracking
        .create_model_version(req.clone(), &app.config.source_policy)
        .await?;
    app.webhooks.model_version_created(&req, &version.version);
    reply(&Field("model_version", version))
}

pub async fn get_version(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let version = app
        .tracking
        .get_model_version(&f.name()?, &f.version()?)
        .await?;
    reply(&Field("model_version", version))
}

pub async fn update_version(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let version = app
        .tracking
        .update_model_version(&f.name()?, &f.version()?, f.description.as_deref())
        .await?;
    reply(&Field("model_version", version))
}

pub async fn delete_version(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    app.tracking
        .delete_model_version(&f.name()?, &f.version()?)
        .await?;
    empty()
}

pub async fn transition_stage(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let stage = required_str(f.stage.clone(), "stage")?;
    let version = app
        .tracking
        .transition_model_version_stage(
            &f.name()?,
            &f.version()?,
            &stage,
            f.archive_existing_versions.unwrap_or(false),
        )
        .await?;
    reply(&Field("model_version", version))
}

pub async fn download_uri(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let uri = app
        .tracking
        .get_model_version_download_uri(&f.name()?, &f.version()?)
        .await?;
    reply(&Field("artifact_uri", uri))
}

pub async fn search_versions(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let page = app
        .tracking
        .search_model_versions(
            f.filter.as_deref(),
            &f.order_by,
            f.max_results
                .unwrap_or(crate::service::SEARCH_MODEL_VERSIONS_MAX),
            f.page_token.as_deref(),
        )
        .await?;
    reply(&PageReply::new("model_versions", page).omit_empty())
}

pub async fn set_version_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let (name, version, key) = (f.name()?, f.version()?, f.key()?);
    let value = f.value.as_deref().unwrap_or("");
    app.tracking
        .set_model_version_tag(&name, &version, &key, value)
        .await?;
    let prompt = app.tracking.is_prompt(&name).await;
    app.webhooks
        .model_version_tag(prompt, &name, &version, &key, Some(value));
    empty()
}

pub async fn delete_version_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    let (name, version, key) = (f.name()?, f.version()?, f.key()?);
    app.tracking
        .delete_model_version_tag(&name, &version, &key)
        .await?;
    let prompt = app.tracking.is_prompt(&name).await;
    app.webhooks
        .model_version_tag(prompt, &name, &version, &key, None);
    empty()
}
