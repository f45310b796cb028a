//! `package:` installs or removes OS packages through the detected manager (apt, dnf, pacman,
//! brew, see [`PackageManager`]), querying first so an installed package is "ok".

use super::{Builder, Change, Check, Cx, Operation, Presence};
use crate::package_manager::PackageManager;
use crate::spec::PackageSpec;
use crate::system::{tail, Sys};

pub struct PackageAction {
    names: Vec<String>,
    state: Presence,
}

/// What `apply` does: these packages, with this manager.
pub struct Plan {
    manager: PackageManager,
    names: Vec<String>,
}

pub fn build(s: &PackageSpec, b: &mut Builder<'_>) -> Option<PackageAction> {
    let mut names: Vec<String> = s.name.iter().map(|t| t.value.clone()).collect();
    if let Some(n) = &s.names {
        names.extend(b.strings(n));
    }
    names.retain(|n| !n.is_empty());
    if names.is_empty() {
        b.problem("package needs `name` or `names`");
    }
    for n in &names {
        if n.starts_with('-') || n.contains(char::is_whitespace) {
            b.problem(format!("invalid package name `{n}`"));
        }
    }
    Some(PackageAction {
        names,
        state: b.choice(&s.state, Presence::Present),
    })
}

impl PackageAction {
    fn verb(&self) -> &'static str {
        match self.state {
            Presence::Present => "install",
            Presence::Absent => "remove",
        }
    }
}

/// Whether `name` is installed; queries need no privileges.
fn installed(pm: PackageManager, name: &str) -> Result<bool, String> {
    let out = Sys::default().run(&pm.query(name))?;
    Ok(pm.says_installed(&out))
}

/// Runs a manager command non-interactively; `Err` carries its stderr.
fn run_manager(cx: &Cx<'_>, pm: PackageManager, argv: &[String]) -> Result<(), String> {
    let mut cmd = cx.sys.command(argv)?;
    cmd.envs(pm.env().iter().copied());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", pm.name()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{}` failed: {}",
        argv.join(" "),
        tail(&String::from_utf8_lossy(&out.stderr), 10)
    ))
}

impl Operation for PackageAction {
    type Plan = Plan;

    fn summary(&self) -> String {
        format!("{} {}", self.verb(), self.names.join(" "))
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check<Plan>, String> {
        let pm = cx
            .facts
            .package_manager
            .ok_or_else(|| cx.facts.package_manager_error.clone())?;
        let want = self.state == Presence::Present;
        let mut todo = Vec::new();
        for n in &self.names {
            if installed(pm, n)? != want {
                todo.push(n.clone());
            }
        }
        if todo.is_empty() {
            return Ok(Check::Ok(format!(
                "{} {}",
                self.names.join(" "),
                if want { "installed" } else { "not installed" }
            )));
        }
        Ok(Check::Change(Change {
            msg: format!("{} {} with {}", self.verb(), todo.join(" "), pm.name()),
            diff: None,
            paths: Vec::new(),
            plan: Plan {
                manager: pm,
                names: todo,
            },
        }))
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change<Plan>) -> Result<String, String> {
        let Plan { manager: pm, names } = &change.plan;
        let pm = *pm;
        if self.state == Presence::Absent {
            run_manager(cx, pm, &pm.remove(names))?;
            return Ok(change.msg.clone());
        }
        let argv = pm.install(names);
        if let Err(e) = run_manager(cx, pm, &argv) {
            let Some(refresh) = pm.refresh() else {
                return Err(e);
            };
            cx.sys.run_ok(refresh)?;
            run_manager(cx, pm, &argv)?;
        }
        Ok(change.msg.clone())
    }
}
