//! The built-in supervisor runs the service (no systemd: containers, CI, or `service: false`):
//! a detached process with a pid file and a log file, see [`super::supervise`].

use std::time::Duration;

use super::manager::{systemctl_says, Cleanup, Plan, ServiceManager};
use super::{supervise, ServiceAction};
use crate::actions::Cx;

pub struct Supervised;

/// The supervisor's one step of its own: start the process, after stopping the running copy
/// when it restarts.
pub struct Start {
    restart: bool,
}

impl ServiceManager for Supervised {
    type Own = Start;

    fn inspect_started(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Start>, String> {
        let name = &svc.name;
        let pid = supervise::running_pid(&svc.proc);
        let mut plan = Plan::new(match pid {
            Some(pid) => format!("{name} is running (pid {pid})"),
            None => String::new(),
        });
        // Installed earlier as a systemd service: that one must let the port go.
        if cx.facts.has_systemd() && systemctl_says(cx, "is-active", name)? {
            plan.cleanup(svc, Cleanup::StopSystemd);
            if systemctl_says(cx, "is-enabled", name)? {
                plan.cleanup(svc, Cleanup::DisableSystemd);
            }
        }
        let Some(pid) = pid else {
            plan.push(format!("start {name}"), Start { restart: false });
            return Ok(plan);
        };
        let why = match svc.restart_reason(cx)? {
            None if !svc.healthy_now() => Some("not answering its health check".to_string()),
            why => why,
        };
        if let Some(why) = why {
            plan.push(
                format!("restart {name} (pid {pid}): {why}"),
                Start { restart: true },
            );
        }
        Ok(plan)
    }

    fn execute(&self, svc: &ServiceAction, cx: &Cx<'_>, step: &Start) -> Result<String, String> {
        let verb = if step.restart {
            supervise::stop(&svc.proc, Duration::from_secs(20))?;
            "restarted"
        } else {
            "started"
        };
        svc.port_is_free()?;
        let child = supervise::start(&cx.sys, &svc.proc)?;
        let pid = child.id();
        match svc.wait_healthy(Some(child), || supervise::log_tail(&svc.proc, 20)) {
            Ok(h) => {
                svc.record_fingerprint(cx)?;
                Ok(format!(
                    "{verb} {} (pid {pid}, log {}){h}",
                    svc.name,
                    svc.proc.log_file.display()
                ))
            }
            Err(e) => {
                let _ = supervise::stop(&svc.proc, Duration::from_secs(5));
                Err(e)
            }
        }
    }
}
