//! The row locks of registry writes, always taken in one order (the registered model's row
//! before any version row's) so that concurrent writers queue instead of deadlocking.

use sqlx::AnyConnection;

use super::{mv_not_found, rm_not_found};
use crate::domain::registry::STAGE_DELETED_INTERNAL;
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Bumps the registered model's `last_updated_time`. Every registry write that touches
    /// versions does this first, so the model's row lock is always taken before any version
    /// row's: one lock order, no deadlock between writers.
    pub(super) async fn touch_registered_model(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        now: i64,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push("UPDATE registered_models SET last_updated_time = ")
            .bind(now)
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(name);
        sql.query().execute(&mut *conn).await?;
        Ok(())
    }

    /// Locks the registered model's row for the rest of the transaction (bumping its
    /// `last_updated_time`; a write first, so SQLite takes its write lock before reading),
    /// or fails with RESOURCE_DOES_NOT_EXIST.
    pub(super) async fn lock_registered_model(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        now: i64,
    ) -> Result<()> {
        self.touch_registered_model(conn, name, now).await?;
        let mut sql = self.sql();
        sql.push("SELECT name FROM registered_models WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(self.dialect.row_lock());
        match sql.query().fetch_optional(&mut *conn).await? {
            Some(_) => Ok(()),
            None => Err(rm_not_found(name)),
        }
    }

    /// Locks a live version row, or fails with RESOURCE_DOES_NOT_EXIST.
    pub(super) async fn lock_live_version(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push("SELECT version FROM model_versions WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND version = ")
            .bind(version)
            .push(" AND current_stage <> ")
            .bind(STAGE_DELETED_INTERNAL)
            .push(self.dialect.row_lock());
        match sql.query().fetch_optional(&mut *conn).await? {
            Some(_) => Ok(()),
            None => Err(mv_not_found(name, version)),
        }
    }
}
