//! Evaluation datasets in `evaluation_datasets` with their tags (`evaluation_dataset_tags`)
//! and their experiments (`entity_associations`, source `evaluation_dataset`, destination
//! `experiment`), as MLflow's SQL store keeps them. The records are in `dataset_records`.

use sqlx::any::AnyRow;

use super::search::{dataset_clause, dataset_order};
use super::sql::{get_i64, get_str, Dialect, Sql};
use super::{now_ms, Page, Store};
use crate::domain::datasets::{digest, new_dataset_id, Dataset, USER_TAG};
use crate::domain::search::{Clause, OrderKey};
use crate::error::{MlflowError, Result};

pub(super) const DATASET_SOURCE: &str = "evaluation_dataset";
const EXPERIMENT_DESTINATION: &str = "experiment";

/// The `schema` column, a reserved word in MySQL.
pub(super) fn schema_col(d: Dialect) -> &'static str {
    match d {
        Dialect::Mysql => "`schema`",
        _ => "schema",
    }
}

fn dataset_columns(d: Dialect) -> String {
    format!(
        "d.dataset_id, d.name, d.{}, d.profile, d.digest, d.created_time, d.last_update_time, \
         d.created_by, d.last_updated_by",
        schema_col(d)
    )
}

fn dataset_from_row(row: &AnyRow) -> Dataset {
    Dataset {
        dataset_id: get_str(row, "dataset_id").unwrap_or_default(),
        name: get_str(row, "name").unwrap_or_default(),
        tags: Vec::new(),
        schema: get_str(row, "schema"),
        profile: get_str(row, "profile"),
        digest: get_str(row, "digest").unwrap_or_default(),
        created_time: get_i64(row, "created_time").unwrap_or_default(),
        last_update_time: get_i64(row, "last_update_time").unwrap_or_default(),
        created_by: get_str(row, "created_by"),
        last_updated_by: get_str(row, "last_updated_by"),
        experiment_ids: None,
    }
}

pub(super) fn dataset_not_found(dataset_id: &str) -> MlflowError {
    MlflowError::not_found(format!(
        "Evaluation dataset with id '{dataset_id}' not found"
    ))
}

/// The INSERT of tags, overwriting the value of a key that exists.
fn tags_upsert(d: Dialect, dataset_id: &str, tags: &[(String, String)]) -> Sql {
    let key = d.key_col();
    let mut sql = Sql::new(d);
    sql.push(&format!(
        "INSERT INTO evaluation_dataset_tags (dataset_id, {key}, value) VALUES "
    ));
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(dataset_id)
            .push(", ")
            .bind(k.as_str())
            .push(", ")
            .bind(v.as_str())
            .push(")");
    }
    sql.push(&d.upsert_columns(&["dataset_id", key], &["value"]));
    sql
}

/// Rows of `entity_associations` from the dataset to each experiment (existing pairs skipped).
fn associate(d: Dialect, dataset_id: &str, experiment_id: &str, created: i64) -> Sql {
    let mut sql = Sql::new(d);
    sql.push(&d.insert_ignore(
        "entity_associations",
        "association_id, source_type, source_id, destination_type, destination_id, created_time",
    ))
    .push("(")
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .push(", ")
    .bind(DATASET_SOURCE)
    .push(", ")
    .bind(dataset_id)
    .push(", ")
    .bind(EXPERIMENT_DESTINATION)
    .push(", ")
    .bind(experiment_id)
    .push(", ")
    .bind(created)
    .push(")")
    .push(d.insert_ignore_suffix());
    sql
}

