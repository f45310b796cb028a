//! systemd runs the service: `systemctl` enables and starts the unit the preset wrote, and
//! the journal explains a start that does not become healthy.

use super::manager::{systemctl_says, Cleanup, Plan, ServiceManager};
use super::{supervise, ServiceAction};
use crate::actions::Cx;
use crate::system::tail;

pub struct Systemd;

/// systemd's own steps.
#[derive(Debug)]
pub enum Step {
    /// `systemctl daemon-reload`, before the unit is enabled or (re)started: it may be new.
    Reload,
    Enable,
    Start,
    Restart,
}

impl ServiceManager for Systemd {
    type Own = Step;

    fn inspect_started(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Step>, String> {
        let name = &svc.name;
        let active = systemctl_says(cx, "is-active", name)?;
        let enabled = systemctl_says(cx, "is-enabled", name)?;
        let mut plan = Plan::new(format!("{name} is active"));
        // Started earlier without `service: true`: systemd takes over the port.
        if let Some(pid) = supervise::running_pid(&svc.proc) {
            plan.cleanup(svc, Cleanup::StopSupervised { pid });
        }
        let restart = match active {
            true => svc.restart_reason(cx)?,
            false => None,
        };
        let enable = svc.enabled && !enabled;
        if enable || !active || restart.is_some() {
            plan.push("", Step::Reload);
        }
        if enable {
            plan.push(format!("enable {name}"), Step::Enable);
        }
        match restart {
            _ if !active => plan.push(format!("start {name}"), Step::Start),
            Some(why) => plan.push(format!("restart {name}: {why}"), Step::Restart),
            None => {}
        }
        Ok(plan)
    }

    fn execute(&self, svc: &ServiceAction, cx: &Cx<'_>, step: &Step) -> Result<String, String> {
        let name = &svc.name;
        let (verb, done) = match step {
            Step::Reload => {
                cx.sys.run_ok(&["systemctl", "daemon-reload"])?;
                return Ok(String::new());
            }
            Step::Enable => {
                cx.sys.run_ok(&["systemctl", "enable", name])?;
                return Ok(format!("enabled {name}"));
            }
            Step::Start => {
                svc.port_is_free()?;
                ("start", "started")
            }
            Step::Restart => ("restart", "restarted"),
        };
        cx.sys.run_ok(&["systemctl", verb, name])?;
        let h = svc.wait_healthy(None, || {
            cx.sys
                .run(&["journalctl", "-u", name, "-n", "50", "--no-pager"])
                .map(|o| tail(&String::from_utf8_lossy(&o.stdout), 50))
                .unwrap_or_default()
        })?;
        svc.record_fingerprint(cx)?;
        Ok(format!("{done} {name}{h}"))
    }
}
