//! Runs, with their params, tags, metrics, inputs and outputs.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::experiments::Page;
use super::search::{run_clause, run_order};
use super::sql::{get_f64, get_i64, get_str, Dialect};
use super::{now_ms, Store};
use crate::domain::search::{Clause, OrderKey};
use crate::error::{MlflowError, Result};
use crate::wire::{
    Dataset, DatasetInput, KeyValue, Metric, ModelInput, ModelOutput, Run, RunData, RunInfo,
    RunInputs, RunOutputs, ViewType,
};

pub const RUN_NAME_TAG: &str = "mlflow.runName";
const RUN_COLUMNS: &str = "runs.run_uuid, runs.name, runs.user_id, runs.status, runs.start_time, \
     runs.end_time, runs.artifact_uri, runs.lifecycle_stage, runs.experiment_id";
const RUN_COLUMN_COUNT: usize = 9;
/// `RUN_COLUMNS` read through the alias `r` (PostgreSQL's search page).
const PG_PAGE_COLUMNS: &str = "r.run_uuid, r.name, r.user_id, r.status, r.start_time, \
     r.end_time, r.artifact_uri, r.lifecycle_stage, r.experiment_id";
/// PostgreSQL: a page's run columns (from a derived table named `runs`), then its params,
/// tags and latest metrics as JSON arrays in the shapes SQLite's aggregation gives (the
/// value as text: PostgreSQL prints doubles shortest and exact), then 1 where the run has
/// dataset or model inputs or outputs.
const PG_RUN_DATA_SELECT: &str = "SELECT runs.*, \
     (SELECT json_agg(json_build_array(p.key, p.value))::text FROM params p \
      WHERE p.run_uuid = runs.run_uuid), \
     (SELECT json_agg(json_build_array(t.key, t.value))::text FROM tags t \
      WHERE t.run_uuid = runs.run_uuid), \
     (SELECT json_agg(json_build_array(lm.key, lm.value::text, lm.timestamp, lm.step, \
      lm.is_nan::int))::text FROM latest_metrics lm WHERE lm.run_uuid = runs.run_uuid), \
     CASE WHEN EXISTS (SELECT 1 FROM inputs i WHERE i.destination_type = 'RUN' \
      AND i.destination_id = runs.run_uuid) OR EXISTS (SELECT 1 FROM inputs i \
      WHERE i.source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND i.source_id = runs.run_uuid) \
     THEN 1 ELSE 0 END";
/// SQLite: a whole search page as one JSON document, `[[info columns], params, tags, latest
/// metrics, has inputs]` per run, aggregated over a derived table named `runs` (the caller
/// appends the aggregate's ORDER BY, then `) FROM (page query) runs`). Every row SQLite
/// returns is a hand-over between its thread and the runtime; one row instead of two
/// hundred per page.
const SQLITE_PAGE_SELECT: &str = "SELECT json_group_array(json_array(\
     json_array(runs.run_uuid, runs.name, runs.user_id, runs.status, runs.start_time, \
      runs.end_time, runs.artifact_uri, runs.lifecycle_stage, runs.experiment_id), \
     json((SELECT json_group_array(json_array(p.key, p.value)) FROM params p \
      WHERE p.run_uuid = runs.run_uuid)), \
     json((SELECT json_group_array(json_array(t.key, t.value)) FROM tags t \
      WHERE t.run_uuid = runs.run_uuid)), \
     json((SELECT json_group_array(json_array(lm.key, printf('%!.17g', lm.value), \
      lm.timestamp, lm.step, lm.is_nan)) FROM latest_metrics lm \
      WHERE lm.run_uuid = runs.run_uuid)), \
     EXISTS (SELECT 1 FROM inputs i WHERE i.destination_type = 'RUN' \
      AND i.destination_id = runs.run_uuid) OR EXISTS (SELECT 1 FROM inputs i \
      WHERE i.source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND i.source_id = runs.run_uuid))";
/// One run of `SQLITE_PAGE_SELECT`'s document.
type JsonRun = (
    InfoColumns,
    Vec<(String, Option<String>)>,
    Vec<(String, Option<String>)>,
    Vec<JsonMetric>,
    i64,
);
/// One latest metric as SQLite's JSON aggregation writes it:
/// `[key, "%.17g value", timestamp, step, is_nan]`.
type JsonMetric = (String, String, Option<i64>, Option<i64>, Option<i64>);
/// Rows per `IN (...)` list, well under every database's bound-parameter limit.
const CHUNK: usize = 500;
/// MLflow stores infinities as the largest finite doubles.
const MAX_DOUBLE: f64 = 1.797_693_134_862_315_7e308;

/// The `RUN_COLUMNS` of one run, as read from a row or from a JSON array.
type InfoColumns = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn info_from_row(row: &AnyRow) -> RunInfo {
    info_from_columns((
        get_str(row, 0),
        get_str(row, 1),
        get_str(row, 2),
        get_str(row, 3),
        get_i64(row, 4),
        get_i64(row, 5),
        get_str(row, 6),
        get_str(row, 7),
        get_i64(row, 8),
    ))
}

