//! `mlflow models serve|predict|generate-dockerfile|build-docker`: the Python CLI's model
//! deployment commands, with its flags and defaults.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Where a `python_function` model's Python comes from (`--env-manager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvManager {
    /// The `python` that has the `mlflow` package (MLFLOW_PYTHON, else `python3`/`python` on
    /// PATH).
    Local,
    /// A virtual environment built once from the model's python_env.yaml and
    /// requirements.txt, cached.
    Virtualenv,
    /// Conda is not supported here; refused with a message.
    Conda,
    /// uv environments are built like virtualenv ones.
    Uv,
}

/// Arguments shared by the commands that load a model.
#[derive(Debug, Clone, Args)]
pub struct ModelSourceArgs {
    /// The model: models:/NAME/STAGE, models:/NAME/VERSION, models:/NAME@ALIAS,
    /// models:/MODEL_ID, runs:/RUN_ID/PATH, mlflow-artifacts:/PATH or a local directory.
    #[arg(short = 'm', long = "model-uri", value_name = "URI")]
    pub model_uri: String,

    /// How to get the model's Python environment [default: virtualenv].
    #[arg(long, value_enum, ignore_case = true)]
    pub env_manager: Option<EnvManager>,

    /// Same as --env-manager local (deprecated in MLflow, kept for old command lines).
    #[arg(long)]
    pub no_conda: bool,

    /// Accepted for compatibility: the model's environment always gets mlflow.
    #[arg(long, hide = true)]
    pub install_mlflow: bool,
}

impl ModelSourceArgs {
    /// `--no-conda` means local; otherwise the flag, defaulting to virtualenv as MLflow does.
    pub fn env_manager(&self) -> EnvManager {
        if self.no_conda {
            EnvManager::Local
        } else {
            self.env_manager.unwrap_or(EnvManager::Virtualenv)
        }
    }
}

/// `mlflow models serve`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    about = "Serve a model over HTTP with MLflow's scoring protocol",
    long_about = "Serve a model over HTTP with MLflow's scoring protocol: GET /ping, /health, \
                  /version and POST /invocations (JSON dataframe_split, dataframe_records, \
                  instances, inputs with optional params, or CSV). Models with an onnx flavor \
                  run natively; python_function models run in a pool of Python worker processes. \
                  Models from the tracking server (MLFLOW_TRACKING_URI) are downloaded once \
                  into a checksummed cache.\n\n\
                  Example:\n  mlflow models serve -m \"models:/my-model/production\" --port 8000\n  \
                  curl http://127.0.0.1:8000/invocations -H 'Content-Type: application/json' \
                  -d '{\"dataframe_split\": {\"columns\": [\"a\"], \"data\": [[1.0]]}}'"
)]
pub struct ServeArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    #[command(flatten)]
    pub source: ModelSourceArgs,

    /// Port to listen on.
    #[arg(short = 'p', long, default_value_t = 5000)]
    pub port: u16,

    /// Address to listen on; 0.0.0.0 accepts connections from other machines.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,

    /// Seconds a request may take before it is answered 504.
    #[arg(
        short = 't',
        long,
        env = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT",
        default_value_t = 60
    )]
    pub timeout: u64,

    /// Python worker processes for python_function models.
    #[arg(short = 'w', long, env = "MLFLOW_MODELS_WORKERS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,

    /// Rows gathered from concurrent requests into one call of the model (1: no batching).
    #[arg(long, env = "MLFLOW_SERVE_MAX_BATCH_ROWS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_batch_rows: u32,

    /// Accepted for compatibility; MLServer is not supported.
    #[arg(long, hide = true)]
    pub enable_mlserver: bool,
}

/// `mlflow models predict`.
#[derive(Debug, Args)]
#[command(about = "Predict with a model on a JSON or CSV file and write the predictions as JSON")]
pub struct PredictArgs {
    #[command(flatten)]
    pub source: ModelSourceArgs,

    /// The input file (stdin when absent).
    #[arg(short = 'i', long = "input-path")]
    pub input_path: Option<PathBuf>,

    /// Where to write the predictions (stdout when absent).
    #[arg(short = 'o', long = "output-path")]
    pub output_path: Option<PathBuf>,

    /// The input's format: json or csv.
    #[arg(short = 't', long, default_value = "json", value_parser = ["json", "csv"])]
    pub content_type: String,
}

/// `mlflow models generate-dockerfile`.
#[derive(Debug, Args)]
#[command(
    about = "Write a Dockerfile (and with --kubernetes, manifests) that serves the model on port 8080"
)]
pub struct DockerfileArgs {
    #[command(flatten)]
    pub docker: DockerArgs,

    /// The directory to write into.
    #[arg(
        short = 'd',
        long = "output-directory",
        default_value = "mlflow-dockerfile"
    )]
    pub output_directory: PathBuf,
}

/// `mlflow models build-docker`.
#[derive(Debug, Args)]
#[command(
    about = "Build a Docker image that serves the model on port 8080 (needs a container engine)"
)]
pub struct BuildDockerArgs {
    #[command(flatten)]
    pub docker: DockerArgs,

    /// The image's name.
    #[arg(short = 'n', long, default_value = "mlflow-pyfunc-servable")]
    pub name: String,
}

/// What both Docker commands take.
#[derive(Debug, Args)]
pub struct DockerArgs {
    /// The model to bake into the image.
    #[arg(short = 'm', long = "model-uri", value_name = "URI")]
    pub model_uri: String,

    /// How the image gets the model's Python environment.
    #[arg(long, value_enum, ignore_case = true, default_value = "virtualenv")]
    pub env_manager: EnvManager,

    /// Also write Kubernetes manifests (Deployment and Service with probes on /ping).
    #[arg(long)]
    pub kubernetes: bool,

    /// Replicas of the Kubernetes Deployment.
    #[arg(long, default_value_t = 1, requires = "kubernetes")]
    pub replicas: u32,

    /// The image the manifests reference [default: the --name, or mlflow-model-server:latest].
    #[arg(long)]
    pub image: Option<String>,

    /// Accepted for compatibility; ignored.
    #[arg(long, hide = true)]
    pub install_mlflow: bool,
    /// Accepted for compatibility; ignored.
    #[arg(long, hide = true)]
    pub install_java: Option<bool>,
    /// Accepted for compatibility; ignored.
    #[arg(long, hide = true)]
    pub mlflow_home: Option<String>,
}
