//! The backend store: MLflow's own SQL schema, reached through sqlx.
//!
//! One implementation serves every dialect; [`sql`] holds the differences. For SQLite the
//! store keeps one writer connection (WAL mode, so readers never wait for it) and a pool
//! of readers, which is what keeps 64 concurrent clients free of "database is locked".

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
use sqlx::{AnyPool, Executor};

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
}

/// Errors opening the store; these stop the server before it listens.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    BadUri(String),
    #[error("{0}")]
    Schema(String),
    #[error("cannot open the backend store: {0}")]
    Database(#[from] sqlx::Error),
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
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                MlflowError::new(
                    ErrorCode::TemporarilyUnavailable,
                    format!("The backend store is temporarily unavailable: {err}"),
                )
            }
            _ => {
                tracing::error!(error = %err, "database error");
                MlflowError::internal(format!("Database error: {err}"))
            }
        }
    }
}

impl Store {
    /// Opens (and on first use creates) the store at `options.uri`.
    pub async fn open(options: &StoreOptions) -> Result<Self, OpenError> {
        sqlx::any::install_default_drivers();
        let uri = StoreUri::parse(&options.uri).map_err(OpenError::BadUri)?;
        schema::check_before_open(&uri).await?;
        let (writer, reader) = connect_pools(&uri, options.max_connections).await?;
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
        schema::ensure(&store).await?;
        store.ensure_default_experiment().await.map_err(|e| {
            OpenError::Schema(format!(
                "cannot create the Default experiment: {}",
                e.message
            ))
        })?;
        if store.dialect == Dialect::Sqlite {
            store.group_commit = Some(group_commit::GroupCommit::start(store.clone()));
        }
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

async fn connect_pools(uri: &StoreUri, max: u32) -> Result<(AnyPool, AnyPool), sqlx::Error> {
    let url = uri.sqlx_url();
    match uri {
        StoreUri::Sqlite { memory, .. } => {
            let writer = sqlite_pool(&url, 1).await?;
            // An in-memory database exists only inside its one connection.
            let reader = if *memory {
                writer.clone()
            } else {
                sqlite_pool(&url, max.max(2)).await?
            };
            Ok((writer, reader))
        }
        _ => {
            let pool = AnyPoolOptions::new()
                .max_connections(max.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
                .await?;
            Ok((pool.clone(), pool))
        }
    }
}

async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA busy_timeout = 30000").await?;
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
