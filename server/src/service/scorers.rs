//! Registered scorers: the checks in front of the store.

use super::tracking::Tracking;
use crate::domain::scorers::{
    check_serialized_scorer, validate_scorer_name, OnlineScoringConfig, ScorerVersion,
};
use crate::domain::validation as v;
use crate::error::{MlflowError, Result};

/// Whether the operator allows `@scorer` functions (code) to be registered, as MLflow's
/// `MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS` does.
fn custom_scorers_allowed() -> bool {
    std::env::var("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS")
        .map(|s| matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1"))
        .unwrap_or(false)
}

impl Tracking {
    pub async fn register_scorer(
        &self,
        experiment_id: &str,
        name: &str,
        serialized: &str,
    ) -> Result<ScorerVersion> {
        check_serialized_scorer(serialized, custom_scorers_allowed())?;
        validate_scorer_name(name)?;
        let exp = v::parse_experiment_id(experiment_id)?;
        self.store().register_scorer(exp, name, serialized).await
    }

    /// The latest version of every scorer of these experiments (none given: of every active
    /// experiment); inactive or unknown experiments among several are skipped.
    pub async fn list_scorers(&self, experiment_ids: &[String]) -> Result<Vec<ScorerVersion>> {
        if let [one] = experiment_ids {
            return self
                .store()
                .list_scorers(v::parse_experiment_id(one)?)
                .await;
        }
        let ids: Vec<String> = if experiment_ids.is_empty() {
            self.list_active_experiments()
                .await?
                .into_iter()
                .map(|e| e.experiment_id)
                .collect()
        } else {
            experiment_ids.to_vec()
        };
        let mut out = Vec::new();
        for id in ids {
            let id = v::parse_experiment_id(&id)?;
            if let Ok(found) = self.store().list_scorers(id).await {
                out.extend(found);
            }
        }
        out.sort_by(|a, b| {
            (a.experiment_id, &a.scorer_name).cmp(&(b.experiment_id, &b.scorer_name))
        });
        Ok(out)
    }

    pub async fn scorer_versions(
        &self,
        experiment_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<Vec<ScorerVersion>> {
        let exp = v::parse_experiment_id(experiment_id)?;
        self.store().scorer_versions(exp, name, version).await
    }

    /// One version, or the latest one.
    pub async fn get_scorer(
        &self,
        experiment_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<ScorerVersion> {
        let mut all = self.scorer_versions(experiment_id, name, version).await?;
        all.pop().ok_or_else(|| {
            MlflowError::not_found(format!(
                "Scorer with name '{name}' not found for experiment {experiment_id}."
            ))
        })
    }

    pub async fn delete_scorer(
        &self,
        experiment_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<()> {
        let exp = v::parse_experiment_id(experiment_id)?;
        self.store().delete_scorer(exp, name, version).await
    }

    pub async fn online_scoring_configs(
        &self,
        scorer_ids: &[String],
    ) -> Result<Vec<OnlineScoringConfig>> {
        self.store().online_scoring_configs(scorer_ids).await
    }
}
