//! The log-batch write path: params, tags and metrics of a run, in the caller's
//! transaction (group commit merges many of these into one).

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{
    not_active, not_found, stored_value, string_map, Batch, NewMetric, CHUNK, RUN_NAME_TAG,
};
use crate::error::{MlflowError, Result};
use crate::store::sql::Sql;
use crate::store::Store;
use crate::wire::KeyValue;

/// One metric row to write, with the run it belongs to.
pub struct MetricRow<'a> {
    pub run_id: &'a str,
    pub metric: &'a NewMetric,
}

/// Appends `(key, value, timestamp, step, is_nan, run_uuid)` as the `i`-th VALUES row.
fn push_metric_values(sql: &mut Sql, i: usize, run_id: &str, m: &NewMetric) {
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

fn param_changed(run_id: &str, param: &KeyValue, stored: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Changing param values is not allowed. Param with key='{}' was already logged with \
         value='{stored}' for run ID='{run_id}'. Attempted logging new value '{}'.",
        param.key, param.value
    ))
}

impl Store {
    /// Writes a batch atomically: either every entity lands or none does.
    pub async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        if let Some(queue) = &self.group_commit {
            return queue.submit(run_id.to_string(), batch).await;
        }
        // On PostgreSQL and MySQL concurrent batches can deadlock on the shared metric-key
        // index ranges (InnoDB's next-key locks above all); the loser is rolled back whole,
        // so running it again is safe.
        let batch = &batch;
        self.write(|tx, _| {
            Box::pin(async move {
                self.apply_batch(&mut *tx, run_id, batch).await?;
                Ok(())
            })
        })
        .await
    }

    /// The statements of one log-batch, inside a transaction the caller owns.
    pub(in crate::store) async fn apply_batch(
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
        if self.dialect.has_concurrent_writers() && !new.is_empty() {
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
        string_map(conn, &sql, ["key", "value"]).await
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
        let ignore = self.dialect.has_concurrent_writers();
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

    pub(super) async fn upsert_tags(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
        tags: &[KeyValue],
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let latest = crate::store::last_per_key(tags);
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

    /// Rewrites one run tag from its stored value (`None` when unset) in one write
    /// transaction that holds the run's row, so concurrent rewrites of the same tag (two
    /// log-model calls) never lose one another's change. The run must be active.
    pub async fn rewrite_tag(
        &self,
        run_id: &str,
        key: &str,
        rewrite: impl Fn(Option<&str>) -> Result<String> + Sync,
    ) -> Result<()> {
        let rewrite = &rewrite;
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = self.sql();
                sql.push("SELECT lifecycle_stage FROM runs WHERE run_uuid = ")
                    .bind(run_id)
                    .push(self.dialect.row_lock());
                let row = sql
                    .query()
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found(run_id))?;
                let stage = crate::store::sql::get_str(&row, "lifecycle_stage").unwrap_or_default();
                if stage != "active" {
                    return Err(not_active(run_id, &stage));
                }
                let mut sql = self.sql();
                sql.push("SELECT value FROM tags WHERE run_uuid = ")
                    .bind(run_id)
                    .push(&format!(" AND {} = ", self.dialect.key_col()))
                    .bind(key);
                let stored = sql
                    .query()
                    .fetch_optional(&mut *tx)
                    .await?
                    .and_then(|row| crate::store::sql::get_str(&row, "value"));
                let value = rewrite(stored.as_deref())?;
                let tag = KeyValue {
                    key: key.to_string(),
                    value,
                };
                self.upsert_tags(&mut *tx, run_id, std::slice::from_ref(&tag))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Inserts metric rows (of one run or of several) and moves each `(run, key)`'s latest
    /// value forward, in a few multi-row statements.
    pub(in crate::store) async fn insert_metrics(
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
    pub(in crate::store) async fn check_active_runs(
        &self,
        conn: &mut AnyConnection,
        run_ids: &[&str],
    ) -> Result<()> {
        for chunk in run_ids.chunks(CHUNK) {
            let mut sql = self.sql();
            sql.push("SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid IN ")
                .bind_list(chunk.iter().copied());
            let stages = string_map(conn, &sql, ["run_uuid", "lifecycle_stage"]).await?;
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
}
