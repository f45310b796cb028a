//! `service:` keeps a long-running program started, stopped or absent, through systemd when
//! it is the running init, launchd on macOS, and otherwise the built-in supervisor (pid file
//! and log file). Restarts only when a watched file changed in this run or the recorded
//! fingerprint (binary, arguments, environment file) differs, and waits for `health_url`.
//!
//! Each manager implements [`ServiceManager`]: `check` asks the chosen one to inspect the
//! system once, and `apply` hands the typed plan it returned back to it.

mod launchd;
mod manager;
mod running;
mod supervise;
mod supervised;
mod systemd;

use std::path::PathBuf;
use std::time::Duration;

use super::{choice, Builder, Change, Check, Choice, Cx, Operation};
use crate::facts::{Facts, InitSystem};
use crate::spec::ServiceSpec;
use launchd::Launchd;
use manager::{Plan, ServiceManager};
use supervise::Spec;
use supervised::Supervised;
use systemd::Systemd;

choice! {
    /// What the service should be.
    enum State { Started = "started", Stopped = "stopped", Absent = "absent" }
}

choice! {
    /// Who should run the service (`auto`: systemd where it is the init, launchd on macOS,
    /// else the built-in supervisor).
    enum ManagerChoice {
        Auto = "auto",
        Systemd = "systemd",
        Launchd = "launchd",
        Supervised = "supervised",
    }
}

pub struct ServiceAction {
    name: String,
    state: State,
    enabled: bool,
    manager: ManagerChoice,
    unit: Option<PathBuf>,
    proc: Spec,
    watch: Vec<PathBuf>,
    health_url: Option<String>,
    health_timeout: Duration,
}

/// The plan of whichever manager runs the service.
pub enum ServicePlan {
    Systemd(Plan<systemd::Step>),
    Launchd(Plan<launchd::Step>),
    Supervised(Plan<supervised::Start>),
}

pub fn build(s: &ServiceSpec, b: &mut Builder<'_>) -> Option<ServiceAction> {
    let name = s.name.value.clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        b.error(&s.name, format!("invalid service name `{name}`"));
    }
    let state = b.choice(&s.state, State::Started);
    let mut exec = s.exec.as_ref().map(|e| b.strings(e)).unwrap_or_default();
    exec.extend(b.json_list(&s.exec_args_json, "exec_args_json"));
    if state == State::Started && exec.is_empty() {
        b.error(&s.name, "a started service needs `exec` (argv)");
    }
    let default_run = PathBuf::from("/run").join(&name);
    let pid_file = b
        .opt_path(&s.pid_file)
        .unwrap_or_else(|| default_run.join(format!("{name}.pid")));
    let log_file = b
        .opt_path(&s.log_file)
        .unwrap_or_else(|| PathBuf::from("/var/log").join(format!("{name}.log")));
    Some(ServiceAction {
        state,
        enabled: b.boolean(&s.enabled, true),
        manager: b.choice(&s.manager, ManagerChoice::Auto),
        unit: b.opt_path(&s.unit),
        proc: Spec {
            exec,
            env_file: b.opt_path(&s.env_file),
            user: b.opt_string(&s.user),
            workdir: b.opt_path(&s.workdir),
            pid_file,
            log_file,
        },
        watch: s
            .watch
            .as_ref()
            .map(|w| w.iter().map(|t| b.path(t)).collect())
            .unwrap_or_default(),
        health_url: b.opt_string(&s.health_url),
        health_timeout: b.duration(&s.health_timeout, Duration::from_secs(60)),
        name,
    })
}

/// Who runs the service on this machine.
enum Here {
    Systemd,
    Launchd,
    /// The built-in supervisor, with the reason when another manager was asked for.
    Supervised(Option<String>),
}

impl ServiceAction {
    fn manager_here(&self, f: &Facts) -> Here {
        match (self.manager, f.init) {
            (ManagerChoice::Supervised, _) => Here::Supervised(None),
            (ManagerChoice::Launchd | ManagerChoice::Auto, InitSystem::Launchd) => Here::Launchd,
            (ManagerChoice::Systemd | ManagerChoice::Auto, InitSystem::Systemd) => Here::Systemd,
            _ => Here::Supervised(Some(format!(
                "{} is not running here (PID 1 is `{}`): using the built-in supervisor (pid file {})",
                match self.manager {
                    ManagerChoice::Launchd => "launchd",
                    _ => "systemd",
                },
                f.pid1,
                self.proc.pid_file.display()
            ))),
        }
    }
}

impl Operation for ServiceAction {
    type Plan = ServicePlan;

    fn summary(&self) -> String {
        format!(
            "{} {} ({})",
            self.name,
            self.state.word(),
            self.manager.word()
        )
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check<ServicePlan>, String> {
        Ok(match self.manager_here(cx.facts) {
            Here::Systemd => Systemd
                .inspect(self, cx)?
                .into_check(self, ServicePlan::Systemd),
            Here::Launchd => Launchd
                .inspect(self, cx)?
                .into_check(self, ServicePlan::Launchd),
            Here::Supervised(note) => Plan {
                note,
                ..Supervised.inspect(self, cx)?
            }
            .into_check(self, ServicePlan::Supervised),
        })
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change<ServicePlan>) -> Result<String, String> {
        match &change.plan {
            ServicePlan::Systemd(p) => Systemd.apply(self, cx, p),
            ServicePlan::Launchd(p) => Launchd.apply(self, cx, p),
            ServicePlan::Supervised(p) => Supervised.apply(self, cx, p),
        }
    }
}
