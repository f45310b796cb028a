//! Assessment endpoints: `/api/3.0/mlflow/traces/{trace_id}/assessments[/{assessment_id}]`.

use axum::extract::{Path, State};
use serde_json::{json, Value};

use super::reply::{empty, reply};
use super::request::{required, Message};
use super::{ApiError, ApiResult, AppState};
use crate::error::MlflowError;
use crate::service::AssessmentChanges;
use crate::wire::traces::{assessment_json, parse_assessment};

pub async fn create(
    State(app): State<AppState>,
    Path(trace_id): Path<String>,
    msg: Message,
) -> ApiResult {
    let body = msg.0;
    let raw = required(
        body.get("assessment").filter(|a| !a.is_null()),
        "assessment",
    )?;
    let a = parse_assessment(raw)?;
    let created = app.tracking.create_assessment(&trace_id, a).await?;
    reply(&json!({ "assessment": assessment_json(&created) }))
}

pub async fn get(
    State(app): State<AppState>,
    Path((trace_id, id)): Path<(String, String)>,
) -> ApiResult {
    let a = app.tracking.get_assessment(&trace_id, &id).await?;
    reply(&json!({ "assessment": assessment_json(&a) }))
}

/// The field mask's paths, snake_case (the JSON form is `"assessmentName,feedback"`).
fn mask_paths(mask: &Value) -> Result<Vec<String>, ApiError> {
    let text = match mask {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("paths") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        },
        _ => return Err(ApiError(MlflowError::invalid("Invalid 'update_mask'"))),
    };
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut out = String::new();
            for c in p.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect())
}

pub async fn update(
    State(app): State<AppState>,
    Path((trace_id, id)): Path<(String, String)>,
    msg: Message,
) -> ApiResult {
    let body = msg.0;
    let raw = required(
        body.get("assessment").filter(|a| !a.is_null()),
        "assessment",
    )?;
    let mask = required(
        body.get("update_mask").filter(|m| !m.is_null()),
        "update_mask",
    )?;
    let paths = mask_paths(mask)?;
    let mut changes = AssessmentChanges::default();
    let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
    for path in paths {
        match path.as_str() {
            "assessment_name" => changes.name = Some(text("assessment_name").unwrap_or_default()),
            "expectation" | "feedback" => {
                let mut only = serde_json::Map::new();
                only.insert(path.clone(), raw.get(&path).cloned().unwrap_or(Value::Null));
                if only[&path].is_null() {
                    only.insert(path.clone(), json!({}));
                }
                changes.value = Some(parse_assessment(&Value::Object(only))?.value);
            }
            "rationale" => changes.rationale = Some(text("rationale").unwrap_or_default()),
            "metadata" => {
                changes.metadata = Some(match raw.get("metadata") {
                    Some(Value::Object(m)) => m
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().map_or_else(|| v.to_string(), str::to_string),
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                })
            }
            _ => {}
        }
    }
    let updated = app
        .tracking
        .update_assessment(&trace_id, &id, changes)
        .await?;
    reply(&json!({ "assessment": assessment_json(&updated) }))
}

pub async fn delete(
    State(app): State<AppState>,
    Path((trace_id, id)): Path<(String, String)>,
) -> ApiResult {
    app.tracking.delete_assessment(&trace_id, &id).await?;
    empty()
}
