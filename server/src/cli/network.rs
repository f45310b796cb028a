//! `mlflow server` flags for running on a network: MLflow's security-middleware flags and
//! its model-version source settings (same names and environment variables as MLflow 3.17.2).

use clap::Args;

/// Host and CORS guards and response headers.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkArgs {
    /// Comma-separated Host header values to accept (fnmatch patterns such as
    /// 'mlflow.example.com,10.0.0.*'); '*' accepts any [default: localhost names, loopback
    /// and private addresses, and the --host address, on any port]
    #[arg(long, env = "MLFLOW_SERVER_ALLOWED_HOSTS", value_name = "HOSTS")]
    pub allowed_hosts: Option<String>,

    /// Comma-separated origins whose web pages may call the API (fnmatch patterns); '*'
    /// allows every origin without credentials [default: http://localhost, 127.0.0.1 and
    /// [::1] on any port]
    #[arg(
        long,
        env = "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS",
        value_name = "ORIGINS"
    )]
    pub cors_allowed_origins: Option<String>,

    /// X-Frame-Options header of every response: SAMEORIGIN, DENY, or NONE for no header.
    #[arg(
        long,
        env = "MLFLOW_SERVER_X_FRAME_OPTIONS",
        default_value = "SAMEORIGIN",
        value_name = "VALUE"
    )]
    pub x_frame_options: String,

    /// Serve HTTPS with this PEM certificate chain (with --tls-key); re-read on SIGHUP.
    #[arg(
        long,
        env = "MLFLOW_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The PEM private key of --tls-cert; re-read on SIGHUP.
    #[arg(
        long,
        env = "MLFLOW_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// DANGEROUS: turn off the Host check, the CORS guard and the security headers.
    #[arg(long, env = "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", value_parser = clap::builder::BoolishValueParser::new())]
    pub disable_security_middleware: bool,

    /// Comma-separated schemes (http, ftp, ...) whose hosts a model version's source may name
    /// although they are not this server's artifact storage (MLflow's environment variable).
    #[arg(
        long,
        env = "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES",
        hide = true,
        value_name = "SCHEMES"
    )]
    pub allowed_host_addressed_artifact_schemes: Option<String>,

    /// A regular expression every model version source must match (MLflow's environment
    /// variable).
    #[arg(
        long,
        env = "MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX",
        hide = true,
        value_name = "REGEX"
    )]
    pub create_model_version_source_validation_regex: Option<String>,
}
