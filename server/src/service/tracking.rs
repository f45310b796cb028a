//! Experiments, runs and metrics.

use crate::domain::model_history;
use crate::domain::paging;
use crate::domain::run_names;
use crate::domain::search::{parse_filter, parse_order_by, SearchTarget};
use crate::domain::validation::{self as v, KeyKind};
use crate::error::{MlflowError, Result};
use crate::store::{Batch, NewDatasetInput, NewMetric, RunUpdate, Store, RUN_NAME_TAG};
use crate::wire::{Experiment, KeyValue, Metric, ModelOutput, Run, RunInfo, ViewType};

/// A page of results and the token for the next one.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// What a log-batch request carries, before validation.
#[derive(Debug, Default)]
pub struct LogBatch {
    pub metrics: Vec<NewMetric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

/// The tracking service.
#[derive(Clone)]
pub struct Tracking {
    store: Store,
}

pub(super) fn paged<T>(items: Vec<T>, has_more: bool, offset: i64) -> Paged<T> {
    let next = has_more.then(|| paging::encode(offset + items.len() as i64));
    Paged {
        items,
        next_page_token: next,
    }
}

impl Tracking {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- experiments ----

    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<String>,
        tags: Vec<KeyValue>,
    ) -> Result<String> {
        v::validate_experiment_name(name)?;
        let location = match artifact_location.filter(|l| !l.is_empty()) {
            Some(loc) => {
                v::validate_artifact_location(&loc)?;
                let cwd = std::env::current_dir().map_err(|e| {
                    MlflowError::internal(format!("cannot read the working directory: {e}"))
                })?;
                let resolved = v::resolve_local_location(&loc, &cwd);
                v::check_length(
                    "Artifact location",
                    &resolved,
                    v::MAX_ARTIFACT_LOCATION_LENGTH,
                )?;
                Some(resolved)
            }
            None => None,
        };
        for tag in &tags {
            v::validate_experiment_tag(&tag.key, &tag.value)?;
        }
        self.store.create_experiment(name, location, &tags).await
    }

    pub async fn get_experiment(&self, id: &str) -> Result<Experiment> {
        self.store.get_experiment(v::parse_experiment_id(id)?).await
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.store.get_experiment_by_name(name).await
    }

    pub async fn search_experiments(
        &self,
        view: ViewType,
        filter: Option<&str>,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Paged<Experiment>> {
        v::validate_max_results(max_results, v::SEARCH_MAX_RESULTS)?;
        let clauses = parse_filter(SearchTarget::Experiments, filter.unwrap_or(""))?;
        let order = parse_order_by(SearchTarget::Experiments, order_by)?;
        let offset = paging::decode(page_token)?;
        let page = self
            .store
            .search_experiments(view, &clauses, &order, max_results, offset)
            .await?;
        Ok(paged(page.items, page.has_more, offset))
    }

    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        v::validate_experiment_name(new_name)?;
        self.store
            .rename_experiment(v::parse_experiment_id(id)?, new_name)
            .await
    }

    pub async fn delete_experiment(&self, id: &str) -> Result<()> {
        let id = v::parse_experiment_id(id)?;
        if id == 0 {
            return Err(MlflowError::invalid(
                "Cannot delete the default experiment '0'. This is an internally reserved \
                 experiment.",
            ));
        }
        self.store.set_experiment_lifecycle(id, "deleted").await
    }

    pub async fn restore_experiment(&self, id: &str) -> Result<()> {
        self.store
            .set_experiment_lifecycle(v::parse_experiment_id(id)?, "active")
            .await
    }

