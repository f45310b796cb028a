//! Fills bare run infos with their params, tags and latest metrics (and inputs), in a few
//! statements per chunk of runs.

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::AnyConnection;

use super::{metric_by_name, CHUNK};
use crate::error::{MlflowError, Result};
use crate::store::sql::{get_i64, get_str, Dialect};
use crate::store::Store;
use crate::wire::{KeyValue, Metric, Run, RunData, RunInfo, RunInputs, RunOutputs};

/// One latest metric as SQLite's JSON aggregation writes it (serde reads a struct from a
/// JSON array field by field): `[key, "%.17g value", timestamp, step, is_nan]`.
#[derive(Deserialize)]
pub(super) struct JsonMetric {
    key: String,
    value: String,
    timestamp: Option<i64>,
    step: Option<i64>,
    is_nan: Option<i64>,
}

impl Store {
    /// Adds params, tags, metrics, inputs and outputs to bare run infos, keeping their
    /// order. All queries share one reader connection.
    pub(super) async fn load_runs(&self, infos: Vec<RunInfo>) -> Result<Vec<Run>> {
        let mut data: HashMap<String, (RunData, RunInputs, RunOutputs)> = HashMap::new();
        let ids: Vec<String> = infos.iter().map(|i| i.run_id.clone()).collect();
        let key = self.dialect.key_col();
        let mut conn = self.reader.acquire().await?;
        for chunk in ids.chunks(CHUNK) {
            if self.dialect == Dialect::Sqlite {
                self.load_run_data_sqlite(&mut conn, chunk, &mut data)
                    .await?;
                self.load_inputs(&mut conn, chunk, &mut data).await?;
                continue;
            }
            let mut sql = self.sql();
            sql.push(&format!(
                "SELECT 0 AS kind, run_uuid, {key}, value FROM params WHERE run_uuid IN "
            ))
            .bind_list(chunk)
            .push(&format!(
                " UNION ALL SELECT 1, run_uuid, {key}, value FROM tags WHERE run_uuid IN "
            ))
            .bind_list(chunk);
            for row in sql.query().fetch_all(&mut *conn).await? {
                let entry = data
                    .entry(get_str(&row, "run_uuid").unwrap_or_default())
                    .or_default();
                let kv = KeyValue {
                    key: get_str(&row, "key").unwrap_or_default(),
                    value: get_str(&row, "value").unwrap_or_default(),
                };
                if get_i64(&row, "kind") == Some(0) {
                    entry.0.params.push(kv);
                } else {
                    entry.0.tags.push(kv);
                }
            }
            for (run_id, metric) in self.latest_metrics(&mut conn, chunk).await? {
                data.entry(run_id).or_default().0.metrics.push(metric);
            }
            self.load_inputs(&mut conn, chunk, &mut data).await?;
        }
        Ok(infos
            .into_iter()
            .map(|info| {
                let (mut d, inputs, outputs) = data.remove(&info.run_id).unwrap_or_default();
                d.params.sort_by(|a, b| a.key.cmp(&b.key));
                Run {
                    info,
                    data: d,
                    inputs,
                    outputs,
                }
            })
            .collect())
    }

