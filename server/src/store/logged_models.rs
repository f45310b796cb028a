//! MLflow 3 logged models: their rows, tags, params and metrics, and their search.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::search::{datasets_clause, model_clause, model_order, DatasetFilter, ModelOrder};
use super::sql::{get_f64, get_i64, get_str};
use super::{now_ms, Page, Store};
use crate::domain::search::{Clause, Entity};
use crate::error::{MlflowError, Result};
use crate::wire::{
    KeyValue, LoggedModel, LoggedModelData, LoggedModelInfo, Metric, LOGGED_MODEL_STATUSES,
};

const COLUMNS: &str = "lm.model_id, lm.experiment_id, lm.name, lm.artifact_location, \
     lm.creation_timestamp_ms, lm.last_updated_timestamp_ms, lm.status, lm.model_type, \
     lm.source_run_id, lm.status_message, lm.lifecycle_stage";

/// A logged model to create.
pub struct NewLoggedModel {
    pub experiment_id: i64,
    pub name: String,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

fn info_from_row(row: &AnyRow) -> (LoggedModelInfo, String) {
    let status = get_i64(row, "status").unwrap_or(0);
    let info = LoggedModelInfo {
        model_id: get_str(row, "model_id").unwrap_or_default(),
        experiment_id: get_i64(row, "experiment_id").unwrap_or(0).to_string(),
        name: get_str(row, "name").unwrap_or_default(),
        artifact_uri: get_str(row, "artifact_location").unwrap_or_default(),
        creation_timestamp_ms: get_i64(row, "creation_timestamp_ms").unwrap_or(0),
        last_updated_timestamp_ms: get_i64(row, "last_updated_timestamp_ms").unwrap_or(0),
        status: LOGGED_MODEL_STATUSES
            .get(status as usize)
            .unwrap_or(&LOGGED_MODEL_STATUSES[0])
            .to_string(),
        model_type: get_str(row, "model_type").unwrap_or_default(),
        source_run_id: get_str(row, "source_run_id").filter(|s| !s.is_empty()),
        status_message: get_str(row, "status_message").filter(|s| !s.is_empty()),
        tags: Vec::new(),
    };
    (
        info,
        get_str(row, "lifecycle_stage").unwrap_or_else(|| "active".into()),
    )
}

fn not_found(model_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Logged model with ID '{model_id}' not found."))
}

impl Store {
    pub async fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel> {
        let exp = self.get_experiment(new.experiment_id).await?;
        if exp.lifecycle_stage != "active" {
            return Err(MlflowError::invalid(format!(
                "The experiment {} must be in the 'active' state. Current state is {}.",
                new.experiment_id, exp.lifecycle_stage
            )));
        }
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let location = format!(
            "{}/models/{model_id}/artifacts",
            exp.artifact_location.trim_end_matches('/')
        );
        let now = now_ms();
        let location = &location;
        let model_id = &model_id;
        let new = &new;
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = self.sql();
                sql.push(
                    "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, \
             creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, \
             model_type, source_run_id, status_message) VALUES (",
                )
                .bind(model_id)
                .push(", ")
                .bind(new.experiment_id)
                .push(", ")
                .bind(&new.name)
                .push(", ")
                .bind(location)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(", 1, 'active', ")
                .bind(new.model_type.clone().unwrap_or_default())
                .push(", ")
                .bind(new.source_run_id.clone())
                .push(", NULL)");
                sql.query().execute(&mut *tx).await?;
                self.upsert_entries(&mut *tx, model_id, new.experiment_id, &new.params, false)
                    .await?;
                self.upsert_entries(&mut *tx, model_id, new.experiment_id, &new.tags, true)
                    .await?;
                Ok(())
            })
        })
        .await?;
        self.get_logged_model(model_id, false).await
    }

    pub async fn get_logged_model(
        &self,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<LoggedModel> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {COLUMNS} FROM logged_models lm WHERE lm.model_id = "
        ))
        .bind(model_id);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| not_found(model_id))?;
        let (info, stage) = info_from_row(&row);
        if stage != "active" && !allow_deleted {
            return Err(not_found(model_id));
        }
        let mut models = self.load_models(vec![info]).await?;
        Ok(models.remove(0))
    }

    async fn load_models(&self, infos: Vec<LoggedModelInfo>) -> Result<Vec<LoggedModel>> {
        if infos.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = infos.iter().map(|i| i.model_id.as_str()).collect();
        let mut conn = self.reader.acquire().await?;
        let mut sql = self.sql();
        sql.push("SELECT 0 AS kind, model_id, tag_key, tag_value FROM logged_model_tags WHERE model_id IN ")
            .bind_list(ids.iter().copied())
            .push(" UNION ALL SELECT 1, model_id, param_key, param_value FROM logged_model_params WHERE model_id IN ")
            .bind_list(ids.iter().copied());
        let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
        let mut params: HashMap<String, Vec<KeyValue>> = HashMap::new();
        for row in sql.query().fetch_all(&mut *conn).await? {
            let kv = KeyValue {
                key: get_str(&row, "tag_key").unwrap_or_default(),
                value: get_str(&row, "tag_value").unwrap_or_default(),
            };
            let target = if get_i64(&row, "kind") == Some(0) {
                &mut tags
            } else {
                &mut params
            };
            target
                .entry(get_str(&row, "model_id").unwrap_or_default())
                .or_default()
                .push(kv);
        }
        let mut sql = self.sql();
        sql.push(
            "SELECT model_id, metric_name, metric_value, metric_timestamp_ms, metric_step, \
             run_id, dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id IN ",
        )
        .bind_list(ids.iter().copied());
        let mut metrics: HashMap<String, Vec<Metric>> = HashMap::new();
        for row in sql.query().fetch_all(&mut *conn).await? {
            let model_id = get_str(&row, "model_id").unwrap_or_default();
            metrics.entry(model_id.clone()).or_default().push(Metric {
                key: get_str(&row, "metric_name").unwrap_or_default(),
                value: get_f64(&row, "metric_value").unwrap_or(f64::NAN),
                timestamp: get_i64(&row, "metric_timestamp_ms").unwrap_or(0),
                step: get_i64(&row, "metric_step").unwrap_or(0),
                dataset_name: get_str(&row, "dataset_name"),
                dataset_digest: get_str(&row, "dataset_digest"),
                model_id: Some(model_id),
                run_id: get_str(&row, "run_id"),
            });
        }
        Ok(infos
            .into_iter()
            .map(|mut info| {
                let mut t = tags.remove(&info.model_id).unwrap_or_default();
                t.sort_by(|a, b| a.key.cmp(&b.key));
                info.tags = t;
                let data = LoggedModelData {
                    params: params.remove(&info.model_id).unwrap_or_default(),
                    metrics: metrics.remove(&info.model_id).unwrap_or_default(),
                };
                LoggedModel { info, data }
            })
            .collect())
    }

    /// Sets the status (finalize) and returns the model.
    pub async fn set_logged_model_status(
        &self,
        model_id: &str,
        status: i64,
    ) -> Result<LoggedModel> {
        self.get_logged_model(model_id, false).await?;
        let mut sql = self.sql();
        sql.push("UPDATE logged_models SET status = ")
            .bind(status)
            .push(", last_updated_timestamp_ms = ")
            .bind(now_ms())
            .push(" WHERE model_id = ")
            .bind(model_id);
        self.write_statement(&sql).await?;
        self.get_logged_model(model_id, false).await
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.get_logged_model(model_id, false).await?;
        let mut sql = self.sql();
        sql.push(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ",
        )
        .bind(now_ms())
        .push(" WHERE model_id = ")
        .bind(model_id);
        self.write_statement(&sql).await?;
        Ok(())
    }

    /// Upserts tags (`tags = true`) or adds params of a logged model.
    pub async fn set_logged_model_entries(
        &self,
        model_id: &str,
        items: &[KeyValue],
        tags: bool,
    ) -> Result<()> {
        let model = self.get_logged_model(model_id, false).await?;
        let experiment_id: i64 = model.info.experiment_id.parse().unwrap_or(0);
        self.write(|tx, _| {
            Box::pin(async move {
                self.upsert_entries(&mut *tx, model_id, experiment_id, items, tags)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Upserts tags (`tags = true`) or params of a logged model inside the caller's
    /// transaction.
    async fn upsert_entries(
        &self,
        conn: &mut sqlx::AnyConnection,
        model_id: &str,
        experiment_id: i64,
        items: &[KeyValue],
        tags: bool,
    ) -> Result<()> {
        let (table, key_col, value_col) = if tags {
            ("logged_model_tags", "tag_key", "tag_value")
        } else {
            ("logged_model_params", "param_key", "param_value")
        };
        for kv in items {
            let mut sql = self.sql();
            sql.push(&format!("DELETE FROM {table} WHERE model_id = "))
                .bind(model_id)
                .push(&format!(" AND {key_col} = "))
                .bind(&kv.key);
            sql.query().execute(&mut *conn).await?;
            let mut sql = self.sql();
            sql.push(&format!(
                "INSERT INTO {table} (model_id, experiment_id, {key_col}, {value_col}) VALUES ("
            ))
            .bind(model_id)
            .push(", ")
            .bind(experiment_id)
            .push(", ")
            .bind(&kv.key)
            .push(", ")
            .bind(&kv.value)
            .push(")");
            sql.query().execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.get_logged_model(model_id, false).await?;
        let mut sql = self.sql();
        sql.push("DELETE FROM logged_model_tags WHERE model_id = ")
            .bind(model_id)
            .push(" AND tag_key = ")
            .bind(key);
        let done = self.write_statement(&sql).await?;
        if done == 0 {
            return Err(MlflowError::not_found(format!(
                "No tag with key '{key}' found for model with ID '{model_id}'."
            )));
        }
        Ok(())
    }

    pub async fn search_logged_models(
        &self,
        experiment_ids: &[i64],
        clauses: &[Clause],
        datasets: &[DatasetFilter],
        order: &[ModelOrder],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<LoggedModel>> {
        if experiment_ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        }
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {COLUMNS} FROM logged_models lm WHERE lm.lifecycle_stage = 'active' AND \
             lm.experiment_id IN "
        ))
        .bind_list(experiment_ids.iter().copied());
        for clause in clauses {
            sql.push(" AND ");
            model_clause(&mut sql, clause, datasets);
        }
        let filters_metrics = clauses.iter().any(|c| c.entity == Entity::Metric);
        if !datasets.is_empty() && !filters_metrics {
            sql.push(" AND ");
            datasets_clause(&mut sql, datasets);
        }
        model_order(&mut sql, order);
        let (infos, has_more) = self
            .fetch_page(sql, max_results, offset, |r| info_from_row(r).0)
            .await?;
        Ok(Page {
            items: self.load_models(infos).await?,
            has_more,
        })
    }
}
