//! Facts about the machine, gathered once and read-only: OS and distribution, package
//! manager, architecture, init system, effective user and sudo.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

/// Everything steps and templates may know about the host (`facts.*` in templates).
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// `linux`, `macos` or the Rust OS name.
    pub os: String,
    pub distro_id: String,
    pub distro_like: Vec<String>,
    pub distro_version: String,
    pub distro_name: String,
    /// `apt`, `dnf`, `pacman`, `brew`, or empty when unsupported.
    pub package_manager: String,
    /// Why there is no package manager, when there is none.
    pub package_manager_error: String,
    pub arch: String,
    /// Whether systemd is the running init (`/run/systemd/system` exists).
    pub systemd: bool,
    /// Name of PID 1 (`/proc/1/comm`).
    pub pid1: String,
    pub container: bool,
    pub euid: u32,
    pub is_root: bool,
    pub user: String,
    pub home: String,
    /// `root`, `nopasswd`, `password` (sudo asks for one) or `missing`.
    pub sudo: String,
    /// Folder of the running `preset` executable.
    pub exe_dir: String,
}

/// Parses `/etc/os-release` (KEY=value, optionally quoted).
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            m.insert(k.trim().to_string(), v.replace("\\\"", "\""));
        }
    }
    m
}

/// Picks the package manager from the OS, `ID` and `ID_LIKE`.
pub fn package_manager_for(os: &str, id: &str, like: &[String]) -> Result<&'static str, String> {
    if os == "macos" {
        return Ok("brew");
    }
    let family = |x: &str| -> Option<&'static str> {
        match x {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "elementary" | "kali" => {
                Some("apt")
            }
            "fedora" | "rhel" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" | "nobara" => {
                Some("dnf")
            }
            "arch" | "manjaro" | "endeavouros" | "garuda" | "archarm" => Some("pacman"),
            _ => None,
        }
    };
    if let Some(pm) = family(id) {
        return Ok(pm);
    }
    for l in like {
        if let Some(pm) = family(l) {
            return Ok(pm);
        }
    }
    Err(format!(
        "unsupported platform `{}`: preset supports apt (Debian, Ubuntu), dnf (Fedora, RHEL, Rocky), pacman (Arch, Manjaro) and brew (macOS)",
        if id.is_empty() { os } else { id }
    ))
}

/// Builds distribution facts from an os-release text (used by [`gather`] and tests).
pub fn from_os_release(os: &str, text: &str) -> Facts {
    let rel = parse_os_release(text);
    let id = rel.get("ID").cloned().unwrap_or_default();
    let like: Vec<String> = rel
        .get("ID_LIKE")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let (pm, err) = match package_manager_for(os, &id, &like) {
        Ok(p) => (p.to_string(), String::new()),
        Err(e) => (String::new(), e),
    };
    Facts {
        os: os.to_string(),
        distro_name: rel
            .get("PRETTY_NAME")
            .cloned()
            .unwrap_or_else(|| id.clone()),
        distro_version: rel.get("VERSION_ID").cloned().unwrap_or_default(),
        distro_id: id,
        distro_like: like,
        package_manager: pm,
        package_manager_error: err,
        arch: std::env::consts::ARCH.to_string(),
        systemd: false,
        pid1: String::new(),
        container: false,
        euid: 0,
        is_root: false,
        user: String::new(),
        home: String::new(),
        sudo: "missing".into(),
        exe_dir: String::new(),
    }
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Gathers the facts of this machine.
pub fn gather() -> Facts {
    let os = std::env::consts::OS;
    let text = if os == "macos" {
        macos_release()
    } else {
        std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default()
    };
    let mut f = from_os_release(os, &text);
    f.systemd = Path::new("/run/systemd/system").is_dir();
    f.pid1 = std::fs::read_to_string("/proc/1/comm")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            if os == "macos" {
                "launchd".into()
            } else {
                String::new()
            }
        });
    f.container = Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::fs::read("/proc/1/environ")
            .map(|e| e.split(|b| *b == 0).any(|kv| kv.starts_with(b"container=")))
            .unwrap_or(false);
    f.euid = euid();
    f.is_root = f.euid == 0;
    f.user = std::env::var("USER").unwrap_or_else(|_| {
        if f.is_root {
            "root".into()
        } else {
            String::new()
        }
    });
    f.home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    f.sudo = if f.is_root {
        "root".into()
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        "nopasswd".into()
    } else if which("sudo") {
        "password".into()
    } else {
        "missing".into()
    };
    f.exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_default();
    if !f.package_manager.is_empty() && !which(&f.package_manager) {
        f.package_manager_error = format!("`{}` is not installed", f.package_manager);
    }
    f
}

fn macos_release() -> String {
    let v = Command::new("sw_vers")
        .arg("-productVersion")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("ID=macos\nVERSION_ID={v}\nPRETTY_NAME=\"macOS {v}\"\n")
}

/// Whether `cmd` is on PATH.
pub fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

impl Facts {
    /// Text form for `preset facts`.
    pub fn to_text(&self) -> String {
        let pm = if self.package_manager.is_empty() {
            format!("unsupported ({})", self.package_manager_error)
        } else if !self.package_manager_error.is_empty() {
            format!("{} ({})", self.package_manager, self.package_manager_error)
        } else {
            self.package_manager.clone()
        };
        let init = if self.systemd {
            "systemd".to_string()
        } else {
            format!("no systemd (PID 1 is `{}`)", self.pid1)
        };
        format!(
            "os:              {} ({}, id={}, like={})\narch:            {}\npackage manager: {}\ninit:            {}\ncontainer:       {}\nuser:            {} (euid {})\nsudo:            {}\npreset folder:   {}\n",
            self.os,
            self.distro_name,
            self.distro_id,
            self.distro_like.join(" "),
            self.arch,
            pm,
            init,
            self.container,
            self.user,
            self.euid,
            self.sudo,
            self.exe_dir
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/os-release")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn package_managers_from_os_release_fixtures() {
        for (file, pm) in [
            ("debian-12", "apt"),
            ("ubuntu-24.04", "apt"),
            ("fedora-40", "dnf"),
            ("rocky-9", "dnf"),
            ("arch", "pacman"),
            ("manjaro", "pacman"),
        ] {
            let f = from_os_release("linux", &fixture(file));
            assert_eq!(f.package_manager, pm, "{file}");
            assert!(f.package_manager_error.is_empty(), "{file}");
        }
        let alpine = from_os_release("linux", &fixture("alpine-3.20"));
        assert_eq!(alpine.package_manager, "");
        assert!(alpine
            .package_manager_error
            .contains("unsupported platform `alpine`"));
        let mac = from_os_release("macos", "ID=macos\nVERSION_ID=14.5\n");
        assert_eq!(mac.package_manager, "brew");
        assert_eq!(mac.distro_version, "14.5");
    }

    #[test]
    fn os_release_quoting() {
        let m = parse_os_release("# c\nID=\"rocky\"\nID_LIKE='rhel centos fedora'\nX=1\n");
        assert_eq!(m["ID"], "rocky");
        assert_eq!(m["ID_LIKE"], "rhel centos fedora");
    }

    #[test]
    fn gather_here_does_not_panic() {
        let f = gather();
        assert!(!f.os.is_empty());
        assert!(!f.to_text().is_empty());
    }
}
