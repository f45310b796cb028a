//! MLflow's AI gateway configuration API under `/api/3.0/mlflow/gateway` (and its
//! `/ajax-api` twin): secrets and model definitions here, endpoints with their models,
//! bindings and tags in [`endpoints`], the provider catalogue, the secrets setting and the
//! deployments proxy in [`info`].
//!
//! Replies are MLflow's proto JSON. Secret values are read from requests only: they never
//! appear in a reply, an error message or the log (a malformed value is reported by field
//! name alone).

pub mod endpoints;
pub mod info;

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::reply::{empty, reply, Field};
use super::request::{required_str, Message};
use super::{ApiError, ApiResult, AppState};
use crate::domain::gateway::{ModelDefinition, SecretInfo};
use crate::error::MlflowError;
use crate::wire;

/// Sets `key` when `value` is present (proto JSON leaves unset fields out).
pub(super) fn put<T: serde::Serialize>(obj: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        obj.insert(key.to_string(), json!(v));
    }
}

fn secret_json(s: &SecretInfo) -> Value {
    let mut obj = Map::new();
    obj.insert("secret_id".into(), json!(s.secret_id));
    obj.insert("secret_name".into(), json!(s.secret_name));
    if !s.masked_values.is_empty() {
        obj.insert("masked_values".into(), json!(s.masked_values));
    }
    obj.insert("created_at".into(), json!(s.created_at));
    obj.insert("last_updated_at".into(), json!(s.last_updated_at));
    put(&mut obj, "provider", s.provider.as_ref());
    put(&mut obj, "created_by", s.created_by.as_ref());
    put(&mut obj, "last_updated_by", s.last_updated_by.as_ref());
    put(&mut obj, "auth_config", s.auth_config.as_ref());
    Value::Object(obj)
}

pub(super) fn model_json(m: &ModelDefinition) -> Value {
    let mut obj = Map::new();
    obj.insert("model_definition_id".into(), json!(m.model_definition_id));
    obj.insert("name".into(), json!(m.name));
    put(&mut obj, "secret_id", m.secret_id.as_ref());
    put(&mut obj, "secret_name", m.secret_name.as_ref());
    obj.insert("provider".into(), json!(m.provider));
    obj.insert("model_name".into(), json!(m.model_name));
    obj.insert("created_at".into(), json!(m.created_at));
    obj.insert("last_updated_at".into(), json!(m.last_updated_at));
    put(&mut obj, "created_by", m.created_by.as_ref());
    put(&mut obj, "last_updated_by", m.last_updated_by.as_ref());
    Value::Object(obj)
}

/// A proto `map<string, string>` field; absent, null or `{}` is `None`. `secret` keeps the
/// offending value out of the error.
fn string_map(
    msg: &Message,
    field: &str,
    secret: bool,
) -> Result<Option<Vec<(String, String)>>, ApiError> {
    let invalid = |v: &Value| {
        ApiError(if secret {
            MlflowError::invalid(format!(
                "Invalid value for parameter '{field}' supplied: expected an object of \
                 string values"
            ))
        } else {
            MlflowError::invalid_value(field, v)
        })
    };
    match msg.0.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let mut out = Vec::new();
            for (k, v) in map {
                match v {
                    Value::String(s) => out.push((k.clone(), s.clone())),
                    _ => return Err(invalid(&msg.0[field])),
                }
            }
            Ok((!out.is_empty()).then_some(out))
        }
        // A GET query string cannot carry a map; a string here is a malformed request.
        Some(other) => Err(invalid(other)),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct CreateSecret {
    #[serde(default, deserialize_with = "wire::opt_string")]
    secret_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    provider: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    created_by: Option<String>,
}

pub async fn create_secret(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: CreateSecret = msg.parse()?;
    let name = required_str(r.secret_name, "secret_name")?;
    if msg.0.get("secret_value").is_none_or(Value::is_null) {
        return Err(ApiError(MlflowError::missing("secret_value")));
    }
    let values = string_map(&msg, "secret_value", true)?.unwrap_or_default();
    let auth = string_map(&msg, "auth_config", false)?.map(|v| v.into_iter().collect());
    let secret = app
        .tracking
        .create_gateway_secret(
            &name,
            &values,
            non_empty(r.provider),
            auth,
            non_empty(r.created_by),
        )
        .await?;
    reply(&Field("secret", secret_json(&secret)))
}

