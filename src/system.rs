//! System effects in one place: running commands (through `sudo -n` when a step needs root
//! and we are not root), atomic file writes, removals, ownership and user lookups.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs effects directly, or through `sudo -n` for `become` steps when not root.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sys {
    pub sudo: bool,
}

/// Result type of system effects: a message for the user.
pub type SysResult<T> = Result<T, String>;

/// A user from the passwd database.
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

impl Sys {
    /// Builds the command, with `sudo -n` in front when needed.
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> SysResult<Command> {
        let (first, rest) = argv.split_first().ok_or("empty command")?;
        let mut cmd = if self.sudo {
            let mut c = Command::new("sudo");
            c.arg("-n").arg("--").arg(first);
            c
        } else {
            Command::new(first)
        };
        cmd.args(rest).stdin(Stdio::null());
        Ok(cmd)
    }

    /// Runs a command to completion and returns its output.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> SysResult<Output> {
        let mut cmd = self.command(argv)?;
        let shown = argv
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        if self.sudo && !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("a password is required") || err.contains("password is required") {
                return Err(format!(
                    "`sudo -n {shown}` needs a password; run `sudo -v` first, run preset as root, or configure NOPASSWD"
                ));
            }
        }
        Ok(out)
    }

    /// Runs a command and fails with its stderr when it exits non-zero.
    pub fn run_ok<S: AsRef<OsStr>>(&self, argv: &[S]) -> SysResult<Output> {
        let out = self.run(argv)?;
        if out.status.success() {
            Ok(out)
        } else {
            let shown = argv
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            Err(format!(
                "`{shown}` failed ({}): {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 10)
            ))
        }
    }

    /// Reads a file, `None` when it does not exist.
    pub fn read(&self, path: &Path) -> SysResult<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && self.sudo => {
                let out = self.run_ok(&[OsStr::new("cat"), path.as_os_str()])?;
                Ok(Some(out.stdout))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename),
    /// with `mode` and optional owner set before the rename.
    pub fn write_atomic(
        &self,
        path: &Path,
        bytes: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> SysResult<()> {
        if self.sudo {
            let tmp =
                std::env::temp_dir().join(format!(".preset-{}-{}", std::process::id(), unique()));
            write_new(&tmp, bytes, 0o600)?;
            let mut argv: Vec<String> = vec!["install".into(), "-m".into(), format!("{mode:o}")];
            if let Some((u, g)) = owner {
                argv.extend(["-o".into(), u.to_string(), "-g".into(), g.to_string()]);
            }
            argv.push(tmp.display().to_string());
            argv.push(path.display().to_string());
            let r = self.run_ok(&argv);
            let _ = fs::remove_file(&tmp);
            return r.map(|_| ());
        }
        let dir = path
            .parent()
            .ok_or_else(|| format!("{} has no parent folder", path.display()))?;
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{name}.preset-{}-{}",
            std::process::id(),
            unique()
        ));
        let result = (|| {
            write_new(&tmp, bytes, mode)?;
            if let Some((u, g)) = owner {
                std::os::unix::fs::chown(&tmp, Some(u), Some(g))
                    .map_err(|e| format!("cannot chown {}: {e}", tmp.display()))?;
            }
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot chmod {}: {e}", tmp.display()))?;
            fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Creates a directory (and parents).
    pub fn create_dir(&self, path: &Path) -> SysResult<()> {
        if self.sudo {
            return self
                .run_ok(&[OsStr::new("mkdir"), OsStr::new("-p"), path.as_os_str()])
                .map(|_| ());
        }
        fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    }

    pub fn set_mode(&self, path: &Path, mode: u32) -> SysResult<()> {
        if self.sudo {
            return self
                .run_ok(&[
                    OsStr::new("chmod"),
                    OsStr::new(&format!("{mode:o}")),
                    path.as_os_str(),
                ])
                .map(|_| ());
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
    }

    pub fn set_owner(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> SysResult<()> {
        if self.sudo {
            let spec = format!(
                "{}:{}",
                uid.map(|u| u.to_string()).unwrap_or_default(),
                gid.map(|g| g.to_string()).unwrap_or_default()
            );
            return self
                .run_ok(&[OsStr::new("chown"), OsStr::new(&spec), path.as_os_str()])
                .map(|_| ());
        }
        std::os::unix::fs::chown(path, uid, gid)
            .map_err(|e| format!("cannot chown {}: {e}", path.display()))
    }

    /// Removes a file or a whole directory tree; missing is fine.
    pub fn remove(&self, path: &Path) -> SysResult<()> {
        if self.sudo {
            return self
                .run_ok(&[OsStr::new("rm"), OsStr::new("-rf"), path.as_os_str()])
                .map(|_| ());
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot stat {}: {e}", path.display())),
        };
        let r = if meta.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        r.map_err(|e| format!("cannot remove {}: {e}", path.display()))
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Creates a new file with `mode` from the start, so secrets are never world-readable.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> SysResult<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o700)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Mode bits, owner and group of a path, `None` when missing.
pub fn stat(path: &Path) -> Option<(u32, u32, u32, bool)> {
    fs::metadata(path)
        .ok()
        .map(|m| (m.mode() & 0o7777, m.uid(), m.gid(), m.is_dir()))
}

/// Looks a user up in `/etc/passwd` (then `id`, for macOS).
pub fn lookup_user(name: &str) -> Option<UserInfo> {
    if let Ok(text) = fs::read_to_string("/etc/passwd") {
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 7 && f[0] == name {
                return Some(UserInfo {
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].to_string(),
                });
            }
        }
    }
    if cfg!(target_os = "macos") {
        let id = |flag: &str| -> Option<u32> {
            let o = Command::new("id").args([flag, name]).output().ok()?;
            String::from_utf8_lossy(&o.stdout).trim().parse().ok()
        };
        return Some(UserInfo {
            uid: id("-u")?,
            gid: id("-g")?,
            home: String::new(),
        });
    }
    None
}

/// Looks a group up in `/etc/group`.
pub fn lookup_group(name: &str) -> Option<u32> {
    let text = fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// Resolves an owner spec (name or number) to a uid.
pub fn resolve_uid(owner: &str) -> Result<u32, String> {
    owner
        .parse()
        .ok()
        .or_else(|| lookup_user(owner).map(|u| u.uid))
        .ok_or_else(|| format!("unknown user `{owner}`"))
}

/// Resolves a group spec (name or number) to a gid.
pub fn resolve_gid(group: &str) -> Result<u32, String> {
    group
        .parse()
        .ok()
        .or_else(|| lookup_group(group))
        .ok_or_else(|| format!("unknown group `{group}`"))
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex sha256 of a file, `None` when it does not exist.
pub fn sha256_file(sys: &Sys, path: &Path) -> SysResult<Option<String>> {
    Ok(sys.read(path)?.map(|b| sha256_hex(&b)))
}

/// Expands a leading `~/`.
pub fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(rest)
        }
        None => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.env");
        let sys = Sys::default();
        sys.write_atomic(&p, b"one", 0o600, None).unwrap();
        assert_eq!(stat(&p).unwrap().0, 0o600);
        sys.write_atomic(&p, b"two", 0o640, None).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(stat(&p).unwrap().0, 0o640);
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        sys.remove(&p).unwrap();
        sys.remove(&p).unwrap();
    }

    #[test]
    fn root_user_exists() {
        assert_eq!(lookup_user("root").map(|u| u.uid), Some(0));
        assert_eq!(resolve_uid("0"), Ok(0));
        assert!(resolve_uid("no-such-user-xyz").is_err());
    }
}
