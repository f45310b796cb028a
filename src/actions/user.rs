//! `user:` ensures a (system) user exists or is absent, with `useradd`/`userdel`.

use super::{Builder, Change, Check, Cx, Operation, Presence};
use crate::facts::Os;
use crate::spec::UserSpec;
use crate::system::lookup_user;

pub struct UserAction {
    name: String,
    state: Presence,
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
        state: b.choice(&s.state, Presence::Present),
        system: b.boolean(&s.system, true),
        home: s.home.as_ref().map(|t| t.value.clone()),
        shell: s
            .shell
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_else(|| "/usr/sbin/nologin".into()),
    })
}

impl Operation for UserAction {
    type Plan = ();

    fn summary(&self) -> String {
        format!(
            "user {}{}",
            self.name,
            match self.state {
                Presence::Present => "",
                Presence::Absent => " absent",
            }
        )
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        if cx.facts.os != Os::Linux {
            return Ok(Check::Skip(format!(
                "users are managed on Linux only ({})",
                cx.facts.os.name()
            )));
        }
        let exists = lookup_user(&self.name).is_some();
        Ok(match (exists, self.state) {
            (true, Presence::Present) => Check::Ok(format!("user {} exists", self.name)),
            (false, Presence::Absent) => Check::Ok(format!("user {} is absent", self.name)),
            (false, Presence::Present) => {
                Check::Change(Change::new(format!("create user {}", self.name)))
            }
            (true, Presence::Absent) => {
                Check::Change(Change::new(format!("remove user {}", self.name)))
            }
        })
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        let mut argv: Vec<String> = match self.state {
            Presence::Absent => vec!["userdel".into()],
            Presence::Present => {
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
            }
        };
        argv.push(self.name.clone());
        cx.sys.run_ok(&argv)?;
        Ok(change.msg.clone())
    }
}