#[derive(Deserialize)]
struct SecretRef {
    #[serde(default, deserialize_with = "wire::opt_string")]
    secret_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    updated_by: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    provider: Option<String>,
}

pub async fn get_secret(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = required_str(msg.parse::<SecretRef>()?.secret_id, "secret_id")?;
    let secret = app.tracking.store().get_gateway_secret(&id).await?;
    reply(&Field("secret", secret_json(&secret)))
}

pub async fn update_secret(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: SecretRef = msg.parse()?;
    let id = required_str(r.secret_id, "secret_id")?;
    let values = string_map(&msg, "secret_value", true)?;
    let auth: Option<BTreeMap<String, String>> =
        string_map(&msg, "auth_config", false)?.map(|v| v.into_iter().collect());
    let secret = app
        .tracking
        .update_gateway_secret(&id, values.as_deref(), auth, non_empty(r.updated_by))
        .await?;
    reply(&Field("secret", secret_json(&secret)))
}

pub async fn delete_secret(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = required_str(msg.parse::<SecretRef>()?.secret_id, "secret_id")?;
    app.tracking.store().delete_gateway_secret(&id).await?;
    empty()
}

pub async fn list_secrets(State(app): State<AppState>, msg: Message) -> ApiResult {
    let provider = non_empty(msg.parse::<SecretRef>()?.provider);
    let secrets = app
        .tracking
        .store()
        .list_gateway_secrets(provider.as_deref())
        .await?;
    if secrets.is_empty() {
        return empty();
    }
    let items: Vec<Value> = secrets.iter().map(secret_json).collect();
    reply(&Field("secrets", items))
}

#[derive(Deserialize)]
struct ModelReq {
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_definition_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    secret_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    provider: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    created_by: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    updated_by: Option<String>,
}

pub async fn create_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelReq = msg.parse()?;
    let name = required_str(r.name, "name")?;
    let secret_id = required_str(r.secret_id, "secret_id")?;
    let provider = required_str(r.provider, "provider")?;
    let model_name = required_str(r.model_name, "model_name")?;
    let model = app
        .tracking
        .store()
        .create_gateway_model(
            &name,
            &secret_id,
            &provider,
            &model_name,
            non_empty(r.created_by),
        )
        .await?;
    reply(&Field("model_definition", model_json(&model)))
}

pub async fn get_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelReq = msg.parse()?;
    let id = required_str(r.model_definition_id, "model_definition_id")?;
    let model = app.tracking.store().get_gateway_model(&id).await?;
    reply(&Field("model_definition", model_json(&model)))
}

pub async fn list_models(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelReq = msg.parse()?;
    let (provider, secret) = (non_empty(r.provider), non_empty(r.secret_id));
    let models = app
        .tracking
        .store()
        .list_gateway_models(provider.as_deref(), secret.as_deref())
        .await?;
    if models.is_empty() {
        return empty();
    }
    let items: Vec<Value> = models.iter().map(model_json).collect();
    reply(&Field("model_definitions", items))
}

pub async fn update_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelReq = msg.parse()?;
    let id = required_str(r.model_definition_id, "model_definition_id")?;
    let (name, secret) = (non_empty(r.name), non_empty(r.secret_id));
    let (model_name, provider) = (non_empty(r.model_name), non_empty(r.provider));
    let model = app
        .tracking
        .store()
        .update_gateway_model(
            &id,
            name.as_deref(),
            secret.as_deref(),
            model_name.as_deref(),
            provider.as_deref(),
            non_empty(r.updated_by),
        )
        .await?;
    reply(&Field("model_definition", model_json(&model)))
}

pub async fn delete_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelReq = msg.parse()?;
    let id = required_str(r.model_definition_id, "model_definition_id")?;
    app.tracking.store().delete_gateway_model(&id).await?;
    empty()
}
