//! Registered scorer endpoints under `/api/3.0/mlflow/scorers`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use super::reply::{reply, Field};
use super::request::{required_str, Message};
use super::{ApiError, ApiResult, AppState};
use crate::domain::scorers::{OnlineScoringConfig, ScorerVersion};
use crate::error::MlflowError;
use crate::wire;

fn scorer_json(s: &ScorerVersion) -> Value {
    json!({
        "experiment_id": s.experiment_id,
        "scorer_name": s.scorer_name,
        "scorer_version": s.scorer_version,
        "serialized_scorer": s.serialized_scorer,
        "creation_time": s.creation_time,
        "scorer_id": s.scorer_id,
    })
}

fn scorers_reply(scorers: &[ScorerVersion]) -> ApiResult {
    if scorers.is_empty() {
        return reply(&json!({}));
    }
    let items: Vec<Value> = scorers.iter().map(scorer_json).collect();
    reply(&Field("scorers", items))
}

#[derive(Deserialize)]
struct Register {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    serialized_scorer: Option<String>,
}

pub async fn register(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Register = msg.parse()?;
    let exp = required_str(r.experiment_id, "experiment_id")?;
    let name = required_str(r.name, "name")?;
    let serialized = required_str(r.serialized_scorer, "serialized_scorer")?;
    let s = app
        .tracking
        .register_scorer(&exp, &name, &serialized)
        .await?;
    reply(&json!({
        "version": s.scorer_version,
        "scorer_id": s.scorer_id,
        "experiment_id": s.experiment_id.to_string(),
        "name": s.scorer_name,
        "serialized_scorer": s.serialized_scorer,
        "creation_time": s.creation_time,
    }))
}

#[derive(Deserialize)]
struct List {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
}

pub async fn list(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: List = msg.parse()?;
    let ids = match (r.experiment_id.filter(|e| !e.is_empty()), r.experiment_ids) {
        (Some(_), ids) if !ids.is_empty() => {
            return Err(ApiError(MlflowError::invalid(
                "Cannot specify both 'experiment_id' and 'experiment_ids'.",
            )))
        }
        (Some(one), _) => vec![one],
        (None, ids) => ids,
    };
    scorers_reply(&app.tracking.list_scorers(&ids).await?)
}

#[derive(Deserialize)]
struct Named {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    version: Option<i64>,
}

impl Named {
    fn parts(self) -> Result<(String, String, Option<i64>), ApiError> {
        Ok((
            required_str(self.experiment_id, "experiment_id")?,
            required_str(self.name, "name")?,
            self.version,
        ))
    }
}

pub async fn versions(State(app): State<AppState>, msg: Message) -> ApiResult {
    let (exp, name, _) = msg.parse::<Named>()?.parts()?;
    scorers_reply(&app.tracking.scorer_versions(&exp, &name, None).await?)
}

pub async fn get(State(app): State<AppState>, msg: Message) -> ApiResult {
    let (exp, name, version) = msg.parse::<Named>()?.parts()?;
    let s = app.tracking.get_scorer(&exp, &name, version).await?;
    reply(&Field("scorer", scorer_json(&s)))
}

pub async fn delete(State(app): State<AppState>, msg: Message) -> ApiResult {
    let (exp, name, version) = msg.parse::<Named>()?.parts()?;
    app.tracking.delete_scorer(&exp, &name, version).await?;
    reply(&json!({}))
}

fn config_json(c: &OnlineScoringConfig) -> Value {
    let mut v = json!({
        "online_scoring_config_id": c.online_scoring_config_id,
        "scorer_id": c.scorer_id,
        "sample_rate": c.sample_rate,
        "experiment_id": c.experiment_id,
    });
    if let Some(f) = &c.filter_string {
        v["filter_string"] = json!(f);
    }
    v
}

#[derive(Deserialize)]
struct Configs {
    #[serde(default, deserialize_with = "wire::string_list")]
    scorer_ids: Vec<String>,
}

pub async fn online_configs(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Configs = msg.parse()?;
    if r.scorer_ids.is_empty() {
        return Err(ApiError(MlflowError::missing("scorer_ids")));
    }
    let configs: Vec<Value> = app
        .tracking
        .online_scoring_configs(&r.scorer_ids)
        .await?
        .iter()
        .map(config_json)
        .collect();
    reply(&Field("configs", configs))
}

/// `PUT .../3.0/mlflow/scorers/online-config`: sets a scorer's automatic evaluation.
pub async fn upsert_online_config(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Named = msg.parse()?;
    let exp = required_str(r.experiment_id, "experiment_id")?;
    let name = required_str(r.name, "name")?;
    let rate = match msg.0.get("sample_rate") {
        None | Some(Value::Null) => return Err(ApiError(MlflowError::missing("sample_rate"))),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let rate = rate.ok_or_else(|| {
        ApiError(MlflowError::invalid_value(
            "sample_rate",
            &msg.0["sample_rate"],
        ))
    })?;
    let filter = match msg.0.get("filter_string") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(ApiError(MlflowError::invalid_value("filter_string", other))),
    };
    let config = app
        .tracking
        .upsert_online_scoring_config(&exp, &name, rate, filter)
        .await?;
    reply(&Field("config", config_json(&config)))
}
