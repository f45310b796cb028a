//! The server's configuration, parsed once from the command line and checked.

use crate::cli::ServerArgs;

/// Validated settings of `mlflow server`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub backend_store_uri: String,
    pub registry_store_uri: String,
    pub default_artifact_root: String,
    pub serve_artifacts: bool,
    pub artifacts_destination: String,
    pub artifacts_only: bool,
    pub workers: usize,
    /// Database connections per process, when set by the operator.
    pub db_pool_size: Option<u32>,
    pub static_prefix: Option<String>,
    /// Host and CORS guards and security headers.
    pub security: crate::http::security::SecurityPolicy,
    /// What a model version's source may name.
    pub source_policy: crate::service::SourcePolicy,
    /// The web UI bundle served at `/`, when there is one.
    pub ui_dir: Option<std::path::PathBuf>,
    /// HTTPS certificate and key, when given.
    pub tls: Option<crate::http::tls::TlsFiles>,
    /// The basic-auth settings with `--app-name basic-auth`.
    pub auth: Option<crate::auth::AuthConfig>,
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ServerConfig {
    pub fn from_args(args: ServerArgs) -> Result<Self, ConfigError> {
        let serve_artifacts = args.serve_artifacts && !args.no_serve_artifacts;
        if args.artifacts_only && !serve_artifacts {
            return Err(ConfigError(
                "--artifacts-only cannot be combined with --no-serve-artifacts".into(),
            ));
        }
        // The registry lives in the backend store's tables; a second store is not served, and
        // silently ignoring one would put registry data where the user did not ask.
        if let Some(registry) = args.registry_store_uri.as_deref().filter(|r| !r.is_empty()) {
            if registry != args.backend_store_uri {
                return Err(ConfigError(
                    "--registry-store-uri must be the backend store (its default): this server \
                     keeps the model registry in the backend store's tables"
                        .into(),
                ));
            }
        }
        let static_prefix = match args.static_prefix.filter(|p| !p.is_empty()) {
            Some(p) if !p.starts_with('/') || p.ends_with('/') || p.contains(['{', '}']) => {
                return Err(ConfigError(format!(
                    "--static-prefix must start with '/', must not end with '/' and must not \
                     contain braces; got '{p}'"
                )))
            }
            other => other,
        };
        let default_artifact_root = match args.default_artifact_root.filter(|r| !r.is_empty()) {
            Some(root) => root,
            None if serve_artifacts => "mlflow-artifacts:/".to_string(),
            None => absolute("./mlruns"),
        };
        let workers = args
            .workers
            .filter(|w| *w > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let security = crate::http::security::SecurityPolicy::from_args(
            &args.network,
            &args.host,
            static_prefix.as_deref(),
        )?;
        let source_policy = crate::service::SourcePolicy::new(
            &[&default_artifact_root, &args.artifacts_destination],
            args.network
                .allowed_host_addressed_artifact_schemes
                .as_deref()
                .unwrap_or(""),
            args.network
                .create_model_version_source_validation_regex
                .as_deref(),
        )
        .map_err(ConfigError)?;
        let auth = match args.app_name.as_deref() {
            Some("basic-auth") => Some(crate::auth::AuthConfig::from_env()?),
            Some(other) => return Err(ConfigError(format!("unknown --app-name '{other}'"))),
            None => None,
        };
        Ok(ServerConfig {
            auth,
            host: args.host,
            port: args.port,
            registry_store_uri: args
                .registry_store_uri
                .unwrap_or_else(|| args.backend_store_uri.clone()),
            backend_store_uri: args.backend_store_uri,
            default_artifact_root,
            serve_artifacts,
            artifacts_destination: args.artifacts_destination,
            artifacts_only: args.artifacts_only,
            workers,
            db_pool_size: args.db_pool_size,
            static_prefix,
            security,
            source_policy,
            ui_dir: ui_dir(args.ui_dir)?,
            tls: args
                .network
                .tls_cert
                .zip(args.network.tls_key)
                .map(|(cert, key)| crate::http::tls::TlsFiles { cert, key }),
        })
    }
}

/// An explicit `--ui-dir` must hold a bundle (a typo would otherwise hide the UI silently);
/// without one, the installed bundle of our MLflow version, if any.
fn ui_dir(explicit: Option<std::path::PathBuf>) -> Result<Option<std::path::PathBuf>, ConfigError> {
    match explicit.filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if crate::ui::is_bundle(&dir) => Ok(Some(dir)),
        Some(dir) => Err(ConfigError(format!(
            "--ui-dir (MLFLOW_UI_DIR) {} holds no {}: install the UI there with `mlflow ui \
             install --dir {}`",
            dir.display(),
            crate::ui::INDEX,
            dir.display()
        ))),
        None => Ok(crate::ui::find_default(crate::MLFLOW_COMPAT_VERSION)),
    }
}

fn absolute(path: &str) -> String {
    std::env::current_dir()
        .map(|d| d.join(path.trim_start_matches("./")).display().to_string())
        .unwrap_or_else(|_| path.to_string())
}
