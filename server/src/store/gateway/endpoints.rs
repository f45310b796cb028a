//! `endpoints` with their `endpoint_model_mappings` (which model definitions serve an
//! endpoint, with weights and fallback order) and `endpoint_tags`.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::models::{model_from_row, MODEL_COLUMNS};
use super::{new_id, no_duplicate, not_found};
use crate::domain::gateway::{Endpoint, Fallback, Linkage, Mapping, ModelConfig};
use crate::error::{MlflowError, Result};
use crate::store::sql::{get_f64, get_i64, get_str, Sql};
use crate::store::{now_ms, Store};

const SELECT: &str = "SELECT endpoint_id, name, created_at, last_updated_at, created_by, \
     last_updated_by, routing_strategy, fallback_config_json, experiment_id, \
     CASE WHEN usage_tracking THEN 1 ELSE 0 END AS usage_tracking FROM endpoints";

/// What creating or updating an endpoint writes besides its mappings.
pub struct EndpointFields {
    pub name: Option<String>,
    pub by: Option<String>,
    pub routing_strategy: Option<String>,
    pub fallback: Option<Fallback>,
    pub experiment_id: Option<i64>,
    pub usage_tracking: Option<bool>,
}

fn endpoint_from_row(row: &AnyRow) -> Endpoint {
    let fallback = get_str(row, "fallback_config_json")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| Fallback {
            strategy: v["strategy"].as_str().map(str::to_string),
            max_attempts: v["max_attempts"].as_i64(),
        });
    Endpoint {
        endpoint_id: get_str(row, "endpoint_id").unwrap_or_default(),
        name: get_str(row, "name"),
        created_at: get_i64(row, "created_at").unwrap_or_default(),
        last_updated_at: get_i64(row, "last_updated_at").unwrap_or_default(),
        mappings: Vec::new(),
        tags: Vec::new(),
        created_by: get_str(row, "created_by"),
        last_updated_by: get_str(row, "last_updated_by"),
        routing_strategy: get_str(row, "routing_strategy"),
        fallback,
        experiment_id: get_i64(row, "experiment_id").map(|e| e.to_string()),
        // Read as 0/1: the Any driver cannot decode SQLite's BOOLEAN.
        usage_tracking: get_i64(row, "usage_tracking") == Some(1),
    }
}

fn mapping_from_row(row: &AnyRow) -> Mapping {
    let model = model_from_row(row);
    Mapping {
        mapping_id: get_str(row, "mapping_id").unwrap_or_default(),
        endpoint_id: get_str(row, "endpoint_id").unwrap_or_default(),
        model_definition_id: get_str(row, "model_definition_id").unwrap_or_default(),
        model_definition: (!model.model_definition_id.is_empty()).then_some(model),
        weight: get_f64(row, "weight").unwrap_or(1.0),
        linkage: if get_str(row, "linkage_type").as_deref() == Some("FALLBACK") {
            Linkage::Fallback
        } else {
            Linkage::Primary
        },
        fallback_order: get_i64(row, "fallback_order"),
        created_at: get_i64(row, "created_at").unwrap_or_default(),
        created_by: get_str(row, "created_by"),
    }
}

/// MLflow's `fallback_config_json`: the settings plus the fallback models' ids.
fn fallback_json(fallback: Option<&Fallback>, fallback_ids: &[String]) -> String {
    serde_json::json!({
        "strategy": fallback.and_then(|f| f.strategy.clone()),
        "max_attempts": fallback.and_then(|f| f.max_attempts),
        "model_definition_ids": fallback_ids,
    })
    .to_string()
}

fn fallback_ids(configs: &[ModelConfig]) -> Vec<String> {
    configs
        .iter()
        .filter(|c| c.linkage == Linkage::Fallback)
        .map(|c| c.model_definition_id.clone())
        .collect()
}

