//! `assert:` checks that something holds: an HTTP answer (retried until a deadline), a
//! command's exit code and output, or a file. Never changes anything.

mod http;

use std::path::PathBuf;

use super::{Builder, Change, Check, Cx, Operation};
use crate::spec::AssertSpec;

/// What an assert checks.
pub enum AssertAction {
    Http(Box<http::HttpCheck>),
    Command {
        argv: Vec<String>,
        exit_code: i32,
        contains: Option<String>,
    },
    File {
        path: PathBuf,
        exists: bool,
        mode: Option<u32>,
        contains: Option<String>,
    },
}

pub fn build(s: &AssertSpec, b: &mut Builder<'_>) -> Option<AssertAction> {
    match (&s.http, &s.command, &s.file) {
        (Some(h), None, None) => Some(AssertAction::Http(Box::new(http::build(h, b)))),
        (None, Some(c), None) => Some(AssertAction::Command {
            argv: b.strings(&c.argv),
            exit_code: c.exit_code.unwrap_or(0),
            contains: c.contains.as_ref().map(|t| t.value.clone()),
        }),
        (None, None, Some(f)) => Some(AssertAction::File {
            path: b.path(&f.path),
            exists: f.exists.unwrap_or(true),
            mode: b.mode(&f.mode),
            contains: f.contains.as_ref().map(|t| t.value.clone()),
        }),
        _ => {
            b.problem("assert needs exactly one of `http`, `command`, `file`");
            None
        }
    }
}

impl AssertAction {
    fn run(&self, cx: &Cx<'_>) -> Result<String, String> {
        match self {
            Self::Http(h) => h.run(),
            Self::Command {
                argv,
                exit_code,
                contains,
            } => {
                let out = cx.sys.run(argv)?;
                let code = out.status.code().unwrap_or(-1);
                if code != *exit_code {
                    return Err(format!(
                        "`{}` exited with {code}, expected {exit_code}",
                        argv.join(" ")
                    ));
                }
                if let Some(c) = contains {
                    let text = String::from_utf8_lossy(&out.stdout);
                    if !text.contains(c.as_str()) {
                        return Err(format!(
                            "output of `{}` does not contain `{c}`",
                            argv.join(" ")
                        ));
                    }
                }
                Ok(format!("`{}` exited with {code}", argv.join(" ")))
            }
            Self::File {
                path,
                exists,
                mode,
                contains,
            } => {
                let shown = path.display();
                let st = crate::system::stat(path);
                if st.is_some() != *exists {
                    return Err(format!(
                        "{shown} {}",
                        if *exists { "does not exist" } else { "exists" }
                    ));
                }
                if let (Some(m), Some((cur, ..))) = (mode, st) {
                    if *m != cur {
                        return Err(format!("{shown} has mode {cur:04o}, expected {m:04o}"));
                    }
                }
                if let Some(c) = contains {
                    let text = cx.sys.read(path)?.unwrap_or_default();
                    if !String::from_utf8_lossy(&text).contains(c.as_str()) {
                        return Err(format!("{shown} does not contain `{c}`"));
                    }
                }
                Ok(format!("{shown} as expected"))
            }
        }
    }
}

impl Operation for AssertAction {
    type Plan = ();

    fn summary(&self) -> String {
        match self {
            Self::Http(h) => h.summary(),
            Self::Command { argv, .. } => format!("command {}", argv.join(" ")),
            Self::File { path, .. } => format!("file {}", path.display()),
        }
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        if cx.check_mode && cx.predicted {
            return Ok(Check::Skip(
                "earlier steps would change the system; not asserted in --check".into(),
            ));
        }
        self.run(cx).map(Check::Ok)
    }

    fn apply(&self, cx: &Cx<'_>, _: &Change) -> Result<String, String> {
        self.run(cx)
    }
}
