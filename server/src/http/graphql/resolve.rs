//! The GraphQL fields answered by the REST handlers themselves, so that both APIs give the
//! same values and errors: the input becomes the handler's request JSON, its answer the
//! output object, and its MLflow error the message in the response's `errors`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::{Context, Error as GqlError, Object};
use axum::body::to_bytes;
use axum::extract::State;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::guard;
use super::points::MetricPoints;
use super::types::*;
use crate::http::request::Message;
use crate::http::{experiments, registry, runs, ApiResult, AppState};

/// Experiments already read while answering one request (many runs share one).
#[derive(Default)]
pub struct ExperimentCache(Mutex<HashMap<String, Option<Experiment>>>);

/// The model versions of each run on a search page, read for the whole page in one search
/// (the UI's runs table asks for every run's versions: one search per run was an N+1).
#[derive(Default)]
pub struct ModelVersionCache(Mutex<HashMap<String, Vec<ModelVersion>>>);

/// Run ids per batched search: bounds the `IN` list (and its bound parameters) of one query.
const VERSION_BATCH: usize = 500;

/// The request JSON of a GraphQL input: absent fields left out, lists without nulls.
fn request_json(input: &impl Serialize) -> Value {
    fn clean(v: Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, clean(v)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().filter(|v| !v.is_null()).collect())
            }
            other => other,
        }
    }
    clean(serde_json::to_value(input).unwrap_or(Value::Null))
}

