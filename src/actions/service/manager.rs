//! What the three service managers share: the [`ServiceManager`] trait, the typed [`Plan`]
//! that `inspect` returns and `apply` carries out, and the [`Cleanup`] steps any of them
//! plans to stop or remove a service (or to take it over from another manager).

use std::path::PathBuf;
use std::time::Duration;

use super::supervise;
use super::{ServiceAction, State};
use crate::actions::{Change, Check, Choice, Cx};

/// A way of running services (systemd, launchd, the built-in supervisor).
pub trait ServiceManager {
    /// This manager's own steps (besides the shared [`Cleanup`]).
    type Own;

    /// Plans what starting the service (or keeping it up to date) takes under this manager.
    fn inspect_started(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Self::Own>, String>;

    /// Plans stopping or removing the service: what any manager left behind.
    fn inspect_stopped(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Self::Own>, String> {
        stop_plan(svc, cx)
    }

    /// Looks at the system once and plans what the service needs to reach its state.
    fn inspect(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Self::Own>, String> {
        match svc.state {
            State::Started => self.inspect_started(svc, cx),
            State::Stopped | State::Absent => self.inspect_stopped(svc, cx),
        }
    }

    /// Carries out one of this manager's own steps; it acts on what `inspect` found and does
    /// not look again.
    fn execute(&self, svc: &ServiceAction, cx: &Cx<'_>, step: &Self::Own)
        -> Result<String, String>;

    /// Carries out a plan, step by step; returns what was done.
    fn apply(
        &self,
        svc: &ServiceAction,
        cx: &Cx<'_>,
        plan: &Plan<Self::Own>,
    ) -> Result<String, String> {
        let mut done = Vec::new();
        for (_, step) in &plan.steps {
            let what = match step {
                Step::Cleanup(c) => c.execute(svc, cx)?,
                Step::Own(own) => self.execute(svc, cx, own)?,
            };
            if !what.is_empty() {
                done.push(what);
            }
        }
        Ok(with_note(&plan.note, done.join(", ")))
    }
}

/// A planned step: shared clean-up, or one of the manager's own.
#[derive(Debug)]
pub enum Step<S> {
    Cleanup(Cleanup),
    Own(S),
}

/// What `inspect` found: the steps to take, each with how it reads in `check`'s message (empty
/// for bookkeeping such as systemd's daemon-reload); what to say when there are none; and a
/// note on the manager (why the supervisor runs the service).
#[derive(Debug)]
pub struct Plan<S> {
    pub steps: Vec<(String, Step<S>)>,
    pub ok: String,
    pub note: Option<String>,
}

impl<S> Plan<S> {
    /// An empty plan, saying `ok` when it stays empty.
    pub fn new(ok: impl Into<String>) -> Self {
        Self {
            steps: Vec::new(),
            ok: ok.into(),
            note: None,
        }
    }

    /// Adds one of the manager's own steps.
    pub fn push(&mut self, text: impl Into<String>, step: S) {
        self.steps.push((text.into(), Step::Own(step)));
    }

    /// Adds a clean-up step.
    pub fn cleanup(&mut self, svc: &ServiceAction, c: Cleanup) {
        self.steps.push((c.describe(svc), Step::Cleanup(c)));
    }

    /// `check`'s answer: ok when nothing is planned, else the change that carries the plan.
    pub fn into_check<P>(self, svc: &ServiceAction, wrap: impl FnOnce(Self) -> P) -> Check<P> {
        if self.steps.is_empty() {
            return Check::Ok(with_note(&self.note, self.ok.clone()));
        }
        let texts: Vec<&str> = self
            .steps
            .iter()
            .map(|(t, _)| t.as_str())
            .filter(|t| !t.is_empty())
            .collect();
        let msg = with_note(&self.note, texts.join(", "));
        let mut paths = Vec::new();
        if svc.state != State::Started {
            paths.extend(svc.unit.clone());
        }
        Check::Change(Change {
            msg,
            diff: None,
            paths,
            plan: wrap(self),
        })
    }
}

/// The plan that stops or removes the service: what any manager left behind.
pub fn stop_plan<S>(svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<S>, String> {
    let mut plan = Plan::new(format!("{} is {}", svc.name, svc.state.word()));
    for c in leftovers(svc, cx)? {
        plan.cleanup(svc, c);
    }
    Ok(plan)
}

fn with_note(note: &Option<String>, text: String) -> String {
    match note {
        Some(n) => format!("{n}; {text}"),
        None => text,
    }
}

/// Stopping and removing what any manager left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Stop the process the built-in supervisor started.
    StopSupervised { pid: i32 },
    /// Stop the systemd service.
    StopSystemd,
    /// Disable the systemd service.
    DisableSystemd,
    /// Remove the unit file (then let systemd forget it).
    RemoveUnit(PathBuf),
    /// Remove the supervisor's pid file and the recorded fingerprint.
    RemoveStateFiles,
}

/// Whether systemctl says yes to a question (`is-active`, `is-enabled`).
pub fn systemctl_says(cx: &Cx<'_>, question: &str, name: &str) -> Result<bool, String> {
    Ok(cx
        .sys
        .run(&["systemctl", question, "--quiet", name])?
        .status
        .success())
}

/// What stopping (or, for `absent`, removing) the service leaves to do, whatever ran it
/// before: the supervisor's process, the systemd service, the unit and state files.
fn leftovers(svc: &ServiceAction, cx: &Cx<'_>) -> Result<Vec<Cleanup>, String> {
    let absent = svc.state == State::Absent;
    let mut todo = Vec::new();
    if let Some(pid) = supervise::running_pid(&svc.proc) {
        todo.push(Cleanup::StopSupervised { pid });
    }
    if cx.facts.has_systemd() {
        if systemctl_says(cx, "is-active", &svc.name)? {
            todo.push(Cleanup::StopSystemd);
        }
        if absent && systemctl_says(cx, "is-enabled", &svc.name)? {
            todo.push(Cleanup::DisableSystemd);
        }
    }
    if absent {
        if let Some(u) = svc.unit.as_ref().filter(|u| u.exists()) {
            todo.push(Cleanup::RemoveUnit(u.clone()));
        }
        let fp = supervise::fingerprint_file(&svc.proc.pid_file);
        if fp.exists() || svc.proc.pid_file.exists() {
            todo.push(Cleanup::RemoveStateFiles);
        }
    }
    Ok(todo)
}

impl Cleanup {
    fn describe(&self, svc: &ServiceAction) -> String {
        let name = &svc.name;
        match self {
            Self::StopSupervised { pid } => format!("stop the supervised {name} (pid {pid})"),
            Self::StopSystemd => format!("stop the systemd service {name}"),
            Self::DisableSystemd => format!("disable the systemd service {name}"),
            Self::RemoveUnit(u) => format!("remove {}", u.display()),
            Self::RemoveStateFiles => "remove pid and fingerprint files".into(),
        }
    }

    /// Carries the step out.
    pub fn execute(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<String, String> {
        let name = &svc.name;
        match self {
            Self::StopSupervised { pid } => {
                supervise::stop(&svc.proc, Duration::from_secs(20))?;
                Ok(format!("stopped the supervised {name} (pid {pid})"))
            }
            Self::StopSystemd => {
                cx.sys.run_ok(&["systemctl", "stop", name])?;
                Ok(format!("stopped the systemd service {name}"))
            }
            Self::DisableSystemd => {
                cx.sys.run_ok(&["systemctl", "disable", name])?;
                Ok(format!("disabled the systemd service {name}"))
            }
            Self::RemoveUnit(u) => {
                cx.sys.remove(u)?;
                if cx.facts.has_systemd() {
                    cx.sys.run_ok(&["systemctl", "daemon-reload"])?;
                }
                Ok(format!("removed {}", u.display()))
            }
            Self::RemoveStateFiles => {
                cx.sys
                    .remove(&supervise::fingerprint_file(&svc.proc.pid_file))?;
                cx.sys.remove(&svc.proc.pid_file)?;
                Ok("removed pid and fingerprint files".into())
            }
        }
    }
}
