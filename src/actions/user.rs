//! `user:` ensures a (system) user exists or is absent, with `useradd`/`userdel`.

use super::{Action, Builder, Change, Check, Cx};
use crate::spec::UserSpec;
use crate::system::lookup_user;

pub struct UserAction {
    name: String,
    absent: bool,
    system: bool,
    home: Option<String>,
    shell: String,
}

pub fn build(s: &UserSpec, b: &mut Builder<'_>) -> Option<UserAction> {
    let name = s.name.value.clone();
    if name.is_empty()
        || name.starts_with('-')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        b.error(&s.name, format!("invalid user name `{name}`"));
    }
    Some(UserAction {
        name,
        absent: b.choice(&s.state, &["present", "absent"], "present") == "absent",
        system: b.boolean(&s.system, true),
        home: s.home.as_ref().map(|t| t.value.clone()),
        shell: s
            .shell
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_else(|| "/usr/sbin/nologin".into()),
    })
}

impl Action for UserAction {
    fn kind(&self) -> &'static str {
        "user"
    }
    fn summary(&self) -> String {
        format!(
            "user {}{}",
            self.name,
            if self.absent { " absent" } else { "" }
        )
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        if cx.facts.os != "linux" {
            return Ok(Check::Skip(format!(
                "users are managed on Linux only ({})",
                cx.facts.os
            )));
        }
        let exists = lookup_user(&self.name).is_some();
        Ok(match (exists, self.absent) {
            (true, false) => Check::Ok(format!("user {} exists", self.name)),
            (false, true) => Check::Ok(format!("user {} is absent", self.name)),
            (false, false) => Check::Change(Change::new(format!("create user {}", self.name))),
            (true, true) => Check::Change(Change::new(format!("remove user {}", self.name))),
        })
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        let mut argv: Vec<String> = if self.absent {
            vec!["userdel".into()]
        } else {
            let mut v = vec![
                "useradd".into(),
                "--user-group".into(),
                "--shell".into(),
                self.shell.clone(),
            ];
            if self.system {
                v.push("--system".into());
            }
            if let Some(h) = &self.home {
                v.extend(["--home-dir".into(), h.clone(), "--no-create-home".into()]);
            }
            v
        };
        argv.push(self.name.clone());
        cx.sys.run_ok(&argv)?;
        Ok(change.msg.clone())
    }
}
