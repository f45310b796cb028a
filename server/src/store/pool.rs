//! Connection pools: for SQLite one writer connection and a pool of readers, for
//! PostgreSQL and MySQL one pool for both, sized from the options or the Python server's
//! pool variables, with the timeouts that turn an outage into prompt 503s.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection};

use super::sql::session;
use super::{StoreOptions, StoreUri};

pub(crate) async fn connect_pools(
    uri: &StoreUri,
    options: &StoreOptions,
) -> Result<(AnyPool, AnyPool), sqlx::Error> {
    let url = uri.sqlx_url();
    let max = options.max_connections;
    match uri {
        StoreUri::Sqlite { memory, .. } => {
            let writer = sqlite_pool(&url, 1, WRITER_CACHE_KIB).await?;
            // An in-memory database exists only inside its one connection.
            let reader = if *memory {
                writer.clone()
            } else {
                sqlite_pool(&url, max.max(2), READER_CACHE_KIB).await?
            };
            Ok((writer, reader))
        }
        StoreUri::Postgres(_) | StoreUri::Mysql(_) => {
            // One direct connection first: a pool would report an unreachable server or a
            // refused login only as "pool timed out".
            AnyConnection::connect(&url).await?.close().await?;
            let dialect = uri.dialect();
            let timeout_ms = statement_timeout_ms();
            let pool = AnyPoolOptions::new()
                .max_connections(options.pool_size.unwrap_or_else(|| pool_size(max)))
                // A request waits this long for a connection, then answers 503.
                .acquire_timeout(acquire_timeout())
                // Checks a pooled connection before use, so after a database restart the first
                // request gets a fresh connection instead of the dead one's error.
                .test_before_acquire(true)
                .idle_timeout(Duration::from_secs(300))
                .after_connect(move |conn, _meta| {
                    Box::pin(async move { session::setup_server(conn, dialect, timeout_ms).await })
                })
                .connect(&url)
                .await?;
            Ok((pool.clone(), pool))
        }
    }
}

/// Connections per process on PostgreSQL/MySQL: `MLFLOW_SQLALCHEMYSTORE_POOL_SIZE` (the
/// Python server's setting, which MLflow users already size against their database's
/// connection limit) plus `MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW`, else what `--workers` gives.
fn pool_size(from_workers: u32) -> u32 {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    match env("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE") {
        Some(size) => (size + env("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW").unwrap_or(0)).max(1),
        None => from_workers.max(2),
    }
}

/// How long a request waits for a database connection before it answers 503
/// (`MLFLOW_DB_ACQUIRE_TIMEOUT`, seconds; default 10): during a database outage this is how
/// long clients wait for the answer.
fn acquire_timeout() -> Duration {
    std::env::var("MLFLOW_DB_ACQUIRE_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// Per-statement limit on PostgreSQL/MySQL (`MLFLOW_DB_STATEMENT_TIMEOUT`, seconds; 0 turns it
/// off), so one runaway search cannot hold a connection for ever.
fn statement_timeout_ms() -> u64 {
    std::env::var("MLFLOW_DB_STATEMENT_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(120_000, |s| (s.max(0.0) * 1000.0) as u64)
}

/// SQLite page cache per connection. Every reader keeps its own; the operating system's file
/// cache holds the database pages anyway, so readers keep little and the writer (which
/// walks the metric indexes on every insert) keeps SQLite's default.
const WRITER_CACHE_KIB: u32 = 2048;
const READER_CACHE_KIB: u32 = 512;

async fn sqlite_pool(url: &str, max: u32, cache_kib: u32) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |conn, _meta| {
            Box::pin(async move { session::setup_sqlite(conn, cache_kib).await })
        })
        .connect(url)
        .await
}
