//! Arguments shared by the client commands (`mlflow models|experiments|runs`).

use clap::{Args, ValueEnum};

/// `--json`, on every client command.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print the server's JSON entity (or, for lists, every page's entities) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which lifecycle stage of experiments or runs to list (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum View {
    /// Only active entities.
    #[value(name = "active_only")]
    ActiveOnly,
    /// Only entities marked as deleted.
    #[value(name = "deleted_only")]
    DeletedOnly,
    /// Both.
    #[value(name = "all")]
    All,
}

impl View {
    /// The name MLflow's REST API expects.
    pub fn wire_name(self) -> &'static str {
        match self {
            View::ActiveOnly => "ACTIVE_ONLY",
            View::DeletedOnly => "DELETED_ONLY",
            View::All => "ALL",
        }
    }
}
