//! `mlflow run`: runs an MLflow project's entry point in a run created on the tracking
//! server, as MLflow's local backend does.
//!
//! The project is fetched ([`fetch`]) and read ([`spec`]); a run is created with MLflow's
//! `mlflow.source.*` / `mlflow.project.*` tags and the entry point's parameters; the
//! environment is prepared ([`env`]); the command runs under `bash -c` with MLFLOW_RUN_ID,
//! MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_ID set; its exit status ends the run FINISHED or
//! FAILED unless the code ended it itself.

pub mod env;
pub mod fetch;
pub mod spec;

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::cli::projects::RunArgs;
use crate::cli::serving::EnvManager;
use crate::client::{Client, ClientError, Settings, DEFAULT_TRACKING_URI};
use crate::serving::ServingError;
use env::RunEnv;
use spec::{EntryPoint, Project, Resolved};

/// Why `mlflow run` stopped; `Display` is the one line printed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// MLflow's ExecutionException: the project or its arguments cannot run.
    #[error("{0}")]
    Invalid(String),
    #[error("{path} is not a valid project file: {reason}")]
    Spec { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Env(#[from] ServingError),
    #[error("Run (ID '{0}') failed")]
    Failed(String),
}

impl ProjectError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ProjectError::Invalid(message.into())
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ProjectError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// `mlflow run`.
pub fn run(args: &RunArgs) -> Result<(), ProjectError> {
    if args.backend != "local" {
        return Err(ProjectError::invalid(format!(
            "Got unsupported execution mode {}. Supported values: ['local']",
            args.backend
        )));
    }
    if args.experiment_name.is_some() && args.experiment_id.is_some() {
        return Err(ProjectError::invalid(
            "Specify only one of 'experiment-name' or 'experiment-id' options.",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) = args.params.iter().find(|(k, _)| !seen.insert(k)) {
        return Err(ProjectError::invalid(format!(
            "Repeated parameter: '{name}'"
        )));
    }
    let fetched = fetch::fetch(&args.uri, args.version.as_deref())?;
    let project = Project::load(&fetched.dir)?;
    let entry = project.entry_point(&args.entry_point)?;
    // What is logged: values as given (paths unresolved), quoted as MLflow logs them.
    let logged = entry.resolve(&args.params, false)?;
    let manager = env::manager_for(&project.env, args.env_manager)?;

    let client = Client::new(Settings::from_env()?)?;
    let experiment_id = experiment_id(&client, args)?;
    let run_id = match &args.run_id {
        Some(id) => {
            client.get("runs/get", &[("run_id", id.clone())])?;
            id.clone()
        }
        None => create_run(&client, args, &experiment_id, &fetched, &logged)?,
    };
    let mut tags = vec![("mlflow.project.backend", "local".to_string())];
    match manager {
        EnvManager::Virtualenv => tags.push(("mlflow.project.env", "virtualenv".to_string())),
        EnvManager::Uv => tags.push(("mlflow.project.env", "uv".to_string())),
        EnvManager::Local | EnvManager::Conda => {}
    }
    if let Some(name) = &args.run_name {
        tags.push(("mlflow.runName", name.clone()));
    }
    set_tags(&client, &run_id, &tags)?;

    let outcome = prepare_and_run(&project, &entry, args, manager, &run_id, &experiment_id);
    let succeeded = matches!(outcome, Ok(status) if status.success());
    end_run(
        &client,
        &run_id,
        if succeeded { "FINISHED" } else { "FAILED" },
    )?;
    match outcome {
        Ok(_) if succeeded => {
            eprintln!("=== Run (ID '{run_id}') succeeded ===");
            Ok(())
        }
        Ok(_) => Err(ProjectError::Failed(run_id)),
        Err(e) => Err(e),
    }
}

/// The experiment named by --experiment-name (created when missing) or --experiment-id,
/// else the Default experiment.
fn experiment_id(client: &Client, args: &RunArgs) -> Result<String, ProjectError> {
    match (&args.experiment_name, &args.experiment_id) {
        (_, Some(id)) => Ok(id.clone()),
        (None, None) => Ok("0".into()),
        (Some(name), None) => {
            match client.get(
                "experiments/get-by-name",
                &[("experiment_name", name.clone())],
            ) {
                Ok(reply) => Ok(text(&reply["experiment"]["experiment_id"])),
                Err(ClientError::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                    eprintln!("'{name}' does not exist. Creating a new experiment");
                    let reply = client.post("experiments/create", json!({ "name": name }))?;
                    Ok(text(&reply["experiment_id"]))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Creates the run with MLflow's project tags and logs the entry point's parameters.
fn create_run(
    client: &Client,
    args: &RunArgs,
    experiment_id: &str,
    fetched: &fetch::Fetched,
    logged: &Resolved,
) -> Result<String, ProjectError> {
    let git = fetch::git_info(&fetched.dir, args.version.as_deref());
    let mut tags = vec![
        ("mlflow.user", user()),
        ("mlflow.source.name", fetched.source_name.clone()),
        ("mlflow.source.type", "PROJECT".to_string()),
        ("mlflow.project.entryPoint", args.entry_point.clone()),
    ];
    let optional = [
        ("mlflow.source.git.commit", git.commit),
        ("mlflow.source.git.repoURL", git.repo_url),
        ("mlflow.source.git.branch", git.branch),
    ];
    tags.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    let mut body = json!({
        "experiment_id": experiment_id,
        "start_time": now_ms(),
        "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    });
    if let Some(name) = &args.run_name {
        body["run_name"] = json!(name);
    }
    let reply = client.post("runs/create", body)?;
    let run_id = text(&reply["run"]["info"]["run_id"]);
    let params: Vec<Value> = logged
        .params
        .iter()
        .chain(&logged.extra)
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    if !params.is_empty() {
        client.post(
            "runs/log-batch",
            json!({"run_id": run_id, "params": params}),
        )?;
    }
    Ok(run_id)
}

fn set_tags(client: &Client, run_id: &str, tags: &[(&str, String)]) -> Result<(), ProjectError> {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    client.post("runs/log-batch", json!({"run_id": run_id, "tags": tags}))?;
    Ok(())
}

/// Ends the run with `status` unless the project's code already ended it.
fn end_run(client: &Client, run_id: &str, status: &str) -> Result<(), ProjectError> {
    let reply = client.get("runs/get", &[("run_id", run_id.to_string())])?;
    let current = reply["run"]["info"]["status"].as_str().unwrap_or_default();
    if !matches!(current, "FINISHED" | "FAILED" | "KILLED") {
        client.post(
            "runs/update",
            json!({"run_id": run_id, "status": status, "end_time": now_ms()}),
        )?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The user name as Python's `getpass.getuser()` finds it.
fn user() -> String {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn prepare_and_run(
    project: &Project,
    entry: &EntryPoint,
    args: &RunArgs,
    manager: EnvManager,
    run_id: &str,
    experiment_id: &str,
) -> Result<ExitStatus, ProjectError> {
    let run_env = env::prepare(&project.dir, &project.env, manager)?;
    let command = entry.command(&entry.resolve(&args.params, true)?)?;
    eprintln!("=== Running command '{command}' in run with ID '{run_id}' ===");
    let tracking_uri = std::env::var("MLFLOW_TRACKING_URI")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TRACKING_URI.to_string());
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(&command)
        .current_dir(&project.dir)
        .env("MLFLOW_RUN_ID", run_id)
        .env("MLFLOW_TRACKING_URI", tracking_uri)
        .env("MLFLOW_EXPERIMENT_ID", experiment_id);
    if let RunEnv::Virtualenv { root } = &run_env {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(root.join("bin")).chain(std::env::split_paths(&path));
        let joined = std::env::join_paths(dirs)
            .map_err(|e| ProjectError::invalid(format!("cannot set PATH: {e}")))?;
        cmd.env("PATH", joined)
            .env("VIRTUAL_ENV", root)
            .env_remove("PYTHONHOME");
    }
    run_forwarding_signals(&mut cmd)
}

/// Runs `cmd`; SIGINT or SIGTERM to us terminates it (the run then ends FAILED, as MLflow
/// marks an interrupted run) instead of leaving the run RUNNING.
fn run_forwarding_signals(cmd: &mut Command) -> Result<ExitStatus, ProjectError> {
    let child_pid = Arc::new(AtomicI32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let child_pid = child_pid.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready_tx.send(());
                return;
            };
            rt.block_on(async move {
                let int = signal(SignalKind::interrupt());
                let term = signal(SignalKind::terminate());
                let _ = ready_tx.send(());
                let (Ok(mut int), Ok(mut term)) = (int, term) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    let pid = child_pid.load(Ordering::SeqCst);
                    if pid > 0 && !done.load(Ordering::SeqCst) {
                        // SAFETY: kill only sends a signal to our own child.
                        unsafe {
                            libc::kill(pid, libc::SIGTERM);
                        }
                    }
                }
            });
        });
    }
    let _ = ready_rx.recv();
    let mut child = cmd
        .spawn()
        .map_err(|e| ProjectError::invalid(format!("cannot run bash: {e}")))?;
    child_pid.store(child.id() as i32, Ordering::SeqCst);
    let status = child
        .wait()
        .map_err(|e| ProjectError::invalid(e.to_string()));
    done.store(true, Ordering::SeqCst);
    status
}
