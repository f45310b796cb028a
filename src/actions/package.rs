//! `package:` installs or removes OS packages through the detected manager (apt, dnf, pacman,
//! brew), querying first so an installed package is "ok".

use super::{Action, Builder, Change, Check, Cx};
use crate::spec::PackageSpec;

pub struct PackageAction {
    names: Vec<String>,
    absent: bool,
}

pub fn build(s: &PackageSpec, b: &mut Builder<'_>) -> Option<PackageAction> {
    let mut names: Vec<String> = s.name.iter().map(|t| t.value.clone()).collect();
    if let Some(n) = &s.names {
        names.extend(b.strings(n));
    }
    names.retain(|n| !n.is_empty());
    if names.is_empty() {
        b.diags
            .push(crate::diag::Diag::plain("package needs `name` or `names`"));
    }
    for n in &names {
        if n.starts_with('-') || n.contains(char::is_whitespace) {
            b.diags.push(crate::diag::Diag::plain(format!(
                "invalid package name `{n}`"
            )));
        }
    }
    Some(PackageAction {
        names,
        absent: b.choice(&s.state, &["present", "absent"], "present") == "absent",
    })
}

/// The command that tells whether `name` is installed (exit 0 and, for apt, "installed").
pub fn query_command(manager: &str, name: &str) -> Vec<String> {
    let v: Vec<&str> = match manager {
        "apt" => vec!["dpkg-query", "-W", "-f=${Status}", name],
        "dnf" => vec!["rpm", "-q", name],
        "pacman" => vec!["pacman", "-Q", name],
        "brew" => vec!["brew", "list", "--versions", name],
        _ => vec![],
    };
    v.into_iter().map(str::to_string).collect()
}

/// The non-interactive command that installs (or removes) `names`.
pub fn install_command(manager: &str, names: &[String], absent: bool) -> Vec<String> {
    let head: Vec<&str> = match (manager, absent) {
        ("apt", false) => vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"],
        ("apt", true) => vec!["apt-get", "remove", "-y", "-q"],
        ("dnf", false) => vec!["dnf", "install", "-y", "-q"],
        ("dnf", true) => vec!["dnf", "remove", "-y", "-q"],
        ("pacman", false) => vec!["pacman", "-S", "--noconfirm", "--needed"],
        ("pacman", true) => vec!["pacman", "-R", "--noconfirm"],
        ("brew", false) => vec!["brew", "install"],
        ("brew", true) => vec!["brew", "uninstall"],
        _ => vec![],
    };
    let mut v: Vec<String> = head.into_iter().map(str::to_string).collect();
    v.extend(names.iter().cloned());
    v
}

fn installed(cx: &Cx<'_>, manager: &str, name: &str) -> Result<bool, String> {
    let argv = query_command(manager, name);
    // Queries need no privileges.
    let out = crate::system::Sys::default().run(&argv)?;
    Ok(out.status.success()
        && (manager != "apt"
            || String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        && cx.facts.package_manager == manager)
}

impl Action for PackageAction {
    fn kind(&self) -> &'static str {
        "package"
    }
    fn summary(&self) -> String {
        format!(
            "{} {}",
            if self.absent { "remove" } else { "install" },
            self.names.join(" ")
        )
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        let pm = cx.facts.package_manager.as_str();
        if pm.is_empty() {
            return Err(cx.facts.package_manager_error.clone());
        }
        let mut todo = Vec::new();
        for n in &self.names {
            if installed(cx, pm, n)? == self.absent {
                todo.push(n.clone());
            }
        }
        if todo.is_empty() {
            return Ok(Check::Ok(format!(
                "{} {}",
                self.names.join(" "),
                if self.absent {
                    "not installed"
                } else {
                    "installed"
                }
            )));
        }
        Ok(Check::Change(Change::new(format!(
            "{} {} with {pm}",
            if self.absent { "remove" } else { "install" },
            todo.join(" ")
        ))))
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        let pm = cx.facts.package_manager.as_str();
        let argv = install_command(pm, &self.names, self.absent);
        let mut cmd = cx.sys.command(&argv)?;
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        let out = cmd.output().map_err(|e| format!("cannot run {pm}: {e}"))?;
        if !out.status.success() && pm == "apt" && !self.absent {
            // A fresh machine may have no package lists yet.
            cx.sys.run_ok(&["apt-get", "update", "-q"])?;
            let mut cmd = cx.sys.command(&argv)?;
            cmd.env("DEBIAN_FRONTEND", "noninteractive");
            let out = cmd.output().map_err(|e| format!("cannot run {pm}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`{}` failed: {}",
                    argv.join(" "),
                    crate::system::tail(&String::from_utf8_lossy(&out.stderr), 10)
                ));
            }
        } else if !out.status.success() {
            return Err(format!(
                "`{}` failed: {}",
                argv.join(" "),
                crate::system::tail(&String::from_utf8_lossy(&out.stderr), 10)
            ));
        }
        Ok(change.msg.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_per_manager() {
        let n = vec!["curl".to_string()];
        assert_eq!(
            install_command("apt", &n, false).join(" "),
            "apt-get install -y -q --no-install-recommends curl"
        );
        assert_eq!(
            install_command("dnf", &n, false).join(" "),
            "dnf install -y -q curl"
        );
        assert_eq!(
            install_command("pacman", &n, false).join(" "),
            "pacman -S --noconfirm --needed curl"
        );
        assert_eq!(
            install_command("brew", &n, true).join(" "),
            "brew uninstall curl"
        );
        assert_eq!(query_command("apt", "curl")[0], "dpkg-query");
        assert_eq!(query_command("dnf", "curl").join(" "), "rpm -q curl");
        assert_eq!(query_command("pacman", "curl").join(" "), "pacman -Q curl");
        assert_eq!(
            query_command("brew", "curl").join(" "),
            "brew list --versions curl"
        );
    }
}
