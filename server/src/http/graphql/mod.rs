//! `/graphql`: the part of MLflow's GraphQL schema the web UI queries (experiment, run with
//! its experiment and model versions, run search, sampled metric histories, model-version
//! search, artifact listing). Answers have MLflow's shape: `{"data": ..., "errors": null}`
//! or errors as a list of message strings. A JSON array of requests is answered with an
//! array (batching); GET takes `query`, `variables` and `operationName` from the URL.

mod guard;
mod limits;
mod points;
mod resolve;
mod types;

use std::sync::OnceLock;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{EmptySubscription, Request, Schema, Value as GqlValue};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

use super::request::{query_to_json, MAX_JSON_BODY};
use super::{ApiResult, AppState};
use crate::error::MlflowError;

type MlflowSchema = Schema<resolve::Query, resolve::Mutation, EmptySubscription>;

/// MLflow's limits on one query (`graphql_no_batching.py`): depth 10, 1000 selections.
fn schema() -> &'static MlflowSchema {
    static SCHEMA: OnceLock<MlflowSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::build(resolve::Query, resolve::Mutation, EmptySubscription)
            .limit_depth(11)
            .limit_complexity(1000)
            .finish()
    })
}

/// `GET|POST /graphql`.
pub async fn handle(State(app): State<AppState>, request: axum::extract::Request) -> ApiResult {
    let caller = request
        .extensions()
        .get::<super::auth::Caller>()
        .map(|c| c.0.clone());
    let message = if request.method() == axum::http::Method::GET {
        query_to_json(request.uri().query().unwrap_or(""))
    } else {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| MlflowError::invalid("The request body is too large or unreadable"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| MlflowError::invalid(format!("Invalid JSON body: {e}")))?
    };
    // Answers are serialized from async-graphql's values directly: a page of chart points is
    // 30,000 objects, and a detour through `serde_json::Value` cost a tenth of the request.
    let body = match message {
        Value::Array(items) => {
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                answers.push(execute(&app, &caller, item).await?);
            }
            format!("[{}]", answers.join(","))
        }
        single => execute(&app, &caller, single).await?,
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// One GraphQL request, answered as MLflow's JSON text.
async fn execute(
    app: &AppState,
    caller: &Option<crate::auth::store::User>,
    request: Value,
) -> Result<String, super::ApiError> {
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return Err(MlflowError::missing("query").into());
    };
    // GET passes variables as a JSON string.
    let variables = match request.get("variables") {
        Some(Value::String(text)) if !text.is_empty() => serde_json::from_str(text)
            .map_err(|_| MlflowError::invalid_value("variables", &Value::String(text.clone())))?,
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Null,
    };
    let mut gql = Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(app.clone())
        .data(guard::Caller(caller.clone()))
        .data(resolve::ExperimentCache::default())
        .data(resolve::ModelVersionCache::default());
    if let Some(name) = request.get("operationName").and_then(Value::as_str) {
        gql = gql.operation_name(name);
    }
    match async_graphql::parser::parse_query(query) {
        Ok(mut doc) => {
            if let Some(message) = limits::check(&doc) {
                return Ok(answer(GqlValue::Null, vec![message]));
            }
            drop_component_directives(&mut doc);
            gql.set_parsed_query(doc);
        }
        Err(e) => return Ok(answer(GqlValue::Null, vec![e.to_string()])),
    }
    let response = schema().execute(gql).await;
    let errors = response.errors.iter().map(|e| e.message.clone()).collect();
    let mut data = response.data;
    // A root field whose resolver failed is null in MLflow's answer (async-graphql leaves it
    // out); without any root field there is no data at all.
    for error in &response.errors {
        if let Some(async_graphql::PathSegment::Field(name)) = error.path.first() {
            if data == GqlValue::Null {
                data = GqlValue::Object(Default::default());
            }
            if let GqlValue::Object(fields) = &mut data {
                fields
                    .entry(async_graphql::Name::new(name))
                    .or_insert(GqlValue::Null);
            }
        }
    }
    Ok(answer(data, errors))
}

/// MLflow's answer: `{"data": ..., "errors": null | [messages]}`.
fn answer(data: GqlValue, errors: Vec<String>) -> String {
    let data = match data {
        GqlValue::Object(ref m) if m.is_empty() => GqlValue::Null,
        other => other,
    };
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"data\":");
    write_value(&mut out, &data);
    out.extend_from_slice(b",\"errors\":");
    if errors.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        write_json(&mut out, &errors);
    }
    out.push(b'}');
    // Every piece is JSON text from serde_json or points.rs, so UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Writes a value async-graphql built as JSON; a binary value is JSON text already
/// (the pre-serialized metric points of `points.rs`) and goes in unchanged.
fn write_value(out: &mut Vec<u8>, value: &GqlValue) {
    match value {
        GqlValue::Binary(json) => out.extend_from_slice(json),
        GqlValue::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        GqlValue::Object(fields) => {
            out.push(b'{');
            for (i, (name, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, name.as_str());
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
        other => write_json(out, other),
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Values async-graphql built (finite numbers, string keys) serialize into a Vec
    // without error.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The UI tags its operations `@component(name: ...)` (MLflow declares that directive for
/// Databricks' tooling and ignores it); it means nothing here either.
fn drop_component_directives(doc: &mut ExecutableDocument) {
    let strip = |op: &mut async_graphql::parser::types::OperationDefinition| {
        op.directives.retain(|d| d.node.name.node != "component");
    };
    match &mut doc.operations {
        DocumentOperations::Single(op) => strip(&mut op.node),
        DocumentOperations::Multiple(ops) => ops.values_mut().for_each(|op| strip(&mut op.node)),
    }
}
