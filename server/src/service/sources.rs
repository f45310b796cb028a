//! Resolving a new model version's `source` as MLflow 3.17.2's `_create_model_version` does:
//! prompt placeholders, the host policy, `models:/` lineage, and the run or logged model that
//! must contain a local or proxied location. Only database rows are read: the run's or logged
//! model's artifact location, another version's row. The source itself is never opened or
//! fetched (see [`crate::domain::source`]).

use regex::Regex;

use super::registry::NewVersionRequest;
use super::tracking::Tracking;
use crate::domain::registry::IS_PROMPT_TAG_KEY;
use crate::domain::source::{self as s, HostPolicy, ModelUri, UriParts};
use crate::error::{ErrorCode, MlflowError, Result};

/// What the operator configured about sources; built once at startup.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    pub hosts: HostPolicy,
    /// `MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX`.
    pub pattern: Option<Regex>,
    /// The server's working directory, against which relative local paths are read.
    pub cwd: String,
}

impl SourcePolicy {
    /// `own_locations`: the default artifact root and the artifacts destination.
    pub fn new(
        own_locations: &[&str],
        allowed_schemes: &str,
        pattern: Option<&str>,
    ) -> std::result::Result<Self, String> {
        let pattern = match pattern.filter(|p| !p.is_empty()) {
            Some(p) => Some(Regex::new(p).map_err(|e| {
                format!("MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX is not a valid regular expression: {e}")
            })?),
            None => None,
        };
        Ok(SourcePolicy {
            hosts: HostPolicy::new(own_locations, allowed_schemes),
            pattern,
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "/".into()),
        })
    }
}

/// A source ready to store: the source as stored, where its files are, and the run id.
pub struct Resolved {
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
}

/// The values MLflow's client sends for a prompt version's `source`.
const PROMPT_SOURCE_PLACEHOLDERS: [&str; 2] = ["dummy-source", "prompt-template"];

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn is_prompt_request(req: &NewVersionRequest) -> bool {
    req.tags
        .iter()
        .rev()
        .find(|t| t.key == IS_PROMPT_TAG_KEY)
        .is_some_and(|t| t.value.eq_ignore_ascii_case("true"))
}

/// A missing run or logged model named by the request is a bad source, not a 404.
fn as_source_error(err: MlflowError, source: &str, field: &str) -> MlflowError {
    if err.code == ErrorCode::ResourceDoesNotExist {
        s::must_identify(source, field)
    } else {
        err
    }
}

/// Whether local `source` lies in (or is) the local directory `root`; both read lexically.
fn local_within(source: &str, root: &str, cwd: &str) -> bool {
    let root_parts = UriParts::parse(root);
    if !matches!(s::is_local(root, &root_parts), Ok(true)) {
        return false;
    }
    match (s::local_path(source, cwd), s::local_path(root, cwd)) {
        (Some(src), Some(dir)) => src.starts_with(&dir),
        _ => false,
    }
}

