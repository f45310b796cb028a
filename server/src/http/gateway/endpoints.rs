//! Endpoints (`/mlflow/gateway/endpoints/...`): create, get, update, delete, list; their
//! models (`models/attach`, `models/detach`), bindings and tags.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{model_json, non_empty, put};
use crate::domain::gateway::{
    validate_endpoint_name, Binding, Endpoint, Fallback, Linkage, Mapping, ModelConfig,
    RESOURCE_TYPES,
};
use crate::error::MlflowError;
use crate::http::reply::{empty, reply, Field};
use crate::http::request::{required_str, Message};
use crate::http::{ApiError, ApiResult, AppState};
use crate::service::parse_experiment;
use crate::store::EndpointFields;
use crate::wire;

fn mapping_json(m: &Mapping) -> Value {
    let mut obj = Map::new();
    obj.insert("mapping_id".into(), json!(m.mapping_id));
    obj.insert("endpoint_id".into(), json!(m.endpoint_id));
    obj.insert("model_definition_id".into(), json!(m.model_definition_id));
    put(
        &mut obj,
        "model_definition",
        m.model_definition.as_ref().map(model_json),
    );
    obj.insert("weight".into(), json!(m.weight));
    obj.insert("created_at".into(), json!(m.created_at));
    put(&mut obj, "created_by", m.created_by.as_ref());
    obj.insert("linkage_type".into(), json!(m.linkage.as_str()));
    put(&mut obj, "fallback_order", m.fallback_order);
    Value::Object(obj)
}

fn endpoint_json(e: &Endpoint) -> Value {
    let mut obj = Map::new();
    obj.insert("endpoint_id".into(), json!(e.endpoint_id));
    obj.insert("name".into(), json!(e.name.clone().unwrap_or_default()));
    obj.insert("created_at".into(), json!(e.created_at));
    obj.insert("last_updated_at".into(), json!(e.last_updated_at));
    let mappings: Vec<Value> = e.mappings.iter().map(mapping_json).collect();
    obj.insert("model_mappings".into(), json!(mappings));
    obj.insert(
        "created_by".into(),
        json!(e.created_by.clone().unwrap_or_default()),
    );
    obj.insert(
        "last_updated_by".into(),
        json!(e.last_updated_by.clone().unwrap_or_default()),
    );
    let tags: Vec<Value> = e
        .tags
        .iter()
        .map(|(k, v)| {
            let mut t = Map::new();
            t.insert("key".into(), json!(k));
            put(&mut t, "value", v.as_ref());
            Value::Object(t)
        })
        .collect();
    obj.insert("tags".into(), json!(tags));
    put(&mut obj, "routing_strategy", e.routing_strategy.as_ref());
    if let Some(f) = &e.fallback {
        let mut fc = Map::new();
        put(&mut fc, "strategy", f.strategy.as_ref());
        put(&mut fc, "max_attempts", f.max_attempts);
        obj.insert("fallback_config".into(), Value::Object(fc));
    }
    put(&mut obj, "experiment_id", e.experiment_id.as_ref());
    obj.insert("usage_tracking".into(), json!(e.usage_tracking));
    Value::Object(obj)
}

fn binding_json(b: &Binding) -> Value {
    let mut obj = Map::new();
    obj.insert("endpoint_id".into(), json!(b.endpoint_id));
    obj.insert("resource_type".into(), json!(b.resource_type));
    obj.insert("resource_id".into(), json!(b.resource_id));
    obj.insert("created_at".into(), json!(b.created_at));
    obj.insert("last_updated_at".into(), json!(b.last_updated_at));
    put(&mut obj, "created_by", b.created_by.as_ref());
    put(&mut obj, "last_updated_by", b.last_updated_by.as_ref());
    put(&mut obj, "display_name", b.display_name.as_ref());
    Value::Object(obj)
}

/// A proto enum given by name or number; `names[i]` is number `i + 1`.
fn enum_name(value: &Value, field: &str, names: &[&str]) -> Result<String, ApiError> {
    let found = match value {
        Value::String(s) => names.iter().find(|n| **n == s).copied(),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| names.get((i as usize).wrapping_sub(1)).copied()),
        _ => None,
    };
    found
        .map(str::to_string)
        .ok_or_else(|| ApiError(MlflowError::invalid_value(field, value)))
}

