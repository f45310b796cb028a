//! How each database connection is set up when a pool opens it.

use sqlx::{AnyConnection, Executor};

use super::Dialect;

/// A SQLite connection: WAL (readers never wait for the writer), `synchronous = NORMAL`
/// (durable at checkpoints, never corrupt), a 30 s busy timeout, and `cache_kib` of page cache.
pub async fn setup_sqlite(conn: &mut AnyConnection, cache_kib: u32) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA busy_timeout = 30000").await?;
    // Negative: a size in KiB rather than in pages.
    conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
        .await?;
    Ok(())
}

/// A PostgreSQL or MySQL connection: custom plans on PostgreSQL, and the per-statement time
/// limit (`timeout_ms`, 0 for none).
pub async fn setup_server(
    conn: &mut AnyConnection,
    dialect: Dialect,
    timeout_ms: u64,
) -> Result<(), sqlx::Error> {
    if dialect == Dialect::Postgres {
        // Statements are prepared once per connection; after five runs
        // PostgreSQL may switch to a generic plan that guesses every
        // filter's selectivity (a search's metric and param values), which
        // made filtered searches several times slower. Plan each run with
        // its values, as the Python server's unprepared queries are.
        conn.execute("SET plan_cache_mode = force_custom_plan")
            .await?;
    }
    if timeout_ms > 0 {
        let set = match dialect {
            Dialect::Postgres => {
                format!("SET statement_timeout = {timeout_ms}")
            }
            // MariaDB counts seconds; MySQL has max_execution_time (ms,
            // SELECT only) instead: try one, then the other.
            _ => format!(
                "SET SESSION max_statement_time = {}",
                timeout_ms as f64 / 1000.0
            ),
        };
        if conn.execute(set.as_str()).await.is_err() && dialect == Dialect::Mysql {
            let _ = conn
                .execute(format!("SET SESSION max_execution_time = {timeout_ms}").as_str())
                .await;
        }
    }
    Ok(())
}