    /// SQLite: params, tags and latest metrics of `ids` as one row per run, each list a JSON
    /// document built inside the database. Every row costs a hop between SQLite's thread and
    /// the runtime, so this is a third of the rows of one query per kind (search-runs
    /// loads 100 runs per page).
    async fn load_run_data_sqlite(
        &self,
        conn: &mut AnyConnection,
        ids: &[String],
        data: &mut HashMap<String, (RunData, RunInputs, RunOutputs)>,
    ) -> Result<()> {
        let key = self.dialect.key_col();
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT r.run_uuid, \
             (SELECT json_group_array(json_array({key}, value)) FROM params p \
              WHERE p.run_uuid = r.run_uuid) AS params, \
             (SELECT json_group_array(json_array({key}, value)) FROM tags t \
              WHERE t.run_uuid = r.run_uuid) AS tags, \
             (SELECT json_group_array(json_array({key}, printf('%!.17g', value), timestamp, \
              step, is_nan)) FROM latest_metrics lm WHERE lm.run_uuid = r.run_uuid) AS metrics \
             FROM runs r WHERE r.run_uuid IN "
        ))
        .bind_list(ids);
        for row in sql.query().fetch_all(&mut *conn).await? {
            let run_id = get_str(&row, "run_uuid").unwrap_or_default();
            let entry = data.entry(run_id).or_default();
            entry.0.params = key_values_from_json(get_str(&row, "params").as_deref())?;
            entry.0.tags = key_values_from_json(get_str(&row, "tags").as_deref())?;
            let metrics = get_str(&row, "metrics");
            entry.0.metrics = metrics_from_json(metrics.as_deref().unwrap_or("[]"))?;
        }
        Ok(())
    }

    /// The latest value of every metric of `ids`. On SQLite the rows are aggregated to one
    /// JSON document per run inside the database: a run with thousands of metric keys then
    /// costs one row transfer instead of thousands.
    async fn latest_metrics(
        &self,
        conn: &mut AnyConnection,
        ids: &[String],
    ) -> Result<Vec<(String, Metric)>> {
        let key = self.dialect.key_col();
        let mut sql = self.sql();
        let mut out = Vec::new();
        if self.dialect == Dialect::Sqlite {
            // %!.17g (SQLite's exact 17-digit form) keeps every bit of the double; the Rust side
            // prints it shortest again (tests/store_roundtrip.rs checks the round trip).
            sql.push(&format!(
                "SELECT run_uuid, json_group_array(json_array({key}, printf('%!.17g', value), \
                 timestamp, step, is_nan)) AS metrics FROM latest_metrics WHERE run_uuid IN "
            ))
            .bind_list(ids)
            .push(" GROUP BY run_uuid");
            for row in sql.query().fetch_all(&mut *conn).await? {
                let run_id = get_str(&row, "run_uuid").unwrap_or_default();
                let json = get_str(&row, "metrics").unwrap_or_default();
                for metric in metrics_from_json(&json)? {
                    out.push((run_id.clone(), metric));
                }
            }
            return Ok(out);
        }
        sql.push(&format!(
            "SELECT run_uuid, {key}, value, timestamp, step, \
             CASE WHEN is_nan THEN 1 ELSE 0 END AS is_nan FROM latest_metrics WHERE run_uuid IN "
        ))
        .bind_list(ids);
        for row in sql.query().fetch_all(&mut *conn).await? {
            out.push((
                get_str(&row, "run_uuid").unwrap_or_default(),
                metric_by_name(&row),
            ));
        }
        Ok(out)
    }
}

/// Latest metrics from SQLite's `json_group_array(json_array(key, '%!.17g' value, timestamp,
/// step, is_nan))`.
pub(super) fn metrics_from_json(json: &str) -> Result<Vec<Metric>> {
    let items: Vec<JsonMetric> = serde_json::from_str(json)
        .map_err(|e| MlflowError::internal(format!("cannot read latest metrics: {e}")))?;
    Ok(metrics_from_items(items))
}

pub(super) fn metrics_from_items(items: Vec<JsonMetric>) -> Vec<Metric> {
    items
        .into_iter()
        .map(|m| Metric {
            key: m.key,
            value: if m.is_nan.unwrap_or(0) != 0 {
                f64::NAN
            } else {
                m.value.parse().unwrap_or(0.0)
            },
            timestamp: m.timestamp.unwrap_or(0),
            step: m.step.unwrap_or(0),
            dataset_name: None,
            dataset_digest: None,
            model_id: None,
            run_id: None,
        })
        .collect()
}

/// Params or tags from SQLite's `json_group_array(json_array(key, value))`.
pub(super) fn key_values_from_json(json: Option<&str>) -> Result<Vec<KeyValue>> {
    let items: Vec<(String, Option<String>)> = serde_json::from_str(json.unwrap_or("[]"))
        .map_err(|e| MlflowError::internal(format!("cannot read params or tags: {e}")))?;
    Ok(key_values(items))
}

pub(super) fn key_values(items: Vec<(String, Option<String>)>) -> Vec<KeyValue> {
    items
        .into_iter()
        .map(|(key, value)| KeyValue {
            key,
            value: value.unwrap_or_default(),
        })
        .collect()
}