fn model_config(value: &Value, field: &str) -> Result<ModelConfig, ApiError> {
    let bad = || ApiError(MlflowError::invalid_value(field, value));
    let obj = value.as_object().ok_or_else(bad)?;
    let id = match obj.get("model_definition_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(ApiError(MlflowError::missing(&format!(
                "{field}.model_definition_id"
            ))))
        }
    };
    let linkage = Linkage::parse(obj.get("linkage_type").unwrap_or(&Value::Null))?;
    let weight = match obj.get("weight") {
        None | Some(Value::Null) => 1.0,
        Some(v) => v.as_f64().ok_or_else(bad)?,
    };
    let fallback_order = match obj.get("fallback_order") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(bad)?),
    };
    Ok(ModelConfig {
        model_definition_id: id,
        linkage,
        weight,
        fallback_order,
    })
}

fn model_configs(msg: &Message) -> Result<Option<Vec<ModelConfig>>, ApiError> {
    match msg.0.get("model_configs") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| model_config(v, &format!("model_configs[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(ApiError(MlflowError::invalid_value("model_configs", other))),
    }
}

#[derive(Deserialize)]
struct EndpointReq {
    #[serde(default, deserialize_with = "wire::opt_string")]
    endpoint_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    created_by: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    updated_by: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_bool")]
    usage_tracking: Option<bool>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    provider: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    secret_id: Option<String>,
}

/// The routing strategy, fallback config, experiment and tracking flag of a request.
fn fields(msg: &Message, r: &EndpointReq, by: Option<String>) -> Result<EndpointFields, ApiError> {
    let routing_strategy = match msg.0.get("routing_strategy") {
        None | Some(Value::Null) => None,
        Some(v) => Some(enum_name(
            v,
            "routing_strategy",
            &["REQUEST_BASED_TRAFFIC_SPLIT"],
        )?),
    };
    let fallback = match msg.0.get("fallback_config") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) => Some(Fallback {
            strategy: match f.get("strategy") {
                None | Some(Value::Null) => None,
                Some(v) => Some(enum_name(v, "fallback_config.strategy", &["SEQUENTIAL"])?),
            },
            max_attempts: match f.get("max_attempts") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| {
                    ApiError(MlflowError::invalid_value(
                        "fallback_config.max_attempts",
                        v,
                    ))
                })?),
            },
        }),
        Some(other) => {
            return Err(ApiError(MlflowError::invalid_value(
                "fallback_config",
                other,
            )))
        }
    };
    let experiment_id = match non_empty(r.experiment_id.clone()) {
        Some(e) => Some(parse_experiment(&e)?),
        None => None,
    };
    let name = non_empty(r.name.clone());
    if let Some(n) = &name {
        validate_endpoint_name(n)?;
    }
    Ok(EndpointFields {
        name,
        by,
        routing_strategy,
        fallback,
        experiment_id,
        usage_tracking: r.usage_tracking,
    })
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: EndpointReq = msg.parse()?;
    required_str(r.name.clone(), "name")?;
    let configs =
        model_configs(&msg)?.ok_or_else(|| ApiError(MlflowError::missing("model_configs")))?;
    let f = fields(&msg, &r, non_empty(r.created_by.clone()))?;
    let endpoint = app.tracking.create_gateway_endpoint(f, &configs).await?;
    reply(&Field("endpoint", endpoint_json(&endpoint)))
}

pub async fn get(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: EndpointReq = msg.parse()?;
    let (id, name) = (non_empty(r.endpoint_id), non_empty(r.name));
    if id.is_some() == name.is_some() {
        return Err(ApiError(MlflowError::invalid(
            "Exactly one of endpoint_id or name must be provided",
        )));
    }
    let endpoint = app
        .tracking
        .store()
        .get_gateway_endpoint(id.as_deref(), name.as_deref())
        .await?;
    reply(&Field("endpoint", endpoint_json(&endpoint)))
}

pub async fn update(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: EndpointReq = msg.parse()?;
    let id = required_str(r.endpoint_id.clone(), "endpoint_id")?;
    let configs = model_configs(&msg)?;
    let f = fields(&msg, &r, non_empty(r.updated_by.clone()))?;
    let endpoint = app
        .tracking
        .update_gateway_endpoint(&id, f, configs.as_deref())
        .await?;
    reply(&Field("endpoint", endpoint_json(&endpoint)))
}

pub async fn delete(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = required_str(msg.parse::<EndpointReq>()?.endpoint_id, "endpoint_id")?;
    app.tracking.store().delete_gateway_endpoint(&id).await?;
    empty()
}