/// Runs a handler and reads its JSON answer; an MLflow error becomes the field's error.
async fn call<F, Fut>(ctx: &Context<'_>, handler: F, request: Value) -> Result<Value, GqlError>
where
    F: FnOnce(State<AppState>, Message) -> Fut,
    Fut: std::future::Future<Output = ApiResult>,
{
    let app = ctx.data::<AppState>()?.clone();
    let response = handler(State(app), Message(request))
        .await
        .map_err(|e| GqlError::new(e.0.message))?;
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| GqlError::new(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| GqlError::new(e.to_string()))
}

/// A root field answered by one handler, its whole JSON answer being the response object.
async fn fetch<T, F, Fut>(
    ctx: &Context<'_>,
    handler: F,
    input: &impl Serialize,
) -> async_graphql::Result<Option<T>>
where
    T: DeserializeOwned,
    F: FnOnce(State<AppState>, Message) -> Fut,
    Fut: std::future::Future<Output = ApiResult>,
{
    Ok(Some(read(call(ctx, handler, request_json(input)).await?)?))
}

fn read<T: DeserializeOwned>(value: Value) -> Result<T, GqlError> {
    serde_json::from_value(value).map_err(|e| GqlError::new(format!("unexpected answer: {e}")))
}

pub async fn experiment(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Option<Experiment>> {
    let cache = ctx.data::<ExperimentCache>()?;
    if let Some(hit) = cache.0.lock().ok().and_then(|c| c.get(id).cloned()) {
        return Ok(hit);
    }
    let answer = call(
        ctx,
        experiments::get,
        serde_json::json!({ "experiment_id": id }),
    )
    .await?;
    let found: Option<Experiment> = read(answer["experiment"].clone())?;
    if let Ok(mut c) = cache.0.lock() {
        c.insert(id.to_string(), found.clone());
    }
    Ok(found)
}

/// Run ids are hex UUIDs; anything else cannot be quoted into a filter safely (and matches
/// no version).
fn quotable(run_id: &str) -> bool {
    run_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Every model version whose run is one of `run_ids`, all pages, in the search's own order.
async fn versions_of_runs(
    ctx: &Context<'_>,
    run_ids: &[&str],
) -> async_graphql::Result<Vec<ModelVersion>> {
    let list = run_ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let filter = format!("run_id IN ({list})");
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = serde_json::json!({ "filter": filter });
        if let Some(t) = &token {
            request["page_token"] = Value::from(t.clone());
        }
        let page: SearchModelVersionsResponse =
            read(call(ctx, registry::search_versions, request).await?)?;
        versions.extend(page.model_versions);
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(versions),
        }
    }
}

/// Reads the versions of all `run_ids` in batched searches into the request's cache, so that
/// each run's `modelVersions` field is answered from it.
pub async fn prefetch_model_versions(
    ctx: &Context<'_>,
    run_ids: &[&str],
) -> async_graphql::Result<()> {
    let ids: Vec<&str> = run_ids.iter().copied().filter(|id| quotable(id)).collect();
    let mut found: HashMap<String, Vec<ModelVersion>> =
        ids.iter().map(|id| (id.to_string(), Vec::new())).collect();
    for chunk in ids.chunks(VERSION_BATCH) {
        for version in versions_of_runs(ctx, chunk).await? {
            if let Some(list) = version.run_id.as_ref().and_then(|r| found.get_mut(r)) {
                list.push(version);
            }
        }
    }
    if let Ok(mut cache) = ctx.data::<ModelVersionCache>()?.0.lock() {
        cache.extend(found);
    }
    Ok(())
}

pub async fn model_versions_of_run(
    ctx: &Context<'_>,
    run_id: &str,
) -> async_graphql::Result<Vec<ModelVersion>> {
    if !quotable(run_id) {
        return Ok(Vec::new());
    }
    let cache = ctx.data::<ModelVersionCache>()?;
    let versions = match cache.0.lock().ok().and_then(|c| c.get(run_id).cloned()) {
        Some(hit) => hit,
        None => versions_of_runs(ctx, &[run_id]).await?,
    };
    Ok(guard::readable_versions(ctx, versions).await)
}

/// The root fields of MLflow's `Query` that the UI uses.
pub struct Query;

#[Object(name = "Query")]
impl Query {
    async fn mlflow_get_experiment(
        &self,
        ctx: &Context<'_>,
        input: Option<GetExperimentInput>,
    ) -> async_graphql::Result<Option<GetExperimentResponse>> {
        let id = input.as_ref().and_then(|i| i.experiment_id.as_deref());
        if !guard::may_read_experiment(ctx, id).await {
            return Ok(None);
        }
        let answer = call(ctx, experiments::get, request_json(&input)).await?;
        Ok(Some(GetExperimentResponse {
            experiment: read(answer["experiment"].clone())?,
            api_error: None,
        }))
    }

    async fn mlflow_get_run(
        &self,
        ctx: &Context<'_>,
        input: Option<GetRunInput>,
    ) -> async_graphql::Result<Option<GetRunResponse>> {
        let id = input
            .as_ref()
            .and_then(|i| i.run_id.as_deref().or(i.run_uuid.as_deref()));
        if !guard::may_read_runs(ctx, id.as_slice()).await {
            return Ok(None);
        }
        let answer = call(ctx, runs::get, request_json(&input)).await?;
        Ok(Some(GetRunResponse {
            run: read(answer["run"].clone())?,
            api_error: None,
        }))
    }

    async fn mlflow_search_runs(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchRunsInput>,
    ) -> async_graphql::Result<Option<SearchRunsResponse>> {
        search_runs(ctx, input).await
    }

    async fn mlflow_get_metric_history_bulk_interval(
        &self,
        ctx: &Context<'_>,
        input: Option<MetricHistoryInput>,
    ) -> async_graphql::Result<Option<MetricHistoryResponse>> {
        let ids: Vec<&str> = input
            .iter()
            .flat_map(|i| i.run_ids.iter().flatten().flatten())
            .map(String::as_str)
            .collect();
        if !guard::may_read_runs(ctx, &ids).await {
            return Ok(None);
        }
        let run_ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
        let input = input.unwrap_or_default();
        let app = ctx.data::<AppState>()?;
        let metrics = runs::sampled_histories(
            app,
            &run_ids,
            input.metric_key,
            input.start_step.map(i64::from),
            input.end_step.map(i64::from),
            input.max_results.map(i64::from),
        )
        .await
        .map_err(|e| GqlError::new(e.0.message))?;
        Ok(Some(MetricHistoryResponse {
            metrics: MetricPoints(metrics.into_iter().map(MetricWithRunId::from).collect()),
            api_error: None,
        }))
    }

    async fn mlflow_search_model_versions(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchModelVersionsInput>,
    ) -> async_graphql::Result<Option<SearchModelVersionsResponse>> {
        let mut answer: Option<SearchModelVersionsResponse> =
            fetch(ctx, registry::search_versions, &input).await?;
        if let Some(page) = answer.as_mut() {
            let versions = std::mem::take(&mut page.model_versions);
            page.model_versions = guard::readable_versions(ctx, versions).await;
        }
        Ok(answer)
    }

    async fn mlflow_list_artifacts(
        &self,
        ctx: &Context<'_>,
        input: Option<ListArtifactsInput>,
    ) -> async_graphql::Result<Option<ListArtifactsResponse>> {
        let id = input
            .as_ref()
            .and_then(|i| i.run_id.as_deref().or(i.run_uuid.as_deref()));
        if !guard::may_read_runs(ctx, id.as_slice()).await {
            return Ok(None);
        }
        fetch(ctx, crate::http::artifacts::list_run, &input).await
    }

    /// MLflow's echo field, used to check that GraphQL answers at all.
    async fn test(&self, input_string: Option<String>) -> Option<Echo> {
        Some(Echo {
            output: input_string,
        })
    }
}

#[derive(async_graphql::SimpleObject)]
#[graphql(name = "Test")]
pub struct Echo {
    output: Option<String>,
}

async fn search_runs(
    ctx: &Context<'_>,
    mut input: Option<SearchRunsInput>,
) -> async_graphql::Result<Option<SearchRunsResponse>> {
    if let Some(i) = input.as_mut() {
        if !guard::restrict_to_readable(ctx, &mut i.experiment_ids).await {
            return Ok(None);
        }
    }
    let page: Option<SearchRunsResponse> = fetch(ctx, runs::search, &input).await?;
    let wants_versions = ctx
        .look_ahead()
        .field("runs")
        .field("modelVersions")
        .exists();
    if let (Some(page), true) = (&page, wants_versions) {
        let ids: Vec<&str> = page
            .runs
            .iter()
            .filter_map(|r| r.info.as_ref()?.run_id.as_deref())
            .collect();
        prefetch_model_versions(ctx, &ids).await?;
    }
    Ok(page)
}

/// MLflow's `Mutation` root: search runs is also there (the UI may send it either way).
pub struct Mutation;

#[Object(name = "Mutation")]
impl Mutation {
    async fn mlflow_search_datasets(
        &self,
        ctx: &Context<'_>,
        mut input: Option<SearchDatasetsInput>,
    ) -> async_graphql::Result<Option<SearchDatasetsResponse>> {
        if let Some(i) = input.as_mut() {
            if !guard::restrict_to_readable(ctx, &mut i.experiment_ids).await {
                return Ok(None);
            }
        }
        fetch(ctx, crate::http::ui_api::search_datasets, &input).await
    }

    async fn mlflow_search_runs(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchRunsInput>,
    ) -> async_graphql::Result<Option<SearchRunsResponse>> {
        search_runs(ctx, input).await
    }
}
