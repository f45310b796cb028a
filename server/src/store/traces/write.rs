//! Changing traces after they are written: tags, deletion (by ids, or the oldest up to a
//! timestamp), and links from traces to runs and prompt versions (`entity_associations`).

use sqlx::AnyConnection;

use super::{kv_upsert, trace_not_found, ID_CHUNK};
use crate::domain::traces::{TraceState, TAG_TRACE_NAME};
use crate::error::{MlflowError, Result};
use crate::store::sql::{get_str, Dialect, Sql};
use crate::store::{now_ms, Store};

/// Which traces a delete removes.
pub enum TraceSelection<'a> {
    Ids(&'a [String]),
    /// The oldest traces with `timestamp_ms <= max_timestamp`, at most `max_traces` of them.
    Before {
        max_timestamp: i64,
        max_traces: Option<i64>,
    },
}

/// Tables that hang off `trace_info` by trace id; deleted explicitly because SQLite runs
/// without foreign-key enforcement here, so `ON DELETE CASCADE` would not fire.
const CHILD_TABLES: [(&str, &str); 6] = [
    ("span_metrics", "trace_id"),
    ("spans", "trace_id"),
    ("trace_metrics", "request_id"),
    ("assessments", "trace_id"),
    ("trace_tags", "request_id"),
    ("trace_request_metadata", "request_id"),
];

async fn trace_exists(conn: &mut AnyConnection, d: Dialect, trace_id: &str) -> Result<bool> {
    let mut sql = Sql::new(d);
    sql.push("SELECT request_id FROM trace_info WHERE request_id = ")
        .bind(trace_id);
    Ok(sql.query().fetch_optional(&mut *conn).await?.is_some())
}

