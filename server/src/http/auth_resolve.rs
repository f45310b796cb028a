//! What a request requires, from its rule and parameters: the ids it names are looked up
//! (a run's, trace's or logged model's experiment; whether a registered model is a prompt),
//! and a missing resource is refused rather than reported, as MLflow does, so the answer does
//! not tell which ids exist.

use serde_json::Value;

use super::{ApiError, AppState};
use crate::auth::permissions::{Action, Key, Requirement, EXPERIMENT, PROMPT, REGISTERED_MODEL};
use crate::auth::rules::Rule;
use crate::error::{ErrorCode, MlflowError};

/// A request's parameters: the query (GET) or the JSON body.
pub struct Params(pub Value);

impl Params {
    /// A string or number parameter as text.
    pub fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A parameter that may be one value or a list.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| Params(serde_json::json!({ "v": v })).str("v"))
            .collect(),
        Some(v) => Params(serde_json::json!({ "v": v }))
            .str("v")
            .into_iter()
            .collect(),
        None => Vec::new(),
    }
}

fn found<T>(result: crate::error::Result<T>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == ErrorCode::ResourceDoesNotExist => Ok(None),
        Err(e) => Err(ApiError(e)),
    }
}

fn experiment(id: &str, action: Action) -> Requirement {
    Requirement::on(Key::new(EXPERIMENT, id), action)
}

/// Work inside an experiment: read on the experiment, and `action` on the sub-resource tier
/// (a `run`, `trace` or `logged_model` grant), else on the experiment.
fn inside(tier: &'static str, experiment_id: &str, action: Action) -> Vec<Requirement> {
    vec![
        experiment(experiment_id, Action::Read),
        Requirement::inherited(Key::any(tier), action, Key::new(EXPERIMENT, experiment_id)),
    ]
}

fn create_in(tier: &'static str, experiment_id: &str) -> Vec<Requirement> {
    vec![
        experiment(experiment_id, Action::Update),
        Requirement::on(Key::any(tier), Action::NotDenied),
    ]
}

async fn run_experiment(state: &AppState, run_id: &str) -> Result<Option<String>, ApiError> {
    Ok(found(state.tracking.get_run(run_id).await)?.map(|r| r.info.experiment_id))
}

async fn trace_experiment(state: &AppState, trace_id: &str) -> Result<Option<String>, ApiError> {
    Ok(found(state.tracking.get_trace_info(trace_id).await)?.map(|t| t.experiment_id))
}

/// The grant type of a registered model: `prompt` for prompts.
async fn model_kind(state: &AppState, name: &str) -> Result<&'static str, ApiError> {
    let model = found(state.tracking.get_registered_model(name).await)?;
    let prompt = model.is_some_and(|m| {
        m.tags
            .iter()
            .any(|t| t.key == "mlflow.prompt.is_prompt" && t.value.eq_ignore_ascii_case("true"))
    });
    Ok(if prompt { PROMPT } else { REGISTERED_MODEL })
}

/// MLflow's grant pattern of a scorer: `<experiment_id>/<name, percent-encoded>`.
fn scorer_pattern(experiment_id: &str, name: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    format!(
        "{experiment_id}/{}",
        percent_encoding::utf8_percent_encode(name, KEEP)
    )
}

/// The run a new model version comes from: its `run_id`, else the run of a `runs:/` source.
fn source_run(params: &Params) -> String {
    if let Some(id) = params.str("run_id").filter(|id| !id.is_empty()) {
        return id;
    }
    let source = params.str("source").unwrap_or_default();
    source
        .strip_prefix("runs:/")
        .and_then(|rest| rest.trim_start_matches('/').split('/').next())
        .unwrap_or_default()
        .to_string()
}

/// The experiment an artifact path starts with (`<experiment_id>/...`), if it does.
fn artifact_experiment(path: &str) -> Option<String> {
    let first = path.trim_start_matches('/').split('/').next()?;
    (!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit())).then(|| first.to_string())
}

