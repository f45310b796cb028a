//! Command-line definitions (clap), kept apart from what the commands do.

use clap::{ArgAction, Args, Parser, Subcommand};

pub mod common;
pub mod experiments;
pub mod models;
pub mod runs;

/// Version line: our version and the MLflow release whose API and schema we speak.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (Rust server, compatible with MLflow 3.17.2)"
);

#[derive(Debug, Parser)]
#[command(name = "mlflow", version = VERSION, about = "An MLflow-compatible tracking server and client CLI written in Rust")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tracking server.
    Server(ServerArgs),
    /// Registered models, versions, stages and aliases (on a tracking server).
    Models(models::ModelsArgs),
    /// Experiments (on a tracking server).
    Experiments(experiments::ExperimentsArgs),
    /// Runs (on a tracking server).
    Runs(runs::RunsArgs),
}

/// `mlflow server`: MLflow's flags and environment variables.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct ServerArgs {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Address to listen on; use 0.0.0.0 to accept connections from other machines.
    #[arg(short = 'h', long, env = "MLFLOW_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on.
    #[arg(short = 'p', long, env = "MLFLOW_PORT", default_value_t = 5000)]
    pub port: u16,

    /// Where experiments and runs are stored: sqlite:///PATH, postgresql://..., mysql://...
    #[arg(
        long,
        env = "MLFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlflow.db",
        hide_env_values = true
    )]
    pub backend_store_uri: String,

    /// Where the model registry is stored; defaults to the backend store.
    #[arg(long, env = "MLFLOW_REGISTRY_STORE_URI", hide_env_values = true)]
    pub registry_store_uri: Option<String>,

    /// Artifact location given to new experiments (default: mlflow-artifacts:/ when serving
    /// artifacts, ./mlruns otherwise).
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT")]
    pub default_artifact_root: Option<String>,

    /// Proxy artifact uploads and downloads through this server.
    #[arg(long, env = "MLFLOW_SERVE_ARTIFACTS", overrides_with = "no_serve_artifacts", default_value_t = true, action = ArgAction::SetTrue)]
    pub serve_artifacts: bool,

    /// Do not serve artifacts; clients write to the artifact root themselves.
    #[arg(long, overrides_with = "serve_artifacts")]
    pub no_serve_artifacts: bool,

    /// Where proxied artifacts are stored (a path, file://, s3://, gs://, wasbs://, abfss://).
    #[arg(
        long,
        env = "MLFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    pub artifacts_destination: String,

    /// Serve only the artifact API.
    #[arg(long, env = "MLFLOW_ARTIFACTS_ONLY")]
    pub artifacts_only: bool,

    /// Worker threads of the runtime (default: one per CPU).
    #[arg(short = 'w', long, env = "MLFLOW_WORKERS")]
    pub workers: Option<usize>,

    /// A path prefix for every route, such as /mlflow.
    #[arg(long, env = "MLFLOW_STATIC_PREFIX")]
    pub static_prefix: Option<String>,

    /// Accepted for compatibility with the Python server; ignored.
    #[arg(long, env = "MLFLOW_GUNICORN_OPTS", hide = true)]
    pub gunicorn_opts: Option<String>,

    /// Accepted for compatibility with the Python server; ignored.
    #[arg(long, env = "MLFLOW_UVICORN_OPTS", hide = true)]
    pub uvicorn_opts: Option<String>,

    /// Accepted for compatibility with the Python server; ignored.
    #[arg(long, hide = true)]
    pub waitress_opts: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap checks a command's definition only when that command is parsed; check them all.
    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
