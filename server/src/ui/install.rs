//! `mlflow ui install`: puts the bundle into a folder once, from PyPI, a wheel file or a
//! folder. The files are assembled in a staging folder next to the target and renamed into
//! place with the marker inside, so the target is either absent or complete.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{is_bundle, pypi, BUNDLE_IN_WHEEL, INDEX, MARKER};

/// Where the bundle comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The `mlflow` wheel of that version from a PyPI JSON API (`https://pypi.org/pypi`).
    PyPi { index_url: String },
    /// A local `mlflow-*.whl`.
    Wheel(PathBuf),
    /// A bundle folder, or an `mlflow` package (or site-packages) holding one.
    Dir(PathBuf),
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub version: String,
    pub dir: PathBuf,
    pub source: Source,
    /// Where a download is kept while incomplete (resumed from there).
    pub cache_dir: PathBuf,
}

/// What an install did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    AlreadyInstalled,
    Installed { files: u64, bytes: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {reason}")]
    Remote { what: String, reason: String },
}

impl InstallError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        InstallError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Installs the bundle into `opts.dir` unless it is already there.
pub fn install(opts: &InstallOptions) -> Result<Outcome, InstallError> {
    let dir = &opts.dir;
    if dir.join(MARKER).is_file() {
        return Ok(Outcome::AlreadyInstalled);
    }
    refuse_foreign_content(dir)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| InstallError::io(parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ui".into());
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(|e| InstallError::io(&staging, e))?;
    let result = fill(opts, &staging).and_then(|(files, bytes, origin)| {
        if !is_bundle(&staging) {
            return Err(InstallError::Invalid(format!(
                "{origin} holds no {INDEX} under {BUNDLE_IN_WHEEL}: not an MLflow UI bundle"
            )));
        }
        let marker = serde_json::json!({
            "version": opts.version,
            "source": origin,
            "files": files,
            "bytes": bytes,
        });
        let path = staging.join(MARKER);
        fs::write(&path, format!("{marker:#}\n")).map_err(|e| InstallError::io(&path, e))?;
        // An empty target (made by hand or by a tool) is replaced; anything else was refused.
        let _ = fs::remove_dir(dir);
        fs::rename(&staging, dir).map_err(|e| InstallError::io(dir, e))?;
        Ok(Outcome::Installed { files, bytes })
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// A target holding files but no marker was not made by us: never overwrite it.
fn refuse_foreign_content(dir: &Path) -> Result<(), InstallError> {
    let holds_files = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    match holds_files {
        true => Err(InstallError::Invalid(format!(
            "{} exists and holds files but no {MARKER}: it was not installed by `mlflow ui \
             install`; remove it or choose another --dir",
            dir.display()
        ))),
        false => Ok(()),
    }
}

/// Puts the bundle's files into `staging`; returns (files, bytes, a description of the source).
fn fill(opts: &InstallOptions, staging: &Path) -> Result<(u64, u64, String), InstallError> {
    match &opts.source {
        Source::Dir(src) => {
            let root = bundle_root(src).ok_or_else(|| {
                InstallError::Invalid(format!(
                    "{} holds no MLflow UI bundle (looked for {INDEX} there, in server/js/build \
                     and in {BUNDLE_IN_WHEEL})",
                    src.display()
                ))
            })?;
            let (files, bytes) = copy_tree(&root, staging)?;
            let root = fs::canonicalize(&root).unwrap_or(root);
            Ok((files, bytes, root.display().to_string()))
        }
        Source::Wheel(wheel) => {
            check_wheel_version(wheel, &opts.version)?;
            let (files, bytes) = extract_wheel(wheel, staging)?;
            Ok((files, bytes, wheel.display().to_string()))
        }
        Source::PyPi { index_url } => {
            let release = pypi::resolve(index_url, &opts.version)?;
            let wheel = pypi::download(&release, &opts.cache_dir)?;
            let (files, bytes) = extract_wheel(&wheel, staging)?;
            // The bundle is what is kept; the 12 MB wheel is not needed any more.
            let _ = fs::remove_file(&wheel);
            Ok((
                files,
                bytes,
                format!("{} (sha256 {})", release.url, release.sha256),
            ))
        }
    }
}

/// The bundle folder given `src`: the bundle itself, an `mlflow` package, or site-packages.
fn bundle_root(src: &Path) -> Option<PathBuf> {
    [
        src.to_path_buf(),
        src.join("server/js/build"),
        src.join(BUNDLE_IN_WHEEL),
    ]
    .into_iter()
    .find(|d| is_bundle(d))
}

/// Copies regular files and folders; symbolic links are not followed (a bundle has none).
fn copy_tree(src: &Path, dst: &Path) -> Result<(u64, u64), InstallError> {
    let (mut files, mut bytes) = (0, 0);
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let from = src.join(&rel);
        for entry in fs::read_dir(&from).map_err(|e| InstallError::io(&from, e))? {
            let entry = entry.map_err(|e| InstallError::io(&from, e))?;
            let kind = entry
                .file_type()
                .map_err(|e| InstallError::io(&entry.path(), e))?;
            let rel = rel.join(entry.file_name());
            let to = dst.join(&rel);
            if kind.is_dir() {
                fs::create_dir_all(&to).map_err(|e| InstallError::io(&to, e))?;
                pending.push(rel);
            } else if kind.is_file() {
                bytes += fs::copy(entry.path(), &to).map_err(|e| InstallError::io(&to, e))?;
                files += 1;
            }
        }
    }
    Ok((files, bytes))
}

/// A wheel's file name says its version (`mlflow-3.17.2-py3-none-any.whl`); a different
/// one than asked would land in the wrong version's folder.
fn check_wheel_version(wheel: &Path, version: &str) -> Result<(), InstallError> {
    let name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name
        .strip_prefix("mlflow-")
        .and_then(|r| r.split('-').next())
    {
        Some(found) if name.ends_with(".whl") && found != version => {
            Err(InstallError::Invalid(format!(
                "{} is mlflow {found}, not {version}: pass --version {found} (or the wheel of \
                 {version})",
                wheel.display()
            )))
        }
        _ => Ok(()),
    }
}

/// Extracts only `mlflow/server/js/build/` of a wheel into `dst`.
fn extract_wheel(wheel: &Path, dst: &Path) -> Result<(u64, u64), InstallError> {
    let file = fs::File::open(wheel).map_err(|e| InstallError::io(wheel, e))?;
    let bad = |e: zip::result::ZipError| {
        InstallError::Invalid(format!("{} is not a readable wheel: {e}", wheel.display()))
    };
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(bad)?;
    let (mut files, mut bytes) = (0, 0);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        // enclosed_name refuses absolute names and `..`, so nothing lands outside `dst`.
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let Ok(rel) = name.strip_prefix(BUNDLE_IN_WHEEL) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let to = dst.join(rel);
        if entry.is_dir() {
            fs::create_dir_all(&to).map_err(|e| InstallError::io(&to, e))?;
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| InstallError::io(parent, e))?;
        }
        let mut out = fs::File::create(&to).map_err(|e| InstallError::io(&to, e))?;
        bytes += io::copy(&mut entry, &mut out).map_err(|e| InstallError::io(&to, e))?;
        files += 1;
    }
    Ok((files, bytes))
}
