//! Evaluation datasets (`mlflow.genai.datasets`): the checks in front of the store.

use super::tracking::{paged, Paged, Tracking};
use crate::domain::datasets::{parse_records, parse_tags, Dataset, DatasetRecord};
use crate::domain::paging;
use crate::domain::search::{parse_filter, parse_order_by, SearchTarget};
use crate::domain::validation::SEARCH_MAX_RESULTS;
use crate::error::{MlflowError, Result};

/// Dataset searches return at most this many per page unless asked otherwise.
pub const DATASETS_PAGE_DEFAULT: i64 = 1000;

impl Tracking {
    /// `tags` is the JSON object the client sends as a string.
    pub async fn create_dataset(
        &self,
        name: &str,
        tags: Option<&str>,
        experiment_ids: Vec<String>,
    ) -> Result<Dataset> {
        if name.is_empty() {
            return Err(MlflowError::missing("name"));
        }
        let tags = match tags.filter(|t| !t.is_empty()) {
            Some(t) => parse_tags(t)?,
            None => Vec::new(),
        };
        self.store()
            .create_dataset(name, &tags, &experiment_ids)
            .await
    }

    pub async fn get_dataset(&self, dataset_id: &str) -> Result<Dataset> {
        self.store().get_dataset(dataset_id).await
    }

    pub async fn delete_dataset(&self, dataset_id: &str) -> Result<()> {
        self.store().delete_dataset(dataset_id).await
    }

    pub async fn search_datasets(
        &self,
        experiment_ids: Vec<String>,
        filter: Option<&str>,
        max_results: Option<i64>,
        order_by: &[String],
        page_token: Option<&str>,
    ) -> Result<Paged<Dataset>> {
        let max = max_results.unwrap_or(DATASETS_PAGE_DEFAULT);
        if !(1..=SEARCH_MAX_RESULTS).contains(&max) {
            return Err(MlflowError::invalid(format!(
                "Invalid value {max} for parameter 'max_results' supplied. It must be a \
                 positive integer of at most {SEARCH_MAX_RESULTS}"
            )));
        }
        let clauses = match filter.filter(|f| !f.trim().is_empty()) {
            Some(f) => parse_filter(SearchTarget::EvaluationDatasets, f)?,
            None => Vec::new(),
        };
        let order = parse_order_by(SearchTarget::EvaluationDatasets, order_by)?;
        let offset = paging::decode(page_token)?;
        let page = self
            .store()
            .search_datasets(&experiment_ids, &clauses, &order, max, offset)
            .await?;
        Ok(paged(page.items, page.has_more, offset))
    }

    pub async fn set_dataset_tags(&self, dataset_id: &str, tags: &str) -> Result<()> {
        let tags = parse_tags(tags)?;
        self.store().set_dataset_tags(dataset_id, &tags).await
    }

    pub async fn delete_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<()> {
        self.store().delete_dataset_tag(dataset_id, key).await
    }

    /// `records` is the JSON array the client sends as a string; returns (inserted, updated).
    pub async fn upsert_dataset_records(
        &self,
        dataset_id: &str,
        records: &str,
    ) -> Result<(i64, i64)> {
        let records = parse_records(records)?;
        self.store()
            .upsert_dataset_records(dataset_id, &records)
            .await
    }

    pub async fn dataset_records(
        &self,
        dataset_id: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<(Vec<DatasetRecord>, Option<String>)> {
        let max = max_results
            .filter(|m| *m > 0)
            .unwrap_or(DATASETS_PAGE_DEFAULT);
        self.store()
            .dataset_records(dataset_id, Some(max), page_token)
            .await
    }

    pub async fn delete_dataset_records(&self, dataset_id: &str, ids: &[String]) -> Result<i64> {
        self.store().delete_dataset_records(dataset_id, ids).await
    }

    pub async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>> {
        self.store().dataset_experiment_ids(dataset_id).await
    }

    /// Adds the dataset to experiments (`add`) or removes it from them.
    pub async fn change_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
        add: bool,
    ) -> Result<Dataset> {
        self.store()
            .change_dataset_experiments(dataset_id, experiment_ids, add)
            .await
    }
}
