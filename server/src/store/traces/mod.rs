//! MLflow 3 traces in MLflow's tables: `trace_info` (one row per trace, with the trace name,
//! session, token and cost columns), `trace_tags`, `trace_request_metadata`, `spans` (one
//! row per span, its JSON in `content`) and the trace links in `entity_associations`.
//!
//! [`ingest`] writes span batches (OTLP), [`start`] start-trace calls, [`write`] tags, deletes and
//! links, [`search`] the trace search, [`metrics`] trace metrics and filter correlation; this file reads traces back as MLflow shows them.

mod info_row;
mod ingest;
mod lock;
mod metrics;
mod search;
mod start;
mod write;

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::sql::{get_f64, get_i64, get_str, Dialect, Sql};
use super::Store;
use crate::domain::assessments::{metadata_from_column, Assessment, AssessmentValue};
use crate::domain::traces::aggregate::COST_KEYS;
use crate::domain::traces::pyjson::PyValue;
use crate::domain::traces::{
    span, Trace, TraceInfo, TraceState, META_COST, META_SESSION, META_TOKEN_USAGE,
    SPANS_IN_TRACKING_STORE, TAG_SPANS_LOCATION, TAG_TRACE_NAME,
};
use crate::error::{MlflowError, Result};

pub use ingest::{NewTrace, SpanBatch};
pub use metrics::CorrelationCounts;
pub use search::{TraceOrder, TraceSearch};
pub use write::TraceSelection;

/// Token columns of `trace_info`, in the order of [`TOKEN_KEYS`] then the cache keys.
const TOKEN_COLUMNS: [(&str, &str); 6] = [
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("total_tokens", "total_tokens"),
    ("cache_read_input_tokens", "cache_read_input_tokens"),
    ("cache_creation_input_tokens", "cache_creation_input_tokens"),
    (
        "cache_creation_input_tokens_above_1hr",
        "cache_creation_input_tokens_above_1hr",
    ),
];

/// The `trace_info` columns every read selects.
pub(super) const INFO_COLUMNS: &str = "t.request_id, t.experiment_id, t.timestamp_ms, \
     t.execution_time_ms, t.status, t.client_request_id, t.request_preview, t.response_preview, \
     t.trace_name, t.session_id, t.input_tokens, t.output_tokens, t.total_tokens, \
     t.cache_read_input_tokens, t.cache_creation_input_tokens, \
     t.cache_creation_input_tokens_above_1hr, t.input_cost, t.output_cost, t.total_cost";

/// Batches of ids per `IN (...)` list, well under every database's parameter limit.
pub(super) const ID_CHUNK: usize = 500;

/// A `trace_info` row before its tags, metadata and assessments are attached.
struct InfoRow {
    info: TraceInfo,
    trace_name: Option<String>,
    session_id: Option<String>,
    tokens: Vec<(&'static str, Option<i64>)>,
    costs: Vec<(&'static str, Option<f64>)>,
}

fn info_row(row: &AnyRow) -> InfoRow {
    let state = get_str(row, "status")
        .and_then(|s| TraceState::parse(&s))
        .unwrap_or(TraceState::Unspecified);
    InfoRow {
        info: TraceInfo {
            trace_id: get_str(row, "request_id").unwrap_or_default(),
            experiment_id: get_i64(row, "experiment_id")
                .unwrap_or_default()
                .to_string(),
            request_time: get_i64(row, "timestamp_ms").unwrap_or_default(),
            execution_duration: get_i64(row, "execution_time_ms"),
            state,
            client_request_id: get_str(row, "client_request_id"),
            request_preview: get_str(row, "request_preview"),
            response_preview: get_str(row, "response_preview"),
            trace_metadata: Vec::new(),
            tags: Vec::new(),
            assessments: Vec::new(),
        },
        trace_name: get_str(row, "trace_name"),
        session_id: get_str(row, "session_id"),
        tokens: TOKEN_COLUMNS
            .iter()
            .map(|(key, column)| (*key, get_i64(row, *column)))
            .collect(),
        // The cost columns are named as MLflow's cost keys.
        costs: COST_KEYS
            .iter()
            .map(|key| (*key, get_f64(row, *key)))
            .collect(),
    }
}

/// The metadata MLflow derives from the session, token and cost columns.
fn compatibility_metadata(row: &InfoRow) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(s) = &row.session_id {
        out.push((META_SESSION.to_string(), s.clone()));
    }
    let tokens: Vec<(String, PyValue)> = row
        .tokens
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), PyValue::Int(v as i128))))
        .collect();
    if !tokens.is_empty() {
        out.push((
            META_TOKEN_USAGE.to_string(),
            PyValue::Dict(tokens).dumps(true),
        ));
    }
    let costs: Vec<(String, PyValue)> = row
        .costs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), PyValue::Float(v))))
        .collect();
    if !costs.is_empty() {
        out.push((META_COST.to_string(), PyValue::Dict(costs).dumps(true)));
    }
    out
}

