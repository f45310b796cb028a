//! Creating MLflow's schema on a fresh database, and refusing one at another revision.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Row};

use super::uri::{redact, StoreUri};
use super::{OpenError, Store};
use crate::store::sql::Dialect;

/// The alembic revision of MLflow 3.17.2, which this server reads and writes.
pub const MLFLOW_SCHEMA_REVISION: &str = "dc11669786a5";

const SQLITE_SCHEMA: &str = include_str!("schema/sqlite.sql");
/// `mlflow db upgrade` on PostgreSQL and MariaDB, dumped and cleaned by tests/db/dump-schema.py;
/// statements are separated by blank lines.
const POSTGRES_SCHEMA: &str = include_str!("schema/postgres.sql");
const MYSQL_SCHEMA: &str = include_str!("schema/mysql.sql");

/// The one addition to MLflow's schema, made only on databases this server creates: an index
/// in search-runs' default order, so a search over a large experiment reads only the rows it
/// returns instead of sorting the whole experiment. Indexes are invisible to MLflow's
/// revision check and to its queries' results, so the Python server still accepts the file.
const SEARCH_INDEX: &str = "CREATE INDEX rs_index_runs_experiment_start_time \
     ON runs (experiment_id, start_time DESC, run_uuid)";

/// PostgreSQL advisory-lock key (advisory locks are per database) that serialises schema
/// creation between server processes starting at once on one empty database; MySQL takes a
/// named lock that includes the database name instead.
const SCHEMA_LOCK_KEY: i64 = 0x6d6c_666c_6f77;

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
/// `uri` names the database in messages (its password is redacted there).
pub async fn ensure(store: &Store, uri: &str) -> Result<(), OpenError> {
    if store.dialect != Dialect::Sqlite {
        // Inspected under a lock, as other server processes may be creating it right now.
        return create(store, uri).await;
    }
    match inspect(&store.writer, store.dialect).await? {
        Found::Empty => create(store, uri).await,
        other => verdict(other, uri),
    }
}

async fn inspect(pool: &AnyPool, dialect: Dialect) -> Result<Found, OpenError> {
    let mut conn = pool.acquire().await?;
    inspect_conn(&mut conn, dialect).await
}

/// The names of the tables in the connection's database (schema on PostgreSQL).
pub(crate) async fn table_names(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<Vec<String>, sqlx::Error> {
    let tables_sql = match dialect {
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Dialect::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
        Dialect::Mysql => {
            "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
             WHERE table_schema = DATABASE()"
        }
    };
    let rows = sqlx::query(tables_sql).fetch_all(&mut *conn).await?;
    // A name that fails to decode must not make a full database look empty.
    rows.iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<Vec<String>, _>>()
}

async fn inspect_conn(conn: &mut AnyConnection, dialect: Dialect) -> Result<Found, OpenError> {
    let tables = table_names(conn, dialect).await?;
    if tables.is_empty() {
        return Ok(Found::Empty);
    }
    if !tables.iter().any(|t| t == "alembic_version") {
        return Ok(Found::NotMlflow);
    }
    let row = sqlx::query("SELECT version_num FROM alembic_version")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(
        match row.and_then(|r| r.try_get::<String, _>("version_num").ok()) {
            Some(rev) => Found::Revision(rev),
            None => Found::NotMlflow,
        },
    )
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

async fn create(store: &Store, uri: &str) -> Result<(), OpenError> {
    match store.dialect {
        Dialect::Sqlite => {
            let mut tx = store.writer.begin().await?;
            sqlx::raw_sql(SQLITE_SCHEMA).execute(&mut *tx).await?;
            insert_revision(&mut tx, "?").await?;
            sqlx::query(SEARCH_INDEX).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        // PostgreSQL's DDL is transactional: a failure leaves the database empty. The advisory
        // lock makes a second server starting at the same moment wait, then find the schema.
        Dialect::Postgres => {
            let mut tx = store.writer.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(SCHEMA_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
            match inspect_conn(&mut tx, Dialect::Postgres).await? {
                Found::Empty => {}
                other => return verdict(other, uri),
            }
            for stmt in statements(POSTGRES_SCHEMA) {
                sqlx::raw_sql(stmt).execute(&mut *tx).await?;
            }
            insert_revision(&mut tx, "$1").await?;
            sqlx::query(SEARCH_INDEX).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        // MySQL commits each DDL statement by itself; the revision row goes in last, so a
        // failure part-way leaves a database without it, which is then refused as not MLflow's.
        Dialect::Mysql => {
            let mut conn = store.writer.acquire().await?;
            sqlx::query("SELECT GET_LOCK(LEFT(CONCAT(?, DATABASE()), 64), 120)")
                .bind("mlflow-schema-")
                .execute(&mut *conn)
                .await?;
            let result = async {
                match inspect_conn(&mut conn, Dialect::Mysql).await? {
                    Found::Empty => {}
                    other => return verdict(other, uri),
                }
                for stmt in statements(MYSQL_SCHEMA) {
                    sqlx::raw_sql(stmt).execute(&mut *conn).await?;
                }
                sqlx::query(SEARCH_INDEX).execute(&mut *conn).await?;
                insert_revision(&mut conn, "?").await?;
                tracing::info!(revision = MLFLOW_SCHEMA_REVISION, "created MLflow schema");
                Ok(())
            }
            .await;
            // The schema file turns foreign-key checks off while it runs; a failure part-way
            // must not hand that setting on with the pooled connection.
            sqlx::query("SET FOREIGN_KEY_CHECKS = 1")
                .execute(&mut *conn)
                .await?;
            sqlx::query("SELECT RELEASE_LOCK(LEFT(CONCAT(?, DATABASE()), 64))")
                .bind("mlflow-schema-")
                .execute(&mut *conn)
                .await?;
            return result;
        }
    }
    tracing::info!(revision = MLFLOW_SCHEMA_REVISION, "created MLflow schema");
    Ok(())
}

async fn insert_revision(conn: &mut AnyConnection, placeholder: &str) -> Result<(), OpenError> {
    sqlx::query(&format!(
        "INSERT INTO alembic_version (version_num) VALUES ({placeholder})"
    ))
    .bind(MLFLOW_SCHEMA_REVISION)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The statements of a dumped schema file: blank-line separated, header comments skipped.
fn statements(schema: &str) -> impl Iterator<Item = &str> {
    schema
        .split("\n\n")
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.lines().all(|l| l.starts_with("--")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumped_schemas_split_into_statements() {
        for schema in [POSTGRES_SCHEMA, MYSQL_SCHEMA] {
            let stmts: Vec<&str> = statements(schema).collect();
            assert!(stmts.len() > 60, "{}", stmts.len());
            assert!(stmts.iter().all(|s| s.ends_with(';')));
            assert!(stmts.iter().all(|s| !s.starts_with("--")));
            assert_eq!(
                stmts
                    .iter()
                    .filter(|s| s.starts_with("CREATE TABLE"))
                    .count(),
                65
            );
        }
    }
}
