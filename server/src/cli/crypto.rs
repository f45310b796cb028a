//! `mlflow crypto rotate-kek`: re-wraps the AI gateway secrets' keys under a new KEK
//! passphrase, as MLflow's command of the same name does (same environment variables, same
//! version numbering), so either server reads the database afterwards.

use clap::{Args, Subcommand};

use crate::domain::gateway::crypto::{Kek, KEK_VERSION_ENV, PASSPHRASE_ENV};
use crate::service::Tracking;
use crate::store::{Store, StoreOptions};

/// Manage the passphrase that protects the AI gateway's stored secrets.
#[derive(Debug, Args)]
pub struct CryptoArgs {
    #[command(subcommand)]
    pub command: CryptoCommand,
}

#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Re-wrap every secret's key from the current KEK (MLFLOW_CRYPTO_KEK_PASSPHRASE, version
    /// MLFLOW_CRYPTO_KEK_VERSION) to one derived from a new passphrase (version + 1). Stop the
    /// servers first; afterwards set both variables to the new values.
    RotateKek(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The new passphrase.
    #[arg(long)]
    pub new_passphrase: String,

    /// The backend store (sqlite:///PATH, postgresql://..., mysql://...).
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI")]
    pub backend_store_uri: String,

    /// Accepted for MLflow's command line; this command never prompts.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Runs the command; the message says what was done or why nothing was.
pub fn run(args: CryptoArgs) -> anyhow::Result<String> {
    let CryptoCommand::RotateKek(args) = args.command;
    let old_passphrase = std::env::var(PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{PASSPHRASE_ENV} must be set to the current (old) passphrase before a KEK \
                 rotation"
            )
        })?;
    let old_version: i64 = match std::env::var(KEK_VERSION_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{KEK_VERSION_ENV} must be an integer"))?,
        _ => 1,
    };
    let new_version = old_version + 1;
    let old = Kek::derive(&old_passphrase, old_version, false);
    let new = Kek::derive(&args.new_passphrase, new_version, false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(&StoreOptions {
            uri: args.backend_store_uri.clone(),
            default_artifact_root: String::new(),
            max_connections: 2,
            pool_size: None,
        })
        .await?;
        let rotated = Tracking::new(store.clone())
            .rotate_gateway_kek(&old, &new)
            .await
            .map_err(|e| anyhow::anyhow!("KEK rotation failed, nothing was changed: {}", e.message));
        store.close().await;
        let rotated = rotated?;
        Ok(if rotated == 0 {
            format!("No secrets found with kek_version={old_version}. Nothing to rotate.")
        } else {
            format!(
                "Rotated {rotated} secrets from KEK version {old_version} to {new_version}. \
                 Now set {PASSPHRASE_ENV} to the new passphrase and {KEK_VERSION_ENV}={new_version} \
                 for every server."
            )
        })
    })
}
