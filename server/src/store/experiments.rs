//! Experiments and their tags.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::search::{experiment_clause, experiment_order};
use super::sql::{get_i64, get_str, Sql};
use super::{now_ms, Page, Store};
use crate::domain::search::{Clause, OrderKey};
use crate::error::{ErrorCode, MlflowError, Result};
use crate::wire::{Experiment, KeyValue, ViewType};

const EXPERIMENT_COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn experiment_from_row(row: &AnyRow) -> Experiment {
    Experiment {
        experiment_id: get_i64(row, "experiment_id")
            .unwrap_or_default()
            .to_string(),
        name: get_str(row, "name").unwrap_or_default(),
        artifact_location: get_str(row, "artifact_location").unwrap_or_default(),
        lifecycle_stage: get_str(row, "lifecycle_stage").unwrap_or_else(|| "active".into()),
        creation_time: get_i64(row, "creation_time"),
        last_update_time: get_i64(row, "last_update_time"),
        tags: Vec::new(),
    }
}

impl Store {
    pub(super) async fn ensure_default_experiment(&self) -> Result<()> {
        let mut sql = self.sql();
        sql.push("SELECT COUNT(*) AS n FROM experiments");
        let count = self
            .fetch_optional(&sql)
            .await?
            .and_then(|r| get_i64(&r, "n"))
            .unwrap_or(0);
        if count > 0 {
            return Ok(());
        }
        let now = now_ms();
        let mut sql = self.sql();
        // Ignored when another server process starting on the same database won the race.
        sql.push(&self.dialect.insert_ignore(
            "experiments",
            "experiment_id, name, artifact_location, lifecycle_stage, creation_time, \
             last_update_time",
        ))
        .push("(")
        .bind(0i64)
        .push(", ")
        .bind("Default")
        .push(", ")
        .bind(self.experiment_artifact_location(0))
        .push(", 'active', ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(")")
        .push(self.dialect.insert_ignore_suffix());
        let mut conn = self.writer.acquire().await?;
        sql.insert_explicit_zero_id(&mut conn).await?;
        Ok(())
    }

