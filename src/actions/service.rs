//! `service:` keeps a long-running program started, stopped or absent, through systemd when
//! it is the running init, launchd on macOS, and otherwise the built-in supervisor (pid file
//! and log file). Restarts only when a watched file changed in this run or the recorded
//! fingerprint (binary, arguments, environment file) differs, and waits for `health_url`.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use super::supervise::{self, Spec};
use super::{Action, Builder, Change, Check, Cx};
use crate::facts::Facts;
use crate::spec::ServiceSpec;
use crate::system::{tail, Sys};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Systemd,
    Launchd,
    Supervised,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Started,
    Stopped,
    Absent,
}

pub struct ServiceAction {
    name: String,
    state: State,
    enabled: bool,
    manager: String,
    unit: Option<PathBuf>,
    proc: Spec,
    watch: Vec<PathBuf>,
    health_url: Option<String>,
    health_timeout: Duration,
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
    let state = match b
        .choice(&s.state, &["started", "stopped", "absent"], "started")
        .as_str()
    {
        "started" => State::Started,
        "stopped" => State::Stopped,
        _ => State::Absent,
    };
    let mut exec = s.exec.as_ref().map(|e| b.strings(e)).unwrap_or_default();
    if let Some(extra) = &s.exec_args_json {
        if !extra.value.trim().is_empty() {
            match serde_json::from_str::<Vec<String>>(&extra.value) {
                Ok(v) => exec.extend(v),
                Err(e) => b.error(
                    extra,
                    format!("exec_args_json must render to a JSON list of strings: {e}"),
                ),
            }
        }
    }
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
    let health_timeout = b.duration(&s.health_timeout, Duration::from_secs(60));
    Some(ServiceAction {
        state,
        enabled: b.boolean(&s.enabled, true),
        manager: b.choice(
            &s.manager,
            &["auto", "systemd", "launchd", "supervised"],
            "auto",
        ),
        unit: s
            .unit
            .as_ref()
            .filter(|u| !u.value.trim().is_empty())
            .map(|u| b.path(u)),
        proc: Spec {
            exec,
            env_file: b.opt_path(&s.env_file),
            user: s
                .user
                .as_ref()
                .map(|u| u.value.clone())
                .filter(|u| !u.is_empty()),
            workdir: b.opt_path(&s.workdir),
            pid_file,
            log_file,
        },
        watch: s
            .watch
            .as_ref()
            .map(|w| w.iter().map(|t| b.path(t)).collect())
            .unwrap_or_default(),
        health_url: s
            .health_url
            .as_ref()
            .map(|t| t.value.clone())
            .filter(|u| !u.is_empty()),
        health_timeout,
        name,
    })
}

impl ServiceAction {
    /// The manager that will run the service here, and a note when it is not the one asked.
    fn manager(&self, f: &Facts) -> (Manager, Option<String>) {
        let no_systemd = || {
            format!(
                "systemd is not running here (PID 1 is `{}`): using the built-in supervisor (pid file {})",
                f.pid1,
                self.proc.pid_file.display()
            )
        };
        match self.manager.as_str() {
            "supervised" => (Manager::Supervised, None),
            "launchd" if f.os == "macos" => (Manager::Launchd, None),
            "systemd" | "auto" if f.systemd => (Manager::Systemd, None),
            "auto" if f.os == "macos" => (Manager::Launchd, None),
            _ => (Manager::Supervised, Some(no_systemd())),
        }
    }

