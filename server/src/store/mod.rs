//! The backend store: MLflow's own SQL schema, reached through sqlx.
//!
//! One implementation serves every dialect; [`sql`] holds the differences. For SQLite the
//! store keeps one writer connection (WAL mode, so readers never wait for it) and a pool
//! of readers, which is what keeps 64 concurrent clients free of "database is locked".
//! PostgreSQL and MySQL get one pool for both, sized by the caller or
//! `MLFLOW_SQLALCHEMYSTORE_POOL_SIZE`; several server processes may share the database, so
//! writes that lose a lock conflict are retried ([`retry_conflicts`]) and an unreachable
//! database answers 503 until the pool reconnects.

mod experiments;
mod group_commit;
mod logged_models;
mod registry;
mod runs;
mod schema;
mod search;
pub mod sql;
mod uri;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use crate::error::{ErrorCode, MlflowError};
use sql::{Dialect, Sql};
pub use uri::StoreUri;

pub use logged_models::{model_column, ModelOrder, NewLoggedModel};
pub use registry::NewModelVersion;
pub use runs::{Batch, NewDatasetInput, NewMetric, RunUpdate, RUN_NAME_TAG};
pub use schema::MLFLOW_SCHEMA_REVISION;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub uri: String,
    /// Root under which new experiments get their artifact location (`<root>/<id>`).
    pub default_artifact_root: String,
    /// Upper bound of pooled connections for readers (and all connections on servers).
    pub max_connections: u32,
    /// Connections to PostgreSQL/MySQL as the operator set them (`--db-pool-size`); ahead
    /// of the Python server's pool variables and of `max_connections`.
    pub pool_size: Option<u32>,
}

/// Errors opening the store; these stop the server before it listens.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    BadUri(String),
    #[error("{0}")]
    Schema(String),
    /// The database's own error, once (not repeated as a source chain).
    #[error("cannot open the backend store {uri}: {message}")]
    Database { uri: String, message: String },
}

impl From<sqlx::Error> for OpenError {
    fn from(err: sqlx::Error) -> Self {
        OpenError::Database {
            uri: String::new(),
            message: err.to_string(),
        }
    }
}

/// The tracking store.
#[derive(Clone)]
pub struct Store {
    dialect: Dialect,
    writer: AnyPool,
    reader: AnyPool,
    artifact_root: String,
    /// SQLite only: small writes are grouped into shared transactions.
    group_commit: Option<group_commit::GroupCommit>,
}

impl From<sqlx::Error> for MlflowError {
    fn from(err: sqlx::Error) -> Self {
        if is_conflict(&err) {
            return MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                format!("{CONFLICT}{err}"),
            );
        }
        if is_transient(&err) {
            tracing::warn!(error = %err, "backend store unavailable");
            return MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                format!("The backend store is temporarily unavailable: {err}"),
            );
        }
        if is_too_long(&err) {
            // SQLite keeps any length; PostgreSQL and MySQL enforce MLflow's column sizes.
            return MlflowError::invalid(format!("A value is too long for its field: {err}"));
        }
        tracing::error!(error = %err, "database error");
        MlflowError::internal(format!("Database error: {err}"))
    }
}

/// Message prefix of a transaction that lost a lock conflict (deadlock victim, serialization
/// failure, lock wait timeout): the store retries those itself, and the client may too.
const CONFLICT: &str = "Concurrent writes conflicted in the backend store; retry the request: ";

/// Whether a write failed only because of a lock conflict with another transaction.
pub(crate) fn is_conflict_error(err: &MlflowError) -> bool {
    err.code == ErrorCode::TemporarilyUnavailable && err.message.starts_with(CONFLICT)
}

/// Runs a whole write transaction again (a few times, with jittered backoff) when it lost a
/// lock conflict; the database rolled the loser back entirely, so nothing is applied twice.
pub(crate) async fn retry_conflicts<T, F, Fut>(mut op: F) -> Result<T, MlflowError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, MlflowError>>,
{
    let mut attempt: u64 = 0;
    loop {
        match op().await {
            Err(e) if attempt < 8 && is_conflict_error(&e) => {
                attempt += 1;
                let jitter = fastrand::u64(0..10 * attempt);
                tokio::time::sleep(Duration::from_millis(5 * attempt + jitter)).await;
            }
            other => return other,
        }
    }
}

/// The entries to write for a list of tags: the last value of each key wins, as with
/// sequential set-tag calls, in the order the keys last appeared.
pub(crate) fn last_per_key(tags: &[crate::wire::KeyValue]) -> Vec<&crate::wire::KeyValue> {
    let mut latest: Vec<&crate::wire::KeyValue> = Vec::new();
    for tag in tags {
        latest.retain(|t| t.key != tag.key);
        latest.push(tag);
    }
    latest
}