    /// Creates an experiment; a name already used (even by a deleted one) is refused.
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<String>,
        tags: &[KeyValue],
    ) -> Result<String> {
        // Simultaneous creations can deadlock on MySQL's unique-index locks; the retried
        // loser then finds the name taken and answers RESOURCE_ALREADY_EXISTS.
        let artifact_location = &artifact_location;
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = self.sql();
                sql.push("SELECT experiment_id FROM experiments WHERE name = ")
                    .bind(name);
                if sql.query().fetch_optional(&mut *tx).await?.is_some() {
                    return Err(already_exists(name));
                }
                let now = now_ms();
                let mut sql = self.sql();
                sql.push(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, \
             last_update_time) VALUES (",
        )
        .bind(name)
        .push(", ")
        .bind(artifact_location.clone().unwrap_or_default())
        .push(", 'active', ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(")");
                let id = sql
                    .insert_returning_id("experiment_id", &mut *tx)
                    .await
                    .map_err(|e| unique_to_exists(e, name))?
                    .ok_or_else(|| MlflowError::internal("no experiment id was generated"))?;
                if artifact_location.is_none() {
                    let mut sql = self.sql();
                    sql.push("UPDATE experiments SET artifact_location = ")
                        .bind(self.experiment_artifact_location(id))
                        .push(" WHERE experiment_id = ")
                        .bind(id);
                    sql.query().execute(&mut *tx).await?;
                }
                for tag in tags {
                    let mut sql = self.sql();
                    sql.push("INSERT INTO experiment_tags (")
                        .push(self.dialect.key_col())
                        .push(", value, experiment_id) VALUES (")
                        .bind(&tag.key)
                        .push(", ")
                        .bind(&tag.value)
                        .push(", ")
                        .bind(id)
                        .push(")");
                    sql.query().execute(&mut *tx).await?;
                }
                Ok(id.to_string())
            })
        })
        .await
    }

    pub async fn get_experiment(&self, id: i64) -> Result<Experiment> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(EXPERIMENT_COLUMNS)
            .push(" FROM experiments WHERE experiment_id = ")
            .bind(id);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| MlflowError::not_found(format!("No Experiment with id={id} exists")))?;
        let mut exps = vec![experiment_from_row(&row)];
        self.attach_experiment_tags(&mut exps).await?;
        Ok(exps.remove(0))
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(EXPERIMENT_COLUMNS)
            .push(" FROM experiments WHERE name = ")
            .bind(name);
        let row = self.fetch_optional(&sql).await?.ok_or_else(|| {
            MlflowError::not_found(format!("Could not find experiment with name '{name}'"))
        })?;
        let mut exps = vec![experiment_from_row(&row)];
        self.attach_experiment_tags(&mut exps).await?;
        Ok(exps.remove(0))
    }

    async fn attach_experiment_tags(&self, exps: &mut [Experiment]) -> Result<()> {
        if exps.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = exps
            .iter()
            .filter_map(|e| e.experiment_id.parse().ok())
            .collect();
        let mut sql = self.sql();
        sql.push("SELECT experiment_id, ")
            .push(self.dialect.key_col())
            .push(", value FROM experiment_tags WHERE experiment_id IN ")
            .bind_list(ids);
        let mut by_id: HashMap<String, Vec<KeyValue>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            by_id
                .entry(
                    get_i64(&row, "experiment_id")
                        .unwrap_or_default()
                        .to_string(),
                )
                .or_default()
                .push(KeyValue {
                    key: get_str(&row, "key").unwrap_or_default(),
                    value: get_str(&row, "value").unwrap_or_default(),
                });
        }
        for exp in exps {
            if let Some(tags) = by_id.remove(&exp.experiment_id) {
                exp.tags = tags;
            }
        }
        Ok(())
    }

    /// Renames an active experiment.
    pub async fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()> {
        // Read before taking the writer: with an in-memory store both are one connection.
        let exp = self.get_experiment(id).await?;
        let exp = &exp;
        self.write(|tx, _| {
            Box::pin(async move {
                if exp.lifecycle_stage != "active" {
                    return Err(MlflowError::new(
                        ErrorCode::InvalidState,
                        "Cannot rename a non-active experiment.",
                    ));
                }
                let mut sql = self.sql();
                sql.push("SELECT experiment_id FROM experiments WHERE name = ")
                    .bind(new_name)
                    .push(" AND experiment_id <> ")
                    .bind(id);
                if sql.query().fetch_optional(&mut *tx).await?.is_some() {
                    return Err(already_exists(new_name));
                }
                let mut sql = self.sql();
                sql.push("UPDATE experiments SET name = ")
                    .bind(new_name)
                    .push(", last_update_time = ")
                    .bind(now_ms())
                    .push(" WHERE experiment_id = ")
                    .bind(id);
                sql.query()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique_to_exists(e, new_name))?;
                Ok(())
            })
        })
        .await
    }

    /// Soft-deletes or restores an experiment and, with it, its runs.
    pub async fn set_experiment_lifecycle(&self, id: i64, stage: &str) -> Result<()> {
        // Like MLflow: deleting looks among active experiments, restoring among deleted ones.
        let exp = self.get_experiment(id).await?;
        if exp.lifecycle_stage == stage {
            return Err(MlflowError::not_found(format!(
                "No Experiment with id={id} exists"
            )));
        }
        let now = now_ms();
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = self.sql();
                sql.push("UPDATE experiments SET lifecycle_stage = ")
                    .bind(stage)
                    .push(", last_update_time = ")
                    .bind(now)
                    .push(" WHERE experiment_id = ")
                    .bind(id);
                sql.query().execute(&mut *tx).await?;
                let deleted_time = if stage == "deleted" { Some(now) } else { None };
                let mut sql = self.sql();
                sql.push("UPDATE runs SET lifecycle_stage = ")
                    .bind(stage)
                    .push(", deleted_time = ")
                    .bind(deleted_time)
                    .push(" WHERE experiment_id = ")
                    .bind(id);
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn require_active_experiment(&self, id: i64) -> Result<Experiment> {
        let exp = self.get_experiment(id).await?;
        if exp.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!(
                "The experiment {id} must be in the 'active' state. Current state is {}.",
                exp.lifecycle_stage
            )));
        }
        Ok(exp)
    }

    /// Deletes one tag of an experiment (setting a tag deletes and inserts it).
    fn experiment_tag_delete(&self, id: i64, key: &str) -> Sql {
        let mut sql = self.sql();
        sql.push("DELETE FROM experiment_tags WHERE experiment_id = ")
            .bind(id)
            .push(" AND ")
            .push(self.dialect.key_col())
            .push(" = ")
            .bind(key);
        sql
    }

    pub async fn set_experiment_tag(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.require_active_experiment(id).await?;
        self.write(|tx, _| {
            Box::pin(async move {
                self.experiment_tag_delete(id, key)
                    .query()
                    .execute(&mut *tx)
                    .await?;
                let mut sql = self.sql();
                sql.push("INSERT INTO experiment_tags (")
                    .push(self.dialect.key_col())
                    .push(", value, experiment_id) VALUES (")
                    .bind(key)
                    .push(", ")
                    .bind(value)
                    .push(", ")
                    .bind(id)
                    .push(")");
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<()> {
        self.require_active_experiment(id).await?;
        let done = self
            .write_statement(&self.experiment_tag_delete(id, key))
            .await?;
        if done == 0 {
            return Err(MlflowError::not_found(format!(
                "No tag with name: {key} in experiment with id {id}"
            )));
        }
        Ok(())
    }

    /// Experiments matching `clauses`, ordered, one page from `offset`.
    pub async fn search_experiments(
        &self,
        view: ViewType,
        clauses: &[Clause],
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Experiment>> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(EXPERIMENT_COLUMNS)
            .push(" FROM experiments WHERE lifecycle_stage IN ")
            .bind_list(view.stages().iter().copied());
        for clause in clauses {
            sql.push(" AND ");
            experiment_clause(&mut sql, clause);
        }
        experiment_order(&mut sql, order);
        let (mut items, has_more) = self
            .fetch_page(sql, max_results, offset, experiment_from_row)
            .await?;
        self.attach_experiment_tags(&mut items).await?;
        Ok(Page { items, has_more })
    }

    /// All active experiments, for the seed's `GET /api/2.0/experiments`.
    pub async fn list_active_experiments(&self) -> Result<Vec<Experiment>> {
        let page = self
            .search_experiments(ViewType::ActiveOnly, &[], &[], i64::from(i32::MAX) - 1, 0)
            .await?;
        Ok(page.items)
    }
}

fn already_exists(name: &str) -> MlflowError {
    MlflowError::already_exists(format!("Experiment '{name}' already exists."))
}

/// A unique-key violation on the name means another request created it first.
fn unique_to_exists(err: sqlx::Error, name: &str) -> MlflowError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return already_exists(name);
        }
    }
    err.into()
}