    fn recorded_fingerprint(&self) -> Option<String> {
        fs::read_to_string(supervise::fingerprint_file(&self.proc.pid_file))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn record_fingerprint(&self, cx: &Cx<'_>) -> Result<(), String> {
        let fp = supervise::fingerprint(&cx.sys, &self.proc)?;
        let path = supervise::fingerprint_file(&self.proc.pid_file);
        cx.sys
            .write_atomic(&path, format!("{fp}\n").as_bytes(), 0o644, None)
    }

    /// Why a running service must restart, if it must.
    fn restart_reason(&self, cx: &Cx<'_>) -> Result<Option<String>, String> {
        let changed: Vec<String> = self
            .watch
            .iter()
            .filter(|w| cx.changed.contains(*w))
            .map(|w| w.display().to_string())
            .collect();
        if !changed.is_empty() {
            return Ok(Some(format!("{} changed", changed.join(", "))));
        }
        let now = supervise::fingerprint(&cx.sys, &self.proc)?;
        if self.recorded_fingerprint().as_deref() != Some(now.as_str()) {
            return Ok(Some(
                "binary, arguments or environment changed since it started".into(),
            ));
        }
        Ok(None)
    }

    fn systemctl(&self, sys: &Sys, args: &[&str]) -> Result<bool, String> {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        Ok(sys.run(&argv)?.status.success())
    }

    fn launchd_label(&self) -> String {
        format!("system/{}", self.name)
    }

    /// Fails when something already answers the health URL before our server starts: the
    /// health check would otherwise be passed by another program holding the port.
    fn port_is_free(&self) -> Result<(), String> {
        match &self.health_url {
            Some(url) if probe(url, Duration::from_secs(2)).is_ok() => Err(format!(
                "{url} already answers before {} is started: another program holds the port; stop it or choose another port (tracking_uri)",
                self.name
            )),
            _ => Ok(()),
        }
    }

    fn healthy_now(&self) -> bool {
        let Some(url) = &self.health_url else {
            return true;
        };
        probe(url, Duration::from_secs(2)).is_ok()
    }

    /// Waits for the health URL; on failure returns the last log lines.
    fn wait_healthy(
        &self,
        cx: &Cx<'_>,
        mgr: Manager,
        mut child: Option<Child>,
    ) -> Result<String, String> {
        let Some(url) = &self.health_url else {
            return Ok(String::new());
        };
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < self.health_timeout {
            if let Some(c) = child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(format!(
                        "{} exited during start-up ({status}); last log lines ({}):\n{}",
                        self.name,
                        self.proc.log_file.display(),
                        supervise::log_tail(&self.proc, 20)
                    ));
                }
            }
            match probe(url, Duration::from_secs(2)) {
                Ok(()) => {
                    return Ok(format!(
                        ", healthy at {url} after {:.1}s",
                        start.elapsed().as_secs_f64()
                    ))
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let logs = match mgr {
            Manager::Systemd => cx
                .sys
                .run(&["journalctl", "-u", &self.name, "-n", "50", "--no-pager"])
                .map(|o| tail(&String::from_utf8_lossy(&o.stdout), 50))
                .unwrap_or_default(),
            _ => supervise::log_tail(&self.proc, 20),
        };
        Err(format!(
            "{} did not become healthy at {url} within {}s (last error: {last}); last log lines:\n{logs}",
            self.name,
            self.health_timeout.as_secs()
        ))
    }

    fn check_started(
        &self,
        cx: &Cx<'_>,
        mgr: Manager,
        note: Option<String>,
    ) -> Result<Check, String> {
        let prefix = note.map(|n| format!("{n}; ")).unwrap_or_default();
        match mgr {
            Manager::Supervised => {
                // Installed earlier as a systemd service: that one must let the port go.
                if cx.facts.systemd
                    && self.systemctl(&cx.sys, &["is-active", "--quiet", &self.name])?
                {
                    return Ok(Check::Change(Change::new(format!(
                        "{prefix}stop and disable the systemd service {}, then start it under the supervisor",
                        self.name
                    ))));
                }
                let Some(pid) = supervise::running_pid(&self.proc) else {
                    return Ok(Check::Change(Change::new(format!(
                        "{prefix}start {}",
                        self.name
                    ))));
                };
                if let Some(why) = self.restart_reason(cx)? {
                    return Ok(Check::Change(Change::new(format!(
                        "{prefix}restart {} (pid {pid}): {why}",
                        self.name
                    ))));
                }
                if !self.healthy_now() {
                    return Ok(Check::Change(Change::new(format!(
                        "{prefix}restart {} (pid {pid}): not answering its health check",
                        self.name
                    ))));
                }
                Ok(Check::Ok(format!(
                    "{prefix}{} is running (pid {pid})",
                    self.name
                )))
            }
            Manager::Systemd => {
                let active = self.systemctl(&cx.sys, &["is-active", "--quiet", &self.name])?;
                let enabled = self.systemctl(&cx.sys, &["is-enabled", "--quiet", &self.name])?;
                let mut todo = Vec::new();
                // Started earlier without `service: true`: systemd takes over the port.
                if let Some(pid) = supervise::running_pid(&self.proc) {
                    todo.push(format!(
                        "stop the supervised {} (pid {pid}) that systemd replaces",
                        self.name
                    ));
                }
                if self.enabled && !enabled {
                    todo.push(format!("enable {}", self.name));
                }
                if !active {
                    todo.push(format!("start {}", self.name));
                } else if let Some(why) = self.restart_reason(cx)? {
                    todo.push(format!("restart {}: {why}", self.name));
                }
                Ok(if todo.is_empty() {
                    Check::Ok(format!("{} is active", self.name))
                } else {
                    Check::Change(Change::new(todo.join(", ")))
                })
            }
            Manager::Launchd => {
                let loaded = cx
                    .sys
                    .run(&["launchctl", "print", &self.launchd_label()])?
                    .status
                    .success();
                if !loaded {
                    return Ok(Check::Change(Change::new(format!("load {}", self.name))));
                }
                if let Some(why) = self.restart_reason(cx)? {
                    return Ok(Check::Change(Change::new(format!(
                        "reload {}: {why}",
                        self.name
                    ))));
                }
                Ok(Check::Ok(format!("{} is loaded", self.name)))
            }
        }
    }

    fn apply_started(&self, cx: &Cx<'_>, mgr: Manager) -> Result<String, String> {
        match mgr {
            Manager::Supervised => {
                let verb = if supervise::running_pid(&self.proc).is_some() {
                    "restarted"
                } else {
                    "started"
                };
                if cx.facts.systemd
                    && self.systemctl(&cx.sys, &["is-active", "--quiet", &self.name])?
                {
                    cx.sys.run_ok(&["systemctl", "stop", &self.name])?;
                    let _ = cx.sys.run(&["systemctl", "disable", &self.name]);
                }
                supervise::stop(&self.proc, Duration::from_secs(20))?;
                self.port_is_free()?;
                let child = supervise::start(&cx.sys, &self.proc)?;
                let pid = child.id();
                match self.wait_healthy(cx, mgr, Some(child)) {
                    Ok(h) => {
                        self.record_fingerprint(cx)?;
                        Ok(format!(
                            "{verb} {} (pid {pid}, log {}){h}",
                            self.name,
                            self.proc.log_file.display()
                        ))
                    }
                    Err(e) => {
                        let _ = supervise::stop(&self.proc, Duration::from_secs(5));
                        Err(e)
                    }
                }
            }
            Manager::Systemd => {
                // A server started earlier by the supervisor would keep the port.
                supervise::stop(&self.proc, Duration::from_secs(20))?;
                cx.sys.run_ok(&["systemctl", "daemon-reload"])?;
                if self.enabled {
                    cx.sys.run_ok(&["systemctl", "enable", &self.name])?;
                }
                let active = self.systemctl(&cx.sys, &["is-active", "--quiet", &self.name])?;
                if !active {
                    self.port_is_free()?;
                }
                let verb = if active { "restart" } else { "start" };
                cx.sys.run_ok(&["systemctl", verb, &self.name])?;
                let h = self.wait_healthy(cx, mgr, None)?;
                self.record_fingerprint(cx)?;
                Ok(format!("{verb}ed {}{h}", self.name))
            }
            Manager::Launchd => {
                let plist = self
                    .unit
                    .as_ref()
                    .ok_or("launchd needs `unit` (the plist path)")?;
                let label = self.launchd_label();
                let _ = cx.sys.run(&["launchctl", "bootout", &label]);
                cx.sys.run_ok(&[
                    "launchctl".to_string(),
                    "bootstrap".into(),
                    "system".into(),
                    plist.display().to_string(),
                ])?;
                let h = self.wait_healthy(cx, mgr, None)?;
                self.record_fingerprint(cx)?;
                Ok(format!("loaded {}{h}", self.name))
            }
        }
    }

    /// What is there to stop or remove, for every manager (the service may have been
    /// installed with another setting).
    fn leftovers(&self, cx: &Cx<'_>) -> Result<Vec<String>, String> {
        let mut todo = Vec::new();
        if let Some(pid) = supervise::running_pid(&self.proc) {
            todo.push(format!("stop {} (pid {pid})", self.name));
        }
        if cx.facts.systemd {
            if self.systemctl(&cx.sys, &["is-active", "--quiet", &self.name])? {
                todo.push(format!("stop {}", self.name));
            }
            if self.state == State::Absent
                && self.systemctl(&cx.sys, &["is-enabled", "--quiet", &self.name])?
            {
                todo.push(format!("disable {}", self.name));
            }
        }
        if self.state == State::Absent {
            if let Some(u) = self.unit.as_ref().filter(|u| u.exists()) {
                todo.push(format!("remove {}", u.display()));
            }
            let fp = supervise::fingerprint_file(&self.proc.pid_file);
            if fp.exists() || self.proc.pid_file.exists() {
                todo.push("remove pid and fingerprint files".into());
            }
        }
        Ok(todo)
    }
}

/// One GET that must answer 2xx.
fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(url).send() {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

impl Action for ServiceAction {
    fn kind(&self) -> &'static str {
        "service"
    }

    fn summary(&self) -> String {
        let st = match self.state {
            State::Started => "started",
            State::Stopped => "stopped",
            State::Absent => "absent",
        };
        format!("{} {st} ({})", self.name, self.manager)
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        let (mgr, note) = self.manager(cx.facts);
        match self.state {
            State::Started => self.check_started(cx, mgr, note),
            State::Stopped | State::Absent => {
                let todo = self.leftovers(cx)?;
                Ok(if todo.is_empty() {
                    Check::Ok(format!(
                        "{} is {}",
                        self.name,
                        if self.state == State::Absent {
                            "absent"
                        } else {
                            "stopped"
                        }
                    ))
                } else {
                    let mut c = Change::new(todo.join(", "));
                    if let Some(u) = &self.unit {
                        c.paths.push(u.clone());
                    }
                    Check::Change(c)
                })
            }
        }
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        let (mgr, note) = self.manager(cx.facts);
        if self.state == State::Started {
            let done = self.apply_started(cx, mgr)?;
            return Ok(match note {
                Some(n) => format!("{n}; {done}"),
                None => done,
            });
        }
        supervise::stop(&self.proc, Duration::from_secs(20))?;
        if cx.facts.systemd {
            let _ = cx.sys.run(&["systemctl", "stop", &self.name]);
            if self.state == State::Absent {
                let _ = cx.sys.run(&["systemctl", "disable", &self.name]);
            }
        }
        if mgr == Manager::Launchd {
            let _ = cx.sys.run(&["launchctl", "bootout", &self.launchd_label()]);
        }
        if self.state == State::Absent {
            if let Some(u) = &self.unit {
                cx.sys.remove(u)?;
                if cx.facts.systemd {
                    cx.sys.run_ok(&["systemctl", "daemon-reload"])?;
                }
            }
            cx.sys
                .remove(&supervise::fingerprint_file(&self.proc.pid_file))?;
            cx.sys.remove(&self.proc.pid_file)?;
        }
        Ok(change.msg.clone())
    }
}
