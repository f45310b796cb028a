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

use super::types::*;
use crate::http::request::Message;
use crate::http::{experiments, registry, runs, ApiResult, AppState};

/// Experiments already read while answering one request (many runs share one).
#[derive(Default)]
pub struct ExperimentCache(Mutex<HashMap<String, Option<Experiment>>>);

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

pub async fn model_versions_of_run(
    ctx: &Context<'_>,
    run_id: &str,
) -> async_graphql::Result<Vec<ModelVersion>> {
    // Run ids are hex UUIDs; anything else cannot be quoted into the filter safely.
    if !run_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Ok(Vec::new());
    }
    let filter = format!("run_id='{run_id}'");
    let answer = call(
        ctx,
        registry::search_versions,
        serde_json::json!({ "filter": filter }),
    )
    .await?;
    let page: SearchModelVersionsResponse = read(answer)?;
    Ok(page.model_versions)
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
        fetch(ctx, runs::metric_history_bulk_interval, &input).await
    }

    async fn mlflow_search_model_versions(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchModelVersionsInput>,
    ) -> async_graphql::Result<Option<SearchModelVersionsResponse>> {
        fetch(ctx, registry::search_versions, &input).await
    }

    async fn mlflow_list_artifacts(
        &self,
        ctx: &Context<'_>,
        input: Option<ListArtifactsInput>,
    ) -> async_graphql::Result<Option<ListArtifactsResponse>> {
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
    input: Option<SearchRunsInput>,
) -> async_graphql::Result<Option<SearchRunsResponse>> {
    fetch(ctx, runs::search, &input).await
}

/// MLflow's `Mutation` root: search runs is also there (the UI may send it either way).
pub struct Mutation;

#[Object(name = "Mutation")]
impl Mutation {
    async fn mlflow_search_datasets(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchDatasetsInput>,
    ) -> async_graphql::Result<Option<SearchDatasetsResponse>> {
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
