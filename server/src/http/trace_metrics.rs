//! `POST /api/3.0/mlflow/traces/metrics` (aggregated trace, span and assessment metrics)
//! and `POST /api/3.0/mlflow/traces/calculate-filter-correlation` (NPMI of two trace
//! filters). Enum fields are read by name or by number, as protobuf JSON allows.

use axum::extract::State;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::reply::reply;
use super::request::{required_str, Message};
use super::{ApiError, ApiResult, AppState};
use crate::domain::traces::metrics::{AggKind, Aggregation};
use crate::error::MlflowError;
use crate::service::MetricsRequest;
use crate::wire;

/// A proto enum given by name or number, as text.
fn opt_enum<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected an enum name or number, got {other}"
        ))),
    }
}

#[derive(Deserialize)]
struct AggregationIn {
    #[serde(default, deserialize_with = "opt_enum")]
    aggregation_type: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_f64")]
    percentile_value: Option<f64>,
}

#[derive(Deserialize)]
struct Query {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_enum")]
    view_type: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    metric_name: Option<String>,
    #[serde(default, deserialize_with = "wire::message_list")]
    aggregations: Vec<AggregationIn>,
    #[serde(default, deserialize_with = "wire::string_list")]
    dimensions: Vec<String>,
    #[serde(default, deserialize_with = "wire::string_list")]
    filters: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    time_interval_seconds: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    start_time_ms: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    end_time_ms: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
}

fn required_list(list: Vec<String>, name: &str) -> Result<Vec<String>, ApiError> {
    if list.is_empty() {
        return Err(ApiError(MlflowError::missing(name)));
    }
    Ok(list)
}

pub async fn query(State(app): State<AppState>, msg: Message) -> ApiResult {
    let q: Query = msg.parse()?;
    if q.aggregations.is_empty() {
        return Err(ApiError(MlflowError::missing("aggregations")));
    }
    let aggregations = q
        .aggregations
        .into_iter()
        .map(|a| {
            let kind = AggKind::parse(&required_str(a.aggregation_type, "aggregation_type")?)?;
            Ok(Aggregation::new(kind, a.percentile_value)?)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let metric_name = required_str(q.metric_name, "metric_name")?;
    let points = app
        .tracking
        .query_trace_metrics(MetricsRequest {
            experiment_ids: q.experiment_ids,
            view_type: required_str(q.view_type, "view_type")?,
            metric_name: metric_name.clone(),
            aggregations,
            dimensions: q.dimensions,
            filters: q.filters,
            time_interval_seconds: q.time_interval_seconds,
            start_time_ms: q.start_time_ms,
            end_time_ms: q.end_time_ms,
            max_results: q.max_results,
        })
        .await?;
    let data_points: Vec<Value> = points
        .into_iter()
        .map(|p| {
            let dims: Map<String, Value> = p
                .dimensions
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            let values: Map<String, Value> =
                p.values.into_iter().map(|(k, v)| (k, json!(v))).collect();
            let mut point = json!({ "metric_name": metric_name, "values": values });
            // An empty map is left out, as protobuf JSON does.
            if !dims.is_empty() {
                point["dimensions"] = Value::Object(dims);
            }
            point
        })
        .collect();
    reply(&json!({ "data_points": data_points }))
}

#[derive(Deserialize)]
struct CorrelationIn {
    #[serde(default, deserialize_with = "wire::string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter_string1: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter_string2: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    base_filter: Option<String>,
}

pub async fn correlation(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: CorrelationIn = msg.parse()?;
    let experiments = required_list(r.experiment_ids, "experiment_ids")?;
    let first = required_str(r.filter_string1, "filter_string1")?;
    let second = required_str(r.filter_string2, "filter_string2")?;
    let c = app
        .tracking
        .trace_filter_correlation(&experiments, &first, &second, r.base_filter.as_deref())
        .await?;
    let mut out = json!({
        "filter1_count": c.filter1_count,
        "filter2_count": c.filter2_count,
        "joint_count": c.joint_count,
        "total_count": c.total_count,
    });
    // An undefined NPMI (NaN) is left out, as MLflow does; the client reads it as NaN.
    for (key, value) in [("npmi", c.npmi), ("npmi_smoothed", c.npmi_smoothed)] {
        if value.is_finite() {
            out[key] = json!(value);
        }
    }
    reply(&out)
}
