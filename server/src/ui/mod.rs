//! MLflow's web UI: the React bundle shipped inside the `mlflow` wheel
//! (`mlflow/server/js/build`), installed by `mlflow ui install` and served by `mlflow server`.
//! The bundle is never part of this repository; it is fetched or copied where the user says.

pub mod assets;
pub mod install;
mod pypi;

use std::path::{Path, PathBuf};

/// Written last into an installed bundle; its presence means the install completed.
pub const MARKER: &str = ".mlflow-ui-installed";

/// Where the bundle lives inside the `mlflow` wheel (and an installed `mlflow` package).
pub const BUNDLE_IN_WHEEL: &str = "mlflow/server/js/build/";

/// The bundle's entry page; a folder without it is not a bundle.
pub const INDEX: &str = "index.html";

/// Where `mlflow ui install` puts a version by default: a system folder for root, else the
/// user's XDG data folder.
pub fn default_dir(version: &str) -> PathBuf {
    if is_root() {
        system_dir(version)
    } else {
        user_dir(version).unwrap_or_else(|| system_dir(version))
    }
}

fn system_dir(version: &str) -> PathBuf {
    Path::new("/usr/share/mlflow/ui").join(version)
}

fn user_dir(version: &str) -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".local/share")))?;
    Some(data.join("mlflow/ui").join(version))
}

pub(crate) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `dir` holds a bundle that can be served.
pub fn is_bundle(dir: &Path) -> bool {
    dir.join(INDEX).is_file()
}

/// The bundle `mlflow server` serves when no `--ui-dir` is given: the installed one for the
/// MLflow release this server speaks, the user's before the system's.
pub fn find_default(version: &str) -> Option<PathBuf> {
    [user_dir(version), Some(system_dir(version))]
        .into_iter()
        .flatten()
        .find(|d| d.join(MARKER).is_file() && is_bundle(d))
}

/// `mlflow ui ...`: what to print on success.
pub fn run(args: crate::cli::ui::UiArgs) -> Result<String, install::InstallError> {
    use crate::cli::ui::UiCommand;
    use install::{InstallOptions, Outcome, Source};
    let UiCommand::Install(a) = args.command;
    let dir = a.dir.unwrap_or_else(|| default_dir(&a.version));
    let source = match (a.from_wheel, a.from_dir) {
        (Some(wheel), _) => Source::Wheel(wheel),
        (None, Some(folder)) => Source::Dir(folder),
        (None, None) => Source::PyPi {
            index_url: a.index_url,
        },
    };
    let cache_dir = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".cache")))
        .map(|c| c.join("mlflow/ui"))
        .unwrap_or_else(|| dir.with_extension("download"));
    let opts = InstallOptions {
        version: a.version.clone(),
        dir: dir.clone(),
        source,
        cache_dir,
    };
    Ok(match install::install(&opts)? {
        Outcome::AlreadyInstalled => format!(
            "MLflow UI {} is already installed in {}",
            a.version,
            dir.display()
        ),
        Outcome::Installed { files, bytes } => format!(
            "Installed MLflow UI {} in {} ({files} files, {:.1} MB); `mlflow server` serves it \
             at / (MLFLOW_UI_DIR={} if it is not a default folder)",
            a.version,
            dir.display(),
            bytes as f64 / 1e6,
            dir.display()
        ),
    })
}
