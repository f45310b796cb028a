//! `mlflow experiments ...`: flags as in the Python CLI (`mlflow/experiments.py`).

use clap::{Args, Subcommand};

use super::common::{OutputArgs, View};

/// `mlflow experiments`.
#[derive(Debug, Args)]
#[command(
    about = "Manage experiments on a tracking server",
    long_about = "Manage experiments on the tracking server at MLFLOW_TRACKING_URI \
                  (default http://127.0.0.1:5000). Credentials come from MLFLOW_TRACKING_TOKEN or \
                  MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, as in the Python client."
)]
pub struct ExperimentsArgs {
    #[command(subcommand)]
    pub command: ExperimentsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// List experiments (all pages).
    #[command(visible_alias = "search")]
    List(ExperimentsListArgs),
    /// Create an experiment.
    Create(ExperimentsCreateArgs),
    /// Show one experiment, by id or by name.
    Get(ExperimentsGetArgs),
    /// Mark an experiment (and its runs) as deleted; `restore` undoes it.
    Delete(ExperimentRefArgs),
    /// Restore a deleted experiment and its runs.
    Restore(ExperimentRefArgs),
    /// Rename an active experiment.
    Rename(ExperimentsRenameArgs),
}

#[derive(Debug, Args)]
pub struct ExperimentsListArgs {
    /// Which experiments to list.
    #[arg(short = 'v', long, value_enum, default_value = "active_only")]
    pub view: View,
    /// Stop after this many experiments (default: all).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_results: Option<u64>,
    /// A search filter, such as "name LIKE 'churn%'".
    #[arg(long)]
    pub filter: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ExperimentsCreateArgs {
    /// Name of the new experiment.
    #[arg(short = 'n', long)]
    pub experiment_name: String,
    /// Base location for the artifacts of its runs (default: chosen by the server).
    #[arg(short = 'l', long)]
    pub artifact_location: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["experiment_id", "experiment_name"]))]
pub struct ExperimentsGetArgs {
    /// Id of the experiment.
    #[arg(short = 'x', long)]
    pub experiment_id: Option<String>,
    /// Name of the experiment.
    #[arg(short = 'n', long)]
    pub experiment_name: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// An experiment id, as `-x/--experiment-id ID` (the Python spelling) or positionally.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("experiment_ref").required(true).args(["experiment_id", "id"]))]
pub struct ExperimentRefArgs {
    /// Id of the experiment.
    #[arg(short = 'x', long)]
    pub experiment_id: Option<String>,
    /// Id of the experiment (same as --experiment-id).
    #[arg(value_name = "EXPERIMENT_ID")]
    pub id: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ExperimentRefArgs {
    /// The id, whichever way it was given (clap requires exactly one).
    pub fn experiment_id(&self) -> &str {
        self.experiment_id
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct ExperimentsRenameArgs {
    #[command(flatten)]
    pub experiment: ExperimentRefArgs,
    /// The new name.
    #[arg(long)]
    pub new_name: String,
}
