//! Which Python runs a `python_function` model: `--env-manager local` uses the interpreter
//! that has the `mlflow` package (MLFLOW_PYTHON, else `python3` or `python` on PATH);
//! `virtualenv` builds the model's own environment from `python_env.yaml` and its
//! `requirements.txt` once, under the cache, keyed by their contents.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::cache::{cache_root, sha256_hex};
use super::mlmodel::MlModel;
use super::ServingError;
use crate::cli::serving::EnvManager;

/// The interpreter for `model` under `manager`.
pub fn python_for(model: &MlModel, manager: EnvManager) -> Result<PathBuf, ServingError> {
    match manager {
        EnvManager::Local => local_python(model),
        EnvManager::Virtualenv | EnvManager::Uv => virtualenv(model),
        EnvManager::Conda => Err(ServingError::Unsupported(
            "--env-manager conda is not supported; use virtualenv (the default) or local".into(),
        )),
    }
}

fn needs(model: &MlModel) -> String {
    format!(
        "the model in {} needs Python (flavor python_function, loader {})",
        model.dir.display(),
        model.loader_module().unwrap_or("unknown")
    )
}

/// The first of MLFLOW_PYTHON, python3, python that imports mlflow.
pub fn local_python(model: &MlModel) -> Result<PathBuf, ServingError> {
    let explicit = std::env::var_os("MLFLOW_PYTHON").filter(|p| !p.is_empty());
    let candidates: Vec<PathBuf> = match &explicit {
        Some(p) => vec![PathBuf::from(p)],
        None => ["python3", "python"]
            .iter()
            .filter_map(|name| which(name))
            .collect(),
    };
    for python in &candidates {
        if has_mlflow(python) {
            return Ok(python.clone());
        }
    }
    let tried = match &explicit {
        Some(p) => format!(
            "MLFLOW_PYTHON={} has no mlflow package",
            Path::new(p).display()
        ),
        None if candidates.is_empty() => "no python3 or python on PATH".into(),
        None => format!(
            "{} on PATH has no mlflow package",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    };
    Err(ServingError::Python(format!(
        "{}, but {tried}: install it (pip install mlflow=={}) or set MLFLOW_PYTHON to a python \
         that has it",
        needs(model),
        model
            .mlflow_version
            .as_deref()
            .unwrap_or(crate::MLFLOW_COMPAT_VERSION)
    )))
}

/// `name` looked up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn has_mlflow(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import importlib.util,sys; sys.exit(importlib.util.find_spec('mlflow') is None)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn python_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A `python_env.yaml`: MLflow's description of a virtual environment.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct PythonEnv {
    #[serde(default)]
    pub python: Option<String>,
    #[serde(default)]
    pub build_dependencies: Vec<String>,
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// An environment to build: `spec` installed with `dir` as the working directory (so
/// `-r requirements.txt` resolves there).
pub struct EnvRequest<'a> {
    pub dir: &'a Path,
    pub spec: &'a PythonEnv,
    /// The spec's source text: part of the cache key.
    pub spec_text: &'a str,
    /// `mlflow==VERSION` to add when the dependencies do not name mlflow (models need it).
    pub add_mlflow: Option<String>,
    /// Who needs the environment, for the message when no interpreter fits.
    pub who: String,
}

/// The model's virtual environment, built on first use.
fn virtualenv(model: &MlModel) -> Result<PathBuf, ServingError> {
    let env_file = model
        .flavor("python_function")
        .and_then(|f| f.pointer("/env/virtualenv"))
        .and_then(|v| v.as_str())
        .unwrap_or("python_env.yaml");
    let env_path = model.dir.join(env_file);
    let (spec, spec_text) = match std::fs::read_to_string(&env_path) {
        Ok(text) => {
            let spec: PythonEnv = serde_saphyr::from_str(&text).map_err(|e| {
                ServingError::Model(format!("{} is not valid: {e}", env_path.display()))
            })?;
            (spec, text)
        }
        // Older models: requirements.txt alone, for the Python that runs us.
        Err(_) if model.dir.join("requirements.txt").exists() => (
            PythonEnv {
                dependencies: vec!["-r requirements.txt".into()],
                ..PythonEnv::default()
            },
            String::new(),
        ),
        Err(_) => {
            return Err(ServingError::Model(format!(
                "{} has neither python_env.yaml nor requirements.txt to build its environment \
                 from; use --env-manager local",
                model.dir.display()
            )))
        }
    };
    build_env(&EnvRequest {
        dir: &model.dir,
        spec: &spec,
        spec_text: &spec_text,
        add_mlflow: Some(format!(
            "mlflow=={}",
            model
                .mlflow_version
                .as_deref()
                .unwrap_or(crate::MLFLOW_COMPAT_VERSION)
        )),
        who: needs(model),
    })
}

