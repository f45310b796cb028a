//! Registered scorers: the checks in front of the store.

use super::tracking::Tracking;
use crate::domain::scorers::{
    check_serialized_scorer, gateway_endpoint_ref, validate_scorer_name, with_gateway_model,
    OnlineScoringConfig, ScorerVersion,
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
        // MLflow keeps a gateway judge by endpoint id (so a rename keeps it working) and
        // binds the scorer to the endpoint; replies show the endpoint's name again.
        let Some(endpoint_name) = gateway_endpoint_ref(serialized) else {
            return self.store().register_scorer(exp, name, serialized).await;
        };
        let endpoint = self
            .store()
            .get_gateway_endpoint(None, Some(&endpoint_name))
            .await?;
        let stored = with_gateway_model(serialized, Some(&endpoint.endpoint_id));
        let version = self.store().register_scorer(exp, name, &stored).await?;
        self.store()
            .bind_scorer_to_endpoint(&endpoint.endpoint_id, &version.scorer_id, name)
            .await?;
        Ok(self.resolve_gateway_model(version).await)
    }

    /// A stored scorer as replies show it: its gateway endpoint by name, or no model when
    /// the endpoint is gone.
    async fn resolve_gateway_model(&self, mut s: ScorerVersion) -> ScorerVersion {
        if let Some(id) = gateway_endpoint_ref(&s.serialized_scorer) {
            let endpoint = self.store().get_gateway_endpoint(Some(&id), None).await;
            let name = endpoint.ok().and_then(|e| e.name);
            s.serialized_scorer = with_gateway_model(&s.serialized_scorer, name.as_deref());
        }
        s
    }

    async fn resolve_all(&self, versions: Vec<ScorerVersion>) -> Vec<ScorerVersion> {
        let mut out = Vec::with_capacity(versions.len());
        for s in versions {
            out.push(self.resolve_gateway_model(s).await);
        }
        out
    }

    /// The latest version of every scorer of these experiments (none given: of every active
    /// experiment); inactive or unknown experiments among several are skipped.
    pub async fn list_scorers(&self, experiment_ids: &[String]) -> Result<Vec<ScorerVersion>> {
        if let [one] = experiment_ids {
            let found = self
                .store()
                .list_scorers(v::parse_experiment_id(one)?)
                .await?;
            return Ok(self.resolve_all(found).await);
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
        Ok(self.resolve_all(out).await)
    }

    pub async fn scorer_versions(
        &self,
        experiment_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<Vec<ScorerVersion>> {
        let exp = v::parse_experiment_id(experiment_id)?;
        let found = self.store().scorer_versions(exp, name, version).await?;
        Ok(self.resolve_all(found).await)
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

    /// Creates or replaces the online scoring configuration of the experiment's scorer
    /// `name`: sampled traces are judged automatically, which MLflow allows only for judges
    /// behind the AI gateway.
    pub async fn upsert_online_scoring_config(
        &self,
        experiment_id: &str,
        name: &str,
        sample_rate: f64,
        filter_string: Option<String>,
    ) -> Result<OnlineScoringConfig> {
        if !(0.0..=1.0).contains(&sample_rate) {
            return Err(MlflowError::invalid(format!(
                "sample_rate must be between 0.0 and 1.0, got {}",
                crate::domain::traces::pyjson::py_float(sample_rate)
            )));
        }
        if let Some(f) = filter_string.as_deref().filter(|f| !f.is_empty()) {
            crate::domain::search::traces::parse_trace_filter(f)?;
        }
        let exp = v::parse_experiment_id(experiment_id)?;
        let latest = self
            .store()
            .scorer_versions(exp, name, None)
            .await?
            .pop()
            .ok_or_else(|| {
                MlflowError::not_found(format!(
                    "Scorer with name '{name}' not found for experiment {experiment_id}."
                ))
            })?;
        if sample_rate > 0.0 && gateway_endpoint_ref(&latest.serialized_scorer).is_none() {
            return Err(MlflowError::invalid(format!(
                "Scorer '{name}' does not use a gateway model. Automatic evaluation is only \
                 supported for scorers that use gateway models."
            )));
        }
        self.store()
            .upsert_online_scoring_config(exp, &latest.scorer_id, sample_rate, filter_string)
            .await
    }
}
