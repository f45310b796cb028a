//! Command-line definitions (clap derive). Behaviour lives in the `app` module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

/// Applies YAML playbooks and presets: installs and runs the MLflow tracking server.
#[derive(Debug, Parser)]
#[command(name = "preset", version, about, propagate_version = true)]
pub struct Cli {
    /// Read presets from DIR/NAME/preset.yml (and templates from DIR/NAME/templates or
    /// DIR/../templates) instead of the copies built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    pub presets_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a playbook: validate everything, then make the machine match it.
    Apply(ApplyArgs),
    /// Validate a playbook without touching the system (exit 2 on errors).
    Validate(PlaybookArgs),
    /// Show the expanded steps with their file:line origin.
    Plan(PlanArgs),
    /// Show what preset knows about this machine.
    Facts(FormatArgs),
    /// List the available presets.
    List,
    /// Show a preset's parameters, defaults and description.
    Show {
        /// Preset name, e.g. mlflow.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct PlaybookArgs {
    /// The playbook (a YAML list of steps).
    pub playbook: PathBuf,
    /// Set a variable for the playbook's templates (repeatable). A name that is a parameter of
    /// a preset the playbook uses overrides that parameter, e.g. -e data_dir=/srv/mlflow,
    /// -e state=absent; true/false, numbers and JSON lists or mappings are typed.
    #[arg(short = 'e', long = "extra-var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub extra: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub playbook: PlaybookArgs,
    /// Change nothing; report what apply would change.
    #[arg(long)]
    pub check: bool,
    /// Show a diff of every file that changes (or would change).
    #[arg(long)]
    pub diff: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run only steps with one of these tags (repeatable).
    #[arg(long = "tags", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Show where each step comes from.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub playbook: PlaybookArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid variable name `{k}`"));
    }
    Ok((k.to_string(), v.to_string()))
}
