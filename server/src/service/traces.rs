//! MLflow 3 tracing: the rules in front of the store for span ingest, trace infos, trace
//! search, tags, deletion, links and assessments.

use std::time::Duration;

use super::tracking::{Paged, Tracking};
use crate::domain::assessments::{Assessment, AssessmentValue};
use crate::domain::paging;
use crate::domain::search::traces::{parse_trace_filter, parse_trace_order};
use crate::domain::traces::span::IncomingSpan;
use crate::domain::traces::{
    check_tag_mutation, validate_tag, validate_trace_name, Trace, TraceInfo, TraceState,
    META_SESSION, TAG_TRACE_NAME,
};
use crate::domain::validation::{self as v, SEARCH_MAX_RESULTS};
use crate::error::{MlflowError, Result};
use crate::store::traces::{TraceSearch, TraceSelection};

/// At most this many traces per link-to-run call.
pub const MAX_TRACE_LINKS_PER_REQUEST: usize = 100;

/// What an update-assessment call changes (its field mask, resolved).
#[derive(Default)]
pub struct AssessmentChanges {
    pub name: Option<String>,
    pub value: Option<AssessmentValue>,
    pub rationale: Option<String>,
    pub metadata: Option<Vec<(String, String)>>,
}

fn experiment_ids(ids: &[String]) -> Result<Vec<i64>> {
    ids.iter().map(|id| v::parse_experiment_id(id)).collect()
}

impl Tracking {
    pub async fn log_spans(&self, experiment_id: &str, spans: &[IncomingSpan]) -> Result<()> {
        let id = v::parse_experiment_id(experiment_id)?;
        self.store().log_spans(id, spans).await
    }

    pub async fn start_trace(&self, info: TraceInfo) -> Result<TraceInfo> {
        if let Some((_, s)) = info.trace_metadata.iter().find(|(k, _)| k == META_SESSION) {
            v::check_length("Session ID", s, 250)?;
        }
        self.store().start_trace(&info, true).await
    }

    /// The legacy v2 start: a new in-progress trace with a generated id.
    pub async fn start_trace_v2(
        &self,
        experiment_id: &str,
        timestamp_ms: i64,
        metadata: Vec<(String, String)>,
        tags: Vec<(String, String)>,
    ) -> Result<TraceInfo> {
        let info = TraceInfo {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            experiment_id: experiment_id.to_string(),
            request_time: timestamp_ms,
            execution_duration: None,
            state: TraceState::InProgress,
            request_preview: None,
            response_preview: None,
            client_request_id: None,
            trace_metadata: metadata,
            tags,
            assessments: Vec::new(),
        };
        self.store().start_trace(&info, false).await
    }

    pub async fn end_trace_v2(
        &self,
        trace_id: &str,
        timestamp_ms: i64,
        state: TraceState,
        metadata: Vec<(String, String)>,
        tags: Vec<(String, String)>,
    ) -> Result<TraceInfo> {
        if let Some((_, name)) = tags.iter().find(|(k, _)| k == TAG_TRACE_NAME) {
            validate_trace_name(name)?;
        }
        self.store()
            .end_trace_v2(trace_id, timestamp_ms, state, &metadata, &tags)
            .await?;
        self.store().get_trace_info(trace_id).await
    }

    pub async fn get_trace_info(&self, trace_id: &str) -> Result<TraceInfo> {
        self.store().get_trace_info(trace_id).await
    }

