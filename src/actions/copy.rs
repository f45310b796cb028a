//! `copy:` installs a file (typically a binary) from a local `src` or from `url` checked
//! against `sha256`, atomically. An existing file that `version_check` does not recognise as
//! ours is never replaced or removed without `force: true`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Builder, Change, Check, Cx, Operation, Presence};
use crate::spec::CopySpec;
use crate::system::{sha256_file, sha256_hex, stat};

enum Source {
    Local(PathBuf),
    Url { url: String, sha256: String },
}

struct VersionCheck {
    args: Vec<String>,
    prefix: String,
    expect: Option<String>,
}

pub struct CopyAction {
    source: Option<Source>,
    dest: PathBuf,
    mode: u32,
    owner: Option<String>,
    group: Option<String>,
    force: bool,
    absent: bool,
    version: Option<VersionCheck>,
}

pub fn build(s: &CopySpec, b: &mut Builder<'_>) -> Option<CopyAction> {
    let absent = b.choice(&s.state, Presence::Present) == Presence::Absent;
    // Templated fields may render empty: an empty `src` or `url` counts as not given.
    let given = |t: &Option<crate::spec::Tpl>| t.clone().filter(|t| !t.value.trim().is_empty());
    let (src, url) = (given(&s.src), given(&s.url));
    let source = match (&src, &url) {
        (Some(_), Some(url)) => {
            b.error(url, "give either `src` or `url`, not both");
            None
        }
        (Some(src), None) => Some(Source::Local(b.path(src))),
        (None, Some(url)) => {
            if let Err(e) = url::Url::parse(&url.value) {
                b.error(url, format!("invalid url: {e}"));
            }
            let sha = s
                .sha256
                .as_ref()
                .map(|t| t.value.to_ascii_lowercase())
                .unwrap_or_default();
            if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                b.error(
                    s.sha256.as_ref().unwrap_or(url),
                    "a download needs `sha256` with the file's 64-hex-digit checksum",
                );
            }
            Some(Source::Url {
                url: url.value.clone(),
                sha256: sha,
            })
        }
        _ if absent => None,
        _ => {
            b.error(&s.dest, "copy needs `src` or `url`");
            None
        }
    };
    Some(CopyAction {
        source,
        dest: b.path(&s.dest),
        mode: b.mode(&s.mode).unwrap_or(0o644),
        owner: b.opt_string(&s.owner),
        group: b.opt_string(&s.group),
        force: b.boolean(&s.force, false),
        absent,
        version: s.version_check.as_ref().map(|v| VersionCheck {
            args: b.strings(&v.args),
            prefix: v.prefix.value.clone(),
            expect: b.opt_string(&v.expect),
        }),
    })
}

