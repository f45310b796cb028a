//! Writing span batches from OTLP (MLflow's `log_spans`): a batch runs in one write
//! transaction and locks the trace rows it touches (`lock.rs`).

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use super::info_row::{insert_new_traces, insert_trace_ignore, trace_sets};
use super::lock::{lock_traces, Existing};
use super::{dedup_last, kv_upsert_many, ID_CHUNK};
use crate::domain::traces::aggregate::{aggregate, Node, TraceAggregate};
use crate::domain::traces::pyjson::PyValue;
use crate::domain::traces::span::{IncomingSpan, SpanRow};
use crate::domain::traces::{
    validate_tag, validate_trace_name, TraceInfo, CHAT_USAGE, LLM_COST, META_INFO_FINALIZED,
    META_USER, SPANS_IN_TRACKING_STORE, TAG_ARTIFACT_LOCATION, TAG_SPANS_LOCATION, TAG_TRACE_NAME,
};
use crate::error::{ErrorCode, MlflowError, Result};
use crate::store::sql::{get_str, Dialect, Sql};
use crate::store::Store;

/// A trace info to create (start-trace), already validated.
pub type NewTrace = TraceInfo;

/// The artifact location of a trace: `<experiment artifact location>/traces/<id>/artifacts`.
pub(super) fn trace_artifact_location(experiment_location: &str, trace_id: &str) -> String {
    format!(
        "{}/traces/{trace_id}/artifacts",
        experiment_location.trim_end_matches('/')
    )
}

pub(super) async fn experiment_location(
    conn: &mut AnyConnection,
    dialect: Dialect,
    experiment_id: i64,
    require_active: bool,
) -> Result<String> {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ")
        .bind(experiment_id);
    let row = sql
        .query()
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            MlflowError::not_found(format!("No Experiment with id={experiment_id} exists"))
        })?;
    let stage = get_str(&row, "lifecycle_stage").unwrap_or_default();
    if require_active && stage != "active" {
        return Err(MlflowError::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."
        )));
    }
    Ok(get_str(&row, "artifact_location").unwrap_or_default())
}

/// Raises the DB-backed payload generation of traces whose spans live in this store; a
/// trace whose spans moved elsewhere (archived) refuses new spans.
pub(super) async fn bump_generation(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ids: &[&str],
) -> Result<()> {
    let key = dialect.key_col();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = Sql::new(dialect);
        sql.push(
            "UPDATE trace_info SET db_payload_generation = db_payload_generation + 1 \
             WHERE request_id IN ",
        )
        .bind_list(chunk.iter().copied())
        .push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM trace_tags tt WHERE tt.request_id = trace_info.request_id \
             AND tt.{key} = "
        ))
        .bind(TAG_SPANS_LOCATION)
        .push(" AND tt.value <> ")
        .bind(SPANS_IN_TRACKING_STORE)
        .push(")");
        let done = sql.query().execute(&mut *conn).await?.rows_affected();
        if done < chunk.len() as u64 {
            return Err(MlflowError::new(
                ErrorCode::InvalidState,
                "Cannot write spans to traces that are no longer stored in the tracking store",
            ));
        }
    }
    Ok(())
}

const SPAN_COLUMNS: [&str; 15] = [
    "trace_id",
    "experiment_id",
    "span_id",
    "parent_span_id",
    "name",
    "type",
    "status",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "content",
    "input_cost",
    "output_cost",
    "total_cost",
    "model_name",
    "model_provider",
];

