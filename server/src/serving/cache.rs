//! The download cache: a model behind the artifact proxy is fetched once into
//! `$MLFLOW_MODEL_CACHE` (default `~/.cache/mlflow/models`), one directory per tracking
//! server and artifact path, with a manifest of every file's size and SHA-256. A cached copy
//! is used only when every file still matches its manifest entry; otherwise it is fetched
//! again. Downloads land in a temporary directory that is renamed into place, so a broken
//! download never looks like a model.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ServingError;
use crate::client::Client;

/// One file of a cached model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the model directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    source: String,
    files: Vec<Entry>,
}

fn var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// Where downloaded models go: MLFLOW_MODEL_CACHE, else `models` under [`cache_root`].
pub fn models_dir() -> PathBuf {
    var("MLFLOW_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_root().join("models"))
}

/// The root of our caches (models, Python environments): $XDG_CACHE_HOME/mlflow, else
/// ~/.cache/mlflow.
pub fn cache_root() -> PathBuf {
    let base = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("mlflow")
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The local directory of the model at `path` behind `client`'s artifact proxy, downloading
/// it unless a verified copy is cached.
pub fn fetch(client: &Client, path: &str) -> Result<PathBuf, ServingError> {
    let source = format!("{}/mlflow-artifacts:/{path}", client.base_url());
    let dir = models_dir().join(&sha256_hex(source.as_bytes())[..32]);
    let model = dir.join("model");
    if verify(&dir.join("manifest.json"), &model).is_ok() {
        return Ok(model);
    }
    let files = list(client, path)?;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    eprintln!(
        "Downloading {} files ({}) of mlflow-artifacts:/{path} from {} into {}",
        files.len(),
        human_bytes(total),
        client.base_url(),
        dir.display()
    );
    fs::create_dir_all(&dir).map_err(|e| ServingError::io(&dir, e))?;
    let staging = dir.join(format!("download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = download_all(client, path, &files, &staging, &bar);
    bar.finish_and_clear();
    let entries = match result {
        Ok(entries) => entries,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let _ = fs::remove_dir_all(&model);
    fs::rename(&staging, &model).map_err(|e| ServingError::io(&model, e))?;
    let manifest = Manifest {
        source,
        files: entries,
    };
    let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let tmp = dir.join("manifest.json.tmp");
    fs::write(&tmp, text).map_err(|e| ServingError::io(&tmp, e))?;
    fs::rename(&tmp, dir.join("manifest.json")).map_err(|e| ServingError::io(&dir, e))?;
    Ok(model)
}

/// Every file under `path` (recursively) with its listed size.
fn list(client: &Client, path: &str) -> Result<Vec<(String, u64)>, ServingError> {
    let mut files = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(sub) = pending.pop() {
        let full = join(path, &sub);
        let reply = client.get_path("api/2.0/mlflow-artifacts/artifacts", &[("path", full)])?;
        for f in reply["files"].as_array().into_iter().flatten() {
            let name = f["path"].as_str().unwrap_or_default();
            // The proxy lists names relative to the listed directory; be lenient with full paths.
            let name = name.rsplit('/').next().unwrap_or(name);
            if name.is_empty() || name == "." || name == ".." {
                continue;
            }
            let rel = join(&sub, name);
            if f["is_dir"].as_bool().unwrap_or(false) {
                pending.push(rel);
            } else {
                files.push((rel, f["file_size"].as_u64().unwrap_or(0)));
            }
        }
    }
    if !files.iter().any(|(p, _)| p == "MLmodel") {
        return Err(ServingError::Model(format!(
            "mlflow-artifacts:/{path} holds no MLmodel file: it is not an MLflow model"
        )));
    }
    files.sort();
    Ok(files)
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{}/{b}", a.trim_end_matches('/')),
    }
}

fn download_all(
    client: &Client,
    path: &str,
    files: &[(String, u64)],
    staging: &Path,
    bar: &ProgressBar,
) -> Result<Vec<Entry>, ServingError> {
    let mut entries = Vec::with_capacity(files.len());
    for (rel, listed) in files {
        bar.set_message(rel.clone());
        let target = staging.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| ServingError::io(parent, e))?;
        }
        let url_path = format!(
            "api/2.0/mlflow-artifacts/artifacts/{}",
            encode_path(&join(path, rel))
        );
        let mut response = client.download(&url_path)?;
        let mut out = fs::File::create(&target).map_err(|e| ServingError::io(&target, e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = response.read(&mut buf).map_err(|e| ServingError::Remote {
                what: format!("the download of {rel}"),
                reason: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| ServingError::io(&target, e))?;
            size += n as u64;
            bar.inc(n as u64);
        }
        out.sync_all().map_err(|e| ServingError::io(&target, e))?;
        if size != *listed {
            return Err(ServingError::Remote {
                what: format!("the download of {rel}"),
                reason: format!("got {size} bytes, the server listed {listed}"),
            });
        }
        entries.push(Entry {
            path: rel.clone(),
            size,
            sha256: hex(&hasher.finalize()),
        });
    }
    Ok(entries)
}

/// Each path segment percent-encoded.
fn encode_path(path: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    path.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks a cached model against its manifest: every file present with its size and hash.
fn verify(manifest: &Path, model: &Path) -> Result<(), String> {
    let text = fs::read(manifest).map_err(|e| e.to_string())?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    for entry in &manifest.files {
        let bytes =
            fs::read(model.join(&entry.path)).map_err(|e| format!("{}: {e}", entry.path))?;
        if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
            return Err(format!("{} changed", entry.path));
        }
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_cached_file_fails_verification() {
        let dir = std::env::temp_dir().join(format!("mlflow-cache-test-{}", std::process::id()));
        let model = dir.join("model");
        fs::create_dir_all(&model).unwrap();
        fs::write(model.join("MLmodel"), b"flavors: {}\n").unwrap();
        let manifest = Manifest {
            source: "s".into(),
            files: vec![Entry {
                path: "MLmodel".into(),
                size: 12,
                sha256: sha256_hex(b"flavors: {}\n"),
            }],
        };
        fs::write(
            dir.join("manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        assert_eq!(verify(&dir.join("manifest.json"), &model), Ok(()));
        fs::write(model.join("MLmodel"), b"flavors: {x}\n").unwrap();
        assert!(verify(&dir.join("manifest.json"), &model).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("1/m 1/a#b"), "1/m%201/a%23b");
        assert_eq!(human_bytes(2048), "2.0 KiB");
    }
}
