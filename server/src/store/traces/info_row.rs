//! The `trace_info` values a span batch writes: what it changes on a trace it finds, and the
//! rows of traces it creates.

use sqlx::AnyConnection;

use super::ingest::{float_of, int_of};
use super::lock::Existing;
use super::{ID_CHUNK, TOKEN_COLUMNS};
use crate::domain::traces::aggregate::{cost_of, usage_of, Node, TraceAggregate};
use crate::domain::traces::TAG_TRACE_NAME;
use crate::error::Result;
use crate::store::sql::{Dialect, Sql};

/// The `trace_info` columns a batch sets on a trace (`ex` is its row before the batch) and
/// the trace's new start time.
pub(super) fn trace_sets(
    agg: &TraceAggregate,
    ex: &Existing,
    is_final: bool,
    fresh: bool,
    (stored_usage, stored_cost): (Vec<Node>, Vec<Node>),
) -> (Vec<(&'static str, SetValue)>, i64) {
    let mut sets: Vec<(&'static str, SetValue)> = Vec::new();
    let mut new_ts = ex.timestamp_ms;
    if !is_final {
        new_ts = ex.timestamp_ms.min(agg.min_start_ms);
        sets.push(("timestamp_ms", SetValue::I(Some(new_ts))));
        if let Some(max_end) = agg.max_end_ms {
            let old_end = ex.execution_time_ms.map(|e| ex.timestamp_ms + e);
            let end = match old_end {
                Some(o) if o > max_end => o,
                _ => max_end,
            };
            sets.push(("execution_time_ms", SetValue::I(Some(end - new_ts))));
        }
    }
    if matches!(ex.status.as_str(), "IN_PROGRESS" | "STATE_UNSPECIFIED") {
        if let Some(status) = agg.root_status {
            sets.push(("status", SetValue::S(Some(status.to_string()))));
        }
    }
    if ex.request_preview.is_none() && agg.request_preview.is_some() {
        sets.push(("request_preview", SetValue::S(agg.request_preview.clone())));
    }
    if ex.response_preview.is_none() && agg.response_preview.is_some() {
        sets.push((
            "response_preview",
            SetValue::S(agg.response_preview.clone()),
        ));
    }
    if let Some((_, name)) = agg.tags.iter().find(|(k, _)| k == TAG_TRACE_NAME) {
        sets.push(("trace_name", SetValue::S(Some(name.clone()))));
    }
    if agg.usage().is_some() && !(is_final && ex.has_tokens) {
        let usage = if fresh {
            agg.usage()
        } else {
            usage_of(&[agg.usage_nodes.clone(), stored_usage].concat())
        };
        if let Some(u) = usage {
            for (key, column) in TOKEN_COLUMNS {
                if let Some(v) = int_of(u.get(key)) {
                    sets.push((column, SetValue::I(Some(v))));
                }
            }
        }
    }
    if agg.cost().is_some() && !(is_final && ex.has_costs) {
        let cost = if fresh {
            agg.cost()
        } else {
            cost_of(&[agg.cost_nodes.clone(), stored_cost].concat())
        };
        if let Some(c) = cost {
            for key in ["input_cost", "output_cost", "total_cost"] {
                if let Some(v) = float_of(c.get(key)) {
                    sets.push((key, SetValue::F(v)));
                }
            }
        }
    }
    if ex.session_id.is_none() && agg.session_id.is_some() {
        sets.push(("session_id", SetValue::S(agg.session_id.clone())));
    }
    (sets, new_ts)
}

/// `trace_info` rows of new traces with the values the batch gives them, in one statement
/// (SQLite only: the rows are known to be absent). Columns a trace does not set are NULL,
/// as they would be after an insert of the first five alone.
pub(super) async fn insert_new_traces(
    conn: &mut AnyConnection,
    dialect: Dialect,
    experiment_id: i64,
    aggs: &[&TraceAggregate],
) -> Result<()> {
    let rows: Vec<Vec<(&'static str, SetValue)>> = aggs
        .iter()
        .map(|agg| {
            let ex = Existing::created(experiment_id, agg);
            let mut row = vec![
                ("timestamp_ms", SetValue::I(Some(ex.timestamp_ms))),
                ("execution_time_ms", SetValue::I(ex.execution_time_ms)),
                ("status", SetValue::S(Some(ex.status.clone()))),
            ];
            for (col, v) in trace_sets(agg, &ex, false, true, Default::default()).0 {
                match row.iter_mut().find(|(c, _)| *c == col) {
                    Some(slot) => slot.1 = v,
                    None => row.push((col, v)),
                }
            }
            row
        })
        .collect();
    let mut columns: Vec<&'static str> = Vec::new();
    for (col, _) in rows.iter().flatten() {
        if !columns.contains(col) {
            columns.push(col);
        }
    }
    for chunk in aggs.iter().zip(&rows).collect::<Vec<_>>().chunks(ID_CHUNK) {
        let mut sql = Sql::new(dialect);
        sql.push(&format!(
            "INSERT INTO trace_info (request_id, experiment_id, {}) VALUES ",
            columns.join(", ")
        ));
        for (i, (agg, row)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(agg.trace_id.as_str())
                .push(", ")
                .bind(experiment_id);
            for col in &columns {
                sql.push(", ");
                match row.iter().find(|(c, _)| c == col) {
                    Some((_, v)) => v.bind_to(&mut sql),
                    None => {
                        sql.push("NULL");
                    }
                }
            }
            sql.push(")");
        }
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts a new trace's row unless another writer has (PostgreSQL, MySQL); whether it did.
pub(super) async fn insert_trace_ignore(
    conn: &mut AnyConnection,
    d: Dialect,
    experiment_id: i64,
    agg: &TraceAggregate,
) -> Result<bool> {
    let ex = Existing::created(experiment_id, agg);
    let mut sql = Sql::new(d);
    sql.push(&d.insert_ignore(
        "trace_info",
        "request_id, experiment_id, timestamp_ms, execution_time_ms, status",
    ))
    .push("(")
    .bind(agg.trace_id.as_str())
    .push(", ")
    .bind(experiment_id)
    .push(", ")
    .bind(ex.timestamp_ms)
    .push(", ")
    .bind(ex.execution_time_ms)
    .push(", ")
    .bind(ex.status)
    .push(")")
    .push(d.insert_ignore_suffix());
    Ok(sql.query().execute(&mut *conn).await?.rows_affected() == 1)
}

/// A column value to bind.
pub(super) enum SetValue {
    I(Option<i64>),
    F(f64),
    S(Option<String>),
}

impl SetValue {
    pub(super) fn bind_to(&self, sql: &mut Sql) {
        match self {
            SetValue::I(i) => sql.bind(*i),
            SetValue::F(f) => sql.bind(*f),
            SetValue::S(s) => sql.bind(s.clone()),
        };
    }
}
