//! Runs, with their params, tags, metrics, inputs and outputs, one file per concern:
//! [`crud`] creates, reads, updates and deletes runs, [`write`] is the log-batch path
//! (params, tags, metrics; group commit feeds it), [`inputs`] records and reads dataset and
//! model inputs and outputs, [`history`] reads a metric's history, [`load`] fills runs with
//! their data, and [`page`] is search-runs.

mod crud;
mod history;
mod inputs;
mod load;
mod page;
mod write;

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::sql::{get_f64, get_i64, get_str, Sql};
use crate::error::{MlflowError, Result};
use crate::wire::{Dataset, KeyValue, Metric, RunInfo};

pub(super) use write::MetricRow;

pub const RUN_NAME_TAG: &str = "mlflow.runName";
pub(super) const RUN_COLUMNS: &str =
    "runs.run_uuid, runs.name, runs.user_id, runs.status, runs.start_time, \
     runs.end_time, runs.artifact_uri, runs.lifecycle_stage, runs.experiment_id";
/// Rows per `IN (...)` list, well under every database's bound-parameter limit.
pub(super) const CHUNK: usize = 500;
/// MLflow stores infinities as the largest finite doubles.
pub(super) const MAX_DOUBLE: f64 = 1.797_693_134_862_315_7e308;

/// The `RUN_COLUMNS` of one run, as read from a row or from a JSON array (serde reads a
/// struct from an array field by field).
#[derive(Deserialize)]
pub(super) struct InfoColumns {
    run_uuid: Option<String>,
    name: Option<String>,
    user_id: Option<String>,
    status: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    artifact_uri: Option<String>,
    lifecycle_stage: Option<String>,
    experiment_id: Option<i64>,
}

pub(super) fn info_from_row(row: &AnyRow) -> RunInfo {
    info_from_columns(InfoColumns {
        run_uuid: get_str(row, "run_uuid"),
        name: get_str(row, "name"),
        user_id: get_str(row, "user_id"),
        status: get_str(row, "status"),
        start_time: get_i64(row, "start_time"),
        end_time: get_i64(row, "end_time"),
        artifact_uri: get_str(row, "artifact_uri"),
        lifecycle_stage: get_str(row, "lifecycle_stage"),
        experiment_id: get_i64(row, "experiment_id"),
    })
}

pub(super) fn info_from_columns(c: InfoColumns) -> RunInfo {
    let id = c.run_uuid.unwrap_or_default();
    RunInfo {
        run_uuid: id.clone(),
        run_id: id,
        run_name: c.name.unwrap_or_default(),
        user_id: c.user_id.unwrap_or_default(),
        status: c.status.unwrap_or_else(|| "RUNNING".into()),
        start_time: c.start_time,
        end_time: c.end_time,
        artifact_uri: c.artifact_uri.unwrap_or_default(),
        lifecycle_stage: c.lifecycle_stage.unwrap_or_else(|| "active".into()),
        experiment_id: c.experiment_id.unwrap_or_default().to_string(),
    }
}

/// A metric to write: the value as given (NaN and infinities included).
#[derive(Debug, Clone)]
pub struct NewMetric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// Set when the metric is also a logged model's (MLflow 3 `log_model`).
    pub model_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// The rows of a text query as a map from column `key` to column `value`.
pub(super) async fn string_map(
    conn: &mut AnyConnection,
    sql: &Sql,
    [key, value]: [&str; 2],
) -> Result<HashMap<String, String>> {
    Ok(sql
        .query()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            (
                get_str(r, key).unwrap_or_default(),
                get_str(r, value).unwrap_or_default(),
            )
        })
        .collect())
}

pub(super) fn not_active(run_id: &str, stage: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "The run {run_id} must be in the 'active' state. Current state is {stage}."
    ))
}

/// Everything one log-batch writes, applied in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub metrics: Vec<NewMetric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

/// A dataset input to record.
#[derive(Debug, Clone)]
pub struct NewDatasetInput {
    pub dataset: Dataset,
    pub tags: Vec<KeyValue>,
}

/// Fields of runs/update that were given.
#[derive(Debug, Default)]
pub struct RunUpdate {
    pub status: Option<String>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

pub(super) fn stored_value(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (if value > 0.0 { MAX_DOUBLE } else { -MAX_DOUBLE }, false)
    } else {
        (value, false)
    }
}

/// A metric from a row with columns `key`, `value`, `timestamp`, `step` and `is_nan` (0 or 1).
pub(super) fn metric_by_name(row: &AnyRow) -> Metric {
    let is_nan = get_i64(row, "is_nan").unwrap_or(0) != 0;
    Metric {
        key: get_str(row, "key").unwrap_or_default(),
        value: if is_nan {
            f64::NAN
        } else {
            get_f64(row, "value").unwrap_or(0.0)
        },
        timestamp: get_i64(row, "timestamp").unwrap_or(0),
        step: get_i64(row, "step").unwrap_or(0),
        dataset_name: None,
        dataset_digest: None,
        model_id: None,
        run_id: None,
    }
}

pub(super) fn not_found(run_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Run with id={run_id} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_stored_like_mlflow() {
        assert_eq!(stored_value(f64::NAN), (0.0, true));
        assert_eq!(stored_value(f64::INFINITY), (MAX_DOUBLE, false));
        assert_eq!(stored_value(f64::NEG_INFINITY), (-MAX_DOUBLE, false));
        assert_eq!(stored_value(1.5), (1.5, false));
    }
}
