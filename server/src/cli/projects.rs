//! `mlflow run`: MLflow's flags for running an MLproject.

use clap::Args;

use super::serving::EnvManager;

/// `mlflow run URI`.
#[derive(Debug, Args)]
#[command(
    about = "Run an MLflow project (a directory or a Git URI) in a new run on the tracking server",
    long_about = "Run an MLflow project from a local directory or a Git URI (URI#subdir for a \
                  subdirectory) in a new run on the tracking server at MLFLOW_TRACKING_URI. The \
                  entry point's command runs with MLFLOW_RUN_ID, MLFLOW_TRACKING_URI and \
                  MLFLOW_EXPERIMENT_ID set, so the code logs into that run; its exit status \
                  makes the run FINISHED or FAILED, and this command's status.\n\n\
                  Example:\n  mlflow run . -P model_type=random_forest --run-name experiment-rf"
)]
pub struct RunArgs {
    /// The project: a directory or a Git URI, optionally followed by #SUBDIRECTORY.
    pub uri: String,

    /// The entry point; a name not in the MLproject runs that file as a script (python for
    /// .py, $SHELL for .sh).
    #[arg(short = 'e', long, value_name = "NAME", default_value = "main")]
    pub entry_point: String,

    /// For Git projects: the commit or branch to check out.
    #[arg(short = 'v', long, value_name = "VERSION")]
    pub version: Option<String>,

    /// A parameter NAME=VALUE; one not declared by the entry point is passed to its command
    /// as --NAME VALUE.
    #[arg(short = 'P', long = "param-list", value_name = "NAME=VALUE",
          value_parser = parse_param)]
    pub params: Vec<(String, String)>,

    /// The experiment to run in, created when missing.
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME")]
    pub experiment_name: Option<String>,

    /// The id of the experiment to run in [default: 0, the Default experiment].
    #[arg(long, env = "MLFLOW_EXPERIMENT_ID")]
    pub experiment_id: Option<String>,

    /// Where the project's command runs; only local is supported.
    #[arg(short = 'b', long, default_value = "local")]
    pub backend: String,

    /// How to get the project's Python environment [default: virtualenv for projects with
    /// python_env.yaml or conda.yaml, local for projects that declare none].
    #[arg(long, value_enum, ignore_case = true)]
    pub env_manager: Option<EnvManager>,

    /// Use this existing run instead of creating one (used by MLflow internally).
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,

    /// The run's name [default: one the server makes up].
    #[arg(long, value_name = "RUN_NAME")]
    pub run_name: Option<String>,
}

/// `-P name=value`; the value may itself contain `=`.
fn parse_param(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!(
            "Invalid format for -P parameter: '{arg}'. Use -P name=value."
        )),
    }
}
