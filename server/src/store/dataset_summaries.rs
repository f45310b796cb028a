//! The datasets runs of some experiments were logged with (`inputs` from `datasets` to runs),
//! one row per dataset and context, as MLflow's `SearchDatasets` lists them for the UI.

use super::sql::get_str;
use super::Store;
use crate::error::{MlflowError, Result};

/// MLflow answers at most this many summaries.
const MAX_SUMMARIES: i64 = 1000;

/// One dataset as the experiment page's dataset filter shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Store {
    pub async fn search_dataset_summaries(
        &self,
        experiment_ids: &[String],
    ) -> Result<Vec<DatasetSummary>> {
        let ids = experiment_ids
            .iter()
            .map(|id| {
                id.parse::<i64>()
                    .map_err(|_| MlflowError::invalid(format!("Invalid experiment ID: '{id}'")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut sql = self.sql();
        sql.push(
            "SELECT DISTINCT d.experiment_id, d.name, d.digest, it.value FROM datasets d \
             JOIN inputs i ON i.source_id = d.dataset_uuid AND i.source_type = 'DATASET' \
             LEFT JOIN input_tags it ON it.input_uuid = i.input_uuid \
             AND it.name = 'mlflow.data.context' WHERE d.experiment_id IN ",
        )
        .bind_list(ids);
        sql.push(" ORDER BY d.experiment_id, d.name, d.digest LIMIT ")
            .bind(MAX_SUMMARIES);
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|row| DatasetSummary {
                experiment_id: super::sql::get_i64(row, "experiment_id")
                    .map(|n| n.to_string())
                    .or_else(|| get_str(row, "experiment_id"))
                    .unwrap_or_default(),
                name: get_str(row, "name").unwrap_or_default(),
                digest: get_str(row, "digest").unwrap_or_default(),
                context: get_str(row, "value"),
            })
            .collect())
    }
}