pub async fn list(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: EndpointReq = msg.parse()?;
    let (provider, secret) = (non_empty(r.provider), non_empty(r.secret_id));
    let endpoints = app
        .tracking
        .store()
        .list_gateway_endpoints(provider.as_deref(), secret.as_deref())
        .await?;
    if endpoints.is_empty() {
        return empty();
    }
    let items: Vec<Value> = endpoints.iter().map(endpoint_json).collect();
    reply(&Field("endpoints", items))
}

#[derive(Deserialize)]
struct ModelLink {
    #[serde(default, deserialize_with = "wire::opt_string")]
    endpoint_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_definition_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    created_by: Option<String>,
}

pub async fn attach(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelLink = msg.parse()?;
    let id = required_str(r.endpoint_id, "endpoint_id")?;
    let config = match msg.0.get("model_config") {
        None | Some(Value::Null) => return Err(ApiError(MlflowError::missing("model_config"))),
        Some(v) => model_config(v, "model_config")?,
    };
    let mapping = app
        .tracking
        .store()
        .attach_gateway_model(&id, &config, non_empty(r.created_by))
        .await?;
    reply(&Field("mapping", mapping_json(&mapping)))
}

pub async fn detach(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: ModelLink = msg.parse()?;
    let id = required_str(r.endpoint_id, "endpoint_id")?;
    let model = required_str(r.model_definition_id, "model_definition_id")?;
    app.tracking
        .store()
        .detach_gateway_model(&id, &model)
        .await?;
    empty()
}

#[derive(Deserialize)]
struct BindingReq {
    #[serde(default, deserialize_with = "wire::opt_string")]
    endpoint_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    resource_type: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    resource_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    created_by: Option<String>,
}

type BindingKey = (String, String, String);

fn binding_key(r: BindingReq) -> Result<(BindingKey, Option<String>), ApiError> {
    Ok((
        (
            required_str(r.endpoint_id, "endpoint_id")?,
            required_str(r.resource_type, "resource_type")?,
            required_str(r.resource_id, "resource_id")?,
        ),
        non_empty(r.created_by),
    ))
}

pub async fn create_binding(State(app): State<AppState>, msg: Message) -> ApiResult {
    let ((endpoint, kind, resource), by) = binding_key(msg.parse()?)?;
    if !RESOURCE_TYPES.contains(&kind.as_str()) {
        return Err(ApiError(MlflowError::invalid(format!(
            "Invalid resource_type '{kind}'. Supported types: {}",
            RESOURCE_TYPES.join(", ")
        ))));
    }
    let binding = app
        .tracking
        .store()
        .create_gateway_binding(&endpoint, &kind, &resource, by)
        .await?;
    reply(&Field("binding", binding_json(&binding)))
}

pub async fn delete_binding(State(app): State<AppState>, msg: Message) -> ApiResult {
    let ((endpoint, kind, resource), _) = binding_key(msg.parse()?)?;
    app.tracking
        .store()
        .delete_gateway_binding(&endpoint, &kind, &resource)
        .await?;
    empty()
}

pub async fn list_bindings(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: BindingReq = msg.parse()?;
    let (e, k, i) = (
        non_empty(r.endpoint_id),
        non_empty(r.resource_type),
        non_empty(r.resource_id),
    );
    let bindings = app
        .tracking
        .store()
        .list_gateway_bindings(e.as_deref(), k.as_deref(), i.as_deref())
        .await?;
    if bindings.is_empty() {
        return empty();
    }
    let items: Vec<Value> = bindings.iter().map(binding_json).collect();
    reply(&Field("bindings", items))
}

#[derive(Deserialize)]
struct TagReq {
    #[serde(default, deserialize_with = "wire::opt_string")]
    endpoint_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    value: Option<String>,
}

pub async fn set_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: TagReq = msg.parse()?;
    let id = required_str(r.endpoint_id, "endpoint_id")?;
    let key = required_str(r.key, "key")?;
    app.tracking
        .store()
        .set_gateway_endpoint_tag(&id, &key, r.value.as_deref())
        .await?;
    empty()
}

pub async fn delete_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: TagReq = msg.parse()?;
    let id = required_str(r.endpoint_id, "endpoint_id")?;
    let key = required_str(r.key, "key")?;
    app.tracking
        .store()
        .delete_gateway_endpoint_tag(&id, &key)
        .await?;
    empty()
}
