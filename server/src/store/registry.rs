//! The model registry in MLflow's own tables: `registered_models`, `model_versions`,
//! `registered_model_tags`, `model_version_tags` and `registered_model_aliases`.
//!
//! Column values are written exactly as MLflow's SQL store writes them (milliseconds,
//! stage names, `READY`, empty strings for absent descriptions and run links, the
//! `Deleted_Internal` soft delete with its redacted fields) so a database moves both ways
//! between this server and the Python one. Rows are in the `default` workspace, the only
//! one a single-tenant server has.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::experiments::Page;
use super::sql::{get_i64, get_str, Dialect, Sql};
use super::{now_ms, Store};
use crate::domain::registry::{IS_PROMPT_TAG_KEY, STAGE_DELETED_INTERNAL};
use crate::domain::search::{Clause, Comparator, Entity, Literal, OrderKey};
use crate::error::{MlflowError, Result};
use crate::wire::registry::{ModelVersion, RegisteredModel, RegisteredModelAlias};
use crate::wire::KeyValue;

const MV_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, \
     mv.description, mv.user_id, mv.current_stage, mv.source, mv.run_id, mv.status, \
     mv.status_message, mv.run_link, mv.storage_location";

const RM_COLUMNS: &str = "rm.name, rm.creation_time, rm.last_updated_time, rm.description";

/// Model names per tag lookup of a page of versions.
const TAG_LOOKUP_CHUNK: usize = 500;

/// How many times a version insert is retried after losing a race for its number.
const CREATE_VERSION_ATTEMPTS: usize = 3;

/// A model version to create; the source has been checked and resolved by the service.
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: String,
    pub description: String,
    pub tags: Vec<KeyValue>,
}

fn rm_not_found(name: &str) -> MlflowError {
    MlflowError::not_found(format!("Registered Model with name={name} not found"))
}

fn mv_not_found(name: &str, version: i64) -> MlflowError {
    MlflowError::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

fn rm_exists(name: &str) -> MlflowError {
    MlflowError::already_exists(format!("Registered Model (name={name}) already exists."))
}

/// Whether a database error is a primary-key or unique-constraint violation.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            if matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
                return true;
            }
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let message = db.message().to_ascii_lowercase();
            // SQLite (2067/1555), PostgreSQL (23505), MySQL (1062), whatever the Any driver keeps.
            matches!(code.as_str(), "2067" | "1555" | "23505" | "1062")
                || message.contains("unique constraint")
                || message.contains("duplicate")
        }
        _ => false,
    }
}

/// `FOR UPDATE` where the dialect has row locks; SQLite's single writer already serialises.
fn row_lock(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "",
        _ => " FOR UPDATE",
    }
}

/// The tail of an `INSERT` that overwrites `column` when the key already exists, so two
/// writers setting the same tag or alias at once both succeed (the last one wins).
fn upsert(dialect: Dialect, key_columns: &str, column: &str) -> String {
    match dialect {
        Dialect::Mysql => format!(" ON DUPLICATE KEY UPDATE {column} = VALUES({column})"),
        _ => format!(" ON CONFLICT ({key_columns}) DO UPDATE SET {column} = excluded.{column}"),
    }
}

fn mv_from_row(row: &AnyRow) -> (ModelVersion, Option<String>) {
    let mv = ModelVersion {
        name: get_str(row, 0).unwrap_or_default(),
        version: get_i64(row, 1).unwrap_or(0).to_string(),
        creation_timestamp: get_i64(row, 2).unwrap_or(0),
        last_updated_timestamp: get_i64(row, 3),
        description: get_str(row, 4),
        user_id: get_str(row, 5),
        current_stage: get_str(row, 6),
        source: get_str(row, 7),
        run_id: get_str(row, 8),
        status: get_str(row, 9),
        status_message: get_str(row, 10).filter(|s| !s.is_empty()),
        tags: Vec::new(),
        run_link: get_str(row, 11),
        aliases: Vec::new(),
    };
    (mv, get_str(row, 12))
}

fn rm_from_row(row: &AnyRow) -> RegisteredModel {
    RegisteredModel {
        name: get_str(row, 0).unwrap_or_default(),
        creation_timestamp: get_i64(row, 1),
        last_updated_timestamp: get_i64(row, 2).filter(|t| *t != 0),
        description: get_str(row, 3).filter(|d| !d.is_empty()),
        latest_versions: Vec::new(),
        tags: Vec::new(),
        aliases: Vec::new(),
    }
}