impl Store {
    fn insert_mapping(
        &self,
        endpoint_id: &str,
        c: &ModelConfig,
        by: Option<String>,
        now: i64,
    ) -> (String, Sql) {
        let id = new_id("m");
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO endpoint_model_mappings (mapping_id, endpoint_id, model_definition_id, \
             weight, created_by, created_at, linkage_type, fallback_order) VALUES (",
        )
        .bind(id.as_str())
        .push(", ")
        .bind(endpoint_id)
        .push(", ")
        .bind(c.model_definition_id.as_str())
        .push(", ")
        .bind(c.weight)
        .push(", ")
        .bind(by)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(c.linkage.as_str())
        .push(", ")
        .bind(c.fallback_order)
        .push(")");
        (id, sql)
    }

    /// Fails with MLflow's message unless every model definition exists.
    async fn require_models(&self, configs: &[ModelConfig]) -> Result<()> {
        let mut missing = Vec::new();
        for c in configs {
            if self
                .get_gateway_model(&c.model_definition_id)
                .await
                .is_err()
                && !missing.contains(&c.model_definition_id)
            {
                missing.push(c.model_definition_id.clone());
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MlflowError::not_found(format!(
                "Model definitions not found: {}",
                missing.join(", ")
            )))
        }
    }

    pub async fn create_gateway_endpoint(
        &self,
        endpoint_id: &str,
        fields: EndpointFields,
        configs: &[ModelConfig],
    ) -> Result<Endpoint> {
        self.require_models(configs).await?;
        let now = now_ms();
        let ids = fallback_ids(configs);
        let fallback = (fields.fallback.is_some() || !ids.is_empty())
            .then(|| fallback_json(fields.fallback.as_ref(), &ids));
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO endpoints (endpoint_id, name, created_by, created_at, last_updated_by, \
             last_updated_at, routing_strategy, fallback_config_json, experiment_id, \
             usage_tracking) VALUES (",
        )
        .bind(endpoint_id)
        .push(", ")
        .bind(fields.name.clone())
        .push(", ")
        .bind(fields.by.clone())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(fields.by.clone())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(fields.routing_strategy)
        .push(", ")
        .bind(fallback)
        .push(", ")
        .bind(fields.experiment_id)
        .push(", ")
        .bind(fields.usage_tracking.unwrap_or(true))
        .push(")");
        let mut stmts = vec![sql];
        for c in configs {
            stmts.push(
                self.insert_mapping(endpoint_id, c, fields.by.clone(), now)
                    .1,
            );
        }
        let name = fields.name.unwrap_or_default();
        self.gateway_write(&stmts, || {
            MlflowError::already_exists(format!("Endpoint with name '{name}' already exists"))
        })
        .await?;
        self.get_gateway_endpoint(Some(endpoint_id), None).await
    }

    /// One endpoint by id or by name.
    pub async fn get_gateway_endpoint(
        &self,
        endpoint_id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Endpoint> {
        let mut sql = self.sql();
        sql.push(SELECT);
        let (key, value) = match (endpoint_id, name) {
            (Some(id), _) => ("endpoint_id", id),
            (None, Some(n)) => ("name", n),
            (None, None) => {
                return Err(MlflowError::invalid(
                    "Exactly one of endpoint_id or name must be provided",
                ))
            }
        };
        sql.push(&format!(" WHERE {key} = ")).bind(value);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| not_found("GatewayEndpoint", key, value))?;
        let mut endpoints = vec![endpoint_from_row(&row)];
        self.fill_endpoints(&mut endpoints).await?;
        Ok(endpoints.remove(0))
    }

