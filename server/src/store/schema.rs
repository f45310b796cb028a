//! Creating MLflow's schema on a fresh database, and refusing one at another revision.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use super::uri::{redact, StoreUri};
use super::{OpenError, Store};
use crate::store::sql::Dialect;

/// The alembic revision of MLflow 3.17.2, which this server reads and writes.
pub const MLFLOW_SCHEMA_REVISION: &str = "dc11669786a5";

const SQLITE_SCHEMA: &str = include_str!("schema/sqlite.sql");

/// The one addition to MLflow's schema, made only on databases this server creates: an index
/// in search-runs' default order, so a search over a large experiment reads only the rows it
/// returns instead of sorting the whole experiment. Indexes are invisible to MLflow's
/// revision check and to its queries' results, so the Python server still accepts the file.
const SEARCH_INDEX: &str = "CREATE INDEX IF NOT EXISTS rs_index_runs_experiment_start_time \
     ON runs (experiment_id, start_time DESC, run_uuid)";

/// What a database holds before we touch it.
enum Found {
    Empty,
    Revision(String),
    NotMlflow,
}

/// Inspects an existing SQLite file read-only, so a database we refuse stays byte-for-byte
/// unchanged (opening it for writing would already switch it to WAL mode).
pub async fn check_before_open(uri: &StoreUri) -> Result<(), OpenError> {
    let StoreUri::Sqlite {
        path,
        memory: false,
    } = uri
    else {
        return Ok(());
    };
    let exists = std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if !exists {
        return Ok(());
    }
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{path}?mode=ro"))
        .await?;
    let found = inspect(&pool, Dialect::Sqlite).await;
    pool.close().await;
    verdict(found?, &format!("sqlite:///{path}"))
}

/// Makes sure the store holds MLflow's schema at our revision, creating it when empty.
pub async fn ensure(store: &Store) -> Result<(), OpenError> {
    match inspect(&store.writer, store.dialect).await? {
        Found::Empty => create(store).await,
        other => verdict(other, "the backend store"),
    }
}

async fn inspect(pool: &AnyPool, dialect: Dialect) -> Result<Found, OpenError> {
    let tables_sql = match dialect {
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Dialect::Postgres => {
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        }
        Dialect::Mysql => {
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
    };
    let rows = sqlx::query(tables_sql).fetch_all(pool).await?;
    let tables: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect();
    if tables.is_empty() {
        return Ok(Found::Empty);
    }
    if !tables.iter().any(|t| t == "alembic_version") {
        return Ok(Found::NotMlflow);
    }
    let row = sqlx::query("SELECT version_num FROM alembic_version")
        .fetch_optional(pool)
        .await?;
    Ok(match row.and_then(|r| r.try_get::<String, _>(0).ok()) {
        Some(rev) => Found::Revision(rev),
        None => Found::NotMlflow,
    })
}

fn verdict(found: Found, what: &str) -> Result<(), OpenError> {
    let what = redact(what);
    match found {
        Found::Empty => Ok(()),
        Found::Revision(rev) if rev == MLFLOW_SCHEMA_REVISION => Ok(()),
        Found::Revision(rev) => Err(OpenError::Schema(format!(
            "The database {what} is at MLflow schema revision '{rev}', but this server reads and \
             writes revision '{MLFLOW_SCHEMA_REVISION}' (MLflow 3.17.2). The database was not \
             modified. Migrate it with MLflow 3.17.2 first (back it up, then run \
             `mlflow db upgrade <uri>` with the Python MLflow 3.17.2), or point \
             --backend-store-uri at another database."
        ))),
        Found::NotMlflow => Err(OpenError::Schema(format!(
            "The database {what} already holds tables but no MLflow schema (no alembic_version \
             row). The database was not modified. Point --backend-store-uri at an MLflow \
             database or an empty one."
        ))),
    }
}

async fn create(store: &Store) -> Result<(), OpenError> {
    if store.dialect != Dialect::Sqlite {
        return Err(OpenError::Schema(
            "Creating MLflow's schema on an empty PostgreSQL or MySQL database is not supported \
             yet: create it with `mlflow db upgrade <uri>` (MLflow 3.17.2)."
                .into(),
        ));
    }
    let mut tx = store.writer.begin().await?;
    sqlx::raw_sql(SQLITE_SCHEMA).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO alembic_version (version_num) VALUES (?)")
        .bind(MLFLOW_SCHEMA_REVISION)
        .execute(&mut *tx)
        .await?;
    sqlx::query(SEARCH_INDEX).execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(revision = MLFLOW_SCHEMA_REVISION, "created MLflow schema");
    Ok(())
}
