//! The `mlflow` binary: parses the command line and runs the chosen command.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use mlflow_server::artifacts::ArtifactRepo;
use mlflow_server::cli::{Cli, Command, ServerArgs};
use mlflow_server::client;
use mlflow_server::config::ServerConfig;
use mlflow_server::http::{self, AppState};
use mlflow_server::service::Tracking;
use mlflow_server::store::{Store, StoreOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            init_logging();
            match run_server(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("Error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        command => run_client(command),
    }
}

/// A client command (`models`, `experiments`, `runs`): its output on stdout, or one
/// `error: ...` line on stderr and exit status 1.
fn run_client(command: Command) -> ExitCode {
    match client::run(command) {
        Ok(output) => {
            // A reader that went away (`| head`) is not an error of ours.
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_env("MLFLOW_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let config = ServerConfig::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let addr = resolve(&config.host, config.port)?;
    let store = Store::open(&StoreOptions {
        uri: config.backend_store_uri.clone(),
        default_artifact_root: config.default_artifact_root.clone(),
        max_connections: (config.workers as u32 * 2).clamp(4, 64),
    })
    .await?;
    let artifacts = if config.serve_artifacts {
        Some(
            ArtifactRepo::open(&config.artifacts_destination)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?,
        )
    } else {
        None
    };
    let state = AppState {
        tracking: Tracking::new(store.clone()),
        artifacts,
        config: Arc::new(config),
    };
    let result = http::serve(state, addr).await;
    store.close().await;
    result
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --host {host}"))?
        .next()
        .with_context(|| format!("--host {host} resolves to no address"))
}
