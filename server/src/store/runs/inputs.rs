//! Dataset inputs, model inputs and model outputs of runs: recording and reading them.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{NewDatasetInput, CHUNK};
use crate::error::Result;
use crate::store::sql::{get_i64, get_str};
use crate::store::Store;
use crate::wire::{
    Dataset, DatasetInput, KeyValue, ModelInput, ModelOutput, RunData, RunInputs, RunOutputs,
};

impl Store {
    pub(super) async fn load_inputs(
        &self,
        conn: &mut AnyConnection,
        ids: &[String],
        data: &mut HashMap<String, (RunData, RunInputs, RunOutputs)>,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push(
            "SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, \
             d.dataset_source, d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d \
             ON d.dataset_uuid = i.source_id WHERE i.source_type = 'DATASET' AND \
             i.destination_type = 'RUN' AND i.destination_id IN ",
        )
        .bind_list(ids);
        let rows = sql.query().fetch_all(&mut *conn).await?;
        if !rows.is_empty() {
            let input_ids: Vec<String> = rows
                .iter()
                .filter_map(|r| get_str(r, "input_uuid"))
                .collect();
            let mut tags: HashMap<String, Vec<KeyValue>> = HashMap::new();
            for chunk in input_ids.chunks(CHUNK) {
                let mut sql = self.sql();
                sql.push("SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN ")
                    .bind_list(chunk);
                for row in sql.query().fetch_all(&mut *conn).await? {
                    tags.entry(get_str(&row, "input_uuid").unwrap_or_default())
                        .or_default()
                        .push(KeyValue {
                            key: get_str(&row, "name").unwrap_or_default(),
                            value: get_str(&row, "value").unwrap_or_default(),
                        });
                }
            }
            for row in rows {
                let run_id = get_str(&row, "destination_id").unwrap_or_default();
                let input_id = get_str(&row, "input_uuid").unwrap_or_default();
                let entry = data.entry(run_id).or_default();
                entry.1.dataset_inputs.push(DatasetInput {
                    tags: tags.remove(&input_id).unwrap_or_default(),
                    dataset: Dataset {
                        name: get_str(&row, "name").unwrap_or_default(),
                        digest: get_str(&row, "digest").unwrap_or_default(),
                        source_type: get_str(&row, "dataset_source_type").unwrap_or_default(),
                        source: get_str(&row, "dataset_source").unwrap_or_default(),
                        schema: get_str(&row, "dataset_schema"),
                        profile: get_str(&row, "dataset_profile"),
                    },
                });
            }
        }
        let mut sql = self.sql();
        sql.push(
            "SELECT source_id, destination_id, source_type, step FROM inputs WHERE \
             ((source_type = 'RUN_INPUT' AND destination_type = 'MODEL_INPUT') OR \
             (source_type = 'RUN_OUTPUT' AND destination_type = 'MODEL_OUTPUT')) AND source_id IN ",
        )
        .bind_list(ids);
        for row in sql.query().fetch_all(&mut *conn).await? {
            let entry = data
                .entry(get_str(&row, "source_id").unwrap_or_default())
                .or_default();
            let model_id = get_str(&row, "destination_id").unwrap_or_default();
            if get_str(&row, "source_type").as_deref() == Some("RUN_INPUT") {
                entry.1.model_inputs.push(ModelInput { model_id });
            } else {
                entry.2.model_outputs.push(ModelOutput {
                    model_id,
                    step: get_i64(&row, "step").unwrap_or(0),
                });
            }
        }
        Ok(())
    }

    /// Records dataset inputs (de-duplicated by name and digest) and model inputs.
    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[NewDatasetInput],
        model_ids: &[String],
    ) -> Result<()> {
        let experiment_id: i64 = self
            .fetch_info(run_id)
            .await?
            .experiment_id
            .parse()
            .unwrap_or(0);
        self.write(|tx, _| {
            Box::pin(async move {
                self.active_run_in(&mut *tx, run_id).await?;
                for input in datasets {
                    let d = &input.dataset;
                    let mut sql = self.sql();
                    sql.push("SELECT dataset_uuid FROM datasets WHERE experiment_id = ")
                        .bind(experiment_id)
                        .push(" AND name = ")
                        .bind(&d.name)
                        .push(" AND digest = ")
                        .bind(&d.digest);
                    let dataset_uuid = match sql.query().fetch_optional(&mut *tx).await? {
                        Some(row) => get_str(&row, "dataset_uuid").unwrap_or_default(),
                        None => {
                            let id = uuid::Uuid::new_v4().simple().to_string();
                            let mut sql = self.sql();
                            sql.push(
                                "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, \
                         dataset_source_type, dataset_source, dataset_schema, dataset_profile) \
                         VALUES (",
                            )
                            .bind(&id)
                            .push(", ")
                            .bind(experiment_id)
                            .push(", ")
                            .bind(&d.name)
                            .push(", ")
                            .bind(&d.digest)
                            .push(", ")
                            .bind(&d.source_type)
                            .push(", ")
                            .bind(&d.source)
                            .push(", ")
                            .bind(d.schema.clone())
                            .push(", ")
                            .bind(d.profile.clone())
                            .push(")");
                            sql.query().execute(&mut *tx).await?;
                            id
                        }
                    };
                    let mut sql = self.sql();
                    sql.push(
                "SELECT input_uuid FROM inputs WHERE source_type = 'DATASET' AND source_id = ",
            )
            .bind(&dataset_uuid)
            .push(" AND destination_type = 'RUN' AND destination_id = ")
            .bind(run_id);
                    if sql.query().fetch_optional(&mut *tx).await?.is_some() {
                        continue;
                    }
                    let input_uuid = uuid::Uuid::new_v4().simple().to_string();
                    self.insert_input(
                        &mut *tx,
                        &input_uuid,
                        "DATASET",
                        &dataset_uuid,
                        "RUN",
                        run_id,
                        0,
                    )
                    .await?;
                    for tag in &input.tags {
                        let mut sql = self.sql();
                        sql.push("INSERT INTO input_tags (input_uuid, name, value) VALUES (")
                            .bind(&input_uuid)
                            .push(", ")
                            .bind(&tag.key)
                            .push(", ")
                            .bind(&tag.value)
                            .push(")");
                        sql.query().execute(&mut *tx).await?;
                    }
                }
                for model_id in model_ids {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    self.insert_input(
                        &mut *tx,
                        &id,
                        "RUN_INPUT",
                        run_id,
                        "MODEL_INPUT",
                        model_id,
                        0,
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Records logged-model outputs of a run.
    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                self.active_run_in(&mut *tx, run_id).await?;
                for m in models {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    self.insert_input(
                        &mut *tx,
                        &id,
                        "RUN_OUTPUT",
                        run_id,
                        "MODEL_OUTPUT",
                        &m.model_id,
                        m.step,
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_input(
        &self,
        conn: &mut AnyConnection,
        input_uuid: &str,
        source_type: &str,
        source_id: &str,
        destination_type: &str,
        destination_id: &str,
        step: i64,
    ) -> Result<()> {
        let mut sql = self.sql();
        sql.push(&self.dialect.insert_ignore(
            "inputs",
            "input_uuid, source_type, source_id, destination_type, destination_id, step",
        ))
        .push("(")
        .bind(input_uuid)
        .push(", ")
        .bind(source_type)
        .push(", ")
        .bind(source_id)
        .push(", ")
        .bind(destination_type)
        .push(", ")
        .bind(destination_id)
        .push(", ")
        .bind(step)
        .push(")")
        .push(self.dialect.insert_ignore_suffix());
        sql.query().execute(&mut *conn).await?;
        Ok(())
    }
}