fn info_from_columns(c: InfoColumns) -> RunInfo {
    let id = c.0.unwrap_or_default();
    RunInfo {
        run_uuid: id.clone(),
        run_id: id,
        run_name: c.1.unwrap_or_default(),
        user_id: c.2.unwrap_or_default(),
        status: c.3.unwrap_or_else(|| "RUNNING".into()),
        start_time: c.4,
        end_time: c.5,
        artifact_uri: c.6.unwrap_or_default(),
        lifecycle_stage: c.7.unwrap_or_else(|| "active".into()),
        experiment_id: c.8.unwrap_or_default().to_string(),
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

/// One metric row to write, with the run it belongs to.
pub struct MetricRow<'a> {
    pub run_id: &'a str,
    pub metric: &'a NewMetric,
}

/// Appends `(key, value, timestamp, step, is_nan, run_uuid)` as the `i`-th VALUES row.
fn push_metric_values(sql: &mut super::sql::Sql, i: usize, run_id: &str, m: &NewMetric) {
    let (value, is_nan) = stored_value(m.value);
    sql.push(if i == 0 { "(" } else { ", (" })
        .bind(m.key.as_str())
        .push(", ")
        .bind(value)
        .push(", ")
        .bind(m.timestamp)
        .push(", ")
        .bind(m.step)
        .push(", ")
        .bind(is_nan)
        .push(", ")
        .bind(run_id)
        .push(")");
}

/// The rows of a two-column text query, as a map from the first column to the second.
async fn string_map(
    conn: &mut AnyConnection,
    sql: &super::sql::Sql,
) -> Result<HashMap<String, String>> {
    Ok(sql
        .query()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            (
                get_str(r, 0).unwrap_or_default(),
                get_str(r, 1).unwrap_or_default(),
            )
        })
        .collect())
}

fn param_changed(run_id: &str, param: &KeyValue, stored: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Changing param values is not allowed. Param with key='{}' was already logged with \
         value='{stored}' for run ID='{run_id}'. Attempted logging new value '{}'.",
        param.key, param.value
    ))
}

fn not_active(run_id: &str, stage: &str) -> MlflowError {
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

fn stored_value(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (if value > 0.0 { MAX_DOUBLE } else { -MAX_DOUBLE }, false)
    } else {
        (value, false)
    }
}

fn metric_from_row(row: &AnyRow, key_idx: usize) -> Metric {
    let is_nan = get_i64(row, key_idx + 4).unwrap_or(0) != 0;
    Metric {
        key: get_str(row, key_idx).unwrap_or_default(),
        value: if is_nan {
            f64::NAN
        } else {
            get_f64(row, key_idx + 1).unwrap_or(0.0)
        },
        timestamp: get_i64(row, key_idx + 2).unwrap_or(0),
        step: get_i64(row, key_idx + 3).unwrap_or(0),
        dataset_name: None,
        dataset_digest: None,
        model_id: None,
        run_id: None,
    }
}

fn not_found(run_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Run with id={run_id} not found"))
}

impl Store {
    /// Creates a run in an active experiment; the caller has settled name and tags.
    pub async fn create_run(
        &self,
        experiment_id: i64,
        user_id: &str,
        start_time: i64,
        run_name: &str,
        tags: &[KeyValue],
    ) -> Result<Run> {
        let exp = self.get_experiment(experiment_id).await?;
        if exp.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is \
                 {}.",
                exp.lifecycle_stage
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let artifact_uri = format!(
            "{}/{run_id}/artifacts",
            exp.artifact_location.trim_end_matches('/')
        );
        super::retry_conflicts(|| async {
            let mut tx = self.writer.begin().await?;
            let mut sql = self.sql();
            sql.push(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, \
                 user_id, status, start_time, end_time, source_version, lifecycle_stage, \
                 artifact_uri, experiment_id, deleted_time) VALUES (",
            )
            .bind(&run_id)
            .push(", ")
            .bind(run_name)
            .push(", 'UNKNOWN', '', '', ")
            .bind(user_id)
            .push(", 'RUNNING', ")
            .bind(start_time)
            .push(", NULL, '', 'active', ")
            .bind(&artifact_uri)
            .push(", ")
            .bind(experiment_id)
            .push(", NULL)");
            sql.query().execute(&mut *tx).await?;
            self.upsert_tags(&mut tx, &run_id, tags).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.get_run(&run_id).await
    }

    async fn fetch_info(&self, run_id: &str) -> Result<RunInfo> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(RUN_COLUMNS)
            .push(" FROM runs WHERE run_uuid = ")
            .bind(run_id);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| not_found(run_id))?;
        Ok(info_from_row(&row))
    }

