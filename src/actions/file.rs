//! `file:` (files, directories, absence, mode and owner) and `template:` (a tera file
//! template rendered at plan time, then managed like a file with content).

use std::path::PathBuf;

use super::{choice, Builder, Change, Check, Cx, Operation};
use crate::spec::{FileSpec, TemplateSpec};
use crate::system::{resolve_gid, resolve_uid, stat};

choice! {
    /// What a managed path should be.
    enum State { File = "file", Directory = "directory", Absent = "absent" }
}

/// A managed path.
pub struct FileAction {
    path: PathBuf,
    state: State,
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    content: Option<String>,
    src: Option<String>,
}

pub fn build_file(s: &FileSpec, b: &mut Builder<'_>) -> Option<FileAction> {
    let default = if s.content.is_some() {
        State::File
    } else {
        State::Directory
    };
    let state = b.choice(&s.state, default);
    if state == State::Directory && s.content.is_some() {
        b.error(s.content.as_ref()?, "a directory cannot have `content`");
    }
    Some(FileAction {
        path: b.path(&s.path),
        state,
        mode: b.mode(&s.mode),
        owner: b.opt_string(&s.owner),
        group: b.opt_string(&s.group),
        content: s.content.as_ref().map(|t| t.value.clone()),
        src: None,
    })
}

pub fn build_template(s: &TemplateSpec, b: &mut Builder<'_>) -> Option<FileAction> {
    let Some((name, text)) = b.library.template(b.preset, b.base, &s.src.value) else {
        b.error(&s.src, format!("template `{}` not found", s.src.value));
        return None;
    };
    let content = match crate::template::render_file(&name, &text, b.ctx) {
        Ok(c) => c,
        Err(e) => {
            b.error(&s.src, format!("{name}: {e}"));
            return None;
        }
    };
    Some(FileAction {
        path: b.path(&s.dest),
        state: State::File,
        mode: b.mode(&s.mode),
        owner: b.opt_string(&s.owner),
        group: b.opt_string(&s.group),
        content: Some(content),
        src: Some(name),
    })
}

/// Unified diff of two texts (for `--diff`).
pub fn unified_diff(path: &str, old: &str, new: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let d = similar::TextDiff::from_lines(old, new);
    Some(
        d.unified_diff()
            .context_radius(3)
            .header(&format!("{path} (before)"), &format!("{path} (after)"))
            .to_string(),
    )
}

impl FileAction {
    fn ids(&self, cx: &Cx<'_>) -> Result<(Option<u32>, Option<u32>), String> {
        resolve_ids(self.owner.as_deref(), self.group.as_deref(), cx)
    }
}

/// Resolves `owner`/`group` names or numbers (the group defaults to the owner's primary
/// group). In `--check`, a user that an earlier step would create is not an error yet.
pub(super) fn resolve_ids(
    owner: Option<&str>,
    group: Option<&str>,
    cx: &Cx<'_>,
) -> Result<(Option<u32>, Option<u32>), String> {
    let resolve = |r: Result<u32, String>| -> Result<Option<u32>, String> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(_) if cx.check_mode => Ok(None),
            Err(e) => Err(e),
        }
    };
    let uid = match owner {
        Some(o) => resolve(resolve_uid(o))?,
        None => None,
    };
    let gid = match (group, owner) {
        (Some(g), _) => resolve(resolve_gid(g))?,
        (None, Some(o)) => match crate::system::lookup_user(o) {
            Some(u) => Some(u.gid),
            None if cx.check_mode => None,
            None => return Err(format!("unknown user `{o}`")),
        },
        _ => None,
    };
    Ok((uid, gid))
}

impl Operation for FileAction {
    type Plan = ();

    fn summary(&self) -> String {
        match (&self.src, self.state) {
            (Some(src), _) => format!("{} from {src}", self.path.display()),
            (None, State::Absent) => format!("{} absent", self.path.display()),
            (None, State::Directory) => format!("directory {}", self.path.display()),
            (None, State::File) => format!("file {}", self.path.display()),
        }
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        let shown = self.path.display().to_string();
        let current = stat(&self.path);
        let exists = self.path.symlink_metadata().is_ok();
        if self.state == State::Absent {
            return Ok(if exists {
                Check::Change(Change::new(format!("remove {shown}")).path(&self.path))
            } else {
                Check::Ok(format!("{shown} is absent"))
            });
        }
        let (uid, gid) = self.ids(cx)?;
        let mut changes = Vec::new();
        let mut diff = None;
        match current {
            None => {
                changes.push(match self.state {
                    State::Directory => format!("create directory {shown}"),
                    _ => format!("create {shown}"),
                });
                if let Some(c) = &self.content {
                    diff = unified_diff(&shown, "", c);
                }
            }
            Some((mode, cur_uid, cur_gid, is_dir)) => {
                if is_dir != (self.state == State::Directory) {
                    return Err(format!(
                        "{shown} exists but is {}",
                        if is_dir {
                            "a directory"
                        } else {
                            "not a directory"
                        }
                    ));
                }
                if let Some(c) = &self.content {
                    let old = cx.sys.read(&self.path)?.unwrap_or_default();
                    if old != c.as_bytes() {
                        changes.push(format!("update content of {shown}"));
                        diff = unified_diff(&shown, &String::from_utf8_lossy(&old), c);
                    }
                }
                if let Some(m) = self.mode.filter(|m| *m != mode) {
                    changes.push(format!("mode {mode:04o} → {m:04o}"));
                }
                let owner_differs = match (&self.owner, uid) {
                    (Some(_), Some(u)) => u != cur_uid,
                    (Some(_), None) => true,
                    _ => false,
                };
                if owner_differs || gid.is_some_and(|g| g != cur_gid) {
                    changes.push(format!(
                        "owner → {}:{}",
                        self.owner.as_deref().unwrap_or("-"),
                        self.group.as_deref().unwrap_or("-")
                    ));
                }
            }
        }
        if changes.is_empty() {
            return Ok(Check::Ok(format!("{shown} is up to date")));
        }
        Ok(Check::Change(Change {
            msg: changes.join(", "),
            diff,
            paths: vec![self.path.clone()],
            plan: (),
        }))
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        let sys = cx.sys;
        match self.state {
            State::Absent => sys.remove(&self.path)?,
            State::Directory => {
                sys.create_dir(&self.path)?;
                if let Some(m) = self.mode {
                    sys.set_mode(&self.path, m)?;
                }
            }
            State::File => {
                let (uid, gid) = self.ids(cx)?;
                let cur = stat(&self.path);
                let mode = self.mode.or(cur.map(|c| c.0)).unwrap_or(0o644);
                let owner = match (uid, gid, cur) {
                    (None, None, _) => None,
                    (u, g, Some((_, cu, cg, _))) => Some((u.unwrap_or(cu), g.unwrap_or(cg))),
                    (u, g, None) => Some((u.unwrap_or(0), g.unwrap_or(0))),
                };
                match &self.content {
                    Some(c) => sys.write_atomic(&self.path, c.as_bytes(), mode, owner)?,
                    None if cur.is_none() => sys.write_atomic(&self.path, b"", mode, owner)?,
                    None => sys.set_mode(&self.path, mode)?,
                }
                return Ok(change.msg.clone());
            }
        }
        let (uid, gid) = self.ids(cx)?;
        if uid.is_some() || gid.is_some() {
            sys.set_owner(&self.path, uid, gid)?;
        }
        Ok(change.msg.clone())
    }
}
