//! `command:` runs a program (argv, no shell). Idempotent through `creates`, `removes`,
//! `unless` or `changed_when: false`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Builder, Change, Check, Cx, Operation};
use crate::spec::CommandSpec;

pub struct CommandAction {
    argv: Vec<String>,
    creates: Option<PathBuf>,
    removes: Option<PathBuf>,
    unless: Option<Vec<String>>,
    changed: bool,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
}

pub fn build(s: &CommandSpec, b: &mut Builder<'_>) -> Option<CommandAction> {
    let mut argv = b.strings(&s.argv);
    argv.extend(b.json_list(&s.argv_json, "argv_json"));
    if argv.first().is_none_or(|a| a.is_empty()) {
        b.problem("command needs a non-empty `argv`");
    }
    Some(CommandAction {
        argv,
        creates: b.opt_path(&s.creates),
        removes: b.opt_path(&s.removes),
        unless: s
            .unless
            .as_ref()
            .map(|u| b.strings(u))
            .filter(|u| !u.is_empty()),
        changed: b.boolean(&s.changed_when, true),
        cwd: b.opt_path(&s.cwd),
        env: s
            .env
            .as_ref()
            .map(|e| {
                e.iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

impl Operation for CommandAction {
    type Plan = ();

    fn summary(&self) -> String {
        self.argv.join(" ")
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        if let Some(c) = self.creates.as_ref().filter(|c| c.exists()) {
            return Ok(Check::Ok(format!("{} exists", c.display())));
        }
        if let Some(r) = self.removes.as_ref().filter(|r| !r.exists()) {
            return Ok(Check::Ok(format!("{} does not exist", r.display())));
        }
        if let Some(u) = &self.unless {
            if cx.sys.run(u)?.status.success() {
                return Ok(Check::Ok(format!("`{}` succeeded", u.join(" "))));
            }
        }
        Ok(Check::Change(Change::new(format!(
            "run `{}`",
            self.argv.join(" ")
        ))))
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        let mut cmd = cx.sys.command(&self.argv)?;
        cmd.envs(&self.env);
        if let Some(c) = &self.cwd {
            cmd.current_dir(c);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run `{}`: {e}", self.argv.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "`{}` exited with {}: {}",
                self.argv.join(" "),
                out.status,
                crate::system::tail(&String::from_utf8_lossy(&out.stderr), 10)
            ));
        }
        Ok(change.msg.clone())
    }

    fn counts_as_change(&self) -> bool {
        self.changed
    }
}
