//! Model versions: create (numbering under the registered model's lock), read, update,
//! stage transitions, soft delete, their tags, and search.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{
    mv_from_row, mv_not_found, version_number, NewModelVersion, CREATE_VERSION_ATTEMPTS,
    MV_COLUMNS, TAG_LOOKUP_CHUNK,
};
use crate::domain::registry::STAGE_DELETED_INTERNAL;
use crate::domain::search::{Clause, OrderKey};
use crate::error::{ErrorCode, MlflowError, Result};
use crate::store::search::{push_order_by, push_registry_filter, RegistryTable};
use crate::store::sql::{get_i64, get_str, is_unique_violation};
use crate::store::{now_ms, Page, Store};
use crate::wire::registry::ModelVersion;
use crate::wire::KeyValue;

impl Store {
    /// For each model, the highest non-deleted version in each stage, by version.
    pub(super) async fn latest_versions_of(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, Vec<ModelVersion>>> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.workspace = 'default' AND mv.name IN "
        ))
        .bind_list(names.iter())
        .push(" AND mv.current_stage <> ")
        .bind(STAGE_DELETED_INTERNAL)
        .push(
            " AND NOT EXISTS (SELECT 1 FROM model_versions o WHERE o.workspace = mv.workspace AND o.name = mv.name AND \
                 o.current_stage = mv.current_stage AND o.version > mv.version) \
                 ORDER BY mv.name, mv.version",
        );
        let rows = self.fetch_all(&sql).await?;
        let versions: Vec<ModelVersion> = rows.iter().map(|r| mv_from_row(r).0).collect();
        let versions = self.attach_mv_tags(versions).await?;
        let mut out: HashMap<String, Vec<ModelVersion>> = HashMap::new();
        for mv in versions {
            out.entry(mv.name.clone()).or_default().push(mv);
        }
        Ok(out)
    }

    // ---- model versions ----

    /// Creates the next version of `new.name`. The number is computed inside the write
    /// transaction after the registered model's row is locked (the `last_updated_time`
    /// update), so concurrent creators — also in other server processes — queue up instead
    /// of reading the same maximum; the primary key backs this up with a retry.
    pub async fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion> {
        for attempt in 1..=CREATE_VERSION_ATTEMPTS {
            // A lost lock conflict (a deadlock victim) is run again by `write`; a number that
            // another writer took first, here.
            match self
                .write(|tx, _| Box::pin(self.insert_next_version(tx, new)))
                .await
            {
                Ok(version) => return self.get_model_version(&new.name, version).await,
                Err(e) if is_version_taken(&e) => {
                    tracing::info!(name = %new.name, attempt, "model version number taken; retrying");
                }
                Err(e) => return Err(e),
            }
        }
        Err(MlflowError::internal(format!(
            "Model Version creation error (name={}). Giving up after {CREATE_VERSION_ATTEMPTS} \
             attempts.",
            new.name
        )))
    }

    /// Inserts the next version of `new.name` in the caller's transaction; returns its number.
    async fn insert_next_version(
        &self,
        tx: &mut AnyConnection,
        new: &NewModelVersion,
    ) -> Result<i64> {
        let now = now_ms();
        // The update takes the row lock (the write lock on SQLite) before anything is read.
        self.lock_registered_model(tx, &new.name, now).await?;
        let mut sql = self.sql();
        sql.push("SELECT MAX(version) AS max_version FROM model_versions WHERE workspace = 'default' AND name = ")
            .bind(&new.name);
        // A locking read where only that sees the latest committed rows (MySQL).
        sql.push(self.dialect.read_latest());
        let row = sql.query().fetch_one(&mut *tx).await?;
        let version = get_i64(&row, "max_version").unwrap_or(0) + 1;
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, \
             description, user_id, current_stage, source, run_id, status, status_message, \
             run_link, storage_location, workspace) VALUES (",
        )
        .bind(&new.name)
        .push(", ")
        .bind(version)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(&new.description)
        .push(", NULL, 'None', ")
        .bind(&new.source)
        .push(", ")
        .bind(new.run_id.clone())
        .push(", 'READY', NULL, ")
        .bind(&new.run_link)
        .push(", ")
        .bind(&new.storage_location)
        .push(", 'default')");
        if let Err(err) = sql.query().execute(&mut *tx).await {
            return Err(if is_unique_violation(&err) {
                version_taken(&new.name, version)
            } else {
                err.into()
            });
        }
        self.put_mv_tags(tx, &new.name, version, &new.tags).await?;
        Ok(version)
    }

    async fn put_mv_tags(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
        tags: &[KeyValue],
    ) -> Result<()> {
        let key = self.dialect.key_col();
        let latest = crate::store::last_per_key(tags);
        for tag in latest {
            let mut sql = self.sql();
            sql.push(&format!(
                "INSERT INTO model_version_tags ({key}, value, name, version, workspace) VALUES ("
            ))
            .bind(&tag.key)
            .push(", ")
            .bind(&tag.value)
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(version)
            .push(", 'default')")
            .push(
                &self
                    .dialect
                    .upsert(&format!("workspace, {key}, name, version"), "value"),
            );
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The non-deleted version row and its storage location.
    async fn fetch_mv(&self, name: &str, version: i64) -> Result<(ModelVersion, Option<String>)> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.workspace = 'default' AND mv.name = "
        ))
        .bind(name)
        .push(" AND mv.version = ")
        .bind(version)
        .push(" AND mv.current_stage <> ")
        .bind(STAGE_DELETED_INTERNAL);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| mv_not_found(name, version))?;
        Ok(mv_from_row(&row))
    }

    /// A version with its tags and aliases.
    pub async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let (mv, _) = self.fetch_mv(name, version).await?;
        let mut mvs = self.attach_mv_tags(vec![mv]).await?;
        self.attach_mv_aliases(&mut mvs).await?;
        Ok(mvs.remove(0))
    }

    async fn attach_mv_tags(&self, mut mvs: Vec<ModelVersion>) -> Result<Vec<ModelVersion>> {
        if mvs.is_empty() {
            return Ok(mvs);
        }
        let mut names: Vec<&str> = mvs.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let key = self.dialect.key_col();
        let mut tags: HashMap<(String, i64), Vec<KeyValue>> = HashMap::new();
        // One version: only its own tags. Many: by name, in chunks that stay well below
        // every dialect's limit on bound parameters.
        let single = (mvs.len() == 1).then(|| version_number(&mvs[0]));
        for chunk in names.chunks(TAG_LOOKUP_CHUNK) {
            let mut sql = self.sql();
            sql.push(&format!(
                "SELECT name, version, {key}, value FROM model_version_tags WHERE \
                 workspace = 'default' AND name IN "
            ))
            .bind_list(chunk.iter().copied());
            if let Some(version) = single {
                sql.push(" AND version = ").bind(version);
            }
            sql.push(&format!(" ORDER BY name, version, {key}"));
            for row in self.fetch_all(&sql).await? {
                tags.entry((
                    get_str(&row, "name").unwrap_or_default(),
                    get_i64(&row, "version").unwrap_or(0),
                ))
                .or_default()
                .push(KeyValue {
                    key: get_str(&row, "key").unwrap_or_default(),
                    value: get_str(&row, "value").unwrap_or_default(),
                });
            }
        }
        for mv in &mut mvs {
            let id = (mv.name.clone(), version_number(mv));
            mv.tags = tags.remove(&id).unwrap_or_default();
        }
        Ok(mvs)
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        self.fetch_mv(name, version).await?;
        let mut sql = self.sql();
        sql.push("UPDATE model_versions SET description = ")
            .bind(description.map(str::to_string))
            .push(", last_updated_time = ")
            .bind(now_ms())
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND version = ")
            .bind(version);
        self.write_statement(&sql).await?;
        self.get_model_version(name, version).await
    }

    /// Moves a version to `stage` (canonical); with `archive_existing`, every other version
    /// in that stage moves to `Archived` in the same transaction.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        self.transition_stage_rows(name, version, stage, archive_existing)
            .await?;
        self.get_model_version(name, version).await
    }

    async fn transition_stage_rows(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> Result<()> {
        let now = now_ms();
        self.write(|tx, _| {
            Box::pin(async move {
                self.touch_registered_model(&mut *tx, name, now).await?;
                self.lock_live_version(&mut *tx, name, version).await?;
                if archive_existing {
                    let mut sql = self.sql();
                    sql.push("UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ")
                        .bind(now)
                        .push(" WHERE workspace = 'default' AND name = ")
                        .bind(name)
                        .push(" AND version <> ")
                        .bind(version)
                        .push(" AND current_stage = ")
                        .bind(stage);
                    sql.query().execute(&mut *tx).await?;
                }
                self.set_version_stage(&mut *tx, name, version, stage, now, "")
                    .await
            })
        })
        .await
    }

    /// Sets one version's stage as of `now`, with `also` (further `, column = value`
    /// assignments) in the same statement.
    async fn set_version_stage(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
        stage: &str,
        now: i64,
        also: &str,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push("UPDATE model_versions SET current_stage = ")
            .bind(stage)
            .push(", last_updated_time = ")
            .bind(now)
            .push(also)
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND version = ")
            .bind(version);
        sql.query().execute(conn).await?;
        Ok(())
    }

    /// MLflow's soft delete: the row stays (its number is never reused) with its stage set
    /// to `Deleted_Internal` and its identifying fields redacted; its aliases go.
    pub async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        let now = now_ms();
        self.write(|tx, _| {
            Box::pin(async move {
                self.touch_registered_model(&mut *tx, name, now).await?;
                self.lock_live_version(&mut *tx, name, version).await?;
                let mut sql = self.sql();
                sql.push(
                    "DELETE FROM registered_model_aliases WHERE workspace = 'default' AND name = ",
                )
                .bind(name)
                .push(" AND version = ")
                .bind(version);
                sql.query().execute(&mut *tx).await?;
                const REDACTED: &str = ", description = NULL, user_id = NULL, \
                     source = 'REDACTED-SOURCE-PATH', run_id = 'REDACTED-RUN-ID', \
                     run_link = 'REDACTED-RUN-LINK', status_message = NULL";
                self.set_version_stage(
                    &mut *tx,
                    name,
                    version,
                    STAGE_DELETED_INTERNAL,
                    now,
                    REDACTED,
                )
                .await
            })
        })
        .await
    }

    /// Where a version's files are: its storage location, else its source.
    pub async fn get_model_version_download_uri(&self, name: &str, version: i64) -> Result<String> {
        let (mv, storage) = self.fetch_mv(name, version).await?;
        Ok(storage
            .filter(|s| !s.is_empty())
            .or(mv.source)
            .unwrap_or_default())
    }

    /// For each requested (canonical) stage, the highest version in it, with aliases.
    pub async fn get_latest_versions(
        &self,
        name: &str,
        stages: &[&str],
    ) -> Result<Vec<ModelVersion>> {
        self.check_registered_model(name).await?;
        let mut latest = self
            .latest_versions_of(&[name.to_string()])
            .await?
            .remove(name)
            .unwrap_or_default();
        latest.retain(|mv| {
            mv.current_stage
                .as_deref()
                .is_some_and(|s| stages.contains(&s))
        });
        self.attach_mv_aliases(&mut latest).await?;
        Ok(latest)
    }

    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        tag: &KeyValue,
    ) -> Result<()> {
        self.fetch_mv(name, version).await?;
        self.write(|tx, _| {
            Box::pin(async move {
                self.put_mv_tags(&mut *tx, name, version, std::slice::from_ref(tag))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
    ) -> Result<()> {
        self.fetch_mv(name, version).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM model_version_tags WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND version = ")
            .bind(version)
            .push(&format!(" AND {} = ", self.dialect.key_col()))
            .bind(key);
        self.write_statement(&sql).await?;
        Ok(())
    }

    pub async fn search_model_versions(
        &self,
        clauses: &[Clause],
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<ModelVersion>> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.workspace = 'default' AND mv.current_stage <> "
        ))
        .bind(STAGE_DELETED_INTERNAL);
        push_registry_filter(&mut sql, clauses, RegistryTable::Versions);
        let column = |key: &str| match key {
            "name" => "mv.name",
            "version_number" => "mv.version",
            "creation_timestamp" => "mv.creation_time",
            _ => "mv.last_updated_time",
        };
        push_order_by(
            &mut sql,
            order,
            column,
            &[("mv.name", true), ("mv.version", false)],
        );
        let (versions, has_more) = self
            .fetch_page(sql, max_results, offset, |r| mv_from_row(r).0)
            .await?;
        Ok(Page {
            items: self.attach_mv_tags(versions).await?,
            has_more,
        })
    }
}

/// Message prefix of a create whose version number another writer took first: the whole
/// transaction rolls back and the create runs again with the next number.
const VERSION_TAKEN: &str = "Model version number taken by a concurrent create: ";

fn version_taken(name: &str, version: i64) -> MlflowError {
    MlflowError::new(
        ErrorCode::ResourceAlreadyExists,
        format!("{VERSION_TAKEN}{name} version {version}"),
    )
}

fn is_version_taken(err: &MlflowError) -> bool {
    err.code == ErrorCode::ResourceAlreadyExists && err.message.starts_with(VERSION_TAKEN)
}
