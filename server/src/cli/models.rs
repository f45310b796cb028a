//! `mlflow models ...`: the model registry, with the seed's spellings (`create -n NAME -d
//! DESCRIPTION`, `transition-request create --name --version --stage`), next to the Python
//! CLI's deployment commands (`serve`, `predict`, `generate-dockerfile`, `build-docker`,
//! defined in [`super::serving`]).

use clap::{Args, Subcommand, ValueEnum};

use super::common::OutputArgs;

/// `mlflow models`.
#[derive(Debug, Args)]
#[command(
    about = "Manage registered models, versions, stages and aliases on a tracking server",
    long_about = "Manage registered models, their versions, stages and aliases on the tracking \
                  server at MLFLOW_TRACKING_URI (default http://127.0.0.1:5000). Credentials come \
                  from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and \
                  MLFLOW_TRACKING_PASSWORD, as in the Python client.\n\n\
                  Example:\n  mlflow models create -n my-model -d \"Customer churn prediction\"\n  \
                  mlflow models transition-request create --name my-model --version 1 --stage Production\n  \
                  mlflow models list | grep Production"
)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models (all pages): one line per model and stage, with the latest
    /// version in that stage, so `mlflow models list | grep Production` shows what is in
    /// Production.
    List(ModelsListArgs),
    /// Create a registered model.
    Create(ModelsCreateArgs),
    /// Show a registered model: description, tags, aliases, latest version per stage.
    Get(ModelRefArgs),
    /// Delete a registered model and all its versions.
    Delete(ModelRefArgs),
    TransitionRequest(TransitionRequestArgs),
    /// Model versions.
    Versions(VersionsArgs),
    /// Aliases (such as `champion`) that name a version: `models:/NAME@ALIAS`.
    Alias(AliasArgs),
    /// Serve a model over HTTP with MLflow's scoring protocol (/ping, /invocations).
    Serve(super::serving::ServeArgs),
    /// Predict with a model on a JSON or CSV file.
    Predict(super::serving::PredictArgs),
    /// Write a Dockerfile that serves the model (and Kubernetes manifests with --kubernetes).
    GenerateDockerfile(super::serving::DockerfileArgs),
    /// Build a Docker image that serves the model.
    BuildDocker(super::serving::BuildDockerArgs),
}

#[derive(Debug, Args)]
pub struct ModelsListArgs {
    /// A search filter, such as "name LIKE 'churn%'".
    #[arg(long)]
    pub filter: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ModelsCreateArgs {
    /// Name of the registered model.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Description of the model.
    #[arg(short = 'd', long)]
    pub description: Option<String>,
    /// A tag KEY=VALUE; repeat for more.
    #[arg(short = 't', long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A registered model's name, positionally or as `-n/--name`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("model_ref").required(true).args(["name", "model_name"]))]
pub struct ModelRefArgs {
    /// Name of the registered model.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Name of the registered model (same as NAME).
    #[arg(short = 'n', long = "name", id = "model_name", value_name = "NAME")]
    pub model_name: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ModelRefArgs {
    /// The name, whichever way it was given (clap requires exactly one).
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.model_name.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Debug, Args)]
#[command(
    about = "Move a model version to another stage",
    long_about = "Move a model version to another stage. This server has no approval workflow, \
                  so `transition-request create` applies the transition at once \
                  (model-versions/transition-stage) and says so."
)]
pub struct TransitionRequestArgs {
    #[command(subcommand)]
    pub command: TransitionRequestCommand,
}

#[derive(Debug, Subcommand)]
pub enum TransitionRequestCommand {
    /// Transition a model version to a stage (applied directly).
    Create(TransitionArgs),
}

#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// Name of the registered model.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The version to move.
    #[arg(short = 'v', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub version: u64,
    /// The target stage (case-insensitive).
    #[arg(short = 's', long, value_enum, ignore_case = true)]
    pub stage: Stage,
    /// Move the other versions currently in the target stage to Archived (Staging and
    /// Production only).
    #[arg(long)]
    pub archive_existing_versions: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A model version stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    #[value(name = "None")]
    None,
    #[value(name = "Staging")]
    Staging,
    #[value(name = "Production")]
    Production,
    #[value(name = "Archived")]
    Archived,
}

impl Stage {
    /// The canonical spelling MLflow stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    #[command(subcommand)]
    pub command: VersionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// List every version of a registered model (all pages), newest first.
    List(ModelRefArgs),
}

#[derive(Debug, Args)]
pub struct AliasArgs {
    #[command(subcommand)]
    pub command: AliasCommand,
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point ALIAS at VERSION (moving it if it named another version).
    Set(AliasSetArgs),
    /// Remove ALIAS.
    Delete(AliasDeleteArgs),
}

#[derive(Debug, Args)]
pub struct AliasSetArgs {
    /// Name of the registered model.
    pub name: String,
    /// The alias, such as `champion`.
    pub alias: String,
    /// The version it names.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub version: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AliasDeleteArgs {
    /// Name of the registered model.
    pub name: String,
    /// The alias to remove.
    pub alias: String,
    #[command(flatten)]
    pub output: OutputArgs,
}