    /// A trace with its spans. Unless `allow_partial`, a trace whose spans are not all in
    /// yet is waited for a little (1 s, then 2 s), as MLflow does, then refused.
    pub async fn get_trace(&self, trace_id: &str, allow_partial: bool) -> Result<Trace> {
        for attempt in 0..3u32 {
            let info = self.store().get_trace_info(trace_id).await?;
            if let Some(t) = self
                .store()
                .traces_with_spans(vec![info], !allow_partial)
                .await?
                .pop()
            {
                return Ok(t);
            }
            if attempt < 2 {
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
        Err(MlflowError::not_found(format!(
            "Trace with ID {trace_id} is not fully exported yet, please try again later."
        )))
    }

    /// A trace's data as the UI downloads it (`traces.json`): `{"spans":[...]}` with each
    /// span's stored JSON as it is. Only for traces whose spans live in this store.
    pub async fn trace_data_json(&self, trace_id: &str) -> Result<Vec<u8>> {
        let info = self.store().get_trace_info(trace_id).await?;
        if info.tag(crate::domain::traces::TAG_SPANS_LOCATION)
            != Some(crate::domain::traces::SPANS_IN_TRACKING_STORE)
        {
            return Err(MlflowError::not_found(format!(
                "The spans of trace {trace_id} are not stored in the tracking store; this \
                 server does not read trace data from artifact storage"
            )));
        }
        let parts = self.store().trace_span_contents(trace_id).await?;
        let mut out = b"{\"spans\":[".to_vec();
        out.extend_from_slice(parts.join(",").as_bytes());
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    /// Complete traces of the ids that exist (optionally only in `experiments`).
    pub async fn batch_get_traces(
        &self,
        trace_ids: &[String],
        experiments: Option<&[String]>,
    ) -> Result<Vec<Trace>> {
        let infos = self.batch_get_trace_infos(trace_ids, experiments).await?;
        self.store().traces_with_spans(infos, true).await
    }

    pub async fn batch_get_trace_infos(
        &self,
        trace_ids: &[String],
        experiments: Option<&[String]>,
    ) -> Result<Vec<TraceInfo>> {
        let exps = experiments.map(experiment_ids).transpose()?;
        self.store().trace_infos(trace_ids, exps.as_deref()).await
    }

    pub async fn search_traces(
        &self,
        experiments: &[String],
        filter: Option<&str>,
        max_results: i64,
        order_by: &[String],
        page_token: Option<&str>,
    ) -> Result<Paged<TraceInfo>> {
        if max_results < 1 {
            return Err(MlflowError::invalid(format!(
                "Invalid value {max_results} for parameter 'max_results' supplied. It must be a \
                 positive integer"
            )));
        }
        v::validate_max_results(max_results, SEARCH_MAX_RESULTS)?;
        let exps = experiment_ids(experiments)?;
        let clauses = parse_trace_filter(filter.unwrap_or(""))?;
        let order = parse_trace_order(order_by)?;
        let offset = paging::decode(page_token)?;
        let items = self
            .store()
            .search_traces(&TraceSearch {
                experiment_ids: &exps,
                clauses: &clauses,
                order: &order,
                max_results,
                offset,
            })
            .await?;
        // As MLflow: a full page always carries a token, even when nothing follows.
        let next =
            (items.len() as i64 == max_results).then(|| paging::encode(offset + max_results));
        Ok(Paged {
            items,
            next_page_token: next,
        })
    }

    pub async fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<()> {
        check_tag_mutation(key, false)?;
        let (key, value) = validate_tag(key, value)?;
        if key == TAG_TRACE_NAME {
            validate_trace_name(&value)?;
        }
        self.store().set_trace_tag(trace_id, &key, &value).await
    }

    pub async fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<()> {
        check_tag_mutation(key, true)?;
        self.store().delete_trace_tag(trace_id, key).await
    }

    /// Deletes traces of an experiment by ids, or the oldest up to a timestamp.
    pub async fn delete_traces(
        &self,
        experiment_id: &str,
        max_timestamp_millis: Option<i64>,
        max_traces: Option<i64>,
        trace_ids: &[String],
    ) -> Result<i64> {
        let exp = v::parse_experiment_id(experiment_id)?;
        let selection = match (max_timestamp_millis, trace_ids.is_empty()) {
            (None, true) => {
                return Err(MlflowError::invalid(
                    "Either `max_timestamp_millis` or `trace_ids` must be specified.",
                ))
            }
            (Some(_), false) => {
                return Err(MlflowError::invalid(
                    "Only one of `max_timestamp_millis` and `trace_ids` can be specified.",
                ))
            }
            (None, false) => {
                if max_traces.is_some() {
                    return Err(MlflowError::invalid(
                        "`max_traces` can't be specified if `trace_ids` is specified.",
                    ));
                }
                TraceSelection::Ids(trace_ids)
            }
            (Some(ts), true) => {
                if let Some(n) = max_traces.filter(|n| *n <= 0) {
                    return Err(MlflowError::invalid(format!(
                        "`max_traces` must be a positive integer, received {n}."
                    )));
                }
                TraceSelection::Before {
                    max_timestamp: ts,
                    max_traces,
                }
            }
        };
        self.store().delete_traces(exp, selection).await
    }

    pub async fn link_traces_to_run(&self, trace_ids: &[String], run_id: &str) -> Result<()> {
        if trace_ids.len() > MAX_TRACE_LINKS_PER_REQUEST {
            return Err(MlflowError::invalid(format!(
                "Cannot link more than {MAX_TRACE_LINKS_PER_REQUEST} traces to a run in a single \
                 request. Provided {} traces.",
                trace_ids.len()
            )));
        }
        if trace_ids.is_empty() {
            return Ok(());
        }
        self.store().get_run(run_id).await?;
        self.store().link_traces_to_run(trace_ids, run_id).await
    }

    /// Links prompt versions (name and version) to a trace.
    pub async fn link_prompts_to_trace(
        &self,
        trace_id: &str,
        versions: &[(String, String)],
    ) -> Result<()> {
        let ids: Vec<String> = versions
            .iter()
            .map(|(name, version)| {
                let n: i64 = version.trim().parse().map_err(|_| {
                    MlflowError::invalid(format!("Invalid prompt version '{version}'"))
                })?;
                Ok(format!("{name}/{n}"))
            })
            .collect::<Result<_>>()?;
        self.store().link_prompts_to_trace(trace_id, &ids).await
    }

    // ---- assessments ----

    pub async fn create_assessment(&self, trace_id: &str, mut a: Assessment) -> Result<Assessment> {
        a.trace_id = trace_id.to_string();
        if a.name.is_empty() {
            return Err(MlflowError::missing("assessment.assessment_name"));
        }
        v::check_length("Assessment name", &a.name, 250)?;
        self.store().create_assessment(&a).await
    }

    pub async fn get_assessment(&self, trace_id: &str, id: &str) -> Result<Assessment> {
        self.store().get_assessment(trace_id, id).await
    }

    /// Applies the changes MLflow allows: name, value (of the same kind), rationale
    /// (feedback only) and metadata (merged); source and span stay.
    pub async fn update_assessment(
        &self,
        trace_id: &str,
        id: &str,
        changes: AssessmentChanges,
    ) -> Result<Assessment> {
        let mut a = self.store().get_assessment(trace_id, id).await?;
        if let Some(value) = changes.value {
            match (&a.value, &value) {
                (AssessmentValue::Expectation { .. }, AssessmentValue::Feedback { .. }) => {
                    return Err(MlflowError::invalid(
                        "Cannot update feedback value on an Expectation assessment.",
                    ))
                }
                (AssessmentValue::Feedback { .. }, AssessmentValue::Expectation { .. }) => {
                    return Err(MlflowError::invalid(
                        "Cannot update expectation value on a Feedback assessment.",
                    ))
                }
                _ => a.value = value,
            }
        }
        if let Some(name) = changes.name {
            a.name = name;
        }
        if let Some(r) = changes.rationale {
            if matches!(a.value, AssessmentValue::Feedback { .. }) {
                a.rationale = Some(r);
            }
        }
        if matches!(a.value, AssessmentValue::Expectation { .. }) {
            // MLflow rebuilds an expectation without its rationale.
            a.rationale = None;
        }
        if let Some(meta) = changes.metadata {
            let mut merged = a.metadata.take().unwrap_or_default();
            for (k, val) in meta {
                match merged.iter_mut().find(|(key, _)| *key == k) {
                    Some(slot) => slot.1 = val,
                    None => merged.push((k, val)),
                }
            }
            a.metadata = Some(merged);
        }
        a.last_update_time_ms = crate::store::now_ms();
        self.store().update_assessment(&a).await
    }

    pub async fn delete_assessment(&self, trace_id: &str, id: &str) -> Result<()> {
        self.store().delete_assessment(trace_id, id).await
    }
}
