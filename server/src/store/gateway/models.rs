//! `model_definitions`: a provider's model and the secret to call it with, shared by
//! endpoints.

use sqlx::any::AnyRow;

use super::{new_id, no_duplicate, not_found};
use crate::domain::gateway::ModelDefinition;
use crate::error::{ErrorCode, MlflowError, Result};
use crate::store::sql::{get_i64, get_str};
use crate::store::{now_ms, Store};

/// The model definition's columns (alias `d`) plus its secret's name (alias `s`), named
/// `md_*` so they stay apart from an endpoint mapping's columns in one row.
macro_rules! model_columns {
    () => {
        "d.model_definition_id AS md_id, d.name AS md_name, d.secret_id AS md_secret_id, \
         s.secret_name AS md_secret_name, d.provider AS md_provider, \
         d.model_name AS md_model_name, d.created_at AS md_created_at, \
         d.last_updated_at AS md_last_updated_at, d.created_by AS md_created_by, \
         d.last_updated_by AS md_last_updated_by"
    };
}

pub(super) const MODEL_COLUMNS: &str = model_columns!();

const SELECT: &str = concat!(
    "SELECT ",
    model_columns!(),
    " FROM model_definitions d LEFT JOIN secrets s ON s.secret_id = d.secret_id"
);

/// Reads [`MODEL_COLUMNS`].
pub(super) fn model_from_row(row: &AnyRow) -> ModelDefinition {
    ModelDefinition {
        model_definition_id: get_str(row, "md_id").unwrap_or_default(),
        name: get_str(row, "md_name").unwrap_or_default(),
        secret_id: get_str(row, "md_secret_id"),
        secret_name: get_str(row, "md_secret_name"),
        provider: get_str(row, "md_provider").unwrap_or_default(),
        model_name: get_str(row, "md_model_name").unwrap_or_default(),
        created_at: get_i64(row, "md_created_at").unwrap_or_default(),
        last_updated_at: get_i64(row, "md_last_updated_at").unwrap_or_default(),
        created_by: get_str(row, "md_created_by"),
        last_updated_by: get_str(row, "md_last_updated_by"),
    }
}

fn duplicate(name: &str) -> impl Fn() -> MlflowError + '_ {
    move || {
        MlflowError::already_exists(format!(
            "Model definition with name '{name}' already exists"
        ))
    }
}

impl Store {
    pub async fn create_gateway_model(
        &self,
        name: &str,
        secret_id: &str,
        provider: &str,
        model_name: &str,
        created_by: Option<String>,
    ) -> Result<ModelDefinition> {
        self.get_gateway_secret(secret_id).await?;
        let id = new_id("d");
        let now = now_ms();
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO model_definitions (model_definition_id, name, secret_id, provider, \
             model_name, created_by, created_at, last_updated_by, last_updated_at) VALUES (",
        )
        .bind(id.as_str())
        .push(", ")
        .bind(name)
        .push(", ")
        .bind(secret_id)
        .push(", ")
        .bind(provider)
        .push(", ")
        .bind(model_name)
        .push(", ")
        .bind(created_by.clone())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(created_by)
        .push(", ")
        .bind(now)
        .push(")");
        self.gateway_write(&[sql], duplicate(name)).await?;
        self.get_gateway_model(&id).await
    }

    pub async fn get_gateway_model(&self, id: &str) -> Result<ModelDefinition> {
        let mut sql = self.sql();
        sql.push(SELECT)
            .push(" WHERE d.model_definition_id = ")
            .bind(id);
        self.fetch_optional(&sql)
            .await?
            .map(|r| model_from_row(&r))
            .ok_or_else(|| not_found("GatewayModelDefinition", "model_definition_id", id))
    }

    pub async fn list_gateway_models(
        &self,
        provider: Option<&str>,
        secret_id: Option<&str>,
    ) -> Result<Vec<ModelDefinition>> {
        let mut sql = self.sql();
        sql.push(SELECT).push(" WHERE 1 = 1");
        if let Some(p) = provider {
            sql.push(" AND d.provider = ").bind(p);
        }
        if let Some(s) = secret_id {
            sql.push(" AND d.secret_id = ").bind(s);
        }
        sql.push(" ORDER BY d.created_at, d.model_definition_id");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(model_from_row)
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn update_gateway_model(
        &self,
        id: &str,
        name: Option<&str>,
        secret_id: Option<&str>,
        model_name: Option<&str>,
        provider: Option<&str>,
        updated_by: Option<String>,
    ) -> Result<ModelDefinition> {
        self.get_gateway_model(id).await?;
        if let Some(s) = secret_id {
            self.get_gateway_secret(s).await?;
        }
        let mut sql = self.sql();
        sql.push("UPDATE model_definitions SET last_updated_at = ")
            .bind(now_ms());
        for (column, value) in [
            ("name", name),
            ("secret_id", secret_id),
            ("model_name", model_name),
            ("provider", provider),
        ] {
            if let Some(v) = value {
                sql.push(&format!(", {column} = ")).bind(v);
            }
        }
        if let Some(by) = updated_by {
            sql.push(", last_updated_by = ").bind(by);
        }
        sql.push(" WHERE model_definition_id = ").bind(id);
        self.gateway_write(&[sql], duplicate(name.unwrap_or_default()))
            .await?;
        self.get_gateway_model(id).await
    }

    /// Deletes a model definition that no endpoint uses (MLflow's schema restricts it).
    pub async fn delete_gateway_model(&self, id: &str) -> Result<()> {
        self.get_gateway_model(id).await?;
        let mut used = self.sql();
        used.push("SELECT COUNT(*) AS n FROM endpoint_model_mappings WHERE model_definition_id = ")
            .bind(id);
        let count = self
            .fetch_optional(&used)
            .await?
            .and_then(|r| get_i64(&r, "n"))
            .unwrap_or(0);
        if count > 0 {
            return Err(MlflowError::new(
                ErrorCode::InvalidState,
                "Cannot delete model definition that is currently in use by endpoints. \
                 Detach it from all endpoints first.",
            ));
        }
        let mut sql = self.sql();
        sql.push("DELETE FROM model_definitions WHERE model_definition_id = ")
            .bind(id);
        self.gateway_write(&[sql], no_duplicate).await
    }
}