/// First line printed by `path ARGS` (e.g. `mlflow 0.1.0`).
fn version_of(path: &Path, args: &[String]) -> Result<String, String> {
    let out = Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let text = if text.trim().is_empty() {
        String::from_utf8_lossy(&out.stderr).into_owned()
    } else {
        text.into_owned()
    };
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

impl CopyAction {
    /// Whether the file at `path` passes the version check (ours, and the expected version).
    fn recognised(&self, path: &Path) -> Result<(bool, String), String> {
        let Some(v) = &self.version else {
            return Ok((true, String::new()));
        };
        let line = version_of(path, &v.args).unwrap_or_else(|e| e);
        let ok = line.starts_with(&v.prefix);
        Ok((ok, line))
    }

    /// Checks that a local source exists and is the expected program.
    fn verify_source(&self, src: &Path) -> Result<(), String> {
        if !src.is_file() {
            return Err(format!(
                "source {} does not exist{}",
                src.display(),
                if src.ends_with("mlflow") {
                    " (build it with `cargo build --release -p mlflow-server`, or set `source: {url, sha256}` or `source: {path}`)"
                } else {
                    ""
                }
            ));
        }
        if let Some(v) = &self.version {
            let (ok, line) = self.recognised(src)?;
            if !ok {
                return Err(format!(
                    "source {} is not the expected program: `{} {}` printed `{line}`",
                    src.display(),
                    src.display(),
                    v.args.join(" ")
                ));
            }
            if let Some(expect) = &v.expect {
                if line != *expect && !line.starts_with(&format!("{expect} ")) {
                    return Err(format!(
                        "source {} is `{line}`, but `{expect}` was requested",
                        src.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `dest` already holds the wanted content (`Some(true)`), other content
    /// (`Some(false)`) or does not exist (`None`). Local sources are compared byte for byte
    /// (cheap even for a large binary); downloads by their declared sha256.
    fn up_to_date(&self, cx: &Cx<'_>) -> Result<Option<bool>, String> {
        match &self.source {
            Some(Source::Local(src)) => {
                self.verify_source(src)?;
                same_content(&cx.sys, src, &self.dest)
            }
            Some(Source::Url { sha256, .. }) => {
                Ok(sha256_file(&cx.sys, &self.dest)?.map(|h| h == *sha256))
            }
            None => Err("nothing to copy".into()),
        }
    }
}

/// Compares two files: `None` when `dest` is missing, else whether the bytes are equal.
fn same_content(sys: &crate::system::Sys, src: &Path, dest: &Path) -> Result<Option<bool>, String> {
    let (Ok(ms), Ok(md)) = (std::fs::metadata(src), std::fs::metadata(dest)) else {
        return Ok(dest.symlink_metadata().ok().map(|_| false));
    };
    if ms.len() != md.len() {
        return Ok(Some(false));
    }
    let a = sys
        .read(src)?
        .ok_or_else(|| format!("{} disappeared", src.display()))?;
    Ok(Some(sys.read(dest)?.is_some_and(|b| b == a)))
}

impl Operation for CopyAction {
    type Plan = ();

    fn summary(&self) -> String {
        match (&self.source, self.absent) {
            (_, true) => format!("{} absent", self.dest.display()),
            (Some(Source::Local(p)), _) => format!("{} from {}", self.dest.display(), p.display()),
            (Some(Source::Url { url, .. }), _) => format!("{} from {url}", self.dest.display()),
            (None, _) => self.dest.display().to_string(),
        }
    }

    fn check(&self, cx: &Cx<'_>) -> Result<Check, String> {
        let dest = self.dest.display().to_string();
        let exists = self.dest.symlink_metadata().is_ok();
        if self.absent {
            if !exists {
                return Ok(Check::Ok(format!("{dest} is absent")));
            }
            let (ours, line) = self.recognised(&self.dest)?;
            if !ours && !self.force {
                return Ok(Check::Ok(format!(
                    "kept {dest}: not installed by preset (`{line}`); set force: true to remove it"
                )));
            }
            return Ok(Check::Change(
                Change::new(format!("remove {dest}")).path(&self.dest),
            ));
        }
        match self.up_to_date(cx)? {
            Some(true) => {
                let (mode, uid, gid, _) = stat(&self.dest).unwrap_or_default();
                let mut todo = Vec::new();
                if mode != self.mode {
                    todo.push(format!("mode {mode:04o} → {:04o}", self.mode));
                }
                let (want_uid, want_gid) =
                    super::file::resolve_ids(self.owner.as_deref(), self.group.as_deref(), cx)?;
                if want_uid.is_some_and(|u| u != uid) || want_gid.is_some_and(|g| g != gid) {
                    todo.push(format!(
                        "owner → {}:{}",
                        self.owner.as_deref().unwrap_or("-"),
                        self.group.as_deref().unwrap_or("-")
                    ));
                }
                if !todo.is_empty() {
                    return Ok(Check::Change(Change::new(todo.join(", ")).path(&self.dest)));
                }
                Ok(Check::Ok(format!("{dest} is up to date")))
            }
            Some(false) => {
                let (ours, line) = self.recognised(&self.dest)?;
                if !ours && !self.force {
                    return Err(format!(
                        "refusing to replace {dest}: it is not ours (`{line}`); remove it or set force: true"
                    ));
                }
                Ok(Check::Change(
                    Change::new(format!("update {dest} (was `{line}`)")).path(&self.dest),
                ))
            }
            None => Ok(Check::Change(
                Change::new(format!("install {dest}")).path(&self.dest),
            )),
        }
    }

    fn apply(&self, cx: &Cx<'_>, change: &Change) -> Result<String, String> {
        if self.absent {
            cx.sys.remove(&self.dest)?;
            return Ok(change.msg.clone());
        }
        let bytes = match &self.source {
            Some(Source::Local(src)) => cx
                .sys
                .read(src)?
                .ok_or_else(|| format!("{} disappeared", src.display()))?,
            Some(Source::Url { url, sha256 }) => {
                let b = download(url, cx.progress)?;
                let got = sha256_hex(&b);
                if got != *sha256 {
                    return Err(format!(
                        "checksum mismatch for {url}: expected {sha256}, got {got}; nothing was installed"
                    ));
                }
                b
            }
            None => return Err("nothing to copy".into()),
        };
        let owner =
            match super::file::resolve_ids(self.owner.as_deref(), self.group.as_deref(), cx)? {
                (None, None) => None,
                (uid, gid) => {
                    // What is not asked for stays as it is (or is ours for a new file).
                    let cur = stat(&self.dest);
                    let me = crate::system::lookup_user(&cx.facts.user);
                    Some((
                        uid.or(cur.map(|c| c.1)).unwrap_or(cx.facts.euid),
                        gid.or(cur.map(|c| c.2)).or(me.map(|u| u.gid)).unwrap_or(0),
                    ))
                }
            };
        cx.sys.write_atomic(&self.dest, &bytes, self.mode, owner)?;
        Ok(change.msg.clone())
    }
}

/// Downloads a URL into memory with a progress bar.
fn download(url: &str, progress: bool) -> Result<Vec<u8>, String> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let mut resp = client
        .get(url)
        .send()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("cannot download {url}: HTTP {}", resp.status()));
    }
    let total = resp.content_length();
    let bar = if progress {
        let pb = indicatif::ProgressBar::new(total.unwrap_or(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "  downloading {bar:30} {bytes}/{total_bytes} ({bytes_per_sec})",
        ) {
            pb.set_style(style);
        }
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut out = Vec::with_capacity(total.unwrap_or(0).min(512 << 20) as usize);
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = resp
            .read(&mut buf)
            .map_err(|e| format!("download of {url} interrupted: {e}"))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}