    pub async fn set_experiment_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        v::validate_experiment_tag(key, value)?;
        self.store
            .set_experiment_tag(v::parse_experiment_id(id)?, key, value)
            .await
    }

    pub async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<()> {
        self.store
            .delete_experiment_tag(v::parse_experiment_id(id)?, key)
            .await
    }

    pub async fn list_active_experiments(&self) -> Result<Vec<Experiment>> {
        self.store.list_active_experiments().await
    }

    // ---- runs ----

    /// Creates a run; settles its name as MLflow does (argument, tag, or generated).
    pub async fn create_run(
        &self,
        experiment_id: Option<&str>,
        user_id: Option<String>,
        start_time: Option<i64>,
        run_name: Option<String>,
        tags: Vec<KeyValue>,
    ) -> Result<Run> {
        let exp_id = v::parse_experiment_id(experiment_id.unwrap_or("0"))?;
        let mut tags = validate_tags(tags)?;
        let tag_name = tags
            .iter()
            .rev()
            .find(|t| t.key == RUN_NAME_TAG)
            .map(|t| t.value.clone());
        let run_name = run_name.filter(|n| !n.is_empty());
        if let (Some(arg), Some(tag)) = (&run_name, &tag_name) {
            if arg != tag {
                return Err(MlflowError::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
                     different values (run_name='{arg}', mlflow.runName='{tag}')."
                )));
            }
        }
        let name = run_name
            .or(tag_name.clone())
            .unwrap_or_else(run_names::generate);
        if tag_name.is_none() {
            tags.push(KeyValue {
                key: RUN_NAME_TAG.into(),
                value: name.clone(),
            });
        }
        let start = start_time.unwrap_or_else(crate::store::now_ms);
        self.store
            .create_run(exp_id, &user_id.unwrap_or_default(), start, &name, &tags)
            .await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        v::validate_run_id(run_id)?;
        self.store.get_run(run_id).await
    }

    pub async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        v::validate_run_id(run_id)?;
        if let Some(end) = update.end_time {
            if end < 0 {
                return Err(MlflowError::invalid(format!("Invalid end_time {end}")));
            }
        }
        let update = RunUpdate {
            run_name: update.run_name.filter(|n| !n.is_empty()),
            ..update
        };
        self.store.update_run(run_id, update).await
    }

    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.set_run_lifecycle(run_id, "deleted").await
    }

    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.set_run_lifecycle(run_id, "active").await
    }

    /// Validates and writes a batch; nothing is written if anything is rejected.
    pub async fn log_batch(&self, run_id: &str, batch: LogBatch) -> Result<()> {
        v::validate_run_id(run_id)?;
        let total = batch.metrics.len() + batch.params.len() + batch.tags.len();
        if batch.metrics.len() > v::MAX_METRICS_PER_BATCH
            || batch.params.len() > v::MAX_PARAMS_TAGS_PER_BATCH
            || batch.tags.len() > v::MAX_PARAMS_TAGS_PER_BATCH
            || total > v::MAX_ENTITIES_PER_BATCH
        {
            return Err(MlflowError::invalid(format!(
                "A batch logging request can contain at most {} metrics, {} params, {} tags and \
                 {} entities in total. Got {} metrics, {} params and {} tags.",
                v::MAX_METRICS_PER_BATCH,
                v::MAX_PARAMS_TAGS_PER_BATCH,
                v::MAX_PARAMS_TAGS_PER_BATCH,
                v::MAX_ENTITIES_PER_BATCH,
                batch.metrics.len(),
                batch.params.len(),
                batch.tags.len()
            )));
        }
        for m in &batch.metrics {
            v::validate_metric(&m.key, m.timestamp)?;
        }
        let mut seen = std::collections::HashSet::new();
        let mut params = Vec::with_capacity(batch.params.len());
        for p in batch.params {
            v::validate_key(KeyKind::Param, &p.key)?;
            if !seen.insert(p.key.clone()) {
                return Err(MlflowError::invalid(format!(
                    "Duplicate parameter keys have been submitted: ['{}']. Please ensure the \
                     request contains only one param value per param key.",
                    p.key
                )));
            }
            params.push(KeyValue {
                value: v::truncate(p.value, v::MAX_PARAM_VAL_LENGTH),
                key: p.key,
            });
        }
        let tags = validate_tags(batch.tags)?;
        self.store
            .log_batch(
                run_id,
                Batch {
                    metrics: batch.metrics,
                    params,
                    tags,
                },
            )
            .await
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.delete_tag(run_id, key).await
    }

    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: Vec<NewDatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()> {
        v::validate_run_id(run_id)?;
        for input in &datasets {
            let d = &input.dataset;
            for (what, value) in [
                ("name", &d.name),
                ("digest", &d.digest),
                ("source_type", &d.source_type),
                ("source", &d.source),
            ] {
                if value.is_empty() {
                    return Err(MlflowError::missing(&format!("dataset.{what}")));
                }
            }
            v::check_length("Dataset name", &d.name, v::MAX_DATASET_NAME_LENGTH)?;
            v::check_length("Dataset digest", &d.digest, v::MAX_DATASET_DIGEST_LENGTH)?;
            v::check_length("Dataset source", &d.source, v::MAX_DATASET_SOURCE_LENGTH)?;
            if let Some(schema) = &d.schema {
                v::check_length("Dataset schema", schema, v::MAX_DATASET_SCHEMA_LENGTH)?;
            }
            if let Some(profile) = &d.profile {
                v::check_length("Dataset profile", profile, v::MAX_DATASET_PROFILE_LENGTH)?;
            }
            for tag in &input.tags {
                v::check_length("Input tag key", &tag.key, v::MAX_INPUT_TAG_KEY_LENGTH)?;
                v::check_length("Input tag value", &tag.value, v::MAX_INPUT_TAG_VALUE_LENGTH)?;
            }
        }
        self.store.log_inputs(run_id, &datasets, &model_ids).await
    }

    pub async fn log_outputs(&self, run_id: &str, models: Vec<ModelOutput>) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.log_outputs(run_id, &models).await
    }

    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Paged<Metric>> {
        v::validate_run_id(run_id)?;
        if let Some(max) = max_results {
            v::validate_max_results(max, i64::from(i32::MAX))?;
        }
        let offset = paging::decode(page_token)?;
        let page = self
            .store
            .metric_history(run_id, key, max_results, offset)
            .await?;
        Ok(paged(page.items, page.has_more, offset))
    }

    /// `runs/log-model`: appends the model to the run's `mlflow.log-model.history` tag.
    pub async fn log_model(&self, run_id: &str, model_json: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        let entry = model_history::history_entry(model_json)?;
        self.store
            .rewrite_tag(run_id, model_history::HISTORY_TAG, |stored| {
                Ok(model_history::append(stored, &entry))
            })
            .await
    }

    /// Up to `max_results` points per run, spread evenly over the steps in range.
    pub async fn metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: Option<i64>,
    ) -> Result<Vec<Metric>> {
        if run_ids.is_empty() {
            return Err(MlflowError::missing("run_ids"));
        }
        if run_ids.len() > 100 {
            return Err(MlflowError::invalid(format!(
                "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. \
                 Received {} run_ids.",
                run_ids.len()
            )));
        }
        for id in run_ids {
            v::validate_run_id(id)?;
        }
        let max = max_results.unwrap_or(2500);
        if !(1..=2500).contains(&max) {
            return Err(MlflowError::invalid(
                "max_results must be between 1 and 2500.",
            ));
        }
        let steps = match (start_step, end_step) {
            (Some(s), Some(e)) if s <= e => Some((s, e)),
            (Some(s), Some(e)) => {
                return Err(MlflowError::invalid(format!(
                    "end_step must be greater than start_step. Found start_step={s} and \
                     end_step={e}."
                )))
            }
            (None, None) => None,
            _ => {
                return Err(MlflowError::invalid(
                    "If either start step or end step are specified, both must be specified.",
                ))
            }
        };
        let all = self
            .store
            .metric_history_in_steps(run_ids, key, steps)
            .await?;
        Ok(sample_per_run(all, max as usize))
    }

    /// The whole history of `key` for up to 100 runs (`get-history-bulk`, the UI's older
    /// chart call): by run id, then timestamp, step and value; at most `max_results` points
    /// in all (default and ceiling 25,000).
    pub async fn metric_history_bulk(
        &self,
        run_ids: &[String],
        key: Option<&str>,
        max_results: Option<i64>,
    ) -> Result<Vec<Metric>> {
        const MAX_POINTS: i64 = 25_000;
        if run_ids.is_empty() {
            return Err(MlflowError::invalid(
                "GetMetricHistoryBulk request must specify at least one run_id.",
            ));
        }
        if run_ids.len() > 100 {
            return Err(MlflowError::invalid(format!(
                "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received {} \
                 run_ids.",
                run_ids.len()
            )));
        }
        let Some(key) = key else {
            return Err(MlflowError::invalid(
                "GetMetricHistoryBulk request must specify a metric_key.",
            ));
        };
        let max = max_results.unwrap_or(MAX_POINTS).min(MAX_POINTS);
        if max < 1 {
            return Err(MlflowError::invalid(format!(
                "Invalid value {max} for parameter 'max_results' supplied. It must be at least 1."
            )));
        }
        let mut all = self
            .store
            .metric_history_in_steps(run_ids, key, None)
            .await?;
        all.sort_by(|a, b| {
            (&a.run_id, a.timestamp, a.step)
                .cmp(&(&b.run_id, b.timestamp, b.step))
                .then(a.value.total_cmp(&b.value))
        });
        all.truncate(max as usize);
        Ok(all)
    }

    pub async fn search_runs(
        &self,
        experiment_ids: &[String],
        filter: Option<&str>,
        view: ViewType,
        max_results: i64,
        order_by: &[String],
        page_token: Option<&str>,
    ) -> Result<Paged<Run>> {
        v::validate_max_results(max_results, v::SEARCH_MAX_RESULTS)?;
        let ids = experiment_ids
            .iter()
            .map(|id| v::parse_experiment_id(id))
            .collect::<Result<Vec<_>>>()?;
        let clauses = parse_filter(SearchTarget::Runs, filter.unwrap_or(""))?;
        let order = parse_order_by(SearchTarget::Runs, order_by)?;
        let offset = paging::decode(page_token)?;
        let page = self
            .store
            .search_runs(&ids, view, &clauses, &order, max_results, offset)
            .await?;
        Ok(paged(page.items, page.has_more, offset))
    }
}

