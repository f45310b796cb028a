//! Registered-model aliases: set, delete, resolve, and the aliases of models and versions.

use std::collections::HashMap;

use crate::error::Result;
use crate::store::sql::{get_i64, get_str};
use crate::store::Store;
use crate::wire::registry::ModelVersion;

use super::version_number;
use crate::domain::registry::STAGE_DELETED_INTERNAL;

impl Store {
    /// `(alias, version)` pairs per model name, ordered by alias.
    pub(super) async fn aliases_of(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, Vec<(String, i64)>>> {
        let mut sql = self.sql();
        sql.push("SELECT name, alias, version FROM registered_model_aliases WHERE workspace = 'default' AND name IN ")
            .bind_list(names.iter())
            .push(" ORDER BY name, alias");
        let mut out: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            out.entry(get_str(&row, "name").unwrap_or_default())
                .or_default()
                .push((
                    get_str(&row, "alias").unwrap_or_default(),
                    get_i64(&row, "version").unwrap_or(0),
                ));
        }
        Ok(out)
    }

    pub(super) async fn attach_mv_aliases(&self, mvs: &mut [ModelVersion]) -> Result<()> {
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

    // ---- aliases ----

    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                self.lock_live_version(&mut *tx, name, version).await?;
                let mut sql = self.sql();
                sql.push("INSERT INTO registered_model_aliases (alias, version, name, workspace) VALUES (")
                    .bind(alias)
                    .push(", ")
                    .bind(version)
                    .push(", ")
                    .bind(name)
                    .push(", 'default')")
                    .push(&self.dialect.upsert("workspace, name, alias", "version"));
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM registered_model_aliases WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND alias = ")
            .bind(alias);
        self.write_statement(&sql).await?;
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
            .and_then(|row| get_i64(&row, "version")))
    }

    /// The highest non-deleted version of a model, if any.
    pub async fn max_live_version(&self, name: &str) -> Result<Option<i64>> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("SELECT MAX(version) AS max_version FROM model_versions WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(" AND current_stage <> ")
            .bind(STAGE_DELETED_INTERNAL);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .and_then(|row| get_i64(&row, "max_version")))
    }
}
