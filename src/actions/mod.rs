//! The primitive actions. Each kind implements [`Operation`]: `check` looks at the system and
//! says whether anything would change (the only call `--check` makes), with a typed plan of
//! what to do; `apply` carries that plan out. [`Action`] is the closed set of kinds: building
//! one from its spec, reporting it and running it are one `match` each, so a new kind is a
//! variant of [`ActionSpec`] and of [`Action`], and the compiler names every place to extend.

mod assert;
mod builder;
mod command;
mod copy;
mod file;
mod package;
mod service;
mod user;

use std::collections::HashSet;
use std::path::PathBuf;

use crate::facts::Facts;
use crate::report::Status;
use crate::spec::ActionSpec;
use crate::system::Sys;

pub(crate) use builder::choice;
pub use builder::{parse_duration, Builder, Choice, Presence};

/// What `check` found.
#[derive(Debug)]
pub enum Check<P = ()> {
    /// Already in the desired state.
    Ok(String),
    /// Would change (or, with `--check`, will change).
    Change(Change<P>),
    /// Not applicable here, with the reason.
    Skip(String),
}

/// A pending change: what it is, a diff of a rendered file, the paths it touches, and the
/// plan `apply` carries out.
#[derive(Debug, Default)]
pub struct Change<P = ()> {
    pub msg: String,
    pub diff: Option<String>,
    pub paths: Vec<PathBuf>,
    pub plan: P,
}

impl Change {
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            ..Self::default()
        }
    }
}

impl<P> Change<P> {
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

/// One kind of step's behaviour.
pub trait Operation {
    /// What `check` decides and `apply` carries out without looking again (`()` when the
    /// step has nothing to hand over).
    type Plan;
    /// One line saying what the step manages.
    fn summary(&self) -> String;
    /// Inspects the system without changing it.
    fn check(&self, cx: &Cx<'_>) -> Result<Check<Self::Plan>, String>;
    /// Makes the change `check` planned; returns what was done.
    fn apply(&self, cx: &Cx<'_>, change: &Change<Self::Plan>) -> Result<String, String>;
    /// Whether a successful apply is reported as "changed" (`changed_when: false` says no).
    fn counts_as_change(&self) -> bool {
        true
    }
}

/// A built step action, one variant per kind of [`ActionSpec`].
pub enum Action {
    Package(package::PackageAction),
    File(file::FileAction),
    Template(file::FileAction),
    Copy(copy::CopyAction),
    User(user::UserAction),
    Service(service::ServiceAction),
    Command(command::CommandAction),
    Assert(assert::AssertAction),
    Print(Print),
}

/// How a step ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub diff: Option<String>,
}

impl Action {
    /// Builds the action of a rendered spec, reporting invalid values at their position.
    pub fn build(spec: &ActionSpec, b: &mut Builder<'_>) -> Option<Self> {
        Some(match spec {
            ActionSpec::Package(s) => Self::Package(package::build(s, b)?),
            ActionSpec::File(s) => Self::File(file::build_file(s, b)?),
            ActionSpec::Template(s) => Self::Template(file::build_template(s, b)?),
            ActionSpec::Copy(s) => Self::Copy(copy::build(s, b)?),
            ActionSpec::User(s) => Self::User(user::build(s, b)?),
            ActionSpec::Service(s) => Self::Service(service::build(s, b)?),
            ActionSpec::Command(s) => Self::Command(command::build(s, b)?),
            ActionSpec::Assert(s) => Self::Assert(assert::build(s, b)?),
            ActionSpec::Print(s) => Self::Print(Print(s.value.clone())),
        })
    }

    /// One line saying what the step manages (for `plan` and step names).
    pub fn summary(&self) -> String {
        match self {
            Self::Package(a) => a.summary(),
            Self::File(a) | Self::Template(a) => a.summary(),
            Self::Copy(a) => a.summary(),
            Self::User(a) => a.summary(),
            Self::Service(a) => a.summary(),
            Self::Command(a) => a.summary(),
            Self::Assert(a) => a.summary(),
            Self::Print(a) => a.summary(),
        }
    }

    /// Checks the step and, unless `--check`, applies what it planned.
    pub fn run(&self, cx: &mut Cx<'_>) -> Outcome {
        match self {
            Self::Package(a) => run(a, cx),
            Self::File(a) | Self::Template(a) => run(a, cx),
            Self::Copy(a) => run(a, cx),
            Self::User(a) => run(a, cx),
            Self::Service(a) => run(a, cx),
            Self::Command(a) => run(a, cx),
            Self::Assert(a) => run(a, cx),
            Self::Print(a) => run(a, cx),
        }
    }
}

fn run<O: Operation>(op: &O, cx: &mut Cx<'_>) -> Outcome {
    let done = |status, message, diff| Outcome {
        status,
        message,
        diff,
    };
    let change = match op.check(cx) {
        Err(e) => return done(Status::Failed, e, None),
        Ok(Check::Ok(m)) => return done(Status::Ok, m, None),
        Ok(Check::Skip(m)) => return done(Status::Skipped, m, None),
        Ok(Check::Change(change)) => change,
    };
    let counts = op.counts_as_change();
    if cx.check_mode {
        cx.changed.extend(change.paths.iter().cloned());
        if !counts {
            return done(Status::Ok, format!("would run: {}", change.msg), None);
        }
        cx.predicted = true;
        return done(
            Status::Changed,
            format!("would {}", change.msg),
            change.diff,
        );
    }
    match op.apply(cx, &change) {
        Ok(m) if counts => {
            cx.changed.extend(change.paths.iter().cloned());
            cx.predicted = true;
            done(Status::Changed, m, change.diff)
        }
        Ok(m) => done(Status::Ok, m, None),
        Err(e) => done(Status::Failed, e, change.diff),
    }
}

/// A message step (`print:`), always ok.
pub struct Print(String);

impl Operation for Print {
    type Plan = ();
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
