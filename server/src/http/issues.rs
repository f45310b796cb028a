//! GenAI issue endpoints under `/api/3.0/mlflow/issues`: create, get, update (PATCH) and
//! search. Empty strings count as absent, as in MLflow's handlers.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::reply::{reply, Field};
use super::request::{required_str, Message};
use super::{ApiResult, AppState};
use crate::domain::issues::{Issue, IssueChanges, NewIssue};
use crate::service::IssueQuery;
use crate::wire;

/// The proto's JSON form: unset fields and empty lists are left out.
fn issue_json(i: &Issue) -> Value {
    let mut m = Map::new();
    m.insert("issue_id".into(), json!(i.issue_id));
    m.insert("experiment_id".into(), json!(i.experiment_id.to_string()));
    m.insert("name".into(), json!(i.name));
    m.insert("description".into(), json!(i.description));
    m.insert("status".into(), json!(i.status));
    let optional = [
        ("severity", &i.severity),
        ("source_run_id", &i.source_run_id),
        ("created_by", &i.created_by),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    for (key, list) in [
        ("root_causes", &i.root_causes),
        ("categories", &i.categories),
    ] {
        if !list.is_empty() {
            m.insert(key.into(), json!(list));
        }
    }
    m.insert("created_timestamp".into(), json!(i.created_timestamp));
    m.insert(
        "last_updated_timestamp".into(),
        json!(i.last_updated_timestamp),
    );
    if let Some(n) = i.trace_count {
        m.insert("trace_count".into(), json!(n));
    }
    Value::Object(m)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct Create {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    severity: Option<String>,
    #[serde(default, deserialize_with = "wire::string_list")]
    root_causes: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    source_run_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    created_by: Option<String>,
    #[serde(default, deserialize_with = "wire::string_list")]
    categories: Vec<String>,
}

pub async fn create(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Create = msg.parse()?;
    let experiment_id = required_str(r.experiment_id, "experiment_id")?;
    let new = NewIssue {
        experiment_id: 0,
        name: required_str(r.name, "name")?,
        description: required_str(r.description, "description")?,
        status: r.status.unwrap_or_else(|| "pending".to_string()),
        severity: r.severity,
        root_causes: r.root_causes,
        source_run_id: non_empty(r.source_run_id),
        categories: r.categories,
        created_by: non_empty(r.created_by),
    };
    let issue = app.tracking.create_issue(&experiment_id, new).await?;
    reply(&Field("issue", issue_json(&issue)))
}

pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let issue = app.tracking.get_issue(&id).await?;
    reply(&Field("issue", issue_json(&issue)))
}

#[derive(Deserialize)]
struct Update {
    #[serde(default, deserialize_with = "wire::opt_string")]
    issue_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    severity: Option<String>,
}

pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    msg: Message,
) -> ApiResult {
    let r: Update = msg.parse()?;
    // MLflow requires the id in the body too; the path's id is the one updated.
    required_str(r.issue_id, "issue_id")?;
    let changes = IssueChanges {
        name: non_empty(r.name),
        description: non_empty(r.description),
        status: r.status,
        severity: r.severity,
    };
    let issue = app.tracking.update_issue(&id, changes).await?;
    reply(&Field("issue", issue_json(&issue)))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "wire::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    filter_string: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    page_token: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_bool")]
    include_trace_count: Option<bool>,
}

pub async fn search(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r: Search = msg.parse()?;
    let page = app
        .tracking
        .search_issues(IssueQuery {
            experiment_id: non_empty(r.experiment_id),
            filter: non_empty(r.filter_string),
            max_results: r.max_results,
            page_token: non_empty(r.page_token),
            include_trace_count: r.include_trace_count.unwrap_or(false),
        })
        .await?;
    let mut out = json!({ "next_page_token": page.next_page_token.unwrap_or_default() });
    // An empty repeated field is left out of the answer, as protobuf JSON does.
    if !page.items.is_empty() {
        out["issues"] = page.items.iter().map(issue_json).collect();
    }
    reply(&out)
}