    /// The run with its data; deleted runs are returned too, as MLflow does.
    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        let info = self.fetch_info(run_id).await?;
        let mut runs = self.load_runs(vec![info]).await?;
        Ok(runs.remove(0))
    }

    /// Fetches the run's info and checks it can be written to.
    /// Checks the run can be written to and returns its experiment id.
    async fn active_run_in(&self, conn: &mut AnyConnection, run_id: &str) -> Result<i64> {
        let mut sql = self.sql();
        sql.push("SELECT lifecycle_stage, experiment_id FROM runs WHERE run_uuid = ")
            .bind(run_id);
        let row = sql
            .query()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_found(run_id))?;
        let stage = get_str(&row, 0).unwrap_or_default();
        if stage != "active" {
            return Err(not_active(run_id, &stage));
        }
        Ok(get_i64(&row, 1).unwrap_or(0))
    }

    /// Adds params, tags, metrics, inputs and outputs to bare run infos, keeping their
    /// order. All queries share one reader connection.
    async fn load_runs(&self, infos: Vec<RunInfo>) -> Result<Vec<Run>> {
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
                "SELECT 0, run_uuid, {key}, value FROM params WHERE run_uuid IN "
            ))
            .bind_list(chunk)
            .push(&format!(
                " UNION ALL SELECT 1, run_uuid, {key}, value FROM tags WHERE run_uuid IN "
            ))
            .bind_list(chunk);
            for row in sql.query().fetch_all(&mut *conn).await? {
                let entry = data
                    .entry(get_str(&row, 1).unwrap_or_default())
                    .or_default();
                let kv = KeyValue {
                    key: get_str(&row, 2).unwrap_or_default(),
                    value: get_str(&row, 3).unwrap_or_default(),
                };
                if get_i64(&row, 0) == Some(0) {
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
              WHERE p.run_uuid = r.run_uuid), \
             (SELECT json_group_array(json_array({key}, value)) FROM tags t \
              WHERE t.run_uuid = r.run_uuid), \
             (SELECT json_group_array(json_array({key}, printf('%!.17g', value), timestamp, \
              step, is_nan)) FROM latest_metrics lm WHERE lm.run_uuid = r.run_uuid) \
             FROM runs r WHERE r.run_uuid IN "
        ))
        .bind_list(ids);
        for row in sql.query().fetch_all(&mut *conn).await? {
            let run_id = get_str(&row, 0).unwrap_or_default();
            let entry = data.entry(run_id).or_default();
            entry.0.params = key_values_from_json(get_str(&row, 1).as_deref())?;
            entry.0.tags = key_values_from_json(get_str(&row, 2).as_deref())?;
            entry.0.metrics = metrics_from_json(get_str(&row, 3).as_deref().unwrap_or("[]"))?;
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
                 timestamp, step, is_nan)) FROM latest_metrics WHERE run_uuid IN "
            ))
            .bind_list(ids)
            .push(" GROUP BY run_uuid");
            for row in sql.query().fetch_all(&mut *conn).await? {
                let run_id = get_str(&row, 0).unwrap_or_default();
                let json = get_str(&row, 1).unwrap_or_default();
                for metric in metrics_from_json(&json)? {
                    out.push((run_id.clone(), metric));
                }
            }
            return Ok(out);
        }
        sql.push(&format!(
            "SELECT run_uuid, {key}, value, timestamp, step, \
             CASE WHEN is_nan THEN 1 ELSE 0 END FROM latest_metrics WHERE run_uuid IN "
        ))
        .bind_list(ids);
        for row in sql.query().fetch_all(&mut *conn).await? {
            out.push((
                get_str(&row, 0).unwrap_or_default(),
                metric_from_row(&row, 1),
            ));
        }
        Ok(out)
    }

    async fn load_inputs(
        &self,
        conn: &mut AnyConnection,
        ids: &[String],
        data: &mut HashMap<String, (RunData, RunInputs, RunOutputs)>,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push(
            "SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, \
             d.dataset_source, d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d \
             ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' AND \
             i.destination_type = 'RUN' AND i.destination_id IN ",
        )
        .bind_list(ids);
        let rows = sql.query().fetch_all(&mut *conn).await?;
        if !rows.is_empty() {
            let input_ids: Vec<String> = rows.iter().filter_map(|r| get_str(r, 1)).collect();
            let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
            for chunk in input_ids.chunks(CHUNK) {
                let mut sql = self.sql();
                sql.push("SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN ")
                    .bind_list(chunk);
                for row in sql.query().fetch_all(&mut *conn).await? {
                    tags.entry(get_str(&row, 0).unwrap_or_default())
                        .or_default()
                        .push(KeyValue {
                            key: get_str(&row, 1).unwrap_or_default(),
                            value: get_str(&row, 2).unwrap_or_default(),
                        });
                }
            }
            for row in rows {
                let run_id = get_str(&row, 0).unwrap_or_default();
                let input_id = get_str(&row, 1).unwrap_or_default();
                let entry = data.entry(run_id).or_default();
                entry.1.dataset_inputs.push(DatasetInput {
                    tags: tags.remove(&input_id).unwrap_or_default(),
                    dataset: Dataset {
                        name: get_str(&row, 2).unwrap_or_default(),
                        digest: get_str(&row, 3).unwrap_or_default(),
                        source_type: get_str(&row, 4).unwrap_or_default(),
                        source: get_str(&row, 5).unwrap_or_default(),
                        schema: get_str(&row, 6),
                        profile: get_str(&row, 7),
                    },
                });
            }
        }
        let mut sql = self.sql();
        sql.push(
            "SELECT source_id, destination_id, source_type, step FROM inputs WHERE \
             ((source_type = 'RUN_INPUT' AND destination_type = 'MODEL_INPUT') OR \
             (source_type = 'RUN_OUTPUT' AND destination_type = 'MODEL_OUTPUT')) AND source_id IN ",
        )
        .bind_list(ids);
        for row in sql.query().fetch_all(&mut *conn).await? {
            let entry = data
                .entry(get_str(&row, 0).unwrap_or_default())
                .or_default();
            let model_id = get_str(&row, 1).unwrap_or_default();
            if get_str(&row, 2).as_deref() == Some("RUN_INPUT") {
                entry.1.model_inputs.push(ModelInput { model_id });
            } else {
                entry.2.model_outputs.push(ModelOutput {
                    model_id,
                    step: get_i64(&row, 3).unwrap_or(0),
                });
            }
        }
        Ok(())
    }

    /// Applies runs/update and returns the new info.
    pub async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        super::retry_conflicts(|| async {
            let mut tx = self.writer.begin().await?;
            self.active_run_in(&mut tx, run_id).await?;
            let mut sql = self.sql();
            sql.push("UPDATE runs SET run_uuid = run_uuid");
            if let Some(status) = &update.status {
                sql.push(", status = ").bind(status);
            }
            if let Some(end_time) = update.end_time {
                sql.push(", end_time = ").bind(end_time);
            }
            if let Some(name) = &update.run_name {
                sql.push(", name = ").bind(name);
            }
            sql.push(" WHERE run_uuid = ").bind(run_id);
            sql.query().execute(&mut *tx).await?;
            if let Some(name) = &update.run_name {
                let tag = KeyValue {
                    key: RUN_NAME_TAG.into(),
                    value: name.clone(),
                };
                self.upsert_tags(&mut tx, run_id, std::slice::from_ref(&tag))
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.fetch_info(run_id).await
    }

    /// Soft-deletes or restores a run.
    pub async fn set_run_lifecycle(&self, run_id: &str, stage: &str) -> Result<()> {
        self.fetch_info(run_id).await?;
        let deleted_time = if stage == "deleted" {
            Some(now_ms())
        } else {
            None
        };
        let mut sql = self.sql();
        sql.push("UPDATE runs SET lifecycle_stage = ")
            .bind(stage)
            .push(", deleted_time = ")
            .bind(deleted_time)
            .push(" WHERE run_uuid = ")
            .bind(run_id);
        sql.query().execute(&self.writer).await?;
        Ok(())
    }

    /// Writes a batch atomically: either every entity lands or none does.
    pub async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        if let Some(queue) = &self.group_commit {
            return queue.submit(run_id.to_string(), batch).await;
        }
        // On PostgreSQL and MySQL concurrent batches can deadlock on the shared metric-key
        // index ranges (InnoDB's next-key locks above all); the loser is rolled back whole,
        // so running it again is safe.
        super::retry_conflicts(|| async {
            let mut tx = self.writer.begin().await?;
            self.apply_batch(&mut tx, run_id, &batch).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The statements of one log-batch, inside a transaction the caller owns.
    pub(super) async fn apply_batch(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
        batch: &Batch,
    ) -> Result<()> {
        let experiment_id = self.active_run_in(conn, run_id).await?;
        self.insert_params(conn, run_id, &batch.params).await?;
        self.upsert_tags(conn, run_id, &batch.tags).await?;
        let rows: Vec<MetricRow> = batch
            .metrics
            .iter()
            .map(|metric| MetricRow { run_id, metric })
            .collect();
        self.insert_metrics(conn, &rows).await?;
        self.insert_model_metrics(conn, run_id, experiment_id, &batch.metrics)
            .await
    }

    async fn insert_params(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
        params: &[KeyValue],
    ) -> Result<()> {
        if params.is_empty() {
            return Ok(());
        }
        let existing = self
            .stored_params(conn, run_id, params.iter().map(|p| p.key.as_str()))
            .await?;
        let mut new = Vec::new();
        for p in params {
            match existing.get(&p.key) {
                Some(old) if *old == p.value => {}
                Some(old) => return Err(param_changed(run_id, p, old)),
                None => new.push(p),
            }
        }
        self.insert_key_values(conn, "params", run_id, &new).await?;
        if self.dialect != Dialect::Sqlite && !new.is_empty() {
            // Another server process may have logged one of these keys since the check above
            // (the insert skipped it): the same value is fine, another one is refused.
            let stored = self
                .stored_params(conn, run_id, new.iter().map(|p| p.key.as_str()))
                .await?;
            for p in &new {
                match stored.get(&p.key) {
                    Some(value) if *value != p.value => {
                        return Err(param_changed(run_id, p, value))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The stored values of the run's params among `keys`.
    async fn stored_params<'k>(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<HashMap<String, String>> {
        let key = self.dialect.key_col();
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {key}, value FROM params WHERE run_uuid = "
        ))
        .bind(run_id)
        .push(&format!(" AND {key} IN "))
        .bind_list(keys);
        string_map(conn, &sql).await
    }

    /// Inserts `(key, value, run_uuid)` rows into `params` or `tags`, many per statement.
    async fn insert_key_values(
        &self,
        conn: &mut AnyConnection,
        table: &str,
        run_id: &str,
        items: &[&KeyValue],
    ) -> Result<()> {
        let key = self.dialect.key_col();
        // On PostgreSQL/MySQL a concurrent request through another server process may insert
        // the same key first: skipping the duplicate keeps that from failing the request (the
        // callers settle what a skipped row means). SQLite's single writer never races.
        let ignore = self.dialect != Dialect::Sqlite;
        for chunk in items.chunks(CHUNK / 3) {
            let mut sql = self.sql();
            if ignore {
                sql.push(
                    &self
                        .dialect
                        .insert_ignore(table, &format!("{key}, value, run_uuid")),
                );
            } else {
                sql.push(&format!(
                    "INSERT INTO {table} ({key}, value, run_uuid) VALUES "
                ));
            }
            for (i, kv) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" })
                    .bind(&kv.key)
                    .push(", ")
                    .bind(&kv.value)
                    .push(", ")
                    .bind(run_id)
                    .push(")");
            }
            if ignore {
                sql.push(self.dialect.insert_ignore_suffix());
            }
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn upsert_tags(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
        tags: &[KeyValue],
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let latest = super::last_per_key(tags);
        let key = self.dialect.key_col();
        let mut sql = self.sql();
        sql.push("DELETE FROM tags WHERE run_uuid = ")
            .bind(run_id)
            .push(&format!(" AND {key} IN "))
            .bind_list(latest.iter().map(|t| t.key.as_str()));
        sql.query().execute(&mut *conn).await?;
        self.insert_key_values(conn, "tags", run_id, &latest)
            .await?;
        if let Some(name) = latest.iter().find(|t| t.key == RUN_NAME_TAG) {
            let mut sql = self.sql();
            sql.push("UPDATE runs SET name = ")
                .bind(&name.value)
                .push(" WHERE run_uuid = ")
                .bind(run_id);
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Inserts metric rows (of one run or of several) and moves each `(run, key)`'s latest
    /// value forward, in a few multi-row statements.
    pub(super) async fn insert_metrics(
        &self,
        conn: &mut AnyConnection,
        rows: &[MetricRow<'_>],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let key = self.dialect.key_col();
        // Every transaction takes its index locks in one order (the primary key's: key,
        // timestamp, step, run), which keeps concurrent writers on PostgreSQL and MySQL from
        // deadlocking.
        let mut sorted: Vec<&MetricRow> = rows.iter().collect();
        sorted.sort_by(|a, b| {
            let ka = (
                a.metric.key.as_str(),
                a.metric.timestamp,
                a.metric.step,
                a.run_id,
            );
            ka.cmp(&(
                b.metric.key.as_str(),
                b.metric.timestamp,
                b.metric.step,
                b.run_id,
            ))
        });
        for chunk in sorted.chunks(CHUNK / 6) {
            let mut sql = self.sql();
            sql.push(&self.dialect.insert_ignore(
                "metrics",
                &format!("{key}, value, timestamp, step, is_nan, run_uuid"),
            ));
            for (i, row) in chunk.iter().enumerate() {
                push_metric_values(&mut sql, i, row.run_id, row.metric);
            }
            sql.push(self.dialect.insert_ignore_suffix());
            sql.query().execute(&mut *conn).await?;
        }
        // One row per distinct (run, key), holding the rows' own maximum, upserted in
        // multi-row statements: a 1000-metric batch, or a group of a hundred log-metric
        // requests on one key, costs a handful of statements and one row update per key.
        let mut best: HashMap<(&str, &str), &NewMetric> = HashMap::with_capacity(rows.len());
        for row in rows {
            let m = row.metric;
            best.entry((m.key.as_str(), row.run_id))
                .and_modify(|b| {
                    let current = (b.step, b.timestamp, stored_value(b.value).0);
                    if (m.step, m.timestamp, stored_value(m.value).0) > current {
                        *b = m;
                    }
                })
                .or_insert(m);
        }
        let mut order: Vec<(&str, &str)> = best.keys().copied().collect();
        order.sort_unstable();
        let (head, tail) = self.dialect.latest_metric_upsert();
        for chunk in order.chunks(CHUNK / 6) {
            let mut sql = self.sql();
            sql.push(head);
            for (i, k) in chunk.iter().enumerate() {
                push_metric_values(&mut sql, i, k.1, best[k]);
            }
            sql.push(tail);
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Checks that every run is active, in one statement; the first run that is missing or
    /// not active gives the error a single write to it would.
    pub(super) async fn check_active_runs(
        &self,
        conn: &mut AnyConnection,
        run_ids: &[&str],
    ) -> Result<()> {
        for chunk in run_ids.chunks(CHUNK) {
            let mut sql = self.sql();
            sql.push("SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid IN ")
                .bind_list(chunk.iter().copied());
            let stages = string_map(conn, &sql).await?;
            for run_id in chunk {
                match stages.get(*run_id) {
                    None => return Err(not_found(run_id)),
                    Some(stage) if stage != "active" => return Err(not_active(run_id, stage)),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Metrics that carry a `model_id` are also recorded for that logged model.
    async fn insert_model_metrics(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
        experiment_id: i64,
        metrics: &[NewMetric],
    ) -> Result<()> {
        for m in metrics {
            let Some(model_id) = &m.model_id else {
                continue;
            };
            let (value, _) = stored_value(m.value);
            let mut sql = self.sql();
            sql.push(&self.dialect.insert_ignore(
                "logged_model_metrics",
                "model_id, metric_name, metric_timestamp_ms, metric_step, metric_value, \
                 experiment_id, run_id, dataset_name, dataset_digest",
            ))
            .push("(")
            .bind(model_id)
            .push(", ")
            .bind(&m.key)
            .push(", ")
            .bind(m.timestamp)
            .push(", ")
            .bind(m.step)
            .push(", ")
            .bind(if m.value.is_nan() { f64::NAN } else { value })
            .push(", ")
            .bind(experiment_id)
            .push(", ")
            .bind(run_id)
            .push(", ")
            .bind(m.dataset_name.clone())
            .push(", ")
            .bind(m.dataset_digest.clone())
            .push(")")
            .push(self.dialect.insert_ignore_suffix());
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Removes a run tag; a missing tag is an error, as in MLflow.
    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        self.active_run_in(&mut tx, run_id).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM tags WHERE run_uuid = ")
            .bind(run_id)
            .push(&format!(" AND {} = ", self.dialect.key_col()))
            .bind(key);
        let done = sql.query().execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(MlflowError::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records dataset inputs (de-duplicated by name and digest) and model inputs.
    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[NewDatasetInput],
        model_ids: &[String],
    ) -> Result<()> {
        let experiment_id: i64 = self
            .fetch_info(run_id)
            .await?
            .experiment_id
            .parse()
            .unwrap_or(0);
        let mut tx = self.writer.begin().await?;
        self.active_run_in(&mut tx, run_id).await?;
        for input in datasets {
            let d = &input.dataset;
            let mut sql = self.sql();
            sql.push("SELECT dataset_uuid FROM datasets WHERE experiment_id = ")
                .bind(experiment_id)
                .push(" AND name = ")
                .bind(&d.name)
                .push(" AND digest = ")
                .bind(&d.digest);
            let dataset_uuid = match sql.query().fetch_optional(&mut *tx).await? {
                Some(row) => get_str(&row, 0).unwrap_or_default(),
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    let mut sql = self.sql();
                    sql.push(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, \
                         dataset_source_type, dataset_source, dataset_schema, dataset_profile) \
                         VALUES (",
                    )
                    .bind(&id)
                    .push(", ")
                    .bind(experiment_id)
                    .push(", ")
                    .bind(&d.name)
                    .push(", ")
                    .bind(&d.digest)
                    .push(", ")
                    .bind(&d.source_type)
                    .push(", ")
                    .bind(&d.source)
                    .push(", ")
                    .bind(d.schema.clone())
                    .push(", ")
                    .bind(d.profile.clone())
                    .push(")");
                    sql.query().execute(&mut *tx).await?;
                    id
                }
            };
            let mut sql = self.sql();
            sql.push(
                "SELECT input_uuid FROM inputs WHERE source_type = 'DATASET' AND source_id = ",
            )
            .bind(&dataset_uuid)
            .push(" AND destination_type = 'RUN' AND destination_id = ")
            .bind(run_id);
            if sql.query().fetch_optional(&mut *tx).await?.is_some() {
                continue;
            }
            let input_uuid = uuid::Uuid::new_v4().simple().to_string();
            self.insert_input(
                &mut tx,
                &input_uuid,
                "DATASET",
                &dataset_uuid,
                "RUN",
                run_id,
                0,
            )
            .await?;
            for tag in &input.tags {
                let mut sql = self.sql();
                sql.push("INSERT INTO input_tags (input_uuid, name, value) VALUES (")
                    .bind(&input_uuid)
                    .push(", ")
                    .bind(&tag.key)
                    .push(", ")
                    .bind(&tag.value)
                    .push(")");
                sql.query().execute(&mut *tx).await?;
            }
        }
        for model_id in model_ids {
            let id = uuid::Uuid::new_v4().simple().to_string();
            self.insert_input(
                &mut tx,
                &id,
                "RUN_INPUT",
                run_id,
                "MODEL_INPUT",
                model_id,
                0,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records logged-model outputs of a run.
    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        self.active_run_in(&mut tx, run_id).await?;
        for m in models {
            let id = uuid::Uuid::new_v4().simple().to_string();
            self.insert_input(
                &mut tx,
                &id,
                "RUN_OUTPUT",
                run_id,
                "MODEL_OUTPUT",
                &m.model_id,
                m.step,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_input(
        &self,
        conn: &mut AnyConnection,
        input_uuid: &str,
        source_type: &str,
        source_id: &str,
        destination_type: &str,
        destination_id: &str,
        step: i64,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push(&self.dialect.insert_ignore(
            "inputs",
            "input_uuid, source_type, source_id, destination_type, destination_id, step",
        ))
        .push("(")
        .bind(input_uuid)
        .push(", ")
        .bind(source_type)
        .push(", ")
        .bind(source_id)
        .push(", ")
        .bind(destination_type)
        .push(", ")
        .bind(destination_id)
        .push(", ")
        .bind(step)
        .push(")")
        .push(self.dialect.insert_ignore_suffix());
        sql.query().execute(&mut *conn).await?;
        Ok(())
    }

    /// A metric's full history, one page from `offset` (`limit` None = all).
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<Page<Metric>> {
        // An unknown run has an empty history, as in MLflow.
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {k}, value, timestamp, step, CASE WHEN is_nan THEN 1 ELSE 0 END FROM metrics \
             WHERE run_uuid = ",
            k = self.dialect.key_col()
        ))
        .bind(run_id)
        .push(&format!(" AND {} = ", self.dialect.key_col()))
        .bind(key)
        .push(" ORDER BY timestamp, step, value");
        if let Some(limit) = limit {
            sql.push(" LIMIT ")
                .bind(limit + 1)
                .push(" OFFSET ")
                .bind(offset);
        }
        let rows = self.fetch_all(&sql).await?;
        let has_more = limit.is_some_and(|l| rows.len() as i64 > l);
        let take = limit.map_or(rows.len(), |l| l as usize);
        Ok(Page {
            items: rows
                .iter()
                .take(take)
                .map(|r| metric_from_row(r, 0))
                .collect(),
            has_more,
        })
    }

    /// History of `key` for several runs, restricted to a step range, sorted by run then step.
    pub async fn metric_history_in_steps(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
    ) -> Result<Vec<Metric>> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {k}, value, timestamp, step, CASE WHEN is_nan THEN 1 ELSE 0 END, run_uuid \
             FROM metrics WHERE {k} = ",
            k = self.dialect.key_col()
        ))
        .bind(key)
        .push(" AND run_uuid IN ")
        .bind_list(run_ids);
        if let Some((start, end)) = steps {
            sql.push(" AND step >= ")
                .bind(start)
                .push(" AND step <= ")
                .bind(end);
        }
        sql.push(" ORDER BY run_uuid, step, timestamp, value");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| {
                let mut m = metric_from_row(r, 0);
                m.run_id = get_str(r, 5);
                m
            })
            .collect())
    }

    /// Runs of `experiment_ids` matching `clauses`, ordered, one page from `offset`.
    pub async fn search_runs(
        &self,
        experiment_ids: &[i64],
        view: ViewType,
        clauses: &[Clause],
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Run>> {
        if experiment_ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        }
        // The same page query on every database; each reads the page its own way. PostgreSQL
        // wraps it to add the runs' data as JSON (`search_page_with_data`), and its filters and
        // order read `runs` while the columns and the lifecycle stage come from a second
        // reference `r` to the same row: PostgreSQL then walks the (experiment_id,
        // start_time, run_uuid) index without visiting the table for the runs the filters
        // reject (12% less work on a 10%-selective param filter over 100,000 runs). SQLite
        // aggregates the whole page into one JSON row (`search_page_json`); MySQL reads the
        // rows and then their data.
        let mut sql = self.sql();
        let (columns, from, stage) = match self.dialect {
            Dialect::Postgres => {
                sql.push(PG_RUN_DATA_SELECT).push(" FROM (");
                (
                    PG_PAGE_COLUMNS,
                    "runs JOIN runs r ON r.run_uuid = runs.run_uuid",
                    "r.lifecycle_stage",
                )
            }
            Dialect::Sqlite => {
                sql.push(SQLITE_PAGE_SELECT);
                run_order(&mut sql, order);
                sql.push(") FROM (");
                (RUN_COLUMNS, "runs", "runs.lifecycle_stage")
            }
            Dialect::Mysql => (RUN_COLUMNS, "runs", "runs.lifecycle_stage"),
        };
        sql.push(&format!(
            "SELECT {columns} FROM {from} WHERE runs.experiment_id IN "
        ))
        .bind_list(experiment_ids.iter().copied())
        .push(&format!(" AND {stage} IN "))
        .bind_list(view.stages().iter().copied());
        for clause in clauses {
            sql.push(" AND ");
            run_clause(&mut sql, clause);
        }
        run_order(&mut sql, order);
        match self.dialect {
            Dialect::Postgres => {
                self.search_page_with_data(sql, order, max_results, offset)
                    .await
            }
            Dialect::Sqlite => self.search_page_json(sql, max_results, offset).await,
            Dialect::Mysql => {
                let (infos, has_more) = self
                    .fetch_page(sql, max_results, offset, info_from_row)
                    .await?;
                Ok(Page {
                    items: self.load_runs(infos).await?,
                    has_more,
                })
            }
        }
    }

    /// PostgreSQL: one statement returns the page and each run's params, tags and latest
    /// metrics as JSON, where separate queries per kind would cost the database a statement
    /// (planned afresh, with a hundred-id IN list) each. `sql` is the page's query up to its
    /// ORDER BY, preceded by `PG_RUN_DATA_SELECT ... FROM (`; the derived table is named
    /// `runs`, so the outer ORDER BY is the inner one's text. Inputs are read separately,
    /// for the runs that have any.
    async fn search_page_with_data(
        &self,
        mut sql: super::sql::Sql,
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Run>> {
        close_page(&mut sql, max_results, offset);
        run_order(&mut sql, order);
        let rows = self.fetch_all(&sql).await?;
        let has_more = rows.len() as i64 > max_results;
        let mut page = Vec::with_capacity(rows.len());
        for row in rows.iter().take(max_results as usize) {
            let col = RUN_COLUMN_COUNT;
            let data = RunData {
                params: key_values_from_json(get_str(row, col).as_deref())?,
                tags: key_values_from_json(get_str(row, col + 1).as_deref())?,
                metrics: metrics_from_json(get_str(row, col + 2).as_deref().unwrap_or("[]"))?,
            };
            page.push((
                info_from_row(row),
                data,
                get_i64(row, col + 3).unwrap_or(0) != 0,
            ));
        }
        self.finish_page(page, has_more).await
    }

    /// SQLite: the page as one JSON row (see `SQLITE_PAGE_SELECT`); `sql` ends with the page
    /// query's ORDER BY.
    async fn search_page_json(
        &self,
        mut sql: super::sql::Sql,
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Run>> {
        close_page(&mut sql, max_results, offset);
        let row = self.fetch_optional(&sql).await?;
        let json = row.and_then(|r| get_str(&r, 0));
        let runs: Vec<JsonRun> = serde_json::from_str(json.as_deref().unwrap_or("[]"))
            .map_err(|e| MlflowError::internal(format!("cannot read a page of runs: {e}")))?;
        let has_more = runs.len() as i64 > max_results;
        let mut page = Vec::with_capacity(runs.len());
        for (info, params, tags, metrics, has_inputs) in runs.into_iter().take(max_results as usize)
        {
            let data = RunData {
                params: key_values(params),
                tags: key_values(tags),
                metrics: metrics_from_items(metrics),
            };
            page.push((info_from_columns(info), data, has_inputs != 0));
        }
        self.finish_page(page, has_more).await
    }

    /// Turns a search page's runs into `Run`s: params sorted by key, and inputs and outputs
    /// read for the runs flagged as having any.
    async fn finish_page(
        &self,
        page: Vec<(RunInfo, RunData, bool)>,
        has_more: bool,
    ) -> Result<Page<Run>> {
        let with_inputs: Vec<String> = page
            .iter()
            .filter(|(_, _, has)| *has)
            .map(|(info, _, _)| info.run_id.clone())
            .collect();
        let mut loaded = HashMap::new();
        if !with_inputs.is_empty() {
            let mut conn = self.reader.acquire().await?;
            for chunk in with_inputs.chunks(CHUNK) {
                self.load_inputs(&mut conn, chunk, &mut loaded).await?;
            }
        }
        let items = page
            .into_iter()
            .map(|(info, mut data, _)| {
                data.params.sort_by(|a, b| a.key.cmp(&b.key));
                let (inputs, outputs) = loaded
                    .remove(&info.run_id)
                    .map(|(_, i, o)| (i, o))
                    .unwrap_or_default();
                Run {
                    info,
                    data,
                    inputs,
                    outputs,
                }
            })
            .collect();
        Ok(Page { items, has_more })
    }
}

/// Ends a search page's query: one row more than the page (to learn whether another follows)
/// from `offset`, closing the derived table `runs` it is read through.
fn close_page(sql: &mut super::sql::Sql, max_results: i64, offset: i64) {
    sql.push(" LIMIT ")
        .bind(max_results + 1)
        .push(" OFFSET ")
        .bind(offset)
        .push(") runs");
}

/// Latest metrics from SQLite's `json_group_array(json_array(key, '%!.17g' value, timestamp,
/// step, is_nan))`.
fn metrics_from_json(json: &str) -> Result<Vec<Metric>> {
    let items: Vec<JsonMetric> = serde_json::from_str(json)
        .map_err(|e| MlflowError::internal(format!("cannot read latest metrics: {e}")))?;
    Ok(metrics_from_items(items))
}

fn metrics_from_items(items: Vec<JsonMetric>) -> Vec<Metric> {
    items
        .into_iter()
        .map(|(key, value, timestamp, step, is_nan)| Metric {
            key,
            value: if is_nan.unwrap_or(0) != 0 {
                f64::NAN
            } else {
                value.parse().unwrap_or(0.0)
            },
            timestamp: timestamp.unwrap_or(0),
            step: step.unwrap_or(0),
            dataset_name: None,
            dataset_digest: None,
            model_id: None,
            run_id: None,
        })
        .collect()
}

/// Params or tags from SQLite's `json_group_array(json_array(key, value))`.
fn key_values_from_json(json: Option<&str>) -> Result<Vec<KeyValue>> {
    let items: Vec<(String, Option<String>)> = serde_json::from_str(json.unwrap_or("[]"))
        .map_err(|e| MlflowError::internal(format!("cannot read params or tags: {e}")))?;
    Ok(key_values(items))
}

fn key_values(items: Vec<(String, Option<String>)>) -> Vec<KeyValue> {
    items
        .into_iter()
        .map(|(key, value)| KeyValue {
            key,
            value: value.unwrap_or_default(),
        })
        .collect()
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
