//! The `mlflow` binary: parses the command line and runs the chosen command.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use mlflow_server::artifacts::{ArtifactRepo, ServedRoots};
use mlflow_server::cli::models::{ModelsArgs, ModelsCommand};
use mlflow_server::cli::{Cli, Command, ServerArgs};
use mlflow_server::client;
use mlflow_server::config::ServerConfig;
use mlflow_server::http::{self, AppState};
use mlflow_server::service::Tracking;
use mlflow_server::serving;
use mlflow_server::store::{Store, StoreOptions};
use mlflow_server::ui::assets::Bundle;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            limit_malloc_arenas();
            init_logging();
            match run_server(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("Error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Models(ModelsArgs {
            command:
                deploy @ (ModelsCommand::Serve(_)
                | ModelsCommand::Predict(_)
                | ModelsCommand::GenerateDockerfile(_)
                | ModelsCommand::BuildDocker(_)),
        }) => {
            init_logging();
            let result = match deploy {
                ModelsCommand::Serve(args) => serving::serve(args),
                ModelsCommand::Predict(args) => serving::predict(args),
                ModelsCommand::GenerateDockerfile(args) => {
                    serving::docker::generate_dockerfile(&args).map_err(Into::into)
                }
                ModelsCommand::BuildDocker(args) => {
                    serving::docker::build_docker(&args).map_err(Into::into)
                }
                _ => Ok(()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ui(args) => match mlflow_server::ui::run(args) {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Crypto(args) => match mlflow_server::cli::crypto::run(args) {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => match mlflow_server::projects::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("=== {err} ===");
                ExitCode::FAILURE
            }
        },
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

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core), and
/// keeps what is freed in each: with the runtime's workers plus one thread per SQLite
/// connection, retained free memory was about half of the server's resident memory under
/// load (heaptrack: 12 MB live heap at the peak of `bench/run`'s workloads, 50 MB resident).
/// So: two arenas, and a once-a-second `malloc_trim` that hands freed pages back. An
/// operator's own `MALLOC_ARENA_MAX` wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: called before any other thread exists; mallopt only sets a tunable.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        let _ = std::thread::Builder::new()
            .name("malloc-trim".into())
            .stack_size(64 * 1024)
            .spawn(|| loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // SAFETY: malloc_trim only returns free pages to the kernel.
                unsafe {
                    libc::malloc_trim(0);
                }
            });
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
        pool_size: config.db_pool_size,
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
    let ui = match &config.ui_dir {
        Some(dir) => {
            tracing::info!(dir = %dir.display(), "serving MLflow's web UI at /");
            let bundle = Arc::new(Bundle::new(dir.clone()));
            let warming = bundle.clone();
            tokio::task::spawn_blocking(move || warming.warm());
            Some(bundle)
        }
        None => {
            tracing::info!("no web UI bundle: / shows how to install it (`mlflow ui install`)");
            None
        }
    };
    let auth = match config.auth.clone() {
        Some(auth_config) => Some(mlflow_server::auth::Auth::start(auth_config).await?),
        None => None,
    };
    let webhooks = mlflow_server::service::WebhookSettings::from_env()
        .and_then(|settings| mlflow_server::service::Webhooks::new(store.clone(), settings))
        .map_err(|e| anyhow::anyhow!(e))?;
    let state = AppState {
        auth,
        ui,
        tracking: Tracking::new(store.clone()),
        roots: ServedRoots::new(artifacts.clone(), &config.default_artifact_root),
        webhooks,
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