fn version_number(mv: &ModelVersion) -> i64 {
    mv.version.parse().unwrap_or(0)
}

impl Store {
    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`,
    /// waiting under the busy timeout), so a transaction never reads a snapshot that another
    /// process then outdates before its first write (SQLITE_BUSY_SNAPSHOT).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            _ => self.writer.begin().await?,
        })
    }

    // ---- registered models ----

    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[KeyValue],
        description: &str,
    ) -> Result<RegisteredModel> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description, \
             workspace) VALUES (",
        )
        .bind(name)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(description)
        .push(", 'default')");
        // The primary key decides a race between two creators: one insert wins.
        if let Err(err) = sql.query().execute(&mut *tx).await {
            return Err(if is_unique_violation(&err) {
                rm_exists(name)
            } else {
                err.into()
            });
        }
        self.put_rm_tags(&mut tx, name, tags).await?;
        tx.commit().await?;
        self.get_registered_model(name).await
    }

    /// Upserts registered-model tags inside a transaction; the last value of a key wins.
    async fn put_rm_tags(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        tags: &[KeyValue],
    ) -> Result<()> {
        let key = self.dialect.key_col();
        let latest = super::last_per_key(tags);
        for tag in latest {
            let mut sql = self.sql();
            sql.push(&format!(
                "INSERT INTO registered_model_tags ({key}, value, name, workspace) VALUES ("
            ))
            .bind(&tag.key)
            .push(", ")
            .bind(&tag.value)
            .push(", ")
            .bind(name)
            .push(", 'default')")
            .push(&upsert(
                self.dialect,
                &format!("workspace, {key}, name"),
                "value",
            ));
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn fetch_rm_row(&self, name: &str) -> Result<AnyRow> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {RM_COLUMNS} FROM registered_models rm WHERE rm.workspace = 'default' AND rm.name = "
        ))
        .bind(name);
        self.fetch_optional(&sql)
            .await?
            .ok_or_else(|| rm_not_found(name))
    }

    /// Fails with RESOURCE_DOES_NOT_EXIST unless the registered model exists.
    pub async fn check_registered_model(&self, name: &str) -> Result<()> {
        self.fetch_rm_row(name).await.map(|_| ())
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let row = self.fetch_rm_row(name).await?;
        let mut models = self.load_registered_models(vec![rm_from_row(&row)]).await?;
        Ok(models.remove(0))
    }

    /// Fills tags, aliases and latest versions of registered models.
    async fn load_registered_models(
        &self,
        mut models: Vec<RegisteredModel>,
    ) -> Result<Vec<RegisteredModel>> {
        if models.is_empty() {
            return Ok(models);
        }
        let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
        let key = self.dialect.key_col();
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT name, {key}, value FROM registered_model_tags WHERE workspace = 'default' AND name IN "
        ))
        .bind_list(names.iter())
        .push(&format!(" ORDER BY name, {key}"));
        let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            tags.entry(get_str(&row, 0).unwrap_or_default())
                .or_default()
                .push(KeyValue {
                    key: get_str(&row, 1).unwrap_or_default(),
                    value: get_str(&row, 2).unwrap_or_default(),
                });
        }
        let mut aliases = self.aliases_of(&names).await?;
        let mut latest = self.latest_versions_of(&names).await?;
        for model in &mut models {
            model.tags = tags.remove(&model.name).unwrap_or_default();
            model.aliases = aliases
                .remove(&model.name)
                .unwrap_or_default()
                .into_iter()
                .map(|(alias, version)| RegisteredModelAlias {
                    alias,
                    version: version.to_string(),
                })
                .collect();
            model.latest_versions = latest.remove(&model.name).unwrap_or_default();
        }
        Ok(models)
    }

    /// `(alias, version)` pairs per model name, ordered by alias.
    async fn aliases_of(&self, names: &[String]) -> Result<HashMap<String, Vec<(String, i64)>>> {
        let mut sql = self.sql();
        sql.push("SELECT name, alias, version FROM registered_model_aliases WHERE workspace = 'default' AND name IN ")
            .bind_list(names.iter())
            .push(" ORDER BY name, alias");
        let mut out: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            out.entry(get_str(&row, 0).unwrap_or_default())
                .or_default()
                .push((
                    get_str(&row, 1).unwrap_or_default(),
                    get_i64(&row, 2).unwrap_or(0),
                ));
        }
        Ok(out)
    }

    /// For each model, the highest non-deleted version in each stage, by version.
    async fn latest_versions_of(
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

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: &str,
    ) -> Result<RegisteredModel> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("UPDATE registered_models SET description = ")
            .bind(description)
            .push(", last_updated_time = ")
            .bind(now_ms())
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(name);
        sql.query().execute(&self.writer).await?;
        self.get_registered_model(name).await
    }

    pub async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel> {
        super::retry_conflicts(|| self.rename_registered_model_once(name, new_name)).await?;
        self.get_registered_model(new_name).await
    }

    async fn rename_registered_model_once(&self, name: &str, new_name: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.lock_registered_model(&mut tx, name, now).await?;
        if new_name != name {
            let mut sql = self.sql();
            sql.push("SELECT name FROM registered_models WHERE workspace = 'default' AND name = ")
                .bind(new_name);
            if sql.query().fetch_optional(&mut *tx).await?.is_some() {
                return Err(rm_exists(new_name));
            }
        }
        // The parent row first: with foreign keys on, ON UPDATE CASCADE moves the children
        // and the explicit updates below find nothing left; with them off, those do the work.
        let mut sql = self.sql();
        sql.push("UPDATE registered_models SET name = ")
            .bind(new_name)
            .push(", last_updated_time = ")
            .bind(now)
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(name);
        if let Err(err) = sql.query().execute(&mut *tx).await {
            return Err(if is_unique_violation(&err) {
                rm_exists(new_name)
            } else {
                err.into()
            });
        }
        if new_name != name {
            for table in [
                "model_versions",
                "model_version_tags",
                "registered_model_tags",
                "registered_model_aliases",
            ] {
                let mut sql = self.sql();
                sql.push(&format!("UPDATE {table} SET name = "))
                    .bind(new_name)
                    .push(" WHERE workspace = 'default' AND name = ")
                    .bind(name);
                sql.query().execute(&mut *tx).await?;
            }
        }
        let mut sql = self.sql();
        sql.push("UPDATE model_versions SET last_updated_time = ")
            .bind(now)
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(new_name);
        sql.query().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        super::retry_conflicts(|| self.delete_registered_model_once(name)).await
    }

    async fn delete_registered_model_once(&self, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_registered_model(&mut tx, name, now_ms()).await?;
        // Children first, so that enforced foreign keys never see an orphan.
        for table in [
            "model_version_tags",
            "registered_model_aliases",
            "model_versions",
            "registered_model_tags",
            "registered_models",
        ] {
            let mut sql = self.sql();
            sql.push(&format!(
                "DELETE FROM {table} WHERE workspace = 'default' AND name = "
            ))
            .bind(name);
            sql.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &KeyValue) -> Result<()> {
        self.check_registered_model(name).await?;
        let mut tx = self.begin_write().await?;
        self.put_rm_tags(&mut tx, name, std::slice::from_ref(tag))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM registered_model_tags WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(&format!(" AND {} = ", self.dialect.key_col()))
            .bind(key);
        sql.query().execute(&self.writer).await?;
        Ok(())
    }

    pub async fn search_registered_models(
        &self,
        clauses: &[Clause],
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<RegisteredModel>> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {RM_COLUMNS} FROM registered_models rm WHERE rm.workspace = 'default'"
        ));
        push_registry_filter(&mut sql, clauses, RegistryTable::Models);
        let column = |key: &str| match key {
            "name" => "rm.name",
            _ => "rm.last_updated_time",
        };
        push_order_by(&mut sql, order, column, &[("rm.name", true)]);
        let (models, has_more) = self
            .fetch_page(sql, max_results, offset, rm_from_row)
            .await?;
        Ok(Page {
            items: self.load_registered_models(models).await?,
            has_more,
        })
    }

    // ---- model versions ----

    /// Creates the next version of `new.name`. The number is computed inside the write
    /// transaction after the registered model's row is locked (the `last_updated_time`
    /// update), so concurrent creators — also in other server processes — queue up instead
    /// of reading the same maximum; the primary key backs this up with a retry.
    pub async fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion> {
        for attempt in 1..=CREATE_VERSION_ATTEMPTS {
            // A lost lock conflict (a deadlock victim) is rolled back whole and run again.
            let outcome = super::retry_conflicts(|| async {
                match self.try_create_model_version(new).await {
                    Ok(version) => Ok(Some(version)),
                    Err(CreateError::Race) => Ok(None),
                    Err(CreateError::Other(e)) => Err(e),
                }
            })
            .await?;
            match outcome {
                Some(version) => return self.get_model_version(&new.name, version).await,
                None => {
                    tracing::info!(name = %new.name, attempt, "model version number taken; retrying");
                }
            }
        }
        Err(MlflowError::internal(format!(
            "Model Version creation error (name={}). Giving up after {CREATE_VERSION_ATTEMPTS} \
             attempts.",
            new.name
        )))
    }

    async fn try_create_model_version(
        &self,
        new: &NewModelVersion,
    ) -> std::result::Result<i64, CreateError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        // The update takes the row lock (the write lock on SQLite) before anything is read.
        self.lock_registered_model(&mut tx, &new.name, now).await?;
        let mut sql = self.sql();
        sql.push("SELECT MAX(version) FROM model_versions WHERE workspace = 'default' AND name = ")
            .bind(&new.name);
        if self.dialect == Dialect::Mysql {
            // A locking read sees the latest committed rows under REPEATABLE READ.
            sql.push(" FOR UPDATE");
        }
        let row = sql
            .query()
            .fetch_one(&mut *tx)
            .await
            .map_err(MlflowError::from)?;
        let version = get_i64(&row, 0).unwrap_or(0) + 1;
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
                CreateError::Race
            } else {
                CreateError::Other(err.into())
            });
        }
        self.put_mv_tags(&mut tx, &new.name, version, &new.tags)
            .await?;
        match tx.commit().await {
            Ok(()) => Ok(version),
            Err(err) if is_unique_violation(&err) => Err(CreateError::Race),
            Err(err) => Err(CreateError::Other(err.into())),
        }
    }

    async fn put_mv_tags(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        version: i64,
        tags: &[KeyValue],
    ) -> Result<()> {
        let key = self.dialect.key_col();
        let latest = super::last_per_key(tags);
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
            .push(&upsert(
                self.dialect,
                &format!("workspace, {key}, name, version"),
                "value",
            ));
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
                    get_str(&row, 0).unwrap_or_default(),
                    get_i64(&row, 1).unwrap_or(0),
                ))
                .or_default()
                .push(KeyValue {
                    key: get_str(&row, 2).unwrap_or_default(),
                    value: get_str(&row, 3).unwrap_or_default(),
                });
            }
        }
        for mv in &mut mvs {
            let id = (mv.name.clone(), version_number(mv));
            mv.tags = tags.remove(&id).unwrap_or_default();
        }
        Ok(mvs)
    }

    async fn attach_mv_aliases(&self, mvs: &mut [ModelVersion]) -> Result<()> {
        let mut names: Vec<String> = mvs.iter().map(|m| m.name.clone()).collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return Ok(());
        }
        let aliases = self.aliases_of(&names).await?;
        for mv in mvs {
            let number = version_number(mv);
            mv.aliases = aliases
                .get(&mv.name)
                .map(|list| {
                    list.iter()
                        .filter(|(_, v)| *v == number)
                        .map(|(a, _)| a.clone())
                        .collect()
                })
                .unwrap_or_default();
        }
        Ok(())
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
        sql.query().execute(&self.writer).await?;
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
        super::retry_conflicts(|| {
            self.transition_model_version_stage_once(name, version, stage, archive_existing)
        })
        .await?;
        self.get_model_version(name, version).await
    }

    async fn transition_model_version_stage_once(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.touch_registered_model(&mut tx, name, now).await?;
        self.lock_live_version(&mut tx, name, version).await?;
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
        let mut sql = self.sql();
        sql.push("UPDATE model_versions SET current_stage = ")
            .bind(stage)
            .push(", last_updated_time = ")
            .bind(now)
            .push(" WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND version = ")
            .bind(version);
        sql.query().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// MLflow's soft delete: the row stays (its number is never reused) with its stage set
    /// to `Deleted_Internal` and its identifying fields redacted; its aliases go.
    pub async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        super::retry_conflicts(|| self.delete_model_version_once(name, version)).await
    }

    async fn delete_model_version_once(&self, name: &str, version: i64) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.touch_registered_model(&mut tx, name, now).await?;
        self.lock_live_version(&mut tx, name, version).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM registered_model_aliases WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND version = ")
            .bind(version);
        sql.query().execute(&mut *tx).await?;
        let mut sql = self.sql();
        sql.push("UPDATE model_versions SET current_stage = ")
            .bind(STAGE_DELETED_INTERNAL)
            .push(", last_updated_time = ")
            .bind(now)
            .push(
                ", description = NULL, user_id = NULL, source = 'REDACTED-SOURCE-PATH', \
                 run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', \
                 status_message = NULL WHERE workspace = 'default' AND name = ",
            )
            .bind(name)
            .push(" AND version = ")
            .bind(version);
        sql.query().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bumps the registered model's `last_updated_time`. Every registry write that touches
    /// versions does this first, so the model's row lock is always taken before any version
    /// row's: one lock order, no deadlock between writers.
    async fn touch_registered_model(
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
    async fn lock_registered_model(
        &self,
        conn: &mut AnyConnection,
        name: &str,
        now: i64,
    ) -> Result<()> {
        self.touch_registered_model(conn, name, now).await?;
        let mut sql = self.sql();
        sql.push("SELECT name FROM registered_models WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(row_lock(self.dialect));
        match sql.query().fetch_optional(&mut *conn).await? {
            Some(_) => Ok(()),
            None => Err(rm_not_found(name)),
        }
    }

    /// Locks a live version row, or fails with RESOURCE_DOES_NOT_EXIST.
    async fn lock_live_version(
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
            .push(row_lock(self.dialect));
        match sql.query().fetch_optional(&mut *conn).await? {
            Some(_) => Ok(()),
            None => Err(mv_not_found(name, version)),
        }
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
        let mut tx = self.begin_write().await?;
        self.put_mv_tags(&mut tx, name, version, std::slice::from_ref(tag))
            .await?;
        tx.commit().await?;
        Ok(())
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
        sql.query().execute(&self.writer).await?;
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

    // ---- aliases ----

    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<()> {
        super::retry_conflicts(|| self.set_registered_model_alias_once(name, alias, version)).await
    }

    async fn set_registered_model_alias_once(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.lock_live_version(&mut tx, name, version).await?;
        let mut sql = self.sql();
        sql.push("INSERT INTO registered_model_aliases (alias, version, name, workspace) VALUES (")
            .bind(alias)
            .push(", ")
            .bind(version)
            .push(", ")
            .bind(name)
            .push(", 'default')")
            .push(&upsert(self.dialect, "workspace, name, alias", "version"));
        sql.query().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM registered_model_aliases WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND alias = ")
            .bind(alias);
        sql.query().execute(&self.writer).await?;
        Ok(())
    }

    /// The version an alias points to, or `None` when the model has no such alias.
    pub async fn alias_version(&self, name: &str, alias: &str) -> Result<Option<i64>> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push(
            "SELECT version FROM registered_model_aliases WHERE workspace = 'default' AND name = ",
        )
        .bind(name)
        .push(" AND alias = ")
        .bind(alias);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .and_then(|row| get_i64(&row, 0)))
    }

    /// The highest non-deleted version of a model, if any.
    pub async fn max_live_version(&self, name: &str) -> Result<Option<i64>> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("SELECT MAX(version) FROM model_versions WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND current_stage <> ")
            .bind(STAGE_DELETED_INTERNAL);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .and_then(|row| get_i64(&row, 0)))
    }
}

/// Why one attempt to create a version failed.
enum CreateError {
    /// Another writer took the version number first.
    Race,
    Other(MlflowError),
}

impl From<MlflowError> for CreateError {
    fn from(e: MlflowError) -> Self {
        CreateError::Other(e)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RegistryTable {
    Models,
    Versions,
}

/// Whether a filter asks for prompts (MLflow's `_is_querying_prompt`): the first clause on
/// the prompt tag decides.
fn is_querying_prompt(clauses: &[Clause]) -> bool {
    clauses
        .iter()
        .find(|c| c.entity == Entity::Tag && c.key == IS_PROMPT_TAG_KEY)
        .is_some_and(|c| match (&c.comparator, &c.value) {
            (Comparator::Eq, Literal::Str(v)) => v.eq_ignore_ascii_case("true"),
            (Comparator::Ne, Literal::Str(v)) => v.eq_ignore_ascii_case("false"),
            _ => false,
        })
}

/// Appends ORDER BY: the requested keys as columns, then each tie-breaker column the request
/// did not name, so that paging sees one fixed order.
fn push_order_by(
    sql: &mut Sql,
    order: &[OrderKey],
    column: impl Fn(&str) -> &'static str,
    tie_breakers: &[(&'static str, bool)],
) {
    let mut items: Vec<(&str, bool)> = order
        .iter()
        .map(|o| (column(&o.key), o.ascending))
        .collect();
    for &(tie, ascending) in tie_breakers {
        if !items.iter().any(|&(c, _)| c == tie) {
            items.push((tie, ascending));
        }
    }
    let list: Vec<String> = items
        .iter()
        .map(|&(c, asc)| format!("{c} {}", if asc { "ASC" } else { "DESC" }))
        .collect();
    sql.push(" ORDER BY ").push(&list.join(", "));
}

/// Appends ` AND ...` for every clause, plus MLflow's prompt exclusion: unless the filter
/// asks for prompts, clauses on the prompt tag are dropped and models tagged as prompts
/// are left out (models without the tag match `tag.mlflow.prompt.is_prompt != 'true'`).
fn push_registry_filter(sql: &mut Sql, clauses: &[Clause], table: RegistryTable) {
    let key = sql.dialect.key_col();
    let (tag_table, owner, version_join) = match table {
        RegistryTable::Models => ("registered_model_tags", "rm", ""),
        RegistryTable::Versions => ("model_version_tags", "mv", " AND t.version = mv.version"),
    };
    let prompts = is_querying_prompt(clauses);
    for clause in clauses {
        match clause.entity {
            Entity::Tag => {
                if !prompts && clause.key == IS_PROMPT_TAG_KEY {
                    continue;
                }
                sql.push(&format!(
                    " AND EXISTS (SELECT 1 FROM {tag_table} t WHERE t.workspace = {owner}.workspace AND t.name = {owner}.name\
                     {version_join} AND t.{key} = "
                ))
                .bind(&clause.key)
                .push(" AND ");
                super::search::push_compare(sql, "t.value", clause.comparator, &clause.value);
                sql.push(")");
            }
            _ => {
                sql.push(" AND ");
                match (clause.key.as_str(), &clause.value) {
                    ("version_number", Literal::Num(n)) => {
                        sql.push("mv.version ")
                            .push(clause.comparator.as_str())
                            .push(" ")
                            .bind(*n as i64);
                    }
                    (attr, value) => {
                        let column = match attr {
                            "run_id" => "mv.run_id",
                            "source_path" => "mv.source",
                            _ if table == RegistryTable::Models => "rm.name",
                            _ => "mv.name",
                        };
                        super::search::push_compare(sql, column, clause.comparator, value);
                    }
                }
            }
        }
    }
    if !prompts {
        sql.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM {tag_table} p WHERE p.workspace = {owner}.workspace AND p.name = {owner}.name AND p.{key} = "
        ))
        .bind(IS_PROMPT_TAG_KEY)
        .push(" AND p.value = 'true')");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{parse_filter, SearchTarget};

    fn compile(target: SearchTarget, filter: &str) -> Sql {
        let table = if target == SearchTarget::RegisteredModels {
            RegistryTable::Models
        } else {
            RegistryTable::Versions
        };
        let mut sql = Sql::new(Dialect::Sqlite);
        push_registry_filter(&mut sql, &parse_filter(target, filter).unwrap(), table);
        sql
    }

    #[test]
    fn prompt_clause_becomes_an_anti_join() {
        let sql = compile(
            SearchTarget::RegisteredModels,
            "name LIKE 'p%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
        );
        assert_eq!(sql.text.matches("EXISTS").count(), 1);
        assert!(sql.text.contains("NOT EXISTS"));
        let sql = compile(
            SearchTarget::RegisteredModels,
            "tags.`mlflow.prompt.is_prompt` = 'true'",
        );
        assert!(!sql.text.contains("NOT EXISTS"));
        assert!(sql.text.contains(" AND EXISTS"));
    }

    #[test]
    fn version_filters_bind_integers() {
        let sql = compile(
            SearchTarget::ModelVersions,
            "name = 'x''; DROP TABLE model_versions; --' AND version_number > 2",
        );
        assert!(!sql.text.contains("DROP"));
        assert!(sql.args.contains(&crate::store::sql::Arg::I64(2)));
    }
}
