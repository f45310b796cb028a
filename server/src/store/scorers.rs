//! Registered scorers in `scorers` (one row per experiment and name) and `scorer_versions`
//! (the serialized scorer of each version), and the online scoring configurations that the
//! scorers that judge sampled traces automatically (`online_scoring_configs`), and the
//! binding of a gateway judge to its endpoint (`endpoint_bindings`).

use sqlx::any::AnyRow;

use super::sql::{get_f64, get_i64, get_str, Sql};
use super::{now_ms, Store};
use crate::domain::scorers::{OnlineScoringConfig, ScorerVersion};
use crate::error::{MlflowError, Result};

const VERSION_SELECT: &str = "SELECT s.experiment_id, s.scorer_name, v.scorer_version, \
     v.serialized_scorer, v.creation_time, s.scorer_id FROM scorer_versions v \
     JOIN scorers s ON s.scorer_id = v.scorer_id";

fn version_from_row(row: &AnyRow) -> ScorerVersion {
    ScorerVersion {
        experiment_id: get_i64(row, "experiment_id").unwrap_or_default(),
        scorer_name: get_str(row, "scorer_name").unwrap_or_default(),
        scorer_version: get_i64(row, "scorer_version").unwrap_or_default(),
        serialized_scorer: get_str(row, "serialized_scorer").unwrap_or_default(),
        creation_time: get_i64(row, "creation_time").unwrap_or_default(),
        scorer_id: get_str(row, "scorer_id").unwrap_or_default(),
    }
}

fn scorer_not_found(experiment_id: i64, name: &str, version: Option<i64>) -> MlflowError {
    MlflowError::not_found(match version {
        Some(v) => format!(
            "Scorer with name '{name}' and version {v} not found for experiment {experiment_id}."
        ),
        None => format!("Scorer with name '{name}' not found for experiment {experiment_id}."),
    })
}

