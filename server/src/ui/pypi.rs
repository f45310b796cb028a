//! The `mlflow` wheel from a PyPI JSON API: its URL and sha256, then a resumable download
//! checked against that sha256.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::blocking::Client;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::install::InstallError;

/// One wheel file of a release, as the JSON API lists it.
#[derive(Debug, Clone)]
pub struct Release {
    pub filename: String,
    pub url: Url,
    pub sha256: String,
    pub size: u64,
}

/// Attempts per download; each one continues where the previous one stopped.
const ATTEMPTS: u32 = 4;

fn client() -> Result<Client, InstallError> {
    Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(None)
        .user_agent(concat!("mlflow-rs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| remote("the HTTP client", e))
}

fn remote(what: impl Into<String>, reason: impl std::fmt::Display) -> InstallError {
    InstallError::Remote {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// The wheel of `mlflow==version`: from `INDEX/mlflow/VERSION/json`, or from the project's
/// `releases` where the index serves only `INDEX/mlflow/json`.
pub fn resolve(index_url: &str, version: &str) -> Result<Release, InstallError> {
    let base = index_url.trim_end_matches('/');
    let client = client()?;
    let get = |url: &str| -> Result<Option<(Url, Value)>, InstallError> {
        let response = client.get(url).send().map_err(|e| remote(url, e))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(remote(url, format!("HTTP {}", response.status())));
        }
        let at = response.url().clone();
        let body = response.json().map_err(|e| remote(url, e))?;
        Ok(Some((at, body)))
    };
    let release_url = format!("{base}/mlflow/{version}/json");
    let (at, files) = match get(&release_url)? {
        Some((at, body)) => (at, body["urls"].clone()),
        None => {
            let project_url = format!("{base}/mlflow/json");
            let (at, body) = get(&project_url)?.ok_or_else(|| {
                remote(&project_url, "the index does not know the mlflow package")
            })?;
            (at, body["releases"][version].clone())
        }
    };
    let wheel = files
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| {
            f["packagetype"] == "bdist_wheel"
                && f["filename"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("mlflow-{version}-")))
        })
        .ok_or_else(|| {
            InstallError::Invalid(format!(
                "{base} has no wheel of mlflow {version}; check --version"
            ))
        })?;
    let text = |key: &str| wheel[key].as_str().unwrap_or_default().to_string();
    let sha256 = wheel["digests"]["sha256"]
        .as_str()
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| remote(at.as_str(), "the wheel is listed without a sha256"))?
        .to_ascii_lowercase();
    // Mirrors list file URLs relative to the JSON document.
    let url = at
        .join(&text("url"))
        .map_err(|e| remote(at.as_str(), format!("bad wheel URL: {e}")))?;
    Ok(Release {
        filename: text("filename"),
        url,
        sha256,
        size: wheel["size"].as_u64().unwrap_or(0),
    })
}

/// Downloads the wheel into `cache_dir`, continuing a partial file left by an earlier
/// attempt, and returns its path once its sha256 is the listed one.
pub fn download(release: &Release, cache_dir: &Path) -> Result<PathBuf, InstallError> {
    let name = Path::new(&release.filename)
        .file_name()
        .filter(|n| n.to_string_lossy().ends_with(".whl"))
        .ok_or_else(|| {
            InstallError::Invalid(format!("bad wheel file name {:?}", release.filename))
        })?;
    fs::create_dir_all(cache_dir).map_err(|e| InstallError::io(cache_dir, e))?;
    let done = cache_dir.join(name);
    if sha256_of(&done).ok().as_deref() == Some(release.sha256.as_str()) {
        return Ok(done);
    }
    let part = cache_dir.join(format!("{}.part", name.to_string_lossy()));
    eprintln!("Downloading {} from {}", release.filename, release.url);
    let bar = ProgressBar::new(release.size);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let client = client()?;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        match fetch_rest(&client, release, &part, &bar) {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    bar.finish_and_clear();
    if let Some(e) = last_error {
        return Err(e);
    }
    let got = sha256_of(&part).map_err(|e| InstallError::io(&part, e))?;
    if got != release.sha256 {
        let _ = fs::remove_file(&part);
        return Err(InstallError::Invalid(format!(
            "{} has sha256 {got}, but the index lists {}: the download was discarded",
            release.url, release.sha256
        )));
    }
    fs::rename(&part, &done).map_err(|e| InstallError::io(&done, e))?;
    Ok(done)
}

/// Appends what `part` is missing (all of it when the server ignores `Range`).
fn fetch_rest(
    client: &Client,
    release: &Release,
    part: &Path,
    bar: &ProgressBar,
) -> Result<(), InstallError> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if release.size > 0 && have == release.size {
        return Ok(());
    }
    let mut request = client.get(release.url.clone());
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let what = release.url.to_string();
    let mut response = request.send().map_err(|e| remote(&what, e))?;
    let status = response.status();
    let mut out = match status {
        StatusCode::PARTIAL_CONTENT => {
            bar.set_position(have);
            fs::OpenOptions::new().append(true).open(part)
        }
        StatusCode::OK => {
            bar.set_position(0);
            fs::File::create(part)
        }
        // A partial file longer than the wheel: start over.
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let _ = fs::remove_file(part);
            return Err(remote(
                &what,
                "the partial download was longer than the file",
            ));
        }
        other => return Err(remote(&what, format!("HTTP {other}"))),
    }
    .map_err(|e| InstallError::io(part, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = response.read(&mut buf).map_err(|e| remote(&what, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| InstallError::io(part, e))?;
        bar.inc(n as u64);
    }
    out.sync_all().map_err(|e| InstallError::io(part, e))?;
    let now = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if release.size > 0 && now < release.size {
        return Err(remote(
            &what,
            format!("the connection ended after {now} of {} bytes", release.size),
        ));
    }
    Ok(())
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
