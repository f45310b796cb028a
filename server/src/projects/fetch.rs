//! Where a project's files come from: a local directory (`.`, a path, `file://`), or a Git
//! URI cloned into a temporary directory when `git` is on PATH; `URI#subdir` names a
//! subdirectory. Also the Git facts MLflow records as tags.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ProjectError;

/// A project's files on disk; a temporary clone is removed when this is dropped.
pub struct Fetched {
    /// The project directory (the subdirectory, when one was named).
    pub dir: PathBuf,
    /// The URI as MLflow records it in `mlflow.source.name`.
    pub source_name: String,
    clone: Option<PathBuf>,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        if let Some(dir) = &self.clone {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Splits `URI#subdir`; MLflow refuses `.` in the subdirectory (no way out of the project).
fn split_subdirectory(uri: &str) -> Result<(String, String), ProjectError> {
    let uri = uri.trim_matches(|c| c == '\'' || c == '"');
    let (base, sub) = uri.split_once('#').unwrap_or((uri, ""));
    if sub.contains('.') {
        return Err(ProjectError::invalid(
            "'.' is not allowed in project subdirectory paths.",
        ));
    }
    Ok((base.to_string(), sub.to_string()))
}

fn local_path(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
}

/// Fetches the project at `uri`, checking out `version` for Git projects.
pub fn fetch(uri: &str, version: Option<&str>) -> Result<Fetched, ProjectError> {
    let (base, sub) = split_subdirectory(uri)?;
    if base.ends_with(".zip") {
        return Err(ProjectError::invalid(format!(
            "{base}: ZIP projects are not supported here; unpack it and run the directory"
        )));
    }
    let local = local_path(&base);
    let (root, clone) = if local.exists() {
        let root = std::path::absolute(&local).map_err(|e| ProjectError::io(&local, e))?;
        match version {
            None => (root, None),
            Some(v) => {
                if git_output(&root, &["rev-parse", "--git-dir"]).is_none() {
                    return Err(ProjectError::invalid(
                        "Setting a version is only supported for Git project URIs",
                    ));
                }
                let dst = clone_into(&base, Some(v))?;
                (dst.clone(), Some(dst))
            }
        }
    } else if looks_like_git(&base) {
        let dst = clone_into(&base, version)?;
        (dst.clone(), Some(dst))
    } else {
        return Err(ProjectError::invalid(format!(
            "{base} is neither a local directory nor a Git URI (https://..., git@host:repo, \
             ssh://..., file://...)"
        )));
    };
    let under = |p: PathBuf| if sub.is_empty() { p } else { p.join(&sub) };
    let dir = under(root);
    if !dir.is_dir() {
        return Err(ProjectError::invalid(format!(
            "Could not find subdirectory {sub} of {}",
            dir.display()
        )));
    }
    let source_name = if local.exists() {
        // Named after the directory given, not a clone of it.
        let given = under(std::path::absolute(&local).map_err(|e| ProjectError::io(&local, e))?);
        local_source_name(&given).unwrap_or_else(|| given.display().to_string())
    } else {
        base_with_sub(&base, &sub)
    };
    Ok(Fetched {
        dir,
        source_name,
        clone,
    })
}

fn base_with_sub(base: &str, sub: &str) -> String {
    if sub.is_empty() {
        base.to_string()
    } else {
        format!("{base}#{sub}")
    }
}

fn looks_like_git(uri: &str) -> bool {
    ["https://", "http://", "ssh://", "git://", "git@", "file://"]
        .iter()
        .any(|p| uri.starts_with(p))
        || uri.ends_with(".git")
}

/// `file://REPO_ROOT#subdir` when `dir` is inside a Git work tree, as MLflow names local
/// projects.
fn local_source_name(dir: &Path) -> Option<String> {
    let top = PathBuf::from(git_output(dir, &["rev-parse", "--show-toplevel"])?);
    let real = dir.canonicalize().ok()?;
    let rel = real.strip_prefix(&top).ok()?;
    let rel = rel.display().to_string();
    Some(if rel.is_empty() {
        format!("file://{}", top.display())
    } else {
        format!("file://{}#{rel}", top.display())
    })
}

fn clone_into(uri: &str, version: Option<&str>) -> Result<PathBuf, ProjectError> {
    if crate::serving::python::which("git").is_none() {
        return Err(ProjectError::invalid(format!(
            "{uri} is a Git URI and git is not on PATH: install git, or clone the project and \
             run the directory"
        )));
    }
    let dst = std::env::temp_dir().join(format!(
        "mlflow-project-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    eprintln!("=== Fetching project from {uri} into {} ===", dst.display());
    let dst_text = dst.display().to_string();
    let result = (|| {
        match version {
            None => git(None, &["clone", "--depth", "1", uri, &dst_text])?,
            Some(v) => {
                git(None, &["clone", "--no-checkout", uri, &dst_text])?;
                git(Some(&dst), &["checkout", v]).map_err(|e| {
                    ProjectError::invalid(format!(
                        "Unable to checkout version '{v}' of git repo {uri} - please ensure \
                         that the version exists in the repo. Error: {e}"
                    ))
                })?;
            }
        }
        git(
            Some(&dst),
            &["submodule", "update", "--init", "--recursive"],
        )
    })();
    match result {
        Ok(()) => Ok(dst),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dst);
            Err(e)
        }
    }
}

fn git(dir: Option<&Path>, args: &[&str]) -> Result<(), ProjectError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ProjectError::invalid(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ProjectError::invalid(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// One line of `git -C dir ARGS`, or None when git is missing or says no.
fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| line.to_string())
}

/// What MLflow tags a project run with from Git: the commit checked out, the first
/// remote's URL, and the branch when `version` names one.
#[derive(Debug, Default, PartialEq)]
pub struct GitInfo {
    pub commit: Option<String>,
    pub repo_url: Option<String>,
    pub branch: Option<String>,
}

pub fn git_info(dir: &Path, version: Option<&str>) -> GitInfo {
    if crate::serving::python::which("git").is_none() {
        return GitInfo::default();
    }
    // MLflow records no commit for a project directory the repository ignores.
    let ignored = git_output(dir, &["check-ignore", "."]).is_some();
    let commit = (!ignored)
        .then(|| git_output(dir, &["rev-parse", "HEAD"]))
        .flatten();
    let repo_url = git_output(dir, &["config", "--get-regexp", r"^remote\..*\.url$"])
        .and_then(|l| l.split_once(' ').map(|(_, url)| url.to_string()));
    let branch = version.filter(|v| {
        git_output(
            dir,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{v}"),
            ],
        )
        .is_some()
    });
    GitInfo {
        commit,
        repo_url,
        branch: branch.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdirectories_split_and_dots_refused() {
        assert_eq!(
            split_subdirectory("https://h/r.git#sub/dir").expect("ok"),
            ("https://h/r.git".to_string(), "sub/dir".to_string())
        );
        assert_eq!(
            split_subdirectory("'.'").expect("ok"),
            (".".to_string(), String::new())
        );
        assert!(split_subdirectory("repo#../up").is_err());
    }

    #[test]
    fn what_counts_as_git() {
        for uri in [
            "https://github.com/mlflow/mlflow-example",
            "git@github.com:o/r.git",
            "file:///srv/repo",
        ] {
            assert!(looks_like_git(uri), "{uri}");
        }
        assert!(!looks_like_git("no/such/dir"));
    }
}