impl Store {
    /// Creates a dataset with its tags and experiments (the `mlflow.user` tag names its
    /// creator); no schema or profile until records arrive.
    pub async fn create_dataset(
        &self,
        name: &str,
        tags: &[(String, String)],
        experiment_ids: &[String],
    ) -> Result<Dataset> {
        let id = new_dataset_id();
        let now = now_ms();
        let user = tags
            .iter()
            .rev()
            .find(|(k, _)| k == USER_TAG)
            .map(|(_, v)| v.clone());
        let id = &id;
        let user = &user;
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push(
                    "INSERT INTO evaluation_datasets (dataset_id, name, digest, created_time, \
                 last_update_time, created_by, last_updated_by) VALUES (",
                )
                .bind(id.as_str())
                .push(", ")
                .bind(name)
                .push(", ")
                .bind(digest(name, now))
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(user.clone())
                .push(", ")
                .bind(user.clone())
                .push(")");
                sql.query().execute(&mut *tx).await?;
                if !tags.is_empty() {
                    tags_upsert(d, id, tags).query().execute(&mut *tx).await?;
                }
                for exp in experiment_ids {
                    associate(d, id, exp, now).query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await?;
        let mut dataset = self.get_dataset(id).await?;
        dataset.experiment_ids = Some(experiment_ids.to_vec());
        Ok(dataset)
    }

    /// Attaches each dataset's tags.
    async fn with_tags(&self, mut datasets: Vec<Dataset>) -> Result<Vec<Dataset>> {
        if datasets.is_empty() {
            return Ok(datasets);
        }
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT dataset_id, {}, value FROM evaluation_dataset_tags WHERE dataset_id IN ",
            self.dialect.key_col()
        ))
        .bind_list(datasets.iter().map(|d| d.dataset_id.clone()));
        sql.push(&format!(" ORDER BY {}", self.dialect.key_col()));
        for row in self.fetch_all(&sql).await? {
            let id = get_str(&row, "dataset_id").unwrap_or_default();
            if let Some(ds) = datasets.iter_mut().find(|d| d.dataset_id == id) {
                ds.tags.push((
                    get_str(&row, "key").unwrap_or_default(),
                    get_str(&row, "value").unwrap_or_default(),
                ));
            }
        }
        Ok(datasets)
    }

    async fn find_dataset(&self, dataset_id: &str) -> Result<Option<Dataset>> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(&dataset_columns(self.dialect))
            .push(" FROM evaluation_datasets d WHERE d.dataset_id = ")
            .bind(dataset_id);
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(None);
        };
        Ok(self.with_tags(vec![dataset_from_row(&row)]).await?.pop())
    }

    pub async fn get_dataset(&self, dataset_id: &str) -> Result<Dataset> {
        self.find_dataset(dataset_id)
            .await?
            .ok_or_else(|| dataset_not_found(dataset_id))
    }

    /// Deletes a dataset with its records, tags and associations; absent: nothing to do.
    pub async fn delete_dataset(&self, dataset_id: &str) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push("DELETE FROM entity_associations WHERE (source_type = ")
                    .bind(DATASET_SOURCE)
                    .push(" AND source_id = ")
                    .bind(dataset_id)
                    .push(") OR (destination_type = ")
                    .bind(DATASET_SOURCE)
                    .push(" AND destination_id = ")
                    .bind(dataset_id)
                    .push(")");
                sql.query().execute(&mut *tx).await?;
                for table in [
                    "evaluation_dataset_records",
                    "evaluation_dataset_tags",
                    "evaluation_datasets",
                ] {
                    let mut sql = Sql::new(d);
                    sql.push(&format!("DELETE FROM {table} WHERE dataset_id = "))
                        .bind(dataset_id);
                    sql.query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// One page of datasets matching the clauses, optionally only those of some experiments.
    pub async fn search_datasets(
        &self,
        experiment_ids: &[String],
        clauses: &[Clause],
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Dataset>> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(&dataset_columns(self.dialect))
            .push(" FROM evaluation_datasets d WHERE 1 = 1");
        if !experiment_ids.is_empty() {
            sql.push(
                " AND d.dataset_id IN (SELECT ea.source_id FROM entity_associations ea \
                 WHERE ea.source_type = ",
            )
            .bind(DATASET_SOURCE)
            .push(" AND ea.destination_type = ")
            .bind(EXPERIMENT_DESTINATION)
            .push(" AND ea.destination_id IN ")
            .bind_list(experiment_ids)
            .push(")");
        }
        for clause in clauses {
            sql.push(" AND ");
            dataset_clause(&mut sql, clause);
        }
        dataset_order(&mut sql, order);
        let (items, has_more) = self
            .fetch_page(sql, max_results, offset, dataset_from_row)
            .await?;
        Ok(Page {
            items: self.with_tags(items).await?,
            has_more,
        })
    }

    /// Sets tags (existing keys get the new value).
    pub async fn set_dataset_tags(
        &self,
        dataset_id: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        if self.find_dataset(dataset_id).await?.is_none() {
            return Err(MlflowError::not_found(format!(
                "Could not find evaluation dataset with ID {dataset_id}"
            )));
        }
        if tags.is_empty() {
            return Ok(());
        }
        self.write(|tx, _| {
            Box::pin(async move {
                tags_upsert(self.dialect, dataset_id, tags)
                    .query()
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Deletes a tag; an absent dataset or tag is nothing to do.
    pub async fn delete_dataset_tag(&self, dataset_id: &str, key: &str) -> Result<()> {
        let mut sql = self.sql();
        sql.push("DELETE FROM evaluation_dataset_tags WHERE dataset_id = ")
            .bind(dataset_id)
            .push(&format!(" AND {} = ", self.dialect.key_col()))
            .bind(key);
        let sql = &sql;
        self.write(|tx, _| {
            Box::pin(async move {
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await
    }

    /// The experiments a dataset belongs to, in the order they were associated.
    pub async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>> {
        let mut sql = self.sql();
        sql.push("SELECT destination_id FROM entity_associations WHERE source_type = ")
            .bind(DATASET_SOURCE)
            .push(" AND source_id = ")
            .bind(dataset_id)
            .push(" AND destination_type = ")
            .bind(EXPERIMENT_DESTINATION)
            .push(" ORDER BY created_time, destination_id");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .filter_map(|r| get_str(r, "destination_id"))
            .collect())
    }

    /// Adds (`add`) or removes the dataset's associations with experiments; the dataset's
    /// update time moves when anything changed (always, for an add, as MLflow does).
    pub async fn change_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
        add: bool,
    ) -> Result<Dataset> {
        if self.find_dataset(dataset_id).await?.is_none() {
            return Err(MlflowError::not_found(format!(
                "Dataset '{dataset_id}' not found"
            )));
        }
        if add {
            for exp in experiment_ids {
                let mut sql = self.sql();
                sql.push("SELECT experiment_id FROM experiments WHERE experiment_id = ")
                    .bind(exp.parse::<i64>().unwrap_or(-1));
                if self.fetch_optional(&sql).await?.is_none() {
                    return Err(MlflowError::not_found(format!(
                        "No Experiment with id={exp}"
                    )));
                }
            }
        }
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut changed = add;
                for exp in experiment_ids {
                    if add {
                        associate(d, dataset_id, exp, now_ms())
                            .query()
                            .execute(&mut *tx)
                            .await?;
                    } else {
                        let mut sql = Sql::new(d);
                        sql.push("DELETE FROM entity_associations WHERE source_type = ")
                            .bind(DATASET_SOURCE)
                            .push(" AND source_id = ")
                            .bind(dataset_id)
                            .push(" AND destination_type = ")
                            .bind(EXPERIMENT_DESTINATION)
                            .push(" AND destination_id = ")
                            .bind(exp.as_str());
                        changed |= sql.query().execute(&mut *tx).await?.rows_affected() > 0;
                    }
                }
                if changed {
                    let mut sql = Sql::new(d);
                    sql.push("UPDATE evaluation_datasets SET last_update_time = ")
                        .bind(now_ms())
                        .push(" WHERE dataset_id = ")
                        .bind(dataset_id);
                    sql.query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await?;
        self.get_dataset(dataset_id).await
    }
}