impl Store {
    /// Adds the next version of the experiment's scorer `name` (creating the scorer).
    pub async fn register_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        serialized: &str,
    ) -> Result<ScorerVersion> {
        self.require_active_experiment(experiment_id).await?;
        let (scorer_id, version) = self
            .write(|tx, _| {
                Box::pin(async move {
                    let d = self.dialect;
                    let mut sql = Sql::new(d);
                    sql.push("SELECT scorer_id FROM scorers WHERE experiment_id = ")
                        .bind(experiment_id)
                        .push(" AND scorer_name = ")
                        .bind(name)
                        .push(d.row_lock());
                    let scorer_id = match sql.query().fetch_optional(&mut *tx).await? {
                        Some(row) => get_str(&row, "scorer_id").unwrap_or_default(),
                        None => {
                            let id = uuid::Uuid::new_v4().to_string();
                            let mut sql = Sql::new(d);
                            sql.push(
                        "INSERT INTO scorers (experiment_id, scorer_name, scorer_id) VALUES (",
                    )
                    .bind(experiment_id)
                    .push(", ")
                    .bind(name)
                    .push(", ")
                    .bind(id.as_str())
                    .push(")");
                            sql.query().execute(&mut *tx).await?;
                            id
                        }
                    };
                    let mut sql = Sql::new(d);
                    sql.push("SELECT MAX(scorer_version) AS max_version FROM scorer_versions WHERE scorer_id = ")
                        .bind(scorer_id.as_str());
                    let max = get_i64(&sql.query().fetch_one(&mut *tx).await?, "max_version");
                    let version = max.map_or(1, |m| m + 1);
                    let mut sql = Sql::new(d);
                    sql.push(
                "INSERT INTO scorer_versions (scorer_id, scorer_version, serialized_scorer, \
                 creation_time) VALUES (",
            )
            .bind(scorer_id.as_str())
            .push(", ")
            .bind(version)
            .push(", ")
            .bind(serialized)
            .push(", ")
            .bind(now_ms())
            .push(")");
                    sql.query().execute(&mut *tx).await?;
                    Ok((scorer_id.clone(), version))
                })
            })
            .await?;
        let mut sql = self.sql();
        sql.push(VERSION_SELECT)
            .push(" WHERE v.scorer_id = ")
            .bind(scorer_id)
            .push(" AND v.scorer_version = ")
            .bind(version);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| scorer_not_found(experiment_id, name, Some(version)))?;
        Ok(version_from_row(&row))
    }

    /// The latest version of each of the experiment's scorers, by name.
    pub async fn list_scorers(&self, experiment_id: i64) -> Result<Vec<ScorerVersion>> {
        self.require_active_experiment(experiment_id).await?;
        let mut sql = self.sql();
        sql.push(VERSION_SELECT)
            .push(" WHERE s.experiment_id = ")
            .bind(experiment_id)
            .push(
                " AND v.scorer_version = (SELECT MAX(m.scorer_version) FROM scorer_versions m \
                 WHERE m.scorer_id = v.scorer_id) ORDER BY s.scorer_name",
            );
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(version_from_row)
            .collect())
    }

    /// Versions of one scorer, oldest first (`version`: only that one); not found if none.
    pub async fn scorer_versions(
        &self,
        experiment_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<Vec<ScorerVersion>> {
        self.require_active_experiment(experiment_id).await?;
        let mut sql = self.sql();
        sql.push(VERSION_SELECT)
            .push(" WHERE s.experiment_id = ")
            .bind(experiment_id)
            .push(" AND s.scorer_name = ")
            .bind(name);
        if let Some(v) = version {
            sql.push(" AND v.scorer_version = ").bind(v);
        }
        sql.push(" ORDER BY v.scorer_version");
        let found: Vec<ScorerVersion> = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(version_from_row)
            .collect();
        if found.is_empty() {
            return Err(scorer_not_found(experiment_id, name, version));
        }
        Ok(found)
    }

    /// Deletes one version, or (`version` `None`) the scorer with all its versions.
    pub async fn delete_scorer(
        &self,
        experiment_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> Result<()> {
        let scorer_id = self
            .scorer_versions(experiment_id, name, version)
            .await?
            .remove(0)
            .scorer_id;
        let scorer_id = &scorer_id;
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push("DELETE FROM scorer_versions WHERE scorer_id = ")
                    .bind(scorer_id.as_str());
                if let Some(v) = version {
                    sql.push(" AND scorer_version = ").bind(v);
                }
                sql.query().execute(&mut *tx).await?;
                if version.is_none() {
                    for (table, column) in [
                        ("online_scoring_configs", "scorer_id"),
                        ("endpoint_bindings", "resource_id"),
                        ("scorers", "scorer_id"),
                    ] {
                        let mut sql = Sql::new(d);
                        sql.push(&format!("DELETE FROM {table} WHERE {column} = "))
                            .bind(scorer_id.as_str());
                        if table == "endpoint_bindings" {
                            sql.push(" AND resource_type = ").bind("scorer");
                        }
                        sql.query().execute(&mut *tx).await?;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    /// The online scoring configurations of these scorers.
    pub async fn online_scoring_configs(
        &self,
        scorer_ids: &[String],
    ) -> Result<Vec<OnlineScoringConfig>> {
        if scorer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = self.sql();
        sql.push(
            "SELECT online_scoring_config_id, scorer_id, sample_rate, experiment_id, \
             filter_string FROM online_scoring_configs WHERE scorer_id IN ",
        )
        .bind_list(scorer_ids);
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|row| OnlineScoringConfig {
                online_scoring_config_id: get_str(row, "online_scoring_config_id")
                    .unwrap_or_default(),
                scorer_id: get_str(row, "scorer_id").unwrap_or_default(),
                sample_rate: get_f64(row, "sample_rate").unwrap_or_default(),
                experiment_id: get_i64(row, "experiment_id")
                    .unwrap_or_default()
                    .to_string(),
                filter_string: get_str(row, "filter_string"),
            })
            .collect())
    }

    /// Replaces the online scoring configuration of a scorer.
    pub async fn upsert_online_scoring_config(
        &self,
        experiment_id: i64,
        scorer_id: &str,
        sample_rate: f64,
        filter_string: Option<String>,
    ) -> Result<OnlineScoringConfig> {
        let config_id = uuid::Uuid::new_v4().simple().to_string();
        let (id, filter) = (&config_id, &filter_string);
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = Sql::new(self.dialect);
                sql.push("DELETE FROM online_scoring_configs WHERE scorer_id = ")
                    .bind(scorer_id);
                sql.query().execute(&mut *tx).await?;
                let mut sql = Sql::new(self.dialect);
                sql.push(
                    "INSERT INTO online_scoring_configs (online_scoring_config_id, scorer_id, \
                 sample_rate, experiment_id, filter_string) VALUES (",
                )
                .bind(id.as_str())
                .push(", ")
                .bind(scorer_id)
                .push(", ")
                .bind(sample_rate)
                .push(", ")
                .bind(experiment_id)
                .push(", ")
                .bind(filter.clone())
                .push(")");
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await?;
        Ok(OnlineScoringConfig {
            online_scoring_config_id: config_id,
            scorer_id: scorer_id.to_string(),
            sample_rate,
            experiment_id: experiment_id.to_string(),
            filter_string,
        })
    }

    /// Makes `endpoint_id` the one endpoint bound to the scorer (re-registration moves it).
    pub async fn bind_scorer_to_endpoint(
        &self,
        endpoint_id: &str,
        scorer_id: &str,
        display_name: &str,
    ) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                let mut sql = Sql::new(self.dialect);
                sql.push("DELETE FROM endpoint_bindings WHERE resource_type = ")
                    .bind("scorer")
                    .push(" AND resource_id = ")
                    .bind(scorer_id);
                sql.query().execute(&mut *tx).await?;
                let now = now_ms();
                let mut sql = Sql::new(self.dialect);
                sql.push(
                    "INSERT INTO endpoint_bindings (endpoint_id, resource_type, resource_id, \
                 created_at, last_updated_at, display_name) VALUES (",
                )
                .bind(endpoint_id)
                .push(", ")
                .bind("scorer")
                .push(", ")
                .bind(scorer_id)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(display_name)
                .push(")");
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await
    }
}
