//! The primitive actions. Each one implements [`Action`]: `check` looks at the system and
//! says whether anything would change (the only call `--check` makes); `apply` makes the
//! change. Actions are built from rendered step specs by [`build`], which reports invalid
//! values at their position.

mod assert;
mod command;
mod copy;
mod file;
mod package;
mod service;
mod supervise;
mod user;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::diag::{Diag, Diags, Source};
use crate::facts::Facts;
use crate::presets::Library;
use crate::spec::{StepSpec, Tpl};
use crate::system::Sys;

pub use package::{install_command, query_command};

/// What `check` found.
#[derive(Debug)]
pub enum Check {
    /// Already in the desired state.
    Ok(String),
    /// Would change (or, with `--check`, will change).
    Change(Change),
    /// Not applicable here, with the reason.
    Skip(String),
}

/// A pending change: what it is, a diff of a rendered file, and the paths it touches.
#[derive(Debug, Default)]
pub struct Change {
    pub msg: String,
    pub diff: Option<String>,
    pub paths: Vec<PathBuf>,
}

impl Change {
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            ..Self::default()
        }
    }
    pub fn path(mut self, p: impl Into<PathBuf>) -> Self {
        self.paths.push(p.into());
        self
    }
}

/// Shared state of a run.
pub struct Cx<'a> {
    pub facts: &'a Facts,
    pub sys: Sys,
    pub check_mode: bool,
    /// Paths changed earlier in this run (predicted ones with `--check`).
    pub changed: HashSet<PathBuf>,
    /// Whether an earlier step changed (or, with `--check`, would change) something.
    pub predicted: bool,
    /// Whether progress bars may be drawn.
    pub progress: bool,
}

/// One step's behaviour.
pub trait Action {
    /// The action key (`file`, `service`, ...).
    fn kind(&self) -> &'static str;
    /// One line saying what the step manages.
    fn summary(&self) -> String;
    /// Inspects the system without changing it.
    fn check(&self, cx: &Cx<'_>) -> Result<Check, String>;
    /// Makes the change `check` announced; returns what was done.
    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String>;
    /// Whether a successful apply is reported as "changed" (`changed_when: false` says no).
    fn counts_as_change(&self) -> bool {
        true
    }
}

/// Converts rendered spec values, reporting problems at their position.
pub struct Builder<'a> {
    pub source: Arc<Source>,
    pub diags: &'a mut Diags,
    pub ctx: &'a tera::Context,
    pub library: &'a Library,
    /// Preset the step comes from (`None` for playbook steps).
    pub preset: Option<&'a str>,
    /// Folder of the playbook, for relative template paths.
    pub base: &'a Path,
}

impl Builder<'_> {
    pub fn error(&mut self, t: &Tpl, msg: impl Into<String>) {
        self.diags.push(Diag::at(&self.source, t.loc, msg));
    }

    pub fn path(&mut self, t: &Tpl) -> PathBuf {
        if t.value.trim().is_empty() {
            self.error(t, "empty path");
        }
        crate::system::expand_home(&t.value)
    }

    pub fn opt_path(&mut self, t: &Option<Tpl>) -> Option<PathBuf> {
        t.as_ref()
            .filter(|t| !t.value.trim().is_empty())
            .map(|t| self.path(t))
    }

    pub fn mode(&mut self, t: &Option<Tpl>) -> Option<u32> {
        let t = t.as_ref()?;
        match u32::from_str_radix(t.value.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o7777 => Some(m),
            _ => {
                self.diags.push(
                    Diag::at(&self.source, t.loc, format!("invalid mode `{}`", t.value))
                        .with_help("write an octal mode in quotes, e.g. \"0640\""),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, t: &Option<Tpl>, default: bool) -> bool {
        let Some(t) = t else { return default };
        match t.value.trim() {
            "true" => true,
            "false" => false,
            other => {
                self.diags.push(
                    Diag::at(
                        &self.source,
                        t.loc,
                        format!("expected true or false, got `{other}`"),
                    )
                    .with_help("write `true` or `false`"),
                );
                default
            }
        }
    }

    pub fn choice(&mut self, t: &Option<Tpl>, choices: &[&str], default: &str) -> String {
        let Some(t) = t else { return default.into() };
        if choices.contains(&t.value.as_str()) {
            return t.value.clone();
        }
        let mut d = Diag::at(
            &self.source,
            t.loc,
            format!("`{}` is not one of {}", t.value, choices.join(", ")),
        );
        d.help = crate::diag::did_you_mean(&t.value, choices.iter().copied());
        self.diags.push(d);
        default.into()
    }

    pub fn duration(&mut self, t: &Option<Tpl>, default: Duration) -> Duration {
        let Some(t) = t else { return default };
        match parse_duration(&t.value) {
            Some(d) => d,
            None => {
                self.diags.push(
                    Diag::at(
                        &self.source,
                        t.loc,
                        format!("invalid duration `{}`", t.value),
                    )
                    .with_help("write seconds (30) or a unit: 500ms, 30s, 2m"),
                );
                default
            }
        }
    }

    pub fn strings(&self, v: &[Tpl]) -> Vec<String> {
        v.iter().map(|t| t.value.clone()).collect()
    }
}

/// Parses `30`, `30s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    if let Some(m) = s.strip_suffix('m') {
        return m
            .trim()
            .parse::<u64>()
            .ok()
            .map(|m| Duration::from_secs(m * 60));
    }
    let secs = s.strip_suffix('s').unwrap_or(s).trim();
    secs.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e7)
        .map(Duration::from_secs_f64)
}

/// A message step (`print:`), always ok.
struct Print(String);

impl Action for Print {
    fn kind(&self) -> &'static str {
        "print"
    }
    fn summary(&self) -> String {
        self.0.clone()
    }
    fn check(&self, _: &Cx<'_>) -> Result<Check, String> {
        Ok(Check::Ok(self.0.clone()))
    }
    fn apply(&self, _: &Cx<'_>, _: &Change) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

/// Builds the action of a rendered step (which has exactly one action key).
pub fn build(step: &StepSpec, b: &mut Builder<'_>) -> Option<Box<dyn Action>> {
    if let Some(s) = &step.file {
        return file::build_file(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.template {
        return file::build_template(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.copy {
        return copy::build(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.package {
        return package::build(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.user {
        return user::build(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.service {
        return service::build(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.command {
        return command::build(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.assert {
        return assert::build(s, b).map(|a| Box::new(a) as Box<dyn Action>);
    }
    if let Some(s) = &step.print {
        return Some(Box::new(Print(s.value.clone())));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1"), None);
    }
}
