//! The built-in supervisor used where no init system manages services (containers, this
//! build machine): a detached process with a pid file and a log file, and a fingerprint of
//! what it was started with so a change of binary, arguments or environment restarts it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::system::{lookup_user, sha256_hex, tail, Sys};

/// How to start the process.
#[derive(Debug, Clone)]
pub struct Spec {
    pub exec: Vec<String>,
    pub env_file: Option<PathBuf>,
    pub user: Option<String>,
    pub workdir: Option<PathBuf>,
    pub pid_file: PathBuf,
    pub log_file: PathBuf,
}

/// The pid of the running process from the pid file, if it is alive and runs our binary.
pub fn running_pid(spec: &Spec) -> Option<i32> {
    let pid: i32 = fs::read_to_string(&spec.pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 1 || !alive(pid) {
        return None;
    }
    if Path::new("/proc").is_dir() {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv0 = cmdline.split(|b| *b == 0).next()?;
        if argv0 != spec.exec.first()?.as_bytes() {
            return None;
        }
    }
    Some(pid)
}

fn alive(pid: i32) -> bool {
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 (after the parenthesised name) is the state; Z is a zombie.
        return stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false);
    }
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Fingerprint of what the process would be started with.
pub fn fingerprint(sys: &Sys, spec: &Spec) -> Result<String, String> {
    let mut acc = String::new();
    acc.push_str(&spec.exec.join("\u{0}"));
    acc.push('\n');
    if let Some(bin) = spec.exec.first() {
        // The binary is replaced atomically (a new inode) when it changes, so its identity
        // and size stand for its content without hashing a large file on every run.
        if let Ok(m) = fs::metadata(bin) {
            use std::os::unix::fs::MetadataExt;
            acc.push_str(&format!(
                "{}:{}:{}:{}.{}",
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            ));
        }
    }
    acc.push('\n');
    if let Some(env) = &spec.env_file {
        acc.push_str(&sha256_hex(&sys.read(env)?.unwrap_or_default()));
    }
    acc.push_str(&format!("\n{:?}\n{:?}", spec.user, spec.workdir));
    Ok(sha256_hex(acc.as_bytes()))
}

/// Path of the recorded fingerprint next to the pid file.
pub fn fingerprint_file(pid_file: &Path) -> PathBuf {
    let mut s = pid_file.as_os_str().to_owned();
    s.push(".fingerprint");
    PathBuf::from(s)
}

/// Stops the process: SIGTERM, then SIGKILL after `grace`. Removes the pid file.
pub fn stop(spec: &Spec, grace: Duration) -> Result<(), String> {
    if let Some(pid) = running_pid(spec) {
        // SAFETY: plain signal delivery to a pid we verified runs our binary.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if alive(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let _ = fs::remove_file(&spec.pid_file);
    Ok(())
}

/// Starts the process detached (own process group, stdin closed, output to the log file),
/// as `user` when given, with only the environment file's variables plus PATH/LANG.
pub fn start(sys: &Sys, spec: &Spec) -> Result<Child, String> {
    if sys.sudo {
        return Err("the built-in supervisor needs root to start a service for another user; run preset as root".into());
    }
    let (first, rest) = spec.exec.split_first().ok_or("service has no `exec`")?;
    let mut env = BTreeMap::new();
    if let Some(f) = &spec.env_file {
        if let Some(b) = sys.read(f)? {
            env = crate::envfile::parse(&String::from_utf8_lossy(&b));
        }
    }
    if let Some(dir) = spec.log_file.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .map_err(|e| format!("cannot open log {}: {e}", spec.log_file.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(first);
    cmd.args(rest)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    if let Some(w) = &spec.workdir {
        cmd.current_dir(w);
        cmd.env("HOME", w);
    }
    if let Some(u) = spec.user.as_deref().filter(|u| *u != "root") {
        let info = lookup_user(u).ok_or_else(|| format!("unknown user `{u}`"))?;
        // std drops supplementary groups when it changes uid as root.
        cmd.uid(info.uid).gid(info.gid);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {first}: {e}"))?;
    fs::write(&spec.pid_file, format!("{}\n", child.id()))
        .map_err(|e| format!("cannot write {}: {e}", spec.pid_file.display()))?;
    Ok(child)
}

/// The last lines of the log file, for failure messages.
pub fn log_tail(spec: &Spec, n: usize) -> String {
    fs::read_to_string(&spec.log_file)
        .map(|t| tail(&t, n))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_stop_a_sleep() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            exec: vec!["/bin/sleep".into(), "30".into()],
            env_file: None,
            user: None,
            workdir: Some(dir.path().to_path_buf()),
            pid_file: dir.path().join("s.pid"),
            log_file: dir.path().join("s.log"),
        };
        let sys = Sys::default();
        let mut child = start(&sys, &spec).unwrap();
        // spawn returns while the kernel may still be setting up the new program's
        // arguments (/proc/PID/cmdline is briefly empty): poll instead of looking once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while running_pid(&spec).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(running_pid(&spec), Some(child.id() as i32));
        // Reap the child in the background so it does not stay a zombie in this test.
        let h = std::thread::spawn(move || child.wait());
        stop(&spec, Duration::from_secs(5)).unwrap();
        let _ = h.join();
        assert_eq!(running_pid(&spec), None);
        assert!(!spec.pid_file.exists());
    }
}