async fn upsert_spans(
    conn: &mut AnyConnection,
    dialect: Dialect,
    rows: &[(&SpanRow, i64)],
) -> Result<()> {
    let update: Vec<&str> = SPAN_COLUMNS
        .iter()
        .copied()
        .filter(|c| !matches!(*c, "trace_id" | "span_id"))
        .collect();
    for chunk in rows.chunks(100) {
        let mut sql = Sql::new(dialect);
        sql.push(&format!(
            "INSERT INTO spans ({}) VALUES ",
            SPAN_COLUMNS.join(", ")
        ));
        for (i, (r, exp)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(r.trace_id.as_str())
                .push(", ")
                .bind(*exp)
                .push(", ")
                .bind(r.span_id.as_str())
                .push(", ")
                .bind(r.parent_span_id.clone())
                .push(", ")
                .bind(r.name.as_str())
                .push(", ")
                .bind(r.span_type.clone())
                .push(", ")
                .bind(r.status)
                .push(", ")
                .bind(r.start_time_unix_nano)
                .push(", ")
                .bind(r.end_time_unix_nano)
                .push(", ")
                .bind(r.content.as_str())
                .push(", ");
            for cost in [r.input_cost, r.output_cost, r.total_cost] {
                match cost {
                    Some(c) => sql.bind(c),
                    None => sql.push("NULL"),
                };
                sql.push(", ");
            }
            sql.bind(r.model_name.clone())
                .push(", ")
                .bind(r.model_provider.clone())
                .push(")");
        }
        sql.push(&dialect.upsert_columns(&["trace_id", "span_id"], &update));
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Metadata keys present per trace among `keys`.
async fn metadata_present(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ids: &[&str],
    keys: &[&str],
) -> Result<HashSet<(String, String)>> {
    let key = dialect.key_col();
    let mut out = HashSet::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = Sql::new(dialect);
        sql.push(&format!(
            "SELECT request_id, {key} AS meta_key FROM trace_request_metadata WHERE request_id IN "
        ))
        .bind_list(chunk.iter().copied())
        .push(&format!(" AND {key} IN "))
        .bind_list(keys.iter().copied());
        for row in sql.query().fetch_all(&mut *conn).await? {
            out.insert((
                get_str(&row, "request_id").unwrap_or_default(),
                get_str(&row, "meta_key").unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// Usage and cost nodes of spans already stored for `ids`, except those in this batch.
async fn stored_nodes(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ids: &[&str],
    batch: &HashSet<(String, String)>,
) -> Result<HashMap<String, (Vec<Node>, Vec<Node>)>> {
    let mut out: HashMap<String, (Vec<Node>, Vec<Node>)> = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = Sql::new(dialect);
        sql.push("SELECT trace_id, span_id, parent_span_id, content FROM spans WHERE trace_id IN ")
            .bind_list(chunk.iter().copied());
        for row in sql.query().fetch_all(&mut *conn).await? {
            let trace = get_str(&row, "trace_id").unwrap_or_default();
            let span = get_str(&row, "span_id").unwrap_or_default();
            if batch.contains(&(trace.clone(), span.clone())) {
                continue;
            }
            let attrs: Vec<(String, String)> =
                PyValue::loads(&get_str(&row, "content").unwrap_or_default())
                    .and_then(|c| match c.get("attributes") {
                        Some(PyValue::Dict(d)) => Some(
                            d.iter()
                                .map(|(k, v)| {
                                    (
                                        k.clone(),
                                        v.as_str().map_or_else(|| v.dumps(false), str::to_string),
                                    )
                                })
                                .collect(),
                        ),
                        _ => None,
                    })
                    .unwrap_or_default();
            let parent = get_str(&row, "parent_span_id");
            let entry = out.entry(trace).or_default();
            entry
                .0
                .push(Node::new(&span, parent.as_deref(), &attrs, CHAT_USAGE));
            entry
                .1
                .push(Node::new(&span, parent.as_deref(), &attrs, LLM_COST));
        }
    }
    Ok(out)
}

pub(super) fn int_of(v: Option<&PyValue>) -> Option<i64> {
    match v? {
        PyValue::Int(i) => i64::try_from(*i).ok(),
        PyValue::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

pub(super) fn float_of(v: Option<&PyValue>) -> Option<f64> {
    match v? {
        PyValue::Int(i) => Some(*i as f64),
        PyValue::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

/// A validated span batch of one experiment, ready to write: its rows and what it says
/// about each trace it touches.
pub struct SpanBatch {
    pub experiment_id: i64,
    rows: Vec<SpanRow>,
    aggs: Vec<TraceAggregate>,
}

impl SpanBatch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl Store {
    /// Stores a batch of spans under `experiment_id` (for traces it creates), creating the
    /// traces they belong to and updating what the batch says about each trace.
    pub async fn log_spans(&self, experiment_id: i64, spans: &[IncomingSpan]) -> Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let rows: Vec<SpanRow> = spans.iter().map(IncomingSpan::to_row).collect();
        let aggs = aggregate(spans, &rows);
        for agg in &aggs {
            if let Some(s) = &agg.session_id {
                crate::domain::validation::check_length(
                    "Session ID",
                    s,
                    crate::domain::traces::aggregate::MAX_METADATA_VALUE_LENGTH,
                )?;
            }
            if let Some((_, name)) = agg.tags.iter().find(|(k, _)| k == TAG_TRACE_NAME) {
                validate_trace_name(name)?;
            }
        }
        let batch = SpanBatch {
            experiment_id,
            rows,
            aggs,
        };
        if let Some(queue) = &self.group_commit {
            return queue.submit_spans(batch).await;
        }
        let batches = [&batch];
        self.write(|tx, _| Box::pin(self.log_span_batches(tx, &batches)))
            .await
    }

    /// Writes span batches inside a transaction the caller owns. Batches of one experiment
    /// whose traces do not overlap are written together, as one batch: a group commit of
    /// many exporters' requests costs the statements of one.
    pub(in crate::store) async fn log_span_batches(
        &self,
        tx: &mut AnyConnection,
        batches: &[&SpanBatch],
    ) -> Result<()> {
        for merged in merge_disjoint(batches) {
            self.log_spans_once(&mut *tx, merged.experiment_id, &merged.rows, &merged.aggs)
                .await?;
        }
        Ok(())
    }

    async fn log_spans_once(
        &self,
        tx: &mut AnyConnection,
        experiment_id: i64,
        rows: &[&SpanRow],
        aggs: &[&TraceAggregate],
    ) -> Result<()> {
        let d = self.dialect;
        let mut ids: Vec<&str> = aggs.iter().map(|a| a.trace_id.as_str()).collect();
        ids.sort_unstable();
        let mut existing = lock_traces(&mut *tx, d, &ids).await?;
        let missing: Vec<&TraceAggregate> = aggs
            .iter()
            .copied()
            .filter(|a| !existing.contains_key(&a.trace_id))
            .collect();
        let mut created: HashSet<String> = HashSet::new();
        // Traces inserted with their final values: the update below skips them.
        let mut folded: HashSet<String> = HashSet::new();
        if !missing.is_empty() {
            let location = experiment_location(&mut *tx, d, experiment_id, false).await?;
            let mut sorted = missing;
            sorted.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
            if d == Dialect::Sqlite {
                // SQLite's writer is alone (BEGIN IMMEDIATE): every missing trace is created
                // here, with its final values in one statement instead of an insert and an
                // update per trace (a statement is a round trip to the driver's thread).
                insert_new_traces(&mut *tx, d, experiment_id, &sorted).await?;
                for agg in sorted {
                    created.insert(agg.trace_id.clone());
                    folded.insert(agg.trace_id.clone());
                    existing.insert(agg.trace_id.clone(), Existing::created(experiment_id, agg));
                }
            } else {
                for agg in sorted {
                    if insert_trace_ignore(&mut *tx, d, experiment_id, agg).await? {
                        created.insert(agg.trace_id.clone());
                        existing
                            .insert(agg.trace_id.clone(), Existing::created(experiment_id, agg));
                    }
                }
            }
            let locations: Vec<(&str, Vec<(String, String)>)> = ids
                .iter()
                .filter(|id| created.contains(**id))
                .map(|id| {
                    let tag = (
                        TAG_ARTIFACT_LOCATION.to_string(),
                        trace_artifact_location(&location, id),
                    );
                    (*id, vec![tag])
                })
                .collect();
            upsert_key_values(&mut *tx, d, "trace_tags", &locations).await?;
            // Rows another writer created meanwhile are locked now too (on SQLite, whose
            // writer is alone, every missing row was created here).
            if ids.iter().any(|id| !existing.contains_key(*id)) {
                existing = lock_traces(&mut *tx, d, &ids).await?;
            }
        }
        let span_rows: Vec<(&SpanRow, i64)> = rows
            .iter()
            .filter_map(|r| existing.get(&r.trace_id).map(|e| (*r, e.experiment_id)))
            .collect();
        upsert_spans(&mut *tx, d, &span_rows).await?;

        let meta = metadata_present(&mut *tx, d, &ids, &[META_INFO_FINALIZED, META_USER]).await?;
        let has = |id: &str, key: &str| meta.contains(&(id.to_string(), key.to_string()));
        let usage_or_session = |a: &TraceAggregate| {
            a.usage().is_some() || a.cost().is_some() || a.session_id.is_some()
        };
        let finalized: HashSet<&str> = aggs
            .iter()
            .filter(|a| usage_or_session(a) && has(&a.trace_id, META_INFO_FINALIZED))
            .map(|a| a.trace_id.as_str())
            .collect();
        let batch_keys: HashSet<(String, String)> = rows
            .iter()
            .map(|r| (r.trace_id.clone(), r.span_id.clone()))
            .collect();
        let recompute: Vec<&str> = aggs
            .iter()
            .filter(|a| !created.contains(&a.trace_id))
            .filter(|a| existing.contains_key(&a.trace_id))
            .filter(|a| a.usage().is_some() || a.cost().is_some())
            .map(|a| a.trace_id.as_str())
            .collect();
        let stored = stored_nodes(&mut *tx, d, &recompute, &batch_keys).await?;

        let mut sorted: Vec<&TraceAggregate> = aggs
            .iter()
            .copied()
            .filter(|a| existing.contains_key(&a.trace_id))
            .collect();
        sorted.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
        let mut users: Vec<(&str, Vec<(String, String)>)> = Vec::new();
        for agg in &sorted {
            if let Some(user) = agg
                .user_id
                .as_ref()
                .filter(|_| !has(&agg.trace_id, META_USER))
            {
                users.push((
                    agg.trace_id.as_str(),
                    vec![(META_USER.to_string(), user.clone())],
                ));
            }
            if folded.contains(&agg.trace_id) {
                continue;
            }
            let ex = &existing[&agg.trace_id];
            let is_final = finalized.contains(agg.trace_id.as_str());
            let fresh = created.contains(&agg.trace_id);
            let stored = stored.get(&agg.trace_id).cloned().unwrap_or_default();
            let (sets, new_ts) = trace_sets(agg, ex, is_final, fresh, stored);
            if !sets.is_empty() {
                let mut sql = Sql::new(d);
                sql.push("UPDATE trace_info SET ");
                for (i, (col, v)) in sets.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.push(col).push(" = ");
                    v.bind_to(&mut sql);
                }
                sql.push(" WHERE request_id = ").bind(agg.trace_id.as_str());
                sql.query().execute(&mut *tx).await?;
            }
            if new_ts < ex.timestamp_ms {
                let mut sql = Sql::new(d);
                sql.push("UPDATE assessments SET trace_timestamp_ms = ")
                    .bind(new_ts)
                    .push(" WHERE trace_id = ")
                    .bind(agg.trace_id.as_str());
                sql.query().execute(&mut *tx).await?;
            }
        }
        upsert_key_values(&mut *tx, d, "trace_request_metadata", &users).await?;
        let live: Vec<&str> = sorted.iter().map(|a| a.trace_id.as_str()).collect();
        bump_generation(&mut *tx, d, &live).await?;
        let mut all_tags: Vec<(&str, Vec<(String, String)>)> = Vec::with_capacity(sorted.len());
        for agg in &sorted {
            let mut tags = vec![(
                TAG_SPANS_LOCATION.to_string(),
                SPANS_IN_TRACKING_STORE.to_string(),
            )];
            // Resource attributes become tags (not the SDK's own, nor MLflow's namespace);
            // the root span's `mlflow.traceTag.*` attributes win over them.
            for (k, v) in &agg.resource {
                if k.starts_with("telemetry.sdk.") || k.starts_with("mlflow.") {
                    continue;
                }
                let text = match v {
                    PyValue::Str(s) => s.clone(),
                    other => other.dumps(true),
                };
                if let Ok(tag) = validate_tag(k, &text) {
                    tags.push(tag);
                }
            }
            for (k, v) in &agg.tags {
                if k != TAG_TRACE_NAME {
                    if let Ok(tag) = validate_tag(k, v) {
                        tags.push(tag);
                    }
                }
            }
            all_tags.push((agg.trace_id.as_str(), dedup_last(tags)));
        }
        upsert_key_values(&mut *tx, d, "trace_tags", &all_tags).await
    }
}

/// Writes the key/value rows (tags or metadata) of several traces in few statements.
async fn upsert_key_values(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &str,
    traces: &[(&str, Vec<(String, String)>)],
) -> Result<()> {
    let borrowed: Vec<(&str, &[(String, String)])> =
        traces.iter().map(|(id, kv)| (*id, kv.as_slice())).collect();
    for q in kv_upsert_many(dialect, table, &borrowed) {
        q.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Span batches written as one.
struct MergedSpans<'a> {
    experiment_id: i64,
    rows: Vec<&'a SpanRow>,
    aggs: Vec<&'a TraceAggregate>,
}

fn merge_disjoint<'a>(batches: &[&'a SpanBatch]) -> Vec<MergedSpans<'a>> {
    let keys: Vec<(i64, Vec<&str>)> = batches
        .iter()
        .map(|b| {
            let traces = b.aggs.iter().map(|a| a.trace_id.as_str()).collect();
            (b.experiment_id, traces)
        })
        .collect();
    merge_plan(&keys)
        .into_iter()
        .map(|members| MergedSpans {
            experiment_id: batches[members[0]].experiment_id,
            rows: members.iter().flat_map(|&i| &batches[i].rows).collect(),
            aggs: members.iter().flat_map(|&i| &batches[i].aggs).collect(),
        })
        .collect()
}

/// Which batches (given as experiment and trace ids) are written together, in arrival
/// order: a batch joins the one before it when both are for the same experiment and share
/// no trace (the writer sums up each trace once); otherwise it starts a new write, after
/// the earlier ones.
fn merge_plan(batches: &[(i64, Vec<&str>)]) -> Vec<Vec<usize>> {
    let mut plan: Vec<Vec<usize>> = Vec::new();
    let mut last: Option<(i64, HashSet<&str>)> = None;
    for (i, (experiment_id, traces)) in batches.iter().enumerate() {
        match (&mut last, plan.last_mut()) {
            (Some((exp, seen)), Some(members))
                if exp == experiment_id && traces.iter().all(|t| !seen.contains(t)) =>
            {
                seen.extend(traces.iter().copied());
                members.push(i);
            }
            _ => {
                last = Some((*experiment_id, traces.iter().copied().collect()));
                plan.push(vec![i]);
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::merge_plan;

    #[test]
    fn batches_merge_only_with_the_previous_write_of_their_experiment_and_no_shared_trace() {
        let plan = merge_plan(&[
            (1, vec!["a", "b"]),
            (1, vec!["c"]),
            // Shares `a`: written after the first two, not with them.
            (1, vec!["d", "a"]),
            (1, vec!["e"]),
            // Another experiment breaks the run, even for a later batch of experiment 1.
            (2, vec!["f"]),
            (1, vec!["g"]),
            // The same trace twice in one batch is the batch's own business.
            (1, vec!["h", "h"]),
        ]);
        assert_eq!(plan, vec![vec![0, 1], vec![2, 3], vec![4], vec![5, 6]]);
        assert!(merge_plan(&[]).is_empty());
    }
}
