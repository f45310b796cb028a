//! `endpoint_bindings`: which MLflow resource (a scorer) uses which endpoint.

use sqlx::any::AnyRow;

use super::{no_duplicate, not_found};
use crate::domain::gateway::Binding;
use crate::error::{MlflowError, Result};
use crate::store::sql::{get_i64, get_str};
use crate::store::{now_ms, Store};

const SELECT: &str = "SELECT endpoint_id, resource_type, resource_id, created_at, \
     last_updated_at, created_by, last_updated_by, display_name FROM endpoint_bindings";

fn binding_from_row(row: &AnyRow) -> Binding {
    Binding {
        endpoint_id: get_str(row, "endpoint_id").unwrap_or_default(),
        resource_type: get_str(row, "resource_type").unwrap_or_default(),
        resource_id: get_str(row, "resource_id").unwrap_or_default(),
        created_at: get_i64(row, "created_at").unwrap_or_default(),
        last_updated_at: get_i64(row, "last_updated_at").unwrap_or_default(),
        created_by: get_str(row, "created_by"),
        last_updated_by: get_str(row, "last_updated_by"),
        display_name: get_str(row, "display_name"),
    }
}

impl Store {
    pub async fn create_gateway_binding(
        &self,
        endpoint_id: &str,
        resource_type: &str,
        resource_id: &str,
        created_by: Option<String>,
    ) -> Result<Binding> {
        self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        let now = now_ms();
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO endpoint_bindings (endpoint_id, resource_type, resource_id, \
             created_at, created_by, last_updated_at, last_updated_by) VALUES (",
        )
        .bind(endpoint_id)
        .push(", ")
        .bind(resource_type)
        .push(", ")
        .bind(resource_id)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(created_by.clone())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(created_by)
        .push(")");
        self.gateway_write(&[sql], || {
            MlflowError::already_exists(format!(
                "Binding of {resource_type} '{resource_id}' to endpoint '{endpoint_id}' \
                 already exists"
            ))
        })
        .await?;
        let mut found = self
            .list_gateway_bindings(Some(endpoint_id), Some(resource_type), Some(resource_id))
            .await?;
        found
            .pop()
            .ok_or_else(|| not_found("GatewayEndpointBinding", "endpoint_id", endpoint_id))
    }

    pub async fn delete_gateway_binding(
        &self,
        endpoint_id: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<()> {
        let found = self
            .list_gateway_bindings(Some(endpoint_id), Some(resource_type), Some(resource_id))
            .await?;
        if found.is_empty() {
            return Err(MlflowError::not_found(format!(
                "GatewayEndpointBinding not found (endpoint_id='{endpoint_id}', \
                 resource_type='{resource_type}', resource_id='{resource_id}')"
            )));
        }
        let mut sql = self.sql();
        sql.push("DELETE FROM endpoint_bindings WHERE endpoint_id = ")
            .bind(endpoint_id)
            .push(" AND resource_type = ")
            .bind(resource_type)
            .push(" AND resource_id = ")
            .bind(resource_id);
        self.gateway_write(&[sql], no_duplicate).await
    }

    pub async fn list_gateway_bindings(
        &self,
        endpoint_id: Option<&str>,
        resource_type: Option<&str>,
        resource_id: Option<&str>,
    ) -> Result<Vec<Binding>> {
        let mut sql = self.sql();
        sql.push(SELECT).push(" WHERE 1 = 1");
        for (column, value) in [
            ("endpoint_id", endpoint_id),
            ("resource_type", resource_type),
            ("resource_id", resource_id),
        ] {
            if let Some(v) = value {
                sql.push(&format!(" AND {column} = ")).bind(v);
            }
        }
        sql.push(" ORDER BY created_at, endpoint_id, resource_id");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(binding_from_row)
            .collect())
    }
}