/// Checks run tags and truncates long values.
fn validate_tags(tags: Vec<KeyValue>) -> Result<Vec<KeyValue>> {
    tags.into_iter()
        .map(|t| {
            v::validate_key(KeyKind::Tag, &t.key)?;
            Ok(KeyValue {
                value: v::truncate(t.value, v::MAX_TAG_VAL_LENGTH),
                key: t.key,
            })
        })
        .collect()
}

/// Keeps at most `max` metrics per run (sorted by run then step), always keeping the first and
/// last step, evenly spaced in between.
fn sample_per_run(metrics: Vec<Metric>, max: usize) -> Vec<Metric> {
    // Runs are contiguous: the points move into the answer run by run, uncopied.
    let mut out = Vec::with_capacity(metrics.len());
    let mut group: Vec<Metric> = Vec::new();
    for metric in metrics {
        if group.last().is_some_and(|m| m.run_id != metric.run_id) {
            keep_spread(&mut out, std::mem::take(&mut group), max);
        }
        group.push(metric);
    }
    keep_spread(&mut out, group, max);
    out
}

/// Appends up to `max` points of one run's history, evenly spread and keeping both ends.
fn keep_spread(out: &mut Vec<Metric>, group: Vec<Metric>, max: usize) {
    let n = group.len();
    if n <= max {
        out.extend(group);
        return;
    }
    // Nondecreasing indices; equal ones are one point.
    let mut picks = (0..max)
        .map(|i| if max == 1 { 0 } else { i * (n - 1) / (max - 1) })
        .peekable();
    for (idx, metric) in group.into_iter().enumerate() {
        if picks.peek() == Some(&idx) {
            out.push(metric);
            while picks.peek() == Some(&idx) {
                picks.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(run: &str, step: i64) -> Metric {
        Metric {
            key: "m".into(),
            value: step as f64,
            timestamp: 0,
            step,
            dataset_name: None,
            dataset_digest: None,
            model_id: None,
            run_id: Some(run.into()),
        }
    }

    /// Every history length against every sample size: the steps kept are the evenly
    /// spread indices `i * (n - 1) / (max - 1)`, each once, run by run.
    #[test]
    fn sampling_picks_the_spread_indices() {
        for n in 1..40usize {
            for max in 1..12usize {
                let all: Vec<Metric> = (0..n as i64)
                    .map(|s| metric("a", s))
                    .chain((0..n as i64).map(|s| metric("b", s)))
                    .collect();
                let mut want: Vec<i64> = if n <= max {
                    (0..n as i64).collect()
                } else {
                    (0..max)
                        .map(|i| {
                            if max == 1 {
                                0
                            } else {
                                (i * (n - 1) / (max - 1)) as i64
                            }
                        })
                        .collect()
                };
                want.dedup();
                let steps: Vec<i64> = sample_per_run(all, max).iter().map(|m| m.step).collect();
                assert_eq!(steps, [want.clone(), want].concat(), "n={n} max={max}");
            }
        }
    }

    #[test]
    fn sampling_keeps_ends() {
        let all: Vec<Metric> = (0..100)
            .map(|s| metric("a", s))
            .chain((0..3).map(|s| metric("b", s)))
            .collect();
        let out = sample_per_run(all, 10);
        let a: Vec<i64> = out
            .iter()
            .filter(|m| m.run_id.as_deref() == Some("a"))
            .map(|m| m.step)
            .collect();
        assert_eq!(a.len(), 10);
        assert_eq!((a[0], a[9]), (0, 99));
        assert_eq!(
            out.iter()
                .filter(|m| m.run_id.as_deref() == Some("b"))
                .count(),
            3
        );
    }
}