/// The requirements of a request that is not an admin's; `None` when it names a resource
/// that does not exist (or a wildcard grant), which is refused.
pub async fn requirements(
    state: &AppState,
    rule: &Rule,
    params: &Params,
    header_experiment: Option<String>,
) -> Result<Option<Vec<Requirement>>, ApiError> {
    let p = |name: &str| params.str(name).unwrap_or_default();
    Ok(Some(match rule {
        Rule::Public | Rule::Authenticated | Rule::SelfOrAdmin | Rule::AdminOnly => Vec::new(),
        Rule::FilterExperiments | Rule::FilterRegisteredModels | Rule::FilterModelVersions => {
            Vec::new()
        }
        Rule::SearchRuns | Rule::SearchLoggedModels => Vec::new(),
        Rule::ManageResource => {
            let resource_type = p("resource_type");
            let Some((kind, _)) = crate::auth::permissions::RESOURCE_TYPES
                .iter()
                .find(|(t, _)| *t == resource_type && *t != "workspace")
            else {
                return Err(ApiError(MlflowError::invalid(format!(
                    "Invalid resource type '{resource_type}'."
                ))));
            };
            let id = p("resource_id");
            if id == "*" {
                // Wildcard grants are the role API's business: admins only.
                return Ok(None);
            }
            vec![Requirement::on(Key::new(kind, id), Action::Manage)]
        }
        Rule::Experiment(action) => vec![experiment(&p("experiment_id"), *action)],
        Rule::ExperimentByName(action) => {
            let name = p("experiment_name");
            let exp = state
                .tracking
                .get_experiment_by_name(&name)
                .await
                .map_err(ApiError)?;
            vec![experiment(&exp.experiment_id, *action)]
        }
        Rule::CreateExperiment => vec![Requirement::on(Key::any(EXPERIMENT), Action::NotDenied)],
        Rule::Run(action) => {
            let id = params.str("run_id").or_else(|| params.str("run_uuid"));
            match run_experiment(state, &id.unwrap_or_default()).await? {
                Some(exp) => inside("run", &exp, *action),
                None => return Ok(None),
            }
        }
        Rule::Runs => {
            let mut ids = strings(params.0.get("run_ids"));
            ids.extend(params.str("run_id"));
            let mut needed = Vec::new();
            for id in ids {
                match run_experiment(state, &id).await? {
                    Some(exp) => needed.extend(inside("run", &exp, Action::Read)),
                    None => return Ok(None),
                }
            }
            needed
        }
        Rule::CreateRun => create_in("run", &p("experiment_id")),
        Rule::RegisteredModel(action) => {
            let name = p("name");
            let kind = model_kind(state, &name).await?;
            vec![Requirement::on(Key::new(kind, name), *action)]
        }
        Rule::CreateRegisteredModel => {
            let prompt = params.0["tags"].as_array().is_some_and(|tags| {
                tags.iter().any(|t| {
                    t["key"] == "mlflow.prompt.is_prompt"
                        && t["value"]
                            .as_str()
                            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                })
            });
            let kind = if prompt { PROMPT } else { REGISTERED_MODEL };
            vec![Requirement::on(Key::any(kind), Action::NotDenied)]
        }
        Rule::ModelVersion(action) => {
            let name = p("name");
            let kind = model_kind(state, &name).await?;
            let tier = if kind == PROMPT {
                "prompt_version"
            } else {
                "registered_model_version"
            };
            vec![Requirement::inherited(
                Key::any(tier),
                *action,
                Key::new(kind, name),
            )]
        }
        Rule::CreateModelVersion => {
            let name = p("name");
            let kind = model_kind(state, &name).await?;
            let mut needed = vec![Requirement::on(Key::new(kind, name), Action::Update)];
            // A version registered from a run hands its artifacts to the model's readers:
            // the registering user must be able to read that run (an unknown run is left to
            // the handler's own error).
            let run_id = source_run(params);
            if !run_id.is_empty() {
                if let Ok(Some(exp)) = run_experiment(state, &run_id).await {
                    needed.extend(inside("run", &exp, Action::Read));
                }
            }
            needed
        }
        Rule::LoggedModel(id, action) => {
            match found(state.tracking.get_logged_model(id, true).await)? {
                Some(m) => inside("logged_model", &m.info.experiment_id, *action),
                None => return Ok(None),
            }
        }
        Rule::CreateLoggedModel => create_in("logged_model", &p("experiment_id")),
        Rule::Trace(id, action) => {
            let id = id
                .clone()
                .or_else(|| params.str("trace_id"))
                .or_else(|| params.str("request_id"))
                .unwrap_or_default();
            match trace_experiment(state, &id).await? {
                Some(exp) => inside("trace", &exp, *action),
                None => return Ok(None),
            }
        }
        Rule::Traces => {
            let mut needed = Vec::new();
            for id in strings(params.0.get("trace_ids")) {
                match trace_experiment(state, &id).await? {
                    Some(exp) => needed.extend(inside("trace", &exp, Action::Read)),
                    None => return Ok(None),
                }
            }
            needed
        }
        Rule::StartTrace => {
            let location = &params.0["trace"]["trace_info"]["trace_location"];
            let exp = Params(location["mlflow_experiment"].clone())
                .str("experiment_id")
                .or_else(|| params.str("experiment_id"))
                .unwrap_or_default();
            create_in("trace", &exp)
        }
        Rule::TracesInExperiments => {
            let mut ids = strings(params.0.get("experiment_ids"));
            if let Some(locations) = params.0["locations"].as_array() {
                ids.extend(
                    locations.iter().filter_map(|l| {
                        Params(l["mlflow_experiment"].clone()).str("experiment_id")
                    }),
                );
            }
            ids.iter().map(|id| experiment(id, Action::Read)).collect()
        }
        Rule::Experiments(action) => {
            let ids = strings(params.0.get("experiment_ids"));
            if ids.is_empty() {
                return Ok(None);
            }
            ids.iter().map(|id| experiment(id, *action)).collect()
        }
        Rule::Dataset(id, action, linking) => {
            let ids = match found(state.tracking.dataset_experiment_ids(id).await)? {
                Some(ids) if !ids.is_empty() => ids,
                _ => return Ok(None),
            };
            let mut needed: Vec<Requirement> =
                ids.iter().map(|id| experiment(id, *action)).collect();
            if *linking {
                let added = strings(params.0.get("experiment_ids"));
                if added.is_empty() {
                    return Ok(None);
                }
                needed.extend(added.iter().map(|id| experiment(id, Action::Update)));
            }
            needed
        }
        Rule::Scorer(action) => {
            let exp = p("experiment_id");
            let key = Key::new("scorer", scorer_pattern(&exp, &p("name")));
            vec![
                experiment(&exp, Action::Read),
                Requirement::inherited(key, *action, Key::new(EXPERIMENT, exp.clone())),
            ]
        }
        Rule::RegisterScorer => {
            let exp = p("experiment_id");
            let key = Key::new("scorer", scorer_pattern(&exp, &p("name")));
            vec![
                experiment(&exp, Action::Update),
                Requirement::on(key, Action::NotDenied),
            ]
        }
        Rule::DeleteTraces => inside("trace", &p("experiment_id"), Action::Delete),
        Rule::LinkTracesToRun => {
            let mut needed = Vec::new();
            for id in strings(params.0.get("trace_ids")) {
                match trace_experiment(state, &id).await? {
                    Some(exp) => needed.extend(inside("trace", &exp, Action::Update)),
                    None => return Ok(None),
                }
            }
            match run_experiment(state, &p("run_id")).await? {
                Some(exp) => needed.extend(inside("run", &exp, Action::Update)),
                None => return Ok(None),
            }
            needed
        }
        Rule::Otlp => create_in("trace", &header_experiment.unwrap_or_default()),
        Rule::ArtifactProxy(path, action) => {
            let path = path
                .clone()
                .or_else(|| params.str("path"))
                .unwrap_or_default();
            match artifact_experiment(&path) {
                Some(exp) => vec![experiment(&exp, *action)],
                // Outside any experiment: the default permission decides, as in MLflow.
                None => vec![Requirement::on(Key::new(EXPERIMENT, ""), *action)],
            }
        }
    }))
}