/// Keys of `trace_request_metadata` that live in `trace_info` columns instead.
const PROMOTED_METADATA: [&str; 3] = [META_SESSION, META_TOKEN_USAGE, META_COST];

/// `valid` is read as 0/1: sqlx's Any driver cannot decode SQLite's BOOLEAN affinity.
pub(in crate::store) const ASSESSMENT_COLUMNS: &str =
    "assessment_id, trace_id, name, assessment_type, \
     value, error, created_timestamp, last_updated_timestamp, source_type, source_id, run_id, \
     span_id, rationale, overrides, CASE WHEN valid THEN 1 ELSE 0 END AS valid, \
     assessment_metadata";

pub(in crate::store) fn assessment_from_row(row: &AnyRow) -> Result<Assessment> {
    let kind = get_str(row, "assessment_type").unwrap_or_default();
    let value = AssessmentValue::from_columns(
        &kind,
        &get_str(row, "value").unwrap_or_default(),
        get_str(row, "error").as_deref(),
    )?;
    Ok(Assessment {
        assessment_id: get_str(row, "assessment_id").unwrap_or_default(),
        trace_id: get_str(row, "trace_id").unwrap_or_default(),
        name: get_str(row, "name").unwrap_or_default(),
        value,
        source_type: get_str(row, "source_type").unwrap_or_default(),
        source_id: get_str(row, "source_id"),
        run_id: get_str(row, "run_id"),
        span_id: get_str(row, "span_id"),
        rationale: get_str(row, "rationale"),
        metadata: metadata_from_column(get_str(row, "assessment_metadata").as_deref()),
        create_time_ms: get_i64(row, "created_timestamp").unwrap_or_default(),
        last_update_time_ms: get_i64(row, "last_updated_timestamp").unwrap_or_default(),
        overrides: get_str(row, "overrides"),
        valid: get_i64(row, "valid") != Some(0),
    })
}

pub(in crate::store) fn trace_not_found(trace_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Trace with ID '{trace_id}' not found."))
}

impl Store {
    /// Trace infos of the given ids that exist (optionally only in `experiment_ids`), in the
    /// order of `trace_ids`.
    pub async fn trace_infos(
        &self,
        trace_ids: &[String],
        experiment_ids: Option<&[i64]>,
    ) -> Result<Vec<TraceInfo>> {
        let mut rows: Vec<InfoRow> = Vec::new();
        for chunk in trace_ids.chunks(ID_CHUNK) {
            let mut sql = self.sql();
            sql.push("SELECT ")
                .push(INFO_COLUMNS)
                .push(" FROM trace_info t WHERE t.request_id IN ")
                .bind_list(chunk.iter().map(String::as_str));
            if let Some(exps) = experiment_ids {
                if exps.is_empty() {
                    return Ok(Vec::new());
                }
                sql.push(" AND t.experiment_id IN ")
                    .bind_list(exps.iter().copied());
            }
            rows.extend(self.fetch_all(&sql).await?.iter().map(info_row));
        }
        let order: HashMap<&str, usize> = trace_ids
            .iter()
            .enumerate()
            .rev()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        rows.sort_by_key(|r| order.get(r.info.trace_id.as_str()).copied());
        rows.dedup_by(|a, b| a.info.trace_id == b.info.trace_id);
        self.complete_infos(rows).await
    }

