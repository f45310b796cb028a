//! The client commands of the `mlflow` binary (`models`, `experiments`, `runs`): they talk to
//! a tracking server over MLflow's REST API, as the Python CLI does, and print a table or,
//! with `--json`, the server's JSON.
//!
//! Each command returns its whole output as a string; [`run`] prints it, so a closed pipe
//! (`| head`) or a failed request never leaves half a table behind.

mod experiments;
pub(crate) mod http;
mod models;
mod runs;
mod settings;
mod table;

pub use http::Client;
pub use settings::{Auth, Retry, Settings, DEFAULT_PAGE_SIZE, DEFAULT_TRACKING_URI};

use crate::cli::Command;

/// Why a client command failed; `Display` is the one line printed after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with MLflow's `{error_code, message}`.
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The server (or something in front of it) answered with a non-MLflow error.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        status: u16,
        url: String,
        body: String,
    },
    /// 401: the server wants credentials, or refused the ones sent.
    #[error("not authenticated by the tracking server at {url}: {what}")]
    Unauthorized { url: String, what: String },
    /// 403 from the server's authorization: the user lacks the permission.
    #[error("permission denied: {who} may not {action} on {url}")]
    Forbidden {
        url: String,
        who: String,
        action: String,
    },
    /// No HTTP answer: refused, unresolvable, TLS failure; `hint` says what to check.
    #[error("cannot reach the tracking server at {url}: {reason}{hint}")]
    Connect {
        url: String,
        reason: String,
        hint: &'static str,
    },
    #[error("the tracking server at {url} did not answer within {seconds} s (MLFLOW_HTTP_REQUEST_TIMEOUT)")]
    Timeout { url: String, seconds: u64 },
    #[error("unexpected answer to {endpoint}: {reason}")]
    Decode { endpoint: String, reason: String },
    /// A setting or an argument that cannot work.
    #[error("{0}")]
    Config(String),
}

/// Runs a client command against the server named by the environment and returns what to
/// print on stdout.
pub fn run(command: Command) -> Result<String, ClientError> {
    let client = || Client::new(Settings::from_env()?);
    match command {
        Command::Server(_) => Err(ClientError::Config(
            "`mlflow server` runs a server; it is not a client command".into(),
        )),
        Command::Models(args) => models::run(&client()?, args.command),
        Command::Experiments(args) => experiments::run(&client()?, args.command),
        Command::Runs(args) => runs::run(&client()?, args.command),
        Command::Ui(_) => Err(ClientError::Config(
            "`mlflow ui` installs files; it is not a client command".into(),
        )),
        Command::Run(_) => Err(ClientError::Config(
            "`mlflow run` runs a project; it is not a client command".into(),
        )),
        Command::Crypto(_) => Err(ClientError::Config(
            "`mlflow crypto` works on the backend store; it is not a client command".into(),
        )),
    }
}
