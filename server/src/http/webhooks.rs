//! Webhook endpoints (`/mlflow/webhooks`, MLflow's `WebhookService`): create, list, get,
//! update, delete and test. Events arrive as `{"entity": "MODEL_VERSION", "action":
//! "CREATED"}` (proto enum names or numbers); secrets are accepted and never returned.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;

use super::reply::{empty, reply, Field, PageReply};
use super::request::{required, Message};
use super::{ApiError, ApiResult, AppState};
use crate::domain::webhooks::{Action, Entity, Event, Status};
use crate::error::MlflowError;
use crate::service::WebhookFields;
use crate::wire;

#[derive(Deserialize)]
struct Fields {
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    url: Option<String>,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    secret: Option<String>,
    #[serde(default)]
    status: Option<Value>,
}

/// One `{entity, action}` message; `at` names it in errors (`events[0]`, `event`).
fn parse_event(value: &Value, at: &str) -> Result<Event, MlflowError> {
    let part = |name: &str| {
        let v = value.get(name).filter(|v| !v.is_null());
        let v = v.ok_or_else(|| MlflowError::missing(&format!("{at}.{name}")))?;
        Ok::<_, MlflowError>(v.clone())
    };
    let entity_value = part("entity")?;
    let action_value = part("action")?;
    let entity = Entity::parse(&entity_value)
        .ok_or_else(|| MlflowError::invalid_value(&format!("{at}.entity"), &entity_value))?;
    let action = Action::parse(&action_value)
        .ok_or_else(|| MlflowError::invalid_value(&format!("{at}.action"), &action_value))?;
    Event::new(entity, action)
}

fn parse_events(value: Option<Value>) -> Result<Option<Vec<Event>>, MlflowError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_event(v, &format!("events[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(MlflowError::invalid_value("events", &other)),
    }
}

fn parse_status(value: Option<Value>) -> Result<Option<Status>, MlflowError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Status::parse(&v)
            .map(Some)
            .ok_or_else(|| MlflowError::invalid_value("status", &v)),
    }
}

impl Fields {
    fn into_service(self) -> Result<WebhookFields, ApiError> {
        Ok(WebhookFields {
            name: self.name,
            description: self.description,
            url: self.url,
            events: parse_events(self.events)?,
            secret: self.secret,
            status: parse_status(self.status)?,
        })
    }
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let f: Fields = msg.parse()?;
    required(f.name.as_ref().filter(|s| !s.is_empty()), "name")?;
    required(f.url.as_ref().filter(|s| !s.is_empty()), "url")?;
    required(f.events.as_ref().filter(|v| !v.is_null()), "events")?;
    let webhook = app.webhooks.create(f.into_service()?).await?;
    reply(&Field("webhook", webhook))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

pub async fn list(State(app): State<AppState>, msg: Message) -> ApiResult {
    let q: ListQuery = msg.parse()?;
    let page = app
        .webhooks
        .list(q.max_results, q.page_token.as_deref())
        .await?;
    reply(&PageReply::new("webhooks", page).omit_empty())
}

pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    reply(&Field("webhook", app.webhooks.get(&id).await?))
}

pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let f: Fields = msg.parse()?;
    let webhook = app.webhooks.update(&id, f.into_service()?).await?;
    reply(&Field("webhook", webhook))
}

pub async fn delete(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    app.webhooks.delete(&id).await?;
    empty()
}

#[derive(Deserialize)]
struct TestRequest {
    #[serde(default)]
    event: Option<Value>,
}

pub async fn test(State(app): State<AppState>, Path(id): Path<String>, msg: Message) -> ApiResult {
    let t: TestRequest = msg.parse()?;
    let event = match t.event.filter(|v| !v.is_null()) {
        Some(v) => Some(parse_event(&v, "event")?),
        None => None,
    };
    let result = app.webhooks.test(&id, event).await?;
    reply(&Field("result", result))
}