    /// One trace's info, or RESOURCE_DOES_NOT_EXIST.
    pub async fn get_trace_info(&self, trace_id: &str) -> Result<TraceInfo> {
        self.trace_infos(&[trace_id.to_string()], None)
            .await?
            .pop()
            .ok_or_else(|| trace_not_found(trace_id))
    }

    /// Attaches tags, metadata and assessments to `trace_info` rows.
    async fn complete_infos(&self, rows: Vec<InfoRow>) -> Result<Vec<TraceInfo>> {
        let ids: Vec<String> = rows.iter().map(|r| r.info.trace_id.clone()).collect();
        let mut tags: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut meta: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut assessments: HashMap<String, Vec<Assessment>> = HashMap::new();
        let key = self.dialect.key_col();
        for chunk in ids.chunks(ID_CHUNK) {
            let mut sql = self.sql();
            sql.push(&format!(
                "SELECT 0 AS kind, request_id, {key}, value FROM trace_tags WHERE request_id IN "
            ))
            .bind_list(chunk.iter().map(String::as_str))
            .push(&format!(
                " UNION ALL SELECT 1, request_id, {key}, value FROM trace_request_metadata \
                 WHERE request_id IN "
            ))
            .bind_list(chunk.iter().map(String::as_str));
            for row in self.fetch_all(&sql).await? {
                let (id, k, v) = (
                    get_str(&row, "request_id").unwrap_or_default(),
                    get_str(&row, "key").unwrap_or_default(),
                    get_str(&row, "value").unwrap_or_default(),
                );
                if get_i64(&row, "kind") == Some(0) {
                    tags.entry(id).or_default().push((k, v));
                } else {
                    meta.entry(id).or_default().push((k, v));
                }
            }
            let mut sql = self.sql();
            sql.push("SELECT ")
                .push(ASSESSMENT_COLUMNS)
                .push(" FROM assessments WHERE trace_id IN ")
                .bind_list(chunk.iter().map(String::as_str));
            // No ORDER BY: MLflow lists a trace's assessments in the table's own order
            // (insertion order), and clients compare lists.
            for row in self.fetch_all(&sql).await? {
                let a = assessment_from_row(&row)?;
                assessments.entry(a.trace_id.clone()).or_default().push(a);
            }
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = row.info.trace_id.clone();
                let mut info = row.info.clone();
                info.tags = tags
                    .remove(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| k != TAG_TRACE_NAME)
                    .collect();
                if let Some(name) = &row.trace_name {
                    info.tags.push((TAG_TRACE_NAME.to_string(), name.clone()));
                }
                info.trace_metadata = meta
                    .remove(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| !PROMOTED_METADATA.contains(&k.as_str()))
                    .collect();
                info.trace_metadata.extend(compatibility_metadata(&row));
                info.assessments = assessments.remove(&id).unwrap_or_default();
                info
            })
            .collect())
    }

    /// The stored span contents of one trace (root first, then by start time), as the
    /// JSON text MLflow keeps them.
    pub async fn trace_span_contents(&self, trace_id: &str) -> Result<Vec<String>> {
        let mut sql = self.sql();
        sql.push(
            "SELECT content FROM spans WHERE trace_id = ",
        )
        .bind(trace_id)
        .push(" ORDER BY CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END, start_time_unix_nano");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .filter_map(|r| get_str(r, "content"))
            .filter(|c| !c.is_empty())
            .collect())
    }

    /// Traces with their spans, for the ids that exist and whose spans are all stored
    /// (`complete`: as many spans as the trace's size stats announce).
    pub async fn traces_with_spans(
        &self,
        infos: Vec<TraceInfo>,
        complete: bool,
    ) -> Result<Vec<Trace>> {
        let in_store: Vec<&str> = infos
            .iter()
            .filter(|i| i.tag(TAG_SPANS_LOCATION) == Some(SPANS_IN_TRACKING_STORE))
            .map(|i| i.trace_id.as_str())
            .collect();
        // (root first, start time, content) per trace.
        let mut spans: HashMap<String, Vec<(bool, i64, String)>> = HashMap::new();
        for chunk in in_store.chunks(ID_CHUNK) {
            let mut sql = self.sql();
            sql.push(
                "SELECT trace_id, content, parent_span_id, start_time_unix_nano FROM spans \
                 WHERE trace_id IN ",
            )
            .bind_list(chunk.iter().copied());
            for row in self.fetch_all(&sql).await? {
                let content = get_str(&row, "content").unwrap_or_default();
                if content.is_empty() {
                    continue;
                }
                spans
                    .entry(get_str(&row, "trace_id").unwrap_or_default())
                    .or_default()
                    .push((
                        get_str(&row, "parent_span_id").is_some(),
                        get_i64(&row, "start_time_unix_nano").unwrap_or_default(),
                        content,
                    ));
            }
        }
        let mut out = Vec::new();
        for info in infos {
            let mut list = spans.remove(&info.trace_id).unwrap_or_default();
            list.sort_by_key(|a| (a.0, a.1));
            if complete && list.len() < expected_span_count(&info) {
                continue;
            }
            let rendered = list
                .iter()
                .map(|(_, _, c)| {
                    span::render(c).ok_or_else(|| {
                        MlflowError::internal(format!(
                            "A stored span of trace {} cannot be read",
                            info.trace_id
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(Trace {
                info,
                spans: rendered,
            });
        }
        Ok(out)
    }
}

/// The span count the client announced in `mlflow.trace.sizeStats` (0 when absent).
fn expected_span_count(info: &TraceInfo) -> usize {
    info.trace_metadata
        .iter()
        .find(|(k, _)| k == "mlflow.trace.sizeStats")
        .and_then(|(_, v)| PyValue::loads(v))
        .and_then(|v| match v.get("num_spans") {
            Some(PyValue::Int(n)) => usize::try_from(*n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Upserts key/value rows of `trace_tags` or `trace_request_metadata` for one trace.
pub(super) fn kv_upsert(
    dialect: Dialect,
    table: &str,
    trace_id: &str,
    entries: &[(String, String)],
) -> Option<Sql> {
    kv_upsert_many(dialect, table, &[(trace_id, entries)]).pop()
}

/// Key/value rows per statement of `kv_upsert_many` (three bound parameters each).
const KV_ROWS_PER_STATEMENT: usize = 500;

/// Upserts the key/value entries of several traces, in as few statements as the bound
/// parameter limits allow (an OTLP batch writes the tags of its ten traces in one).
pub(super) fn kv_upsert_many(
    dialect: Dialect,
    table: &str,
    traces: &[(&str, &[(String, String)])],
) -> Vec<Sql> {
    let rows: Vec<(&str, &str, &str)> = traces
        .iter()
        .flat_map(|(id, entries)| entries.iter().map(|(k, v)| (*id, k.as_str(), v.as_str())))
        .collect();
    let key = dialect.key_col();
    rows.chunks(KV_ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut sql = Sql::new(dialect);
            sql.push(&format!(
                "INSERT INTO {table} ({key}, value, request_id) VALUES "
            ));
            for (i, (trace_id, k, v)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .bind(*k)
                    .push(", ")
                    .bind(*v)
                    .push(", ")
                    .bind(*trace_id)
                    .push(")");
            }
            sql.push(&dialect.upsert_columns(&[key, "request_id"], &["value"]));
            sql
        })
        .collect()
}

/// Tags as the last value per key wins, in first-seen order.
pub(super) fn dedup_last(entries: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in entries {
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::traces::aggregate::TOKEN_KEYS;

    #[test]
    fn upserts_per_dialect() {
        let kv = kv_upsert(
            Dialect::Postgres,
            "trace_tags",
            "tr-1",
            &[("k".into(), "v".into())],
        )
        .unwrap();
        assert!(kv
            .text
            .ends_with(" ON CONFLICT (key, request_id) DO UPDATE SET value = excluded.value"));
        let kv = kv_upsert(
            Dialect::Mysql,
            "trace_tags",
            "tr-1",
            &[("k".into(), "v".into())],
        )
        .unwrap();
        assert!(kv
            .text
            .ends_with(" ON DUPLICATE KEY UPDATE value = VALUES(value)"));
        assert_eq!(TOKEN_KEYS[0], TOKEN_COLUMNS[0].0);
    }
}
