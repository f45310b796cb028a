//! The backend store: MLflow's own SQL schema, reached through sqlx.
//!
//! One file or folder per aggregate: `experiments` (experiments and their tags), `runs/`
//! (runs, their data, inputs, metric histories and the search page), `logged_models`, and
//! `registry/` (registered models, versions, aliases), `traces/` (MLflow 3 traces and their
//! spans), `assessments`, `issues` (GenAI issues), the evaluation datasets (`datasets`,
//! `dataset_records`), and the registry's `webhooks`. Around them: `search/` compiles every
//! filter and ORDER BY, [`sql`] holds every difference between the databases, `tx` the write
//! transactions and their retry, `pool` the connections, `group_commit` the batching of
//! small writes, and `schema` the creation and check of MLflow's schema. This file opens the
//! store and holds the read helpers and [`Page`].
//!
//! One implementation serves every dialect. For SQLite the store keeps one writer
//! connection (WAL mode, so readers never wait for it) and a pool of readers, which is what
//! keeps 64 concurrent clients free of "database is locked".
//! PostgreSQL and MySQL get one pool for both, sized by the caller or
//! `MLFLOW_SQLALCHEMYSTORE_POOL_SIZE`; several server processes may share the database, so
//! writes that lose a lock conflict are retried ([`Store::write`]) and an unreachable
//! database answers 503 until the pool reconnects.

mod assessments;
mod dataset_records;
pub mod dataset_summaries;
mod datasets;
mod experiments;
mod gateway;
mod group_commit;
mod issues;
mod logged_models;
pub(crate) mod pool;
mod registry;
mod runs;
pub(crate) mod schema;
mod scorers;
mod search;
pub mod sql;
pub mod traces;
mod tx;
mod uri;
pub mod webhooks;

use sqlx::any::AnyRow;
use sqlx::AnyPool;

use crate::error::MlflowError;
use sql::{Dialect, Sql};
pub(crate) use tx::{is_conflict_error, write_with};
pub use uri::{redact as redact_uri, StoreUri};

pub use gateway::{new_gateway_id, new_secret_id, EndpointFields, NewSecret};
pub use logged_models::NewLoggedModel;
pub use registry::NewModelVersion;
pub use runs::{Batch, NewDatasetInput, NewMetric, RunUpdate, RUN_NAME_TAG};
pub use schema::MLFLOW_SCHEMA_REVISION;
pub use search::{model_column, DatasetFilter, ModelOrder};

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
        let (writer, reader) = pool::connect_pools(&uri, options).await?;
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

    /// Whether the database rejects a value longer than its column (PostgreSQL, MySQL): the
    /// service then checks widths first, so an oversize value is a 400, not a database error.
    /// SQLite keeps any length.
    pub fn enforces_column_widths(&self) -> bool {
        self.dialect.enforces_column_widths()
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

/// One page of a search.
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
