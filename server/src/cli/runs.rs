//! `mlflow runs ...`: flags as in the Python CLI (`mlflow/runs.py`).

use clap::{Args, Subcommand};

use super::common::{OutputArgs, View};

/// `mlflow runs`.
#[derive(Debug, Args)]
#[command(
    about = "Manage runs on a tracking server",
    long_about = "Manage runs on the tracking server at MLFLOW_TRACKING_URI \
                  (default http://127.0.0.1:5000). Credentials come from MLFLOW_TRACKING_TOKEN or \
                  MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, as in the Python client."
)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the runs of an experiment (all pages), newest first.
    List(RunsListArgs),
    /// Show a run: info, parameters, latest metrics and tags.
    Describe(RunRefArgs),
    /// Mark a run as deleted; `restore` undoes it.
    Delete(RunRefArgs),
    /// Restore a deleted run.
    Restore(RunRefArgs),
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// The experiment whose runs to list.
    #[arg(long, env = "MLFLOW_EXPERIMENT_ID")]
    pub experiment_id: String,
    /// Which runs to list.
    #[arg(short = 'v', long, value_enum, default_value = "active_only")]
    pub view: View,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A run id, as `--run-id ID` (the Python spelling) or positionally.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("run_ref").required(true).args(["run_id", "id"]))]
pub struct RunRefArgs {
    /// Id of the run.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Id of the run (same as --run-id).
    #[arg(value_name = "RUN_ID")]
    pub id: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl RunRefArgs {
    /// The id, whichever way it was given (clap requires exactly one).
    pub fn run_id(&self) -> &str {
        self.run_id
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }
}