    /// Loads the mappings and tags of `endpoints`.
    async fn fill_endpoints(&self, endpoints: &mut [Endpoint]) -> Result<()> {
        if endpoints.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = endpoints.iter().map(|e| e.endpoint_id.clone()).collect();
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT m.mapping_id, m.endpoint_id, m.model_definition_id, m.weight, \
             m.linkage_type, m.fallback_order, m.created_at, m.created_by, {MODEL_COLUMNS} \
             FROM endpoint_model_mappings m \
             LEFT JOIN model_definitions d ON d.model_definition_id = m.model_definition_id \
             LEFT JOIN secrets s ON s.secret_id = d.secret_id WHERE m.endpoint_id IN "
        ))
        .bind_list(ids.iter())
        // Primary models first, then fallbacks in their order, as they were attached.
        .push(" ORDER BY m.created_at, m.linkage_type DESC, m.fallback_order, m.mapping_id");
        let mut mappings: HashMap<String, Vec<Mapping>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            let m = mapping_from_row(&row);
            mappings.entry(m.endpoint_id.clone()).or_default().push(m);
        }
        let key = self.dialect.key_col();
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT endpoint_id, {key}, value FROM endpoint_tags WHERE endpoint_id IN "
        ))
        .bind_list(ids.iter())
        .push(&format!(" ORDER BY {key}"));
        let mut tags: HashMap<String, Vec<(String, Option<String>)>> = HashMap::new();
        for row in self.fetch_all(&sql).await? {
            tags.entry(get_str(&row, "endpoint_id").unwrap_or_default())
                .or_default()
                .push((
                    get_str(&row, "key").unwrap_or_default(),
                    get_str(&row, "value"),
                ));
        }
        for e in endpoints.iter_mut() {
            e.mappings = mappings.remove(&e.endpoint_id).unwrap_or_default();
            e.tags = tags.remove(&e.endpoint_id).unwrap_or_default();
        }
        Ok(())
    }

    /// Endpoints with at least one model (of `provider`, or using `secret_id`, if given).
    pub async fn list_gateway_endpoints(
        &self,
        provider: Option<&str>,
        secret_id: Option<&str>,
    ) -> Result<Vec<Endpoint>> {
        let mut sql = self.sql();
        sql.push(SELECT).push(
            " WHERE endpoint_id IN (SELECT m.endpoint_id FROM endpoint_model_mappings m \
             JOIN model_definitions d ON d.model_definition_id = m.model_definition_id \
             WHERE 1 = 1",
        );
        if let Some(p) = provider {
            sql.push(" AND d.provider = ").bind(p);
        }
        if let Some(s) = secret_id {
            sql.push(" AND d.secret_id = ").bind(s);
        }
        sql.push(") ORDER BY created_at, endpoint_id");
        let mut endpoints: Vec<Endpoint> = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(endpoint_from_row)
            .collect();
        self.fill_endpoints(&mut endpoints).await?;
        Ok(endpoints)
    }

    /// Updates an endpoint; `configs` (when given) replace all its models.
    pub async fn update_gateway_endpoint(
        &self,
        endpoint_id: &str,
        fields: EndpointFields,
        configs: Option<&[ModelConfig]>,
    ) -> Result<Endpoint> {
        let current = self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        if let Some(c) = configs {
            self.require_models(c).await?;
        }
        let now = now_ms();
        let mut sql = self.sql();
        sql.push("UPDATE endpoints SET last_updated_at = ")
            .bind(now);
        if let Some(n) = &fields.name {
            sql.push(", name = ").bind(n.as_str());
        }
        if let Some(u) = fields.usage_tracking {
            sql.push(", usage_tracking = ").bind(u);
        }
        if let Some(e) = fields.experiment_id {
            sql.push(", experiment_id = ").bind(e);
        }
        if let Some(r) = &fields.routing_strategy {
            sql.push(", routing_strategy = ").bind(r.as_str());
        }
        let mut stmts = Vec::new();
        if let Some(configs) = configs {
            let json = fallback_json(fields.fallback.as_ref(), &fallback_ids(configs));
            sql.push(", fallback_config_json = ").bind(json);
            let mut delete = self.sql();
            delete
                .push("DELETE FROM endpoint_model_mappings WHERE endpoint_id = ")
                .bind(endpoint_id);
            stmts.push(delete);
            for c in configs {
                stmts.push(
                    self.insert_mapping(endpoint_id, c, fields.by.clone(), now)
                        .1,
                );
            }
        } else if let Some(f) = &fields.fallback {
            let kept: Vec<String> = current
                .mappings
                .iter()
                .filter(|m| m.linkage == Linkage::Fallback)
                .map(|m| m.model_definition_id.clone())
                .collect();
            sql.push(", fallback_config_json = ")
                .bind(fallback_json(Some(f), &kept));
        }
        if let Some(by) = &fields.by {
            sql.push(", last_updated_by = ").bind(by.as_str());
        }
        sql.push(" WHERE endpoint_id = ").bind(endpoint_id);
        stmts.insert(0, sql);
        let name = fields.name.unwrap_or_default();
        self.gateway_write(&stmts, || {
            MlflowError::already_exists(format!("Endpoint with name '{name}' already exists"))
        })
        .await?;
        self.get_gateway_endpoint(Some(endpoint_id), None).await
    }

    /// Deletes an endpoint with its mappings, tags and bindings.
    pub async fn delete_gateway_endpoint(&self, endpoint_id: &str) -> Result<()> {
        self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        let mut stmts = Vec::new();
        for table in [
            "endpoint_model_mappings",
            "endpoint_tags",
            "endpoint_bindings",
            "endpoints",
        ] {
            let mut sql = self.sql();
            sql.push(&format!("DELETE FROM {table} WHERE endpoint_id = "))
                .bind(endpoint_id);
            stmts.push(sql);
        }
        self.gateway_write(&stmts, no_duplicate).await
    }

    pub async fn attach_gateway_model(
        &self,
        endpoint_id: &str,
        config: &ModelConfig,
        by: Option<String>,
    ) -> Result<Mapping> {
        self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        self.get_gateway_model(&config.model_definition_id).await?;
        let now = now_ms();
        let (mapping_id, insert) = self.insert_mapping(endpoint_id, config, by.clone(), now);
        let mut touch = self.sql();
        touch
            .push("UPDATE endpoints SET last_updated_at = ")
            .bind(now);
        if let Some(b) = by {
            touch.push(", last_updated_by = ").bind(b);
        }
        touch.push(" WHERE endpoint_id = ").bind(endpoint_id);
        let model = config.model_definition_id.clone();
        self.gateway_write(&[insert, touch], || {
            MlflowError::already_exists(format!(
                "Model definition '{model}' is already attached to endpoint '{endpoint_id}'"
            ))
        })
        .await?;
        self.get_gateway_endpoint(Some(endpoint_id), None)
            .await?
            .mappings
            .into_iter()
            .find(|m| m.mapping_id == mapping_id)
            .ok_or_else(|| not_found("GatewayEndpointModelMapping", "mapping_id", &mapping_id))
    }

    pub async fn detach_gateway_model(&self, endpoint_id: &str, model_id: &str) -> Result<()> {
        let endpoint = self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        // MLflow removes one mapping of the pair per call.
        let Some(mapping) = endpoint
            .mappings
            .iter()
            .find(|m| m.model_definition_id == model_id)
        else {
            return Err(MlflowError::not_found(format!(
                "Model definition '{model_id}' is not attached to endpoint '{endpoint_id}'"
            )));
        };
        let mut sql = self.sql();
        sql.push("DELETE FROM endpoint_model_mappings WHERE mapping_id = ")
            .bind(mapping.mapping_id.as_str());
        self.gateway_write(&[sql], no_duplicate).await
    }

    /// `DELETE` of one tag of an endpoint.
    fn delete_tag_sql(&self, endpoint_id: &str, key: &str) -> Sql {
        let mut delete = self.sql();
        delete
            .push("DELETE FROM endpoint_tags WHERE endpoint_id = ")
            .bind(endpoint_id)
            .push(&format!(" AND {} = ", self.dialect.key_col()))
            .bind(key);
        delete
    }

    pub async fn set_gateway_endpoint_tag(
        &self,
        endpoint_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        let mut insert = self.sql();
        insert
            .push(&format!(
                "INSERT INTO endpoint_tags ({}, value, endpoint_id) VALUES (",
                self.dialect.key_col()
            ))
            .bind(key)
            .push(", ")
            .bind(value.map(str::to_string))
            .push(", ")
            .bind(endpoint_id)
            .push(")");
        let delete = self.delete_tag_sql(endpoint_id, key);
        self.gateway_write(&[delete, insert], no_duplicate).await
    }

    pub async fn delete_gateway_endpoint_tag(&self, endpoint_id: &str, key: &str) -> Result<()> {
        self.get_gateway_endpoint(Some(endpoint_id), None).await?;
        let delete = self.delete_tag_sql(endpoint_id, key);
        self.gateway_write(&[delete], no_duplicate).await
    }
}