/// The interpreter of the environment `req` describes, built once under the cache (keyed by
/// the spec and every requirements file it reads) and reused after.
pub fn build_env(req: &EnvRequest) -> Result<PathBuf, ServingError> {
    let spec = req.spec;
    // The key covers every file the install reads, so a changed pin builds a new env.
    let mut key_text = req.spec_text.to_string();
    for dep in &spec.dependencies {
        if let Some(file) = dep.strip_prefix("-r ") {
            key_text
                .push_str(&std::fs::read_to_string(req.dir.join(file.trim())).unwrap_or_default());
        }
    }
    let want = spec
        .python
        .as_deref()
        .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."));
    let base = base_python(&req.who, want.as_deref())?;
    key_text.push_str(&python_version(&base).unwrap_or_default());
    let dir = cache_root()
        .join("envs")
        .join(&sha256_hex(key_text.as_bytes())[..16]);
    let python = dir.join("bin").join("python");
    if dir.join(".ready").exists() && python.exists() {
        return Ok(python);
    }
    eprintln!(
        "Creating the Python environment for {} in {} (once; it is reused after)",
        req.dir.display(),
        dir.display()
    );
    let staging = dir.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    if let Some(parent) = staging.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ServingError::io(parent, e))?;
    }
    let build = || -> Result<(), ServingError> {
        run(
            Command::new(&base).arg("-m").arg("venv").arg(&staging),
            "python -m venv",
        )?;
        let pip = |args: &[String]| -> Result<(), ServingError> {
            if args.is_empty() {
                return Ok(());
            }
            let mut cmd = Command::new(staging.join("bin").join("python"));
            cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                .args(args)
                .current_dir(req.dir);
            run(&mut cmd, "pip install")
        };
        pip(&spec.build_dependencies)?;
        let mut deps: Vec<String> = Vec::new();
        for dep in &spec.dependencies {
            match dep.strip_prefix("-r ") {
                Some(file) => {
                    deps.push("-r".into());
                    deps.push(file.trim().to_string());
                }
                None => deps.push(dep.clone()),
            }
        }
        // The worker imports mlflow: add it when the model's requirements do not.
        if let Some(mlflow) = &req.add_mlflow {
            if !key_text
                .lines()
                .any(|l| l.trim_start().starts_with("mlflow"))
            {
                deps.push(mlflow.clone());
            }
        }
        pip(&deps)
    };
    if let Err(e) = build() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    std::fs::write(staging.join(".ready"), key_text).map_err(|e| ServingError::io(&staging, e))?;
    if std::fs::rename(&staging, &dir).is_err() {
        // Another process built it meanwhile; use theirs.
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(python)
}

/// An interpreter of the wanted `major.minor` (python3.X, then python3/python).
fn base_python(who: &str, want: Option<&str>) -> Result<PathBuf, ServingError> {
    let mut candidates = Vec::new();
    if let Some(v) = want {
        candidates.extend(which(&format!("python{v}")));
    }
    candidates.extend(which("python3"));
    candidates.extend(which("python"));
    for c in &candidates {
        match (want, python_version(c)) {
            (None, Some(_)) => return Ok(c.clone()),
            (Some(w), Some(have)) if have == w => return Ok(c.clone()),
            _ => {}
        }
    }
    Err(ServingError::Python(format!(
        "{}, {} to build its environment, and none is on PATH: install {}, or use \
         --env-manager local with a python that has mlflow",
        who,
        want.map_or("any Python 3".to_string(), |w| format!("Python {w}")),
        want.map_or("python3".to_string(), |w| format!("python{w}"))
    )))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), ServingError> {
    let status = cmd
        .stdin(Stdio::null())
        // pip's chatter goes to stderr: stdout may be `models predict`'s output.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| ServingError::Python(format!("cannot run {what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(ServingError::Python(format!(
            "building the Python environment failed: {what} exited with {status}"
        )))
    }
}
