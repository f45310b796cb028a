//! Write transactions: how a database error maps to MLflow's errors, and the retry of a
//! transaction that lost a lock conflict.

use std::time::Duration;

use super::sql::{is_conflict, is_too_long, is_transient};
use super::Store;
use crate::error::{ErrorCode, MlflowError, Result};

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

impl Store {
    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`,
    /// waiting under the busy timeout), so a transaction never reads a snapshot that another
    /// process then outdates before its first write (SQLITE_BUSY_SNAPSHOT).
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.dialect.begin_write() {
            Some(begin) => self.writer.begin_with(begin).await?,
            None => self.writer.begin().await?,
        })
    }
}
