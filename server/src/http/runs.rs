//! Run endpoints (`/mlflow/runs/...`) and metric history (`/mlflow/metrics/...`).

use axum::extract::State;
use serde::Deserialize;

use super::reply::{empty, reply, Field, PageReply};
use super::request::{required, required_str, Message};
use super::{ApiResult, AppState};
use crate::service::LogBatch;
use crate::store::{NewDatasetInput, NewMetric, RunUpdate};
use crate::wire::{self, Dataset, KeyValue, ModelOutput, ViewType};

/// `run_id`, or its deprecated twin `run_uuid`.
#[derive(Deserialize)]
struct RunRef {
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_uuid: Option<String>,
}

impl RunRef {
    fn id(self) -> Result<String, super::ApiError> {
        required_str(
            self.run_id.filter(|s| !s.is_empty()).or(self.run_uuid),
            "run_id",
        )
    }
}

#[derive(Deserialize)]
struct Create {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    start_time: Option<i64>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Create = msg.parse()?;
    let run = app
        .tracking
        .create_run(
            r.experiment_id.as_deref().filter(|s| !s.is_empty()),
            r.user_id,
            r.start_time,
            r.run_name,
            r.tags,
        )
        .await?;
    reply(&Field("run", run))
}

pub async fn get(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let run = app.tracking.get_run(&id).await?;
    reply(&Field("run", run))
}

#[derive(Deserialize)]
struct Update {
    #[serde(default, deserialize_with = "wire::opt_run_status")]
    status: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    end_time: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    run_name: Option<String>,
}

pub async fn update(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: Update = msg.parse()?;
    let info = app
        .tracking
        .update_run(
            &id,
            RunUpdate {
                status: r.status,
                end_time: r.end_time,
                run_name: r.run_name,
            },
        )
        .await?;
    reply(&Field("run_info", info))
}

pub async fn delete(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    app.tracking.delete_run(&id).await?;
    empty()
}

pub async fn restore(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    app.tracking.restore_run(&id).await?;
    empty()
}

#[derive(Deserialize)]
struct MetricIn {
    #[serde(default, deserialize_with = "wire::opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_f64")]
    value: Option<f64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    step: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    dataset_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    dataset_digest: Option<String>,
}

impl MetricIn {
    /// `prefix` names the metric in a log-batch (`metrics[0].`), as MLflow's errors do.
    fn into_metric(self, prefix: &str) -> Result<NewMetric, super::ApiError> {
        Ok(NewMetric {
            key: required(self.key, &format!("{prefix}key"))?,
            value: required(self.value, &format!("{prefix}value"))?,
            timestamp: required(self.timestamp, &format!("{prefix}timestamp"))?,
            step: self.step.unwrap_or(0),
            model_id: self.model_id.filter(|s| !s.is_empty()),
            dataset_name: self.dataset_name.filter(|s| !s.is_empty()),
            dataset_digest: self.dataset_digest.filter(|s| !s.is_empty()),
        })
    }
}

pub async fn log_metric(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let metric = msg.parse::<MetricIn>()?.into_metric("")?;
    let batch = LogBatch {
        metrics: vec![metric],
        ..Default::default()
    };
    app.tracking.log_batch(&id, batch).await?;
    empty()
}

#[derive(Deserialize)]
struct KeyValueIn {
    #[serde(default, deserialize_with = "wire::opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    value: Option<String>,
}

pub async fn log_param(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: KeyValueIn = msg.parse()?;
    let param = KeyValue {
        key: required(r.key, "key")?,
        value: required(r.value, "value")?,
    };
    let batch = LogBatch {
        params: vec![param],
        ..Default::default()
    };
    app.tracking.log_batch(&id, batch).await?;
    empty()
}

pub async fn set_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: KeyValueIn = msg.parse()?;
    let tag = KeyValue {
        key: required(r.key, "key")?,
        value: required(r.value, "value")?,
    };
    let batch = LogBatch {
        tags: vec![tag],
        ..Default::default()
    };
    app.tracking.log_batch(&id, batch).await?;
    empty()
}

pub async fn delete_tag(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: KeyValueIn = msg.parse()?;
    let key = required(r.key, "key")?;
    app.tracking.delete_tag(&id, &key).await?;
    empty()
}

#[derive(Deserialize)]
struct Batch {
    #[serde(default, deserialize_with = "wire::message_list")]
    metrics: Vec<MetricIn>,
    #[serde(default, deserialize_with = "wire::message_list")]
    params: Vec<KeyValue>,
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
}

