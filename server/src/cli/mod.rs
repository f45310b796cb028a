//! Command-line definitions (clap), kept apart from what the commands do.

use clap::{ArgAction, Args, Parser, Subcommand};

pub mod common;
pub mod crypto;
pub mod experiments;
pub mod models;
pub mod network;
pub mod projects;
pub mod runs;
pub mod serving;
pub mod ui;

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

// The server's arguments dwarf the others; the enum is built once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tracking server.
    Server(ServerArgs),
    // The client commands take their help from their argument structs (no doc comment
    // here, which would replace it).
    Models(models::ModelsArgs),
    Experiments(experiments::ExperimentsArgs),
    Runs(runs::RunsArgs),
    Ui(ui::UiArgs),
    Run(projects::RunArgs),
    Crypto(crypto::CryptoArgs),
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

    /// Connections this process keeps to PostgreSQL/MySQL; keep the sum over all server
    /// processes under the database's connection limit [default:
    /// MLFLOW_SQLALCHEMYSTORE_POOL_SIZE + MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW when set, else
    /// twice --workers, 4 to 64]
    #[arg(long, env = "MLFLOW_DB_POOL_SIZE", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub db_pool_size: Option<u32>,

    /// A path prefix for every route, such as /mlflow.
    #[arg(long, env = "MLFLOW_STATIC_PREFIX")]
    pub static_prefix: Option<String>,

    /// MLflow's web UI bundle to serve at / [default: the one `mlflow ui install` put in
    /// ~/.local/share/mlflow/ui/VERSION or /usr/share/mlflow/ui/VERSION]
    #[arg(long, env = "MLFLOW_UI_DIR", value_name = "DIR")]
    pub ui_dir: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub network: network::NetworkArgs,

    /// The app to serve: basic-auth turns on MLflow's HTTP basic authentication and
    /// permissions, configured by the ini file MLFLOW_AUTH_CONFIG_PATH names.
    #[arg(long, value_name = "NAME", value_parser = ["basic-auth"])]
    pub app_name: Option<String>,

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
    use clap::{CommandFactory, Parser};

    use super::models::{ModelsCommand, Stage, TransitionRequestCommand};
    use super::{Cli, Command};

    /// clap checks a command's definition only when that command is parsed; check them all.
    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(line.split_whitespace())
    }

    #[test]
    fn the_seeds_registry_lines_parse() {
        let cli = Cli::try_parse_from([
            "mlflow",
            "models",
            "create",
            "-n",
            "my-model",
            "-d",
            "Customer churn prediction",
        ]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Models(m)) if matches!(&m.command, ModelsCommand::Create(a)
                if a.name == "my-model" && a.description.as_deref() == Some("Customer churn prediction"))
        ));
        for stage in ["Staging", "Production", "production"] {
            let line = format!(
                "mlflow models transition-request create --name my-model --version 1 --stage {stage}"
            );
            let Ok(Cli {
                command: Command::Models(m),
            }) = parse(&line)
            else {
                panic!("{line} does not parse");
            };
            let ModelsCommand::TransitionRequest(t) = m.command else {
                panic!("{line}: not a transition request");
            };
            let TransitionRequestCommand::Create(args) = t.command;
            assert_eq!((args.name.as_str(), args.version), ("my-model", 1));
            assert!(matches!(args.stage, Stage::Staging | Stage::Production));
            assert!(!args.archive_existing_versions);
        }
        assert!(parse("mlflow models list").is_ok());
    }

    #[test]
    fn the_seeds_serve_line_parses() {
        let Ok(Cli {
            command: Command::Models(m),
        }) = Cli::try_parse_from([
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/my-model/production",
            "--port",
            "8000",
        ])
        else {
            panic!("the seed's serve line does not parse");
        };
        let ModelsCommand::Serve(args) = m.command else {
            panic!("not serve");
        };
        assert_eq!(args.source.model_uri, "models:/my-model/production");
        assert_eq!((args.port, args.host.as_str()), (8000, "127.0.0.1"));
        assert_eq!(
            args.source.env_manager(),
            super::serving::EnvManager::Virtualenv
        );
        for line in [
            "mlflow models serve -m m --no-conda -h 0.0.0.0 -p 1 -w 2 -t 5",
            "mlflow models predict -m m -i in.json -o out.json -t csv --env-manager local",
        ] {
            assert!(parse(line).is_ok(), "{line}");
        }
    }

    #[test]
    fn python_cli_flags_parse() {
        for line in [
            "mlflow experiments create --experiment-name X --artifact-location /tmp/a",
            "mlflow experiments create -n X -l s3://b/p",
            "mlflow experiments delete --experiment-id 1",
            "mlflow experiments restore -x 1",
            "mlflow experiments rename --experiment-id 1 --new-name Y",
            "mlflow experiments search --view all --max-results 5",
            "mlflow runs list --experiment-id 1 --view deleted_only",
            "mlflow runs describe --run-id abc",
            "mlflow runs delete --run-id abc",
            "mlflow runs restore --run-id abc",
            "mlflow ui install",
            "mlflow ui install --version 3.17.2 --dir /tmp/ui --from-dir /tmp/build",
            "mlflow ui install --from-wheel /tmp/mlflow-3.17.2-py3-none-any.whl",
        ] {
            assert!(parse(line).is_ok(), "{line}");
        }
        for bad in [
            "mlflow models transition-request create --name m --version 0 --stage Staging",
            "mlflow models transition-request create --name m --version 1 --stage Prod",
            "mlflow runs describe",
            "mlflow runs describe abc --run-id abc",
            "mlflow experiments get",
            "mlflow ui install --from-wheel a.whl --from-dir b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
