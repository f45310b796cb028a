//! `mlflow ui`: MLflow's web UI bundle.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Install MLflow's web UI (the React bundle of the official `mlflow` wheel) for `mlflow server`.
#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(subcommand)]
    pub command: UiCommand,
}

#[derive(Debug, Subcommand)]
pub enum UiCommand {
    /// Download the `mlflow` wheel from PyPI (checksum verified, resumable) and install only
    /// its UI bundle; does nothing when that version is already installed.
    Install(InstallArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The MLflow release whose UI to install.
    #[arg(long, default_value = crate::MLFLOW_COMPAT_VERSION)]
    pub version: String,

    /// Install into DIR [default: /usr/share/mlflow/ui/VERSION as root, else
    /// ~/.local/share/mlflow/ui/VERSION]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Install offline from this `mlflow-VERSION-py3-none-any.whl`.
    #[arg(long, value_name = "FILE", conflicts_with = "from_dir")]
    pub from_wheel: Option<PathBuf>,

    /// Install offline from a bundle folder, such as an installed mlflow package's
    /// server/js/build (the package folder or site-packages also work).
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,

    /// The PyPI JSON API to ask for the wheel (a mirror's, for instance).
    #[arg(
        long,
        env = "MLFLOW_UI_INDEX_URL",
        value_name = "URL",
        default_value = "https://pypi.org/pypi"
    )]
    pub index_url: String,
}
