//! The package managers `preset` drives: which one a platform uses, and the commands that
//! query, install and remove packages with each. Adding a manager is one variant here; every
//! `match` below then says what it needs.

use std::process::Output;

use serde::Serialize;

/// A supported package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Apt,
    Dnf,
    Pacman,
    Brew,
}

impl PackageManager {
    /// The name users know it by, also the program that must be on PATH.
    pub fn name(self) -> &'static str {
        match self {
            Self::Apt => "apt",
            Self::Dnf => "dnf",
            Self::Pacman => "pacman",
            Self::Brew => "brew",
        }
    }

    /// The manager of a distribution family (`ID` or one of `ID_LIKE` in os-release).
    fn of_distribution(id: &str) -> Option<Self> {
        match id {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" | "pop" | "elementary" | "kali" => {
                Some(Self::Apt)
            }
            "fedora" | "rhel" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" | "nobara" => {
                Some(Self::Dnf)
            }
            "arch" | "manjaro" | "endeavouros" | "garuda" | "archarm" => Some(Self::Pacman),
            _ => None,
        }
    }

    /// The manager of a Linux distribution, from os-release's `ID` and `ID_LIKE`.
    pub fn for_distribution(id: &str, like: &[String]) -> Option<Self> {
        std::iter::once(id)
            .chain(like.iter().map(String::as_str))
            .find_map(Self::of_distribution)
    }

    /// The command that tells whether `name` is installed (see [`Self::says_installed`]).
    pub fn query(self, name: &str) -> Vec<String> {
        let head: &[&str] = match self {
            Self::Apt => &["dpkg-query", "-W", "-f=${Status}"],
            Self::Dnf => &["rpm", "-q"],
            Self::Pacman => &["pacman", "-Q"],
            Self::Brew => &["brew", "list", "--versions"],
        };
        argv(head, [name])
    }

    /// Whether the output of [`Self::query`] means "installed" (dpkg also knows packages that
    /// were removed but left their configuration, and says so in the status).
    pub fn says_installed(self, out: &Output) -> bool {
        out.status.success()
            && match self {
                Self::Apt => String::from_utf8_lossy(&out.stdout).contains("install ok installed"),
                Self::Dnf | Self::Pacman | Self::Brew => true,
            }
    }

    /// The non-interactive command that installs `names`.
    pub fn install(self, names: &[String]) -> Vec<String> {
        let head: &[&str] = match self {
            Self::Apt => &["apt-get", "install", "-y", "-q", "--no-install-recommends"],
            Self::Dnf => &["dnf", "install", "-y", "-q"],
            Self::Pacman => &["pacman", "-S", "--noconfirm", "--needed"],
            Self::Brew => &["brew", "install"],
        };
        argv(head, names.iter().map(String::as_str))
    }

    /// The non-interactive command that removes `names`.
    pub fn remove(self, names: &[String]) -> Vec<String> {
        let head: &[&str] = match self {
            Self::Apt => &["apt-get", "remove", "-y", "-q"],
            Self::Dnf => &["dnf", "remove", "-y", "-q"],
            Self::Pacman => &["pacman", "-R", "--noconfirm"],
            Self::Brew => &["brew", "uninstall"],
        };
        argv(head, names.iter().map(String::as_str))
    }

    /// What to run before retrying a failed install: a fresh machine may have no package
    /// lists yet.
    pub fn refresh(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Apt => Some(&["apt-get", "update", "-q"]),
            Self::Dnf | Self::Pacman | Self::Brew => None,
        }
    }

    /// Environment that keeps the manager from asking questions.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Apt => &[("DEBIAN_FRONTEND", "noninteractive")],
            Self::Dnf | Self::Pacman | Self::Brew => &[],
        }
    }
}

fn argv<'a>(head: &[&'a str], tail: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    head.iter()
        .copied()
        .chain(tail)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_per_manager() {
        let n = vec!["curl".to_string()];
        use PackageManager::*;
        assert_eq!(
            Apt.install(&n).join(" "),
            "apt-get install -y -q --no-install-recommends curl"
        );
        assert_eq!(Dnf.install(&n).join(" "), "dnf install -y -q curl");
        assert_eq!(
            Pacman.install(&n).join(" "),
            "pacman -S --noconfirm --needed curl"
        );
        assert_eq!(Brew.remove(&n).join(" "), "brew uninstall curl");
        assert_eq!(Apt.remove(&n).join(" "), "apt-get remove -y -q curl");
        assert_eq!(
            Apt.query("curl").join(" "),
            "dpkg-query -W -f=${Status} curl"
        );
        assert_eq!(Dnf.query("curl").join(" "), "rpm -q curl");
        assert_eq!(Pacman.query("curl").join(" "), "pacman -Q curl");
        assert_eq!(Brew.query("curl").join(" "), "brew list --versions curl");
        assert!(Apt.refresh().is_some() && Dnf.refresh().is_none());
    }

    #[test]
    fn distributions() {
        use PackageManager::*;
        assert_eq!(PackageManager::for_distribution("debian", &[]), Some(Apt));
        let like = ["rhel".to_string(), "fedora".to_string()];
        assert_eq!(PackageManager::for_distribution("weird", &like), Some(Dnf));
        assert_eq!(PackageManager::for_distribution("alpine", &[]), None);
    }
}