fn is_conflict(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(my.number(), 1213 | 1205);
    }
    matches!(db.code().as_deref(), Some("40001" | "40P01"))
}

/// Errors that say the database is (briefly) out of reach or overloaded, not that the
/// request is wrong: a restart, a lost connection, a deadlock victim or a statement timeout.
/// The client may retry these; the pool replaces broken connections by itself.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // MySQL/MariaDB error numbers: deadlock, lock wait timeout, server shutdown, too
            // many connections, statement time exceeded (MariaDB, MySQL), connection killed,
            // query interrupted.
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return matches!(
                    my.number(),
                    1213 | 1205 | 1053 | 1040 | 1969 | 3024 | 1927 | 1317
                );
            }
            // PostgreSQL SQLSTATEs: admin/crash shutdown, cannot connect now, serialization
            // failure, deadlock, statement timeout (query_canceled), too many connections.
            matches!(
                db.code().unwrap_or_default().as_ref(),
                "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "57014" | "53300"
            )
        }
        _ => false,
    }
}

/// A string longer than its column (PostgreSQL 22001, MySQL 1406 in strict mode).
fn is_too_long(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return my.number() == 1406;
    }
    db.code().as_deref() == Some("22001")
}

impl Store {
    /// Opens (and on first use creates) the store at `options.uri`.
    pub async fn open(options: &StoreOptions) -> Result<Self, OpenError> {
        Self::open_inner(options).await.map_err(|e| match e {
            OpenError::Database { message, .. } => OpenError::Database {
                uri: uri::redact(&options.uri),
                message,
            },
            other => other,
        })
    }

    async fn open_inner(options: &StoreOptions) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let uri = StoreUri::parse(&options.uri).map_err(OpenError::BadUri)?;
        schema::check_before_open(&uri).await?;
        let (writer, reader) = connect_pools(&uri, options).await?;
        let mut store = Store {
            dialect: uri.dialect(),
            writer,
            reader,
            artifact_root: options
                .default_artifact_root
                .trim_end_matches('/')
                .to_string(),
            group_commit: None,
        };
        schema::ensure(&store, &options.uri).await?;
        store.ensure_default_experiment().await.map_err(|e| {
            OpenError::Schema(format!(
                "cannot create the Default experiment: {}",
                e.message
            ))
        })?;
        // Every dialect: on SQLite it keeps one writer busy with few commits, on PostgreSQL
        // and MySQL it turns many concurrent small writes into few commits (each commit is
        // a flush to disk on the database server).
        store.group_commit = Some(group_commit::GroupCommit::start(store.clone()));
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn sql(&self) -> Sql {
        Sql::new(self.dialect)
    }

    /// Runs a read query on the reader pool.
    async fn fetch_all(&self, sql: &Sql) -> Result<Vec<AnyRow>, MlflowError> {
        Ok(sql.query().fetch_all(&self.reader).await?)
    }

    /// Runs a search query for one page: `max_results` rows from `offset`, fetching one row
    /// more to learn whether another page follows. Returns the page's rows mapped, and that.
    async fn fetch_page<T>(
        &self,
        mut sql: Sql,
        max_results: i64,
        offset: i64,
        map: impl Fn(&AnyRow) -> T,
    ) -> Result<(Vec<T>, bool), MlflowError> {
        sql.push(" LIMIT ")
            .bind(max_results + 1)
            .push(" OFFSET ")
            .bind(offset);
        let rows = self.fetch_all(&sql).await?;
        let has_more = rows.len() as i64 > max_results;
        let items = rows.iter().take(max_results as usize).map(map).collect();
        Ok((items, has_more))
    }

    async fn fetch_optional(&self, sql: &Sql) -> Result<Option<AnyRow>, MlflowError> {
        Ok(sql.query().fetch_optional(&self.reader).await?)
    }

    /// Closes every connection (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// The artifact location of a new experiment with id `id`.
    fn experiment_artifact_location(&self, id: i64) -> String {
        if self.artifact_root.is_empty() {
            id.to_string()
        } else {
            format!("{}/{id}", self.artifact_root)
        }
    }
}

async fn connect_pools(
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
                    Box::pin(async move {
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
                            if conn.execute(set.as_str()).await.is_err()
                                && dialect == Dialect::Mysql
                            {
                                let _ = conn
                                    .execute(
                                        format!("SET SESSION max_execution_time = {timeout_ms}")
                                            .as_str(),
                                    )
                                    .await;
                            }
                        }
                        Ok(())
                    })
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
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                // Negative: a size in KiB rather than in pages.
                conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
