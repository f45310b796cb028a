//! MLflow 3 logged models: the rules in front of the store.

use super::tracking::{Paged, Tracking};
use crate::domain::search::{parse_filter, SearchTarget};
use crate::domain::validation as v;
use crate::domain::{paging, run_names};
use crate::error::{MlflowError, Result};
use crate::store::{model_column, DatasetFilter, ModelOrder, NewLoggedModel};
use crate::wire::{KeyValue, LoggedModel};

/// An `order_by` item as the client sends it.
pub struct ModelOrderIn {
    pub field_name: String,
    pub ascending: bool,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// A `datasets` item as the client sends it.
pub struct DatasetIn {
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// MLflow's reading of one order_by item: a `logged_models` attribute, or `metrics.<name>`.
fn model_order(o: &ModelOrderIn) -> Result<ModelOrder> {
    if let Some(metric) = o.field_name.strip_prefix("metrics.") {
        return Ok(ModelOrder::Metric {
            name: metric.to_string(),
            dataset_name: o.dataset_name.clone().filter(|s| !s.is_empty()),
            dataset_digest: o.dataset_digest.clone().filter(|s| !s.is_empty()),
            ascending: o.ascending,
        });
    }
    let field = o
        .field_name
        .strip_prefix("attributes.")
        .unwrap_or(&o.field_name);
    let canonical = match field {
        "creation_time" => "creation_timestamp",
        "name"
        | "model_id"
        | "model_type"
        | "status"
        | "source_run_id"
        | "creation_timestamp"
        | "last_updated_timestamp" => field,
        other if other.contains('.') => {
            return Err(MlflowError::invalid(format!(
                "Invalid order by field name: {other}. Only metrics are supported."
            )))
        }
        other => {
            return Err(MlflowError::invalid(format!(
                "Invalid order by field name: {other}"
            )))
        }
    };
    Ok(ModelOrder::Column {
        column: model_column(canonical),
        ascending: o.ascending,
    })
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', ':', '.', '%', '"', '\'']) {
        return Err(MlflowError::invalid(format!(
            "Invalid model name '{name}'. Names must be non-empty and cannot contain the \
             characters / : . % \" '"
        )));
    }
    v::check_length("Model name", name, 500)
}

impl Tracking {
    pub async fn create_logged_model(
        &self,
        experiment_id: &str,
        name: Option<String>,
        model_type: Option<String>,
        source_run_id: Option<String>,
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
    ) -> Result<LoggedModel> {
        let experiment_id = v::parse_experiment_id(experiment_id)?;
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(run_names::generate);
        validate_name(&name)?;
        if let Some(run) = &source_run_id {
            v::validate_run_id(run)?;
        }
        self.store()
            .create_logged_model(NewLoggedModel {
                experiment_id,
                name,
                model_type,
                source_run_id: source_run_id.filter(|s| !s.is_empty()),
                params,
                tags,
            })
            .await
    }

    pub async fn get_logged_model(
        &self,
        model_id: &str,
        allow_deleted: bool,
    ) -> Result<LoggedModel> {
        self.store().get_logged_model(model_id, allow_deleted).await
    }

    pub async fn finalize_logged_model(&self, model_id: &str, status: i64) -> Result<LoggedModel> {
        self.store().set_logged_model_status(model_id, status).await
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.store().delete_logged_model(model_id).await
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[KeyValue]) -> Result<()> {
        for t in tags {
            v::check_length("Tag key", &t.key, v::MAX_ENTITY_KEY_LENGTH)?;
        }
        self.store()
            .set_logged_model_entries(model_id, tags, true)
            .await
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[KeyValue]) -> Result<()> {
        for p in params {
            v::check_length("Param key", &p.key, v::MAX_ENTITY_KEY_LENGTH)?;
        }
        self.store()
            .set_logged_model_entries(model_id, params, false)
            .await
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.store().delete_logged_model_tag(model_id, key).await
    }

    pub async fn search_logged_models(
        &self,
        experiment_ids: &[String],
        filter: Option<&str>,
        datasets: &[DatasetIn],
        order_by: &[ModelOrderIn],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Paged<LoggedModel>> {
        v::validate_max_results(max_results, v::SEARCH_MAX_RESULTS)?;
        let ids = experiment_ids
            .iter()
            .map(|id| v::parse_experiment_id(id))
            .collect::<Result<Vec<_>>>()?;
        let clauses = parse_filter(SearchTarget::LoggedModels, filter.unwrap_or(""))?;
        let order = order_by
            .iter()
            .map(model_order)
            .collect::<Result<Vec<_>>>()?;
        let datasets = datasets
            .iter()
            .map(
                |d| match d.dataset_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(name) => Ok(DatasetFilter {
                        name: name.to_string(),
                        digest: d.dataset_digest.clone(),
                    }),
                    None => Err(MlflowError::invalid(
                        "`dataset_name` in the `datasets` clause must be specified.",
                    )),
                },
            )
            .collect::<Result<Vec<_>>>()?;
        let offset = paging::decode(page_token)?;
        let page = self
            .store()
            .search_logged_models(&ids, &clauses, &datasets, &order, max_results, offset)
            .await?;
        let next = page
            .has_more
            .then(|| paging::encode(offset + page.items.len() as i64));
        Ok(Paged {
            items: page.items,
            next_page_token: next,
        })
    }
}