impl Tracking {
    /// MLflow's checks on a new version's source, then where its files are.
    pub(super) async fn resolve_source(
        &self,
        req: &NewVersionRequest,
        policy: &SourcePolicy,
    ) -> Result<Resolved> {
        let source = req.source.as_str();
        if let Some(pattern) = &policy.pattern {
            if !pattern.is_match(source) {
                return Err(MlflowError::invalid(format!(
                    "Invalid model version source: '{}'.",
                    s::shown(source)
                )));
            }
        }
        if is_prompt_request(req) {
            if !PROMPT_SOURCE_PLACEHOLDERS.contains(&source) {
                return Err(MlflowError::invalid(format!(
                    "Invalid prompt source: '{}'. Prompt sources must use an MLflow placeholder.",
                    s::shown(source)
                )));
            }
            return Ok(Resolved {
                source: source.to_string(),
                storage_location: source.to_string(),
                run_id: non_empty(&req.run_id).map(str::to_string),
            });
        }
        policy.hosts.check(source, "source")?;
        let (source, mut run_id, model_id) = self.resolve_lineage(req).await?;
        let model = match model_id.as_deref() {
            Some(id) => {
                self.check_source_of_model(&source, id, &policy.cwd).await?;
                // Fetched before anything is written: MLflow links the version to the model
                // after creating it, and would fail half-way on a missing model.
                Some(self.get_logged_model(id, false).await?)
            }
            None => {
                self.check_source_of_run(&source, run_id.as_deref(), &policy.cwd)
                    .await?;
                None
            }
        };
        let storage_location = match s::parse_model_uri(&source) {
            Some(ModelUri::LoggedModel(id)) => {
                let linked = match &model {
                    Some(m) if m.info.model_id == id => m.clone(),
                    _ => self.get_logged_model(&id, false).await.map_err(|e| {
                        MlflowError::invalid(format!(
                            "Unable to fetch model from model URI source artifact location \
                             '{}'. Error: {}",
                            s::shown(&source),
                            e.message
                        ))
                    })?,
                };
                run_id = run_id.or(linked.info.source_run_id.clone());
                linked.info.artifact_uri
            }
            Some(ModelUri::Version { name, version }) => {
                self.get_model_version_download_uri(&name, &version).await?
            }
            _ => source.clone(),
        };
        if run_id.is_none() {
            run_id = model.and_then(|m| m.info.source_run_id);
        }
        Ok(Resolved {
            source,
            storage_location,
            run_id,
        })
    }

    /// `models:/<name>/<version|stage|latest>` and `models:/<name>@<alias>` become
    /// `models:/<name>/<version>`, with the version's run id unless the request names one.
    /// Returns the source, run id and model id to go on with.
    async fn resolve_lineage(
        &self,
        req: &NewVersionRequest,
    ) -> Result<(String, Option<String>, Option<String>)> {
        let source = req.source.clone();
        let run_id = non_empty(&req.run_id).map(str::to_string);
        let model_id = non_empty(&req.model_id).map(str::to_string);
        let parts = UriParts::parse(&source);
        if parts.scheme != "models" {
            return Ok((source, run_id, model_id));
        }
        if parts.netloc.as_deref().is_some_and(|n| !n.is_empty()) {
            return Err(MlflowError::invalid(format!(
                "Invalid model version source: '{}'. Registered model sources must use the \
                 active model registry.",
                s::shown(&source)
            )));
        }
        let (name, version) = match s::parse_model_uri(&source) {
            None => return Err(s::must_identify(&source, "model_id")),
            Some(ModelUri::LoggedModel(_)) => return Ok((source, run_id, model_id)),
            Some(ModelUri::Version { name, version }) => (name, Some(version)),
            Some(
                ModelUri::Stage { name, .. }
                | ModelUri::Latest { name }
                | ModelUri::Alias { name, .. },
            ) => (name, None),
        };
        let registered = self.get_registered_model(&name).await?;
        let is_prompt = registered
            .tags
            .iter()
            .any(|t| t.key == IS_PROMPT_TAG_KEY && t.value.eq_ignore_ascii_case("true"));
        if is_prompt {
            return Err(MlflowError::invalid(format!(
                "Invalid model version source: '{}'. Prompt versions cannot be used as model \
                 version sources.",
                s::shown(&source)
            )));
        }
        let version = match (version, s::parse_model_uri(&source)) {
            (Some(v), _) => v,
            (None, Some(ModelUri::Alias { alias, .. })) => {
                self.get_model_version_by_alias(&name, &alias)
                    .await?
                    .version
            }
            (None, Some(ModelUri::Stage { stage, .. })) => {
                self.latest_version_number(&name, Some(stage)).await?
            }
            _ => self.latest_version_number(&name, None).await?,
        };
        let original = self.get_model_version(&name, &version).await?;
        let original_run = original.run_id.clone().unwrap_or_default();
        // Versions keep no model id in MLflow's schema, so a given one never matches.
        if (req.run_id.is_some() && req.run_id.as_deref().unwrap_or("") != original_run)
            || model_id.is_some()
        {
            return Err(MlflowError::invalid(format!(
                "Invalid model version source: '{}'. The run_id and model_id request parameters \
                 must match the referenced model version.",
                s::shown(&source)
            )));
        }
        let run_id = if req.run_id.is_some() {
            run_id
        } else {
            original.run_id.filter(|r| !r.is_empty())
        };
        Ok((format!("models:/{name}/{}", original.version), run_id, None))
    }