impl Store {
    /// Sets a tag; `mlflow.traceName` is kept in `trace_info.trace_name`.
    pub async fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<()> {
        let d = self.dialect;
        self.write(|tx, _| {
            Box::pin(async move {
                if !trace_exists(tx, d, trace_id).await? {
                    return Err(trace_not_found(trace_id));
                }
                if key == TAG_TRACE_NAME {
                    let mut sql = Sql::new(d);
                    sql.push("UPDATE trace_info SET trace_name = ")
                        .bind(value)
                        .push(" WHERE request_id = ")
                        .bind(trace_id);
                    sql.query().execute(&mut *tx).await?;
                } else if let Some(q) = kv_upsert(
                    d,
                    "trace_tags",
                    trace_id,
                    &[(key.to_string(), value.to_string())],
                ) {
                    q.query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<()> {
        let d = self.dialect;
        self.write(|tx, _| {
            Box::pin(async move {
                if !trace_exists(tx, d, trace_id).await? {
                    return Err(trace_not_found(trace_id));
                }
                let mut sql = Sql::new(d);
                if key == TAG_TRACE_NAME {
                    sql.push("UPDATE trace_info SET trace_name = NULL WHERE request_id = ")
                        .bind(trace_id)
                        .push(" AND trace_name IS NOT NULL");
                } else {
                    sql.push("DELETE FROM trace_tags WHERE request_id = ")
                        .bind(trace_id)
                        .push(" AND ")
                        .push(d.key_col())
                        .push(" = ")
                        .bind(key);
                }
                if sql.query().execute(&mut *tx).await?.rows_affected() == 0 {
                    return Err(MlflowError::not_found(format!(
                        "No trace tag with key '{key}' for trace with ID '{trace_id}'"
                    )));
                }
                Ok(())
            })
        })
        .await
    }

    /// Deletes the selected traces of one experiment with everything attached; returns how
    /// many there were.
    pub async fn delete_traces(
        &self,
        experiment_id: i64,
        selection: TraceSelection<'_>,
    ) -> Result<i64> {
        let selection = &selection;
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push("SELECT request_id FROM trace_info WHERE experiment_id = ")
                    .bind(experiment_id);
                match &selection {
                    TraceSelection::Ids(ids) => {
                        sql.push(" AND request_id IN ")
                            .bind_list(ids.iter().map(String::as_str));
                    }
                    TraceSelection::Before { max_timestamp, .. } => {
                        sql.push(" AND timestamp_ms <= ").bind(*max_timestamp);
                    }
                }
                sql.push(" ORDER BY timestamp_ms, request_id");
                if let TraceSelection::Before {
                    max_traces: Some(n),
                    ..
                } = &selection
                {
                    sql.push(" LIMIT ").bind(*n);
                }
                sql.push(d.row_lock());
                let ids: Vec<String> = sql
                    .query()
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .filter_map(|r| get_str(r, "request_id"))
                    .collect();
                for chunk in ids.chunks(ID_CHUNK) {
                    for (table, column) in CHILD_TABLES {
                        let mut sql = Sql::new(d);
                        sql.push(&format!("DELETE FROM {table} WHERE {column} IN "))
                            .bind_list(chunk.iter().map(String::as_str));
                        sql.query().execute(&mut *tx).await?;
                    }
                    let mut sql = Sql::new(d);
                    sql.push(
                        "DELETE FROM review_queue_items WHERE item_type = 'trace' AND item_id IN ",
                    )
                    .bind_list(chunk.iter().map(String::as_str));
                    sql.query().execute(&mut *tx).await?;
                    let mut sql = Sql::new(d);
                    sql.push("DELETE FROM trace_info WHERE request_id IN ")
                        .bind_list(chunk.iter().map(String::as_str));
                    sql.query().execute(&mut *tx).await?;
                }
                Ok(ids.len() as i64)
            })
        })
        .await
    }

    /// Links traces to a run (the run's "traces" tab); links that exist are kept. As in
    /// MLflow, the traces need not exist yet: asynchronous export may still be delivering them.
    pub async fn link_traces_to_run(&self, trace_ids: &[String], run_id: &str) -> Result<()> {
        self.add_associations("trace", trace_ids, "run", &[run_id.to_string()])
            .await
    }

    /// Links prompt versions (`name/version`) to a trace.
    pub async fn link_prompts_to_trace(&self, trace_id: &str, prompt_ids: &[String]) -> Result<()> {
        self.get_trace_info(trace_id).await?;
        self.add_associations(
            "trace",
            &[trace_id.to_string()],
            "prompt_version",
            prompt_ids,
        )
        .await
    }

    /// Inserts the association of every source with every destination, skipping pairs that
    /// exist.
    async fn add_associations(
        &self,
        source_type: &str,
        sources: &[String],
        destination_type: &str,
        destinations: &[String],
    ) -> Result<()> {
        if sources.is_empty() || destinations.is_empty() {
            return Ok(());
        }
        let d = self.dialect;
        self.write(|tx, _| {
            Box::pin(async move {
                let now = now_ms();
                for s in sources {
                    for dest in destinations {
                        let mut sql = Sql::new(d);
                        sql.push(&d.insert_ignore(
                    "entity_associations",
                    "association_id, source_type, source_id, destination_type, destination_id, \
                     created_time",
                ))
                .push("(")
                .bind(uuid::Uuid::new_v4().simple().to_string())
                .push(", ")
                .bind(source_type)
                .push(", ")
                .bind(s.as_str())
                .push(", ")
                .bind(destination_type)
                .push(", ")
                .bind(dest.as_str())
                .push(", ")
                .bind(now)
                .push(")")
                .push(d.insert_ignore_suffix());
                        sql.query().execute(&mut *tx).await?;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    /// The legacy v2 end-trace: sets the end state, duration, metadata and tags.
    pub async fn end_trace_v2(
        &self,
        trace_id: &str,
        end_ms: i64,
        state: TraceState,
        metadata: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        let d = self.dialect;
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = Sql::new(d);
                sql.push("SELECT timestamp_ms FROM trace_info WHERE request_id = ")
                    .bind(trace_id);
                let row = sql
                    .query()
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| trace_not_found(trace_id))?;
                let start = crate::store::sql::get_i64(&row, "timestamp_ms").unwrap_or_default();
                let mut sql = Sql::new(d);
                sql.push("UPDATE trace_info SET execution_time_ms = ")
                    .bind(end_ms - start)
                    .push(", status = ")
                    .bind(state.as_str())
                    .push(" WHERE request_id = ")
                    .bind(trace_id);
                sql.query().execute(&mut *tx).await?;
                if let Some(q) = kv_upsert(d, "trace_request_metadata", trace_id, metadata) {
                    q.query().execute(&mut *tx).await?;
                }
                let (names, others): (Vec<_>, Vec<_>) =
                    tags.iter().cloned().partition(|(k, _)| k == TAG_TRACE_NAME);
                if let Some((_, name)) = names.last() {
                    let mut sql = Sql::new(d);
                    sql.push("UPDATE trace_info SET trace_name = ")
                        .bind(name.as_str())
                        .push(" WHERE request_id = ")
                        .bind(trace_id);
                    sql.query().execute(&mut *tx).await?;
                }
                if let Some(q) = kv_upsert(d, "trace_tags", trace_id, &others) {
                    q.query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
