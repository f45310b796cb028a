//! launchd runs the service (macOS): `launchctl bootstrap` loads the plist the preset wrote.

use super::manager::{self, stop_plan, Plan, ServiceManager};
use super::{supervise, ServiceAction};
use crate::actions::Cx;

pub struct Launchd;

/// launchd's own steps.
#[derive(Debug)]
pub enum Step {
    Load,
    /// Unload, then load.
    Reload,
    Unload,
}

fn label(svc: &ServiceAction) -> String {
    format!("system/{}", svc.name)
}

fn loaded(svc: &ServiceAction, cx: &Cx<'_>) -> Result<bool, String> {
    Ok(cx
        .sys
        .run(&["launchctl", "print", &label(svc)])?
        .status
        .success())
}

impl ServiceManager for Launchd {
    type Own = Step;

    fn inspect_started(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Step>, String> {
        let name = &svc.name;
        let mut plan = Plan::new(format!("{name} is loaded"));
        if !loaded(svc, cx)? {
            plan.push(format!("load {name}"), Step::Load);
        } else if let Some(why) = svc.restart_reason(cx)? {
            plan.push(format!("reload {name}: {why}"), Step::Reload);
        }
        Ok(plan)
    }

    fn inspect_stopped(&self, svc: &ServiceAction, cx: &Cx<'_>) -> Result<Plan<Step>, String> {
        let mut plan = stop_plan(svc, cx)?;
        if loaded(svc, cx)? {
            let unload = (
                format!("unload {}", svc.name),
                manager::Step::Own(Step::Unload),
            );
            plan.steps.insert(0, unload);
        }
        Ok(plan)
    }

    fn execute(&self, svc: &ServiceAction, cx: &Cx<'_>, step: &Step) -> Result<String, String> {
        let name = &svc.name;
        if matches!(step, Step::Unload | Step::Reload) {
            cx.sys.run_ok(&["launchctl", "bootout", &label(svc)])?;
        }
        if let Step::Unload = step {
            return Ok(format!("unloaded {name}"));
        }
        let plist = svc
            .unit
            .as_ref()
            .ok_or("launchd needs `unit` (the plist path)")?;
        cx.sys.run_ok(&[
            "launchctl".to_string(),
            "bootstrap".into(),
            "system".into(),
            plist.display().to_string(),
        ])?;
        let h = svc.wait_healthy(None, || supervise::log_tail(&svc.proc, 20))?;
        svc.record_fingerprint(cx)?;
        Ok(format!("loaded {name}{h}"))
    }
}
