//! Write transactions: how a database error maps to MLflow's errors, and [`write_with`], the
//! one path of every write, which begins, commits and retries on a lost lock conflict.

use std::marker::PhantomData;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};

use super::sql::{conflict, is_too_long, is_transient, Conflict, Dialect, Sql};
use super::Store;
use crate::error::{ErrorCode, MlflowError, Result};

impl From<sqlx::Error> for MlflowError {
    fn from(err: sqlx::Error) -> Self {
        if let Some(kind) = conflict(&err) {
            let prefix = match kind {
                Conflict::Lost => CONFLICT,
                Conflict::WaitedOut => LOCKED_OUT,
            };
            return MlflowError::new(ErrorCode::TemporarilyUnavailable, format!("{prefix}{err}"));
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

/// Message prefix of a transaction that lost a lock conflict at once (deadlock victim,
/// serialization failure, SQLite snapshot outdated): the store retries those itself, and the
/// client may too.
const CONFLICT: &str = "Concurrent writes conflicted in the backend store; retry the request: ";

/// Message prefix of a transaction that waited for a lock until a timeout (SQLite busy after
/// the busy timeout, MySQL lock wait timeout): the store retries it once only, since each
/// attempt may wait as long again.
const LOCKED_OUT: &str =
    "Concurrent writes kept the backend store locked past its timeout; retry the request: ";

/// Whether a write failed only because of a lock conflict with another transaction.
pub(crate) fn is_conflict_error(err: &MlflowError) -> bool {
    err.code == ErrorCode::TemporarilyUnavailable
        && (err.message.starts_with(CONFLICT) || err.message.starts_with(LOCKED_OUT))
}

/// Whether a write failed after waiting for a lock until a timeout.
fn is_locked_out_error(err: &MlflowError) -> bool {
    err.code == ErrorCode::TemporarilyUnavailable && err.message.starts_with(LOCKED_OUT)
}

/// Most attempts of one write transaction that keeps losing lock conflicts.
const MAX_ATTEMPTS: u64 = 9;

/// Most retries after a lock wait that ran into its timeout (30 s busy timeout on SQLite):
/// more would keep the client waiting minutes.
const MAX_WAITED_OUT_RETRIES: u64 = 1;

/// Ties the borrow of the transaction handed to a [`write_with`] op to the caller's borrows
/// (`'env: 'c`), so the op's future may capture the caller's references. The op ignores it.
pub(crate) type Scope<'c, 'env> = PhantomData<&'c &'env ()>;

/// Every write transaction, of the tracking store ([`Store::write`]) and of the auth store:
/// begins it on `writer` the one way ([`begin_on`]), runs `op` in it and commits. When it lost
/// a lock conflict (deadlock victim, serialization failure, lock wait timeout, SQLite busy)
/// the database rolled it back entirely, so it runs the whole op again, a few times with
/// jittered backoff (after a lock wait that ran into its timeout, once only); nothing is
/// applied twice. Any other error rolls the transaction back (by
/// drop) and is returned.
///
/// `op` must be repeatable: reads it depends on belong inside it, and reads on the reader
/// pool must stay outside it (for an in-memory store both pools are one connection).
pub(crate) async fn write_with<'env, T, F>(
    writer: &'env AnyPool,
    dialect: Dialect,
    mut op: F,
) -> Result<T>
where
    F: for<'c> FnMut(&'c mut AnyConnection, Scope<'c, 'env>) -> BoxFuture<'c, Result<T>>,
{
    let mut attempt: u64 = 1;
    let mut waited_out: u64 = 0;
    loop {
        let outcome = async {
            let mut tx = begin_on(writer, dialect).await?;
            let out = op(&mut tx, PhantomData).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        match outcome {
            Err(e) if attempt < MAX_ATTEMPTS && is_conflict_error(&e) => {
                if is_locked_out_error(&e) {
                    if waited_out >= MAX_WAITED_OUT_RETRIES {
                        return Err(e);
                    }
                    waited_out += 1;
                }
                let jitter = fastrand::u64(0..10 * attempt);
                tokio::time::sleep(Duration::from_millis(5 * attempt + jitter)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Begins a write transaction. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`, waiting under the busy timeout), so a transaction never reads a
/// snapshot that another process then outdates before its first write
/// (SQLITE_BUSY_SNAPSHOT). Only [`write_with`] and the group commit (which falls back to
/// [`Store::write`] for each of its writes) call it.
async fn begin_on(
    writer: &AnyPool,
    dialect: Dialect,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    Ok(match dialect.begin_write() {
        Some(begin) => writer.begin_with(begin).await?,
        None => writer.begin().await?,
    })
}

impl Store {
    /// Every write transaction of the store, through [`write_with`].
    pub(super) async fn write<'env, T, F>(&'env self, op: F) -> Result<T>
    where
        F: for<'c> FnMut(&'c mut AnyConnection, Scope<'c, 'env>) -> BoxFuture<'c, Result<T>>,
    {
        write_with(&self.writer, self.dialect, op).await
    }

    /// One write statement, through [`Store::write`]; returns the rows it affected.
    pub(super) async fn write_statement(&self, sql: &Sql) -> Result<u64> {
        self.write(|tx, _| {
            Box::pin(async move { Ok(sql.query().execute(tx).await?.rows_affected()) })
        })
        .await
    }

    /// A write transaction begun like every other, for the group commit, which answers a
    /// failed group write by write through [`Store::write`] instead of retrying it.
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        begin_on(&self.writer, self.dialect).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sqlx::{Connection, Executor, Row};

    use crate::store::{Store, StoreOptions};

    /// SQLite's busy timeout in these tests: each attempt behind a held lock waits this long.
    const BUSY: Duration = Duration::from_millis(200);

    /// A file store whose writer waits `BUSY` for a lock, and a second connection (another
    /// process, as far as SQLite knows) holding its write lock.
    async fn locked_store(name: &str) -> (Store, SqliteConnection, PathBuf) {
        let dir = std::env::temp_dir().join(format!("mlflow-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("m.db");
        let store = Store::open(&StoreOptions {
            uri: format!("sqlite:///{}", path.display()),
            default_artifact_root: "mlflow-artifacts:/".into(),
            max_connections: 2,
            pool_size: None,
        })
        .await
        .expect("open store");
        // The writer pool is one connection: a short busy timeout ends each attempt soon.
        (&store.writer)
            .execute(format!("PRAGMA busy_timeout = {}", BUSY.as_millis()).as_str())
            .await
            .expect("busy timeout");
        let mut other =
            SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
                .await
                .expect("second connection");
        other.execute("BEGIN IMMEDIATE").await.expect("write lock");
        (store, other, dir)
    }

    /// A write that waits out the busy timeout behind another process's write lock fails with
    /// SQLITE_BUSY, a conflict: `write` runs it again, and it lands once the lock is released
    /// during that second wait. Setting an experiment tag is a write that was not retried
    /// before every write went through `write`.
    #[tokio::test]
    async fn a_write_locked_out_past_the_busy_timeout_is_retried() {
        let (store, mut other, dir) = locked_store("write-retry").await;
        // Released during the second attempt: the first one has given up by then.
        let hold = BUSY + BUSY / 2;
        let started = Instant::now();
        let write = tokio::spawn({
            let store = store.clone();
            async move { store.set_experiment_tag(0, "k", "v").await }
        });
        tokio::time::sleep(hold).await;
        other.execute("ROLLBACK").await.expect("release");
        write
            .await
            .expect("join")
            .expect("the write is retried past the lock");
        assert!(started.elapsed() >= hold);

        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(value) AS value FROM experiment_tags \
             WHERE experiment_id = 0 AND key = 'k'",
        )
        .fetch_one(&store.reader)
        .await
        .expect("read tag");
        assert_eq!(row.get::<i64, _>("n"), 1);
        assert_eq!(row.get::<String, _>("value"), "v");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Each attempt behind a lock that is never released waits the whole busy timeout (30 s
    /// in production), so such a write is retried once, not up to `MAX_ATTEMPTS` times, and
    /// answers with the conflict.
    #[tokio::test]
    async fn a_write_locked_out_twice_gives_up() {
        let (store, mut other, dir) = locked_store("write-give-up").await;
        let started = Instant::now();
        let err = store
            .set_experiment_tag(0, "k", "v")
            .await
            .expect_err("the lock is never released");
        let waited = started.elapsed();
        assert!(super::is_conflict_error(&err), "{err:?}");
        // Two attempts wait 2 x BUSY; a third would wait 3 x BUSY.
        assert!(waited >= 2 * BUSY, "{waited:?}");
        assert!(waited < 3 * BUSY, "{waited:?}");
        other.execute("ROLLBACK").await.expect("release");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
