//! Registered models: create, read, rename, delete, their tags, and search.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::{rm_exists, rm_from_row, rm_not_found, RM_COLUMNS};
use crate::domain::search::{Clause, OrderKey};
use crate::error::Result;
use crate::store::search::{push_order_by, push_registry_filter, RegistryTable};
use crate::store::sql::{get_str, is_unique_violation};
use crate::store::{now_ms, Page, Store};
use crate::wire::registry::{RegisteredModel, RegisteredModelAlias};
use crate::wire::KeyValue;

impl Store {
    // ---- registered models ----

    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[KeyValue],
        description: &str,
    ) -> Result<RegisteredModel> {
        let now = now_ms();
        self.write(|tx, _| {
            Box::pin(async move {
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
                self.put_rm_tags(&mut *tx, name, tags).await?;
                Ok(())
            })
        })
        .await?;
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
        let latest = crate::store::last_per_key(tags);
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
            .push(
                &self
                    .dialect
                    .upsert(&format!("workspace, {key}, name"), "value"),
            );
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
            tags.entry(get_str(&row, "name").unwrap_or_default())
                .or_default()
                .push(KeyValue {
                    key: get_str(&row, "key").unwrap_or_default(),
                    value: get_str(&row, "value").unwrap_or_default(),
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
        self.write_statement(&sql).await?;
        self.get_registered_model(name).await
    }

    pub async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel> {
        self.rename_model_rows(name, new_name).await?;
        self.get_registered_model(new_name).await
    }

    async fn rename_model_rows(&self, name: &str, new_name: &str) -> Result<()> {
        let now = now_ms();
        self.write(|tx, _| {
            Box::pin(async move {
                self.lock_registered_model(&mut *tx, name, now).await?;
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
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                self.lock_registered_model(&mut *tx, name, now_ms()).await?;
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
                Ok(())
            })
        })
        .await
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &KeyValue) -> Result<()> {
        self.check_registered_model(name).await?;
        self.write(|tx, _| {
            Box::pin(async move {
                self.put_rm_tags(&mut *tx, name, std::slice::from_ref(tag))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.check_registered_model(name).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM registered_model_tags WHERE workspace = 'default' AND name = ")
            .bind(name)
            .push(&format!(" AND {} = ", self.dialect.key_col()))
            .bind(key);
        self.write_statement(&sql).await?;
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
}