pub async fn log_batch(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: Batch = msg.parse()?;
    let metrics = r
        .metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| m.into_metric(&format!("metrics[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    let batch = LogBatch {
        metrics,
        params: r.params,
        tags: r.tags,
    };
    app.tracking.log_batch(&id, batch).await?;
    empty()
}

#[derive(Deserialize)]
struct LogModel {
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_json: Option<String>,
}

pub async fn log_model(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let model_json = required_str(msg.parse::<LogModel>()?.model_json, "model_json")?;
    app.tracking.log_model(&id, &model_json).await?;
    empty()
}

#[derive(Deserialize)]
struct DatasetInputIn {
    #[serde(default, deserialize_with = "wire::message_list")]
    tags: Vec<KeyValue>,
    dataset: Option<Dataset>,
}

#[derive(Deserialize)]
struct ModelRef {
    #[serde(default, deserialize_with = "wire::opt_string")]
    model_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    step: Option<i64>,
}

#[derive(Deserialize)]
struct LogInputs {
    #[serde(default, deserialize_with = "wire::message_list")]
    datasets: Vec<DatasetInputIn>,
    #[serde(default, deserialize_with = "wire::message_list")]
    models: Vec<ModelRef>,
}

pub async fn log_inputs(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: LogInputs = msg.parse()?;
    let datasets = r
        .datasets
        .into_iter()
        .map(|d| {
            Ok(NewDatasetInput {
                dataset: required(d.dataset, "datasets.dataset")?,
                tags: d.tags,
            })
        })
        .collect::<Result<Vec<_>, super::ApiError>>()?;
    let models = r
        .models
        .into_iter()
        .map(|m| required_str(m.model_id, "models.model_id"))
        .collect::<Result<Vec<_>, _>>()?;
    app.tracking.log_inputs(&id, datasets, models).await?;
    empty()
}

#[derive(Deserialize)]
struct LogOutputs {
    #[serde(default, deserialize_with = "wire::message_list")]
    models: Vec<ModelRef>,
}

pub async fn log_outputs(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: LogOutputs = msg.parse()?;
    let models = r
        .models
        .into_iter()
        .map(|m| {
            Ok(ModelOutput {
                model_id: required_str(m.model_id, "models.model_id")?,
                step: required(m.step, "models.step")?,
            })
        })
        .collect::<Result<Vec<_>, super::ApiError>>()?;
    app.tracking.log_outputs(&id, models).await?;
    empty()
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_view_type")]
    run_view_type: Option<ViewType>,
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
        .search_runs(
            &r.experiment_ids,
            r.filter.as_deref(),
            r.run_view_type.unwrap_or_default(),
            r.max_results.unwrap_or(1000),
            &r.order_by,
            r.page_token.as_deref(),
        )
        .await?;
    reply(&PageReply::new("runs", page).omit_empty())
}

#[derive(Deserialize)]
struct History {
    #[serde(default, deserialize_with = "wire::opt_string")]
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
}

pub async fn metric_history(State(app): State<AppState>, msg: Message) -> ApiResult {
    let id = msg.parse::<RunRef>()?.id()?;
    let r: History = msg.parse()?;
    let key = required_str(r.metric_key, "metric_key")?;
    let page = app
        .tracking
        .metric_history(&id, &key, r.max_results, r.page_token.as_deref())
        .await?;
    reply(&PageReply::new("metrics", page))
}

#[derive(Deserialize)]
struct BulkInterval {
    #[serde(default, deserialize_with = "wire::string_list")]
    run_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
}

pub async fn metric_history_bulk_interval(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: BulkInterval = msg.parse()?;
    let metrics = sampled_histories(
        &app,
        &r.run_ids,
        r.metric_key,
        r.start_step,
        r.end_step,
        r.max_results,
    )
    .await?;
    reply(&Field("metrics", metrics))
}

/// The sampled histories of `get-history-bulk-interval`, with its checks; GraphQL's
/// `mlflowGetMetricHistoryBulkInterval` calls this too rather than the handler, since a
/// page of charts is 30,000 points and a JSON round trip of them cost more than the query.
pub async fn sampled_histories(
    app: &AppState,
    run_ids: &[String],
    metric_key: Option<String>,
    start_step: Option<i64>,
    end_step: Option<i64>,
    max_results: Option<i64>,
) -> Result<Vec<wire::Metric>, super::ApiError> {
    // MLflow checks run_ids before metric_key.
    if run_ids.is_empty() {
        return Err(crate::error::MlflowError::missing("run_ids").into());
    }
    let key = required_str(metric_key, "metric_key")?;
    Ok(app
        .tracking
        .metric_history_bulk_interval(run_ids, &key, start_step, end_step, max_results)
        .await?)
}

#[derive(Deserialize)]
struct Bulk {
    #[serde(default, deserialize_with = "wire::string_list")]
    run_id: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
}

pub async fn metric_history_bulk(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Bulk = msg.parse()?;
    let metrics = app
        .tracking
        .metric_history_bulk(&r.run_id, r.metric_key.as_deref(), r.max_results)
        .await?;
    reply(&Field("metrics", metrics))
}