    /// The newest version of `name`, in `stage` if given (MLflow's `_get_latest_model_version`).
    async fn latest_version_number(&self, name: &str, stage: Option<String>) -> Result<String> {
        let stages: Vec<String> = stage.iter().cloned().collect();
        let latest = self.get_latest_versions(name, &stages).await?;
        latest
            .iter()
            .filter_map(|v| v.version.parse::<i64>().ok())
            .max()
            .map(|v| v.to_string())
            .ok_or_else(|| {
                let in_stage = stage.map_or(String::new(), |s| format!(" and stage '{s}'"));
                MlflowError::not_found(format!(
                    "No versions of model with name '{name}'{in_stage} found"
                ))
            })
    }

    /// MLflow's `_validate_source_run`.
    async fn check_source_of_run(
        &self,
        source: &str,
        run_id: Option<&str>,
        cwd: &str,
    ) -> Result<()> {
        let parts = UriParts::parse(source);
        if s::is_local(source, &parts)? {
            if let Some(id) = run_id {
                let run = self
                    .get_run(id)
                    .await
                    .map_err(|e| as_source_error(e, source, "run_id"))?;
                if local_within(source, &run.info.artifact_uri, cwd) {
                    return Ok(());
                }
            }
            return Err(s::local_source_error(source, "run_id", "run"));
        }
        if s::has_relative_path_references(source) {
            return Err(s::relative_path_error(source));
        }
        let has_netloc = parts.netloc.as_deref().is_some_and(|n| !n.is_empty());
        match parts.scheme.as_str() {
            "runs" => {
                return match (s::runs_uri_run_id(&parts), run_id) {
                    (Some(named), Some(given)) if !has_netloc && named == given => Ok(()),
                    _ => Err(s::must_identify(source, "run_id")),
                };
            }
            "models"
                if has_netloc
                    || !matches!(
                        s::parse_model_uri(source),
                        Some(m) if !matches!(m, ModelUri::LoggedModel(_))
                    ) =>
            {
                return Err(s::must_identify(source, "model_id"));
            }
            _ => {}
        }
        if s::is_mlflow_artifacts(&parts) {
            if let Some(id) = run_id {
                let run = self
                    .get_run(id)
                    .await
                    .map_err(|e| as_source_error(e, source, "run_id"))?;
                if s::is_uri_within_root(source, &run.info.artifact_uri) {
                    return Ok(());
                }
            }
            return Err(s::must_identify(source, "run_id"));
        }
        Ok(())
    }

    /// MLflow's `_validate_source_model`.
    async fn check_source_of_model(&self, source: &str, model_id: &str, cwd: &str) -> Result<()> {
        let parts = UriParts::parse(source);
        let model_root = || async {
            self.get_logged_model(model_id, false)
                .await
                .map(|m| m.info.artifact_uri)
                .map_err(|e| as_source_error(e, source, "model_id"))
        };
        if s::is_local(source, &parts)? {
            if local_within(source, &model_root().await?, cwd) {
                return Ok(());
            }
            return Err(s::local_source_error(source, "model_id", "run"));
        }
        if s::has_relative_path_references(source) {
            return Err(s::relative_path_error(source));
        }
        let has_netloc = parts.netloc.as_deref().is_some_and(|n| !n.is_empty());
        match parts.scheme.as_str() {
            "models" => match s::parse_model_uri(source) {
                _ if has_netloc => return Err(s::must_identify(source, "model_id")),
                None => return Err(s::must_identify(source, "model_id")),
                Some(ModelUri::LoggedModel(id)) if id == model_id => return Ok(()),
                Some(ModelUri::LoggedModel(_)) => return Err(s::must_identify(source, "model_id")),
                Some(_) => {}
            },
            "runs" => return Err(s::must_identify(source, "model_id")),
            _ => {}
        }
        if s::is_mlflow_artifacts(&parts) {
            if s::is_uri_within_root(source, &model_root().await?) {
                return Ok(());
            }
            return Err(s::must_identify(source, "model_id"));
        }
        Ok(())
    }
}
