//! Facts about the machine, gathered once and read-only: OS and distribution, package
//! manager, architecture, init system, effective user and sudo.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Serialize, Serializer};

use crate::package_manager::PackageManager;

/// The operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Macos,
    /// Any other, by Rust's name for it.
    #[serde(untagged)]
    Other(String),
}

impl Os {
    /// From Rust's name (`std::env::consts::OS`).
    pub fn from_name(name: &str) -> Self {
        match name {
            "linux" => Self::Linux,
            "macos" => Self::Macos,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Linux => "linux",
            Self::Macos => "macos",
            Self::Other(n) => n,
        }
    }
}

/// The init system that manages services here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitSystem {
    /// systemd is the running init (`/run/systemd/system` exists).
    Systemd,
    /// macOS.
    Launchd,
    /// Anything else (a container's shell or tini, SysV init): preset supervises itself.
    Other,
}

/// Whether `preset` can act as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sudo {
    /// It runs as root.
    Root,
    /// `sudo -n` works without a password.
    Nopasswd,
    /// sudo asks for a password.
    Password,
    /// No sudo.
    Missing,
}

/// Everything steps and templates may know about the host (`facts.*` in templates).
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub os: Os,
    pub distro_id: String,
    pub distro_like: Vec<String>,
    pub distro_version: String,
    pub distro_name: String,
    /// `None` when the platform is not supported (`package_manager_error` says why).
    #[serde(serialize_with = "name_or_empty")]
    pub package_manager: Option<PackageManager>,
    /// Why there is no usable package manager, when there is none.
    pub package_manager_error: String,
    pub arch: String,
    pub init: InitSystem,
    /// Kept for playbooks that test `facts.systemd`: whether `init` is systemd (set with
    /// `init` by [`Facts::set_init`]).
    systemd: bool,
    /// Name of PID 1 (`/proc/1/comm`).
    pub pid1: String,
    pub container: bool,
    pub euid: u32,
    pub is_root: bool,
    pub user: String,
    pub home: String,
    pub sudo: Sudo,
    /// Folder of the running `preset` executable.
    pub exe_dir: String,
}

fn name_or_empty<S: Serializer>(pm: &Option<PackageManager>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(pm.map(PackageManager::name).unwrap_or(""))
}

impl Facts {
    /// Whether services go through systemd here.
    pub fn has_systemd(&self) -> bool {
        self.init == InitSystem::Systemd
    }

    fn set_init(&mut self, init: InitSystem) {
        self.init = init;
        self.systemd = init == InitSystem::Systemd;
    }
}

/// Builds distribution facts from an os-release text (used by [`gather`] and tests).
pub fn from_os_release(os: &str, text: &str) -> Facts {
    let rel = crate::envfile::parse(text);
    let id = rel.get("ID").cloned().unwrap_or_default();
    let like: Vec<String> = rel
        .get("ID_LIKE")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let os = Os::from_name(os);
    let pm = match os {
        Os::Macos => Some(PackageManager::Brew),
        _ => PackageManager::for_distribution(&id, &like),
    };
    let err = match pm {
        Some(_) => String::new(),
        None => format!(
            "unsupported platform `{}`: preset supports apt (Debian, Ubuntu), dnf (Fedora, RHEL, Rocky), pacman (Arch, Manjaro) and brew (macOS)",
            if id.is_empty() { os.name() } else { &id }
        ),
    };
    Facts {
        init: if os == Os::Macos {
            InitSystem::Launchd
        } else {
            InitSystem::Other
        },
        os,
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
        sudo: Sudo::Missing,
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
    if Path::new("/run/systemd/system").is_dir() {
        f.set_init(InitSystem::Systemd);
    }
    f.pid1 = std::fs::read_to_string("/proc/1/comm")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            if f.os == Os::Macos {
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
        Sudo::Root
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        Sudo::Nopasswd
    } else if which("sudo") {
        Sudo::Password
    } else {
        Sudo::Missing
    };
    f.exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_default();
    if let Some(pm) = f.package_manager.filter(|pm| !which(pm.name())) {
        f.package_manager_error = format!("`{}` is not installed", pm.name());
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
    /// How the package manager reads in messages: `apt`, `apt (`apt` is not installed)`, or
    /// `unsupported (...)`.
    pub fn package_manager_text(&self) -> String {
        match (self.package_manager, self.package_manager_error.is_empty()) {
            (None, _) => format!("unsupported ({})", self.package_manager_error),
            (Some(pm), true) => pm.name().to_string(),
            (Some(pm), false) => format!("{} ({})", pm.name(), self.package_manager_error),
        }
    }

    /// How the init system reads in messages.
    pub fn init_text(&self) -> String {
        match self.init {
            InitSystem::Systemd => "systemd".to_string(),
            InitSystem::Launchd => "launchd".to_string(),
            InitSystem::Other => format!("no systemd (PID 1 is `{}`)", self.pid1),
        }
    }

    /// Text form for `preset facts`.
    pub fn to_text(&self) -> String {
        let sudo = serde_json::to_value(self.sudo)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        format!(
            "os:              {} ({}, id={}, like={})\narch:            {}\npackage manager: {}\ninit:            {}\ncontainer:       {}\nuser:            {} (euid {})\nsudo:            {sudo}\npreset folder:   {}\n",
            self.os.name(),
            self.distro_name,
            self.distro_id,
            self.distro_like.join(" "),
            self.arch,
            self.package_manager_text(),
            self.init_text(),
            self.container,
            self.user,
            self.euid,
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
            assert_eq!(
                f.package_manager.map(PackageManager::name),
                Some(pm),
                "{file}"
            );
            assert!(f.package_manager_error.is_empty(), "{file}");
        }
        let alpine = from_os_release("linux", &fixture("alpine-3.20"));
        assert_eq!(alpine.package_manager, None);
        assert!(alpine
            .package_manager_error
            .contains("unsupported platform `alpine`"));
        let mac = from_os_release("macos", "ID=macos\nVERSION_ID=14.5\n");
        assert_eq!(mac.package_manager, Some(PackageManager::Brew));
        assert_eq!(mac.init, InitSystem::Launchd);
        assert_eq!(mac.distro_version, "14.5");
    }

    #[test]
    fn os_release_quoting() {
        let f = from_os_release(
            "linux",
            "# c\nID=\"rocky\"\nID_LIKE='rhel centos fedora'\nX=1\n",
        );
        assert_eq!(f.distro_id, "rocky");
        assert_eq!(f.distro_like, ["rhel", "centos", "fedora"]);
        assert_eq!(f.package_manager, Some(PackageManager::Dnf));
    }

    /// The JSON form (and `facts.*` in templates) keeps its strings and the `systemd` boolean.
    #[test]
    fn serialized_facts_are_strings() {
        let mut f = from_os_release("linux", "ID=debian\n");
        f.set_init(InitSystem::Systemd);
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["os"], "linux");
        assert_eq!(v["package_manager"], "apt");
        assert_eq!(v["sudo"], "missing");
        assert_eq!(v["init"], "systemd");
        assert_eq!(v["systemd"], true);
        let v = serde_json::to_value(from_os_release("plan9", "ID=plan9\n")).unwrap();
        assert_eq!(v["os"], "plan9");
        assert_eq!(v["package_manager"], "");
    }

    #[test]
    fn gather_here_does_not_panic() {
        let f = gather();
        assert!(!f.os.name().is_empty());
        assert!(!f.to_text().is_empty());
    }
}
