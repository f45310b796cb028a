//! Creating, reading, updating and deleting runs, and the checks every write makes first.

use sqlx::AnyConnection;

use super::{info_from_row, not_active, not_found, RunUpdate, RUN_COLUMNS, RUN_NAME_TAG};
use crate::error::{MlflowError, Result};
use crate::store::sql::{get_i64, get_str};
use crate::store::{now_ms, Store};
use crate::wire::{KeyValue, Run, RunInfo};

impl Store {
    /// Creates a run in an active experiment; the caller has settled name and tags.
    pub async fn create_run(
        &self,
        experiment_id: i64,
        user_id: &str,
        start_time: i64,
        run_name: &str,
        tags: &[KeyValue],
    ) -> Result<Run> {
        let exp = self.get_experiment(experiment_id).await?;
        if exp.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is \
                 {}.",
                exp.lifecycle_stage
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let artifact_uri = format!(
            "{}/{run_id}/artifacts",
            exp.artifact_location.trim_end_matches('/')
        );
        let artifact_uri = &artifact_uri;
        let run_id = &run_id;
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = self.sql();
                sql.push(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, \
                 user_id, status, start_time, end_time, source_version, lifecycle_stage, \
                 artifact_uri, experiment_id, deleted_time) VALUES (",
            )
            .bind(run_id)
            .push(", ")
            .bind(run_name)
            .push(", 'UNKNOWN', '', '', ")
            .bind(user_id)
            .push(", 'RUNNING', ")
            .bind(start_time)
            .push(", NULL, '', 'active', ")
            .bind(artifact_uri)
            .push(", ")
            .bind(experiment_id)
            .push(", NULL)");
                sql.query().execute(&mut *tx).await?;
                self.upsert_tags(&mut *tx, run_id, tags).await?;
                Ok(())
            })
        })
        .await?;
        self.get_run(run_id).await
    }

    pub(super) async fn fetch_info(&self, run_id: &str) -> Result<RunInfo> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(RUN_COLUMNS)
            .push(" FROM runs WHERE run_uuid = ")
            .bind(run_id);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| not_found(run_id))?;
        Ok(info_from_row(&row))
    }

    /// The run with its data; deleted runs are returned too, as MLflow does.
    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        let info = self.fetch_info(run_id).await?;
        let mut runs = self.load_runs(vec![info]).await?;
        Ok(runs.remove(0))
    }

    /// Fetches the run's info and checks it can be written to.
    /// Checks the run can be written to and returns its experiment id.
    pub(super) async fn active_run_in(
        &self,
        conn: &mut AnyConnection,
        run_id: &str,
    ) -> Result<i64> {
        let mut sql = self.sql();
        sql.push("SELECT lifecycle_stage, experiment_id FROM runs WHERE run_uuid = ")
            .bind(run_id);
        let row = sql
            .query()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_found(run_id))?;
        let stage = get_str(&row, "lifecycle_stage").unwrap_or_default();
        if stage != "active" {
            return Err(not_active(run_id, &stage));
        }
        Ok(get_i64(&row, "experiment_id").unwrap_or(0))
    }

    /// Applies runs/update and returns the new info.
    pub async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        let update = &update;
        self.write(|tx, _| {
            Box::pin(async move {
                self.active_run_in(&mut *tx, run_id).await?;
                let mut sql = self.sql();
                sql.push("UPDATE runs SET run_uuid = run_uuid");
                if let Some(status) = &update.status {
                    sql.push(", status = ").bind(status);
                }
                if let Some(end_time) = update.end_time {
                    sql.push(", end_time = ").bind(end_time);
                }
                if let Some(name) = &update.run_name {
                    sql.push(", name = ").bind(name);
                }
                sql.push(" WHERE run_uuid = ").bind(run_id);
                sql.query().execute(&mut *tx).await?;
                if let Some(name) = &update.run_name {
                    let tag = KeyValue {
                        key: RUN_NAME_TAG.into(),
                        value: name.clone(),
                    };
                    self.upsert_tags(&mut *tx, run_id, std::slice::from_ref(&tag))
                        .await?;
                }
                Ok(())
            })
        })
        .await?;
        self.fetch_info(run_id).await
    }

    /// Soft-deletes or restores a run.
    pub async fn set_run_lifecycle(&self, run_id: &str, stage: &str) -> Result<()> {
        self.fetch_info(run_id).await?;
        let deleted_time = if stage == "deleted" {
            Some(now_ms())
        } else {
            None
        };
        let mut sql = self.sql();
        sql.push("UPDATE runs SET lifecycle_stage = ")
            .bind(stage)
            .push(", deleted_time = ")
            .bind(deleted_time)
            .push(" WHERE run_uuid = ")
            .bind(run_id);
        self.write_statement(&sql).await?;
        Ok(())
    }

    /// Removes a run tag; a missing tag is an error, as in MLflow.
    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                self.active_run_in(&mut *tx, run_id).await?;
                let mut sql = self.sql();
                sql.push("DELETE FROM tags WHERE run_uuid = ")
                    .bind(run_id)
                    .push(&format!(" AND {} = ", self.dialect.key_col()))
                    .bind(key);
                let done = sql.query().execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(MlflowError::not_found(format!(
                        "No tag with name: {key} in run with id {run_id}"
                    )));
                }
                Ok(())
            })
        })
        .await
    }
}
