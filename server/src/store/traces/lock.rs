//! The row locking the two trace writers share: a span batch (`ingest.rs`) and a start-trace
//! (`start.rs`), which may arrive in either order, lock the `trace_info` rows they touch so
//! concurrent writes of one trace serialise.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::ID_CHUNK;
use crate::domain::traces::aggregate::TraceAggregate;
use crate::error::Result;
use crate::store::sql::{get_f64, get_i64, get_str, Dialect, Sql};

/// The locked state of one existing trace row.
pub(super) struct Existing {
    pub(super) experiment_id: i64,
    pub(super) timestamp_ms: i64,
    pub(super) execution_time_ms: Option<i64>,
    pub(super) status: String,
    pub(super) request_preview: Option<String>,
    pub(super) response_preview: Option<String>,
    pub(super) session_id: Option<String>,
    pub(super) has_tokens: bool,
    pub(super) has_costs: bool,
}

const LOCK_COLUMNS: &str = "request_id, experiment_id, timestamp_ms, execution_time_ms, status, \
     request_preview, response_preview, session_id, input_tokens, output_tokens, total_tokens, \
     cache_read_input_tokens, cache_creation_input_tokens, cache_creation_input_tokens_above_1hr, \
     input_cost, output_cost, total_cost";

impl Existing {
    /// The row this transaction has just inserted for `agg` (as `lock_traces` would read it).
    pub(super) fn created(experiment_id: i64, agg: &TraceAggregate) -> Existing {
        Existing {
            experiment_id,
            timestamp_ms: agg.min_start_ms,
            execution_time_ms: agg
                .max_end_ms
                .filter(|e| *e != 0)
                .map(|e| e - agg.min_start_ms),
            status: agg.state().to_string(),
            request_preview: None,
            response_preview: None,
            session_id: None,
            has_tokens: false,
            has_costs: false,
        }
    }
}

fn existing_from_row(row: &AnyRow) -> Existing {
    const TOKENS: [&str; 6] = [
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation_input_tokens_above_1hr",
    ];
    const COSTS: [&str; 3] = ["input_cost", "output_cost", "total_cost"];
    Existing {
        experiment_id: get_i64(row, "experiment_id").unwrap_or_default(),
        timestamp_ms: get_i64(row, "timestamp_ms").unwrap_or_default(),
        execution_time_ms: get_i64(row, "execution_time_ms"),
        status: get_str(row, "status").unwrap_or_default(),
        request_preview: get_str(row, "request_preview"),
        response_preview: get_str(row, "response_preview"),
        session_id: get_str(row, "session_id"),
        has_tokens: TOKENS.iter().any(|c| get_i64(row, *c).is_some()),
        has_costs: COSTS.iter().any(|c| get_f64(row, *c).is_some()),
    }
}

/// `trace_info` rows of `ids` that exist, locked for the rest of the transaction.
pub(super) async fn lock_traces(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ids: &[&str],
) -> Result<HashMap<String, Existing>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = Sql::new(dialect);
        sql.push("SELECT ")
            .push(LOCK_COLUMNS)
            .push(" FROM trace_info WHERE request_id IN ")
            .bind_list(chunk.iter().copied())
            .push(" ORDER BY request_id")
            .push(dialect.row_lock());
        for row in sql.query().fetch_all(&mut *conn).await? {
            out.insert(
                get_str(&row, "request_id").unwrap_or_default(),
                existing_from_row(&row),
            );
        }
    }
    Ok(out)
}
