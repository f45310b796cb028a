//! A project's Python environment: which `--env-manager` applies, and the virtualenv built
//! from `python_env.yaml` (or from `conda.yaml`'s python pin and pip list, as MLflow does
//! for virtualenv), shared with model serving's environment cache.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::spec::ProjectEnv;
use super::ProjectError;
use crate::cli::serving::EnvManager;
use crate::serving::python::{build_env, EnvRequest, PythonEnv};

/// How the command runs: in the caller's environment, or with a virtualenv's `bin` first on
/// PATH (what `source bin/activate` does).
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnv {
    Local,
    Virtualenv { root: PathBuf },
}

/// The environment manager for `env` when `--env-manager` is `chosen`.
pub fn manager_for(
    env: &ProjectEnv,
    chosen: Option<EnvManager>,
) -> Result<EnvManager, ProjectError> {
    match (env, chosen) {
        (ProjectEnv::Docker(image), _) => Err(ProjectError::invalid(format!(
            "this project runs in the Docker image {image} (docker_env), which `mlflow run` \
             here does not support; run it with MLflow's Python CLI, or replace docker_env \
             with a python_env"
        ))),
        (_, Some(EnvManager::Conda)) => Err(ProjectError::invalid(
            "--env-manager conda is not supported; use virtualenv or local",
        )),
        (_, Some(m)) => Ok(m),
        // MLflow would build an empty virtualenv, in which the project's imports fail.
        (ProjectEnv::None, None) => Ok(EnvManager::Local),
        (_, None) => Ok(EnvManager::Virtualenv),
    }
}

/// Builds (or finds in the cache) the environment the command runs in.
pub fn prepare(
    project_dir: &Path,
    env: &ProjectEnv,
    manager: EnvManager,
) -> Result<RunEnv, ProjectError> {
    if manager == EnvManager::Local {
        return Ok(RunEnv::Local);
    }
    let (spec, text) = match env {
        ProjectEnv::Python(path) => {
            let text = read(path)?;
            let spec: PythonEnv =
                serde_saphyr::from_str(&text).map_err(|e| ProjectError::Spec {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            (spec, text)
        }
        ProjectEnv::Conda(path) => {
            let text = read(path)?;
            (from_conda_yaml(path, &text)?, text)
        }
        ProjectEnv::None | ProjectEnv::Docker(_) => (PythonEnv::default(), String::new()),
    };
    let python = build_env(&EnvRequest {
        dir: project_dir,
        spec: &spec,
        spec_text: &text,
        add_mlflow: None,
        who: format!("the project in {} needs Python", project_dir.display()),
    })?;
    let root = python
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok(RunEnv::Virtualenv { root })
}

fn read(path: &Path) -> Result<String, ProjectError> {
    std::fs::read_to_string(path).map_err(|e| ProjectError::io(path, e))
}

/// `conda.yaml` as MLflow reads it for virtualenv: `python=X.Y` pins the interpreter, other
/// conda packages become build dependencies (`=` read as `==`), the `pip:` list the
/// dependencies.
fn from_conda_yaml(path: &Path, text: &str) -> Result<PythonEnv, ProjectError> {
    let invalid = |reason: String| ProjectError::Spec {
        path: path.display().to_string(),
        reason,
    };
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut env = PythonEnv::default();
    let deps = doc
        .get("dependencies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for dep in deps {
        match dep {
            Value::String(s) => {
                let s = s.trim();
                let split = s.find(['=', '<', '>', '!', '~']).unwrap_or(s.len());
                let (package, rest) = s.split_at(split);
                let package = package.trim();
                if package == "python" && env.python.is_none() {
                    let version = rest.trim_start_matches(['=', '<', '>']).trim();
                    if version.is_empty() {
                        return Err(invalid(format!(
                            "Invalid dependency for python: {s}. It must be pinned (e.g. \
                             python=3.8.13)."
                        )));
                    }
                    env.python = Some(version.to_string());
                } else if package != "pip" || !rest.is_empty() {
                    let rest = match rest.strip_prefix('=') {
                        Some(r) if !r.starts_with('=') => format!("=={r}"),
                        _ => rest.to_string(),
                    };
                    env.build_dependencies.push(format!("{package}{rest}"));
                } else {
                    env.build_dependencies.push("pip".into());
                }
            }
            Value::Object(map) if map.contains_key("pip") => {
                env.dependencies = map["pip"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            other => {
                return Err(invalid(format!(
                    "Invalid conda dependency: {other}. Must be str or dict in the form of \
                     {{\"pip\": [...]}}"
                )))
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda_yaml_becomes_a_python_env() {
        let env = from_conda_yaml(
            Path::new("conda.yaml"),
            "name: x\nchannels: [conda-forge]\ndependencies:\n  - python=3.11.7\n  - pip\n  - numpy=2.4\n  - pip:\n    - scikit-learn==1.9.1\n",
        )
        .expect("conda");
        assert_eq!(env.python.as_deref(), Some("3.11.7"));
        assert_eq!(env.build_dependencies, vec!["pip", "numpy==2.4"]);
        assert_eq!(env.dependencies, vec!["scikit-learn==1.9.1"]);
        assert!(from_conda_yaml(Path::new("c"), "dependencies: [python]").is_err());
    }

    #[test]
    fn default_managers() {
        let py = ProjectEnv::Python(PathBuf::from("python_env.yaml"));
        assert_eq!(manager_for(&py, None).ok(), Some(EnvManager::Virtualenv));
        assert_eq!(
            manager_for(&ProjectEnv::None, None).ok(),
            Some(EnvManager::Local)
        );
        assert_eq!(
            manager_for(&py, Some(EnvManager::Local)).ok(),
            Some(EnvManager::Local)
        );
        assert!(manager_for(&py, Some(EnvManager::Conda)).is_err());
        assert!(manager_for(&ProjectEnv::Docker("img".into()), None).is_err());
    }
}
