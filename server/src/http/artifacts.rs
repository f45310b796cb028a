//! The proxied artifact service (`/mlflow-artifacts/artifacts/...`) and the tracking
//! API's run artifact listing (`/mlflow/artifacts/list`). Bodies stream in both directions.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::reply::{empty, reply};
use super::request::{required_str, Message};
use super::{ApiError, ApiResult, AppState};
use crate::artifacts::{mime_type, ArtifactRepo, FileEntry, RelPath};
use crate::error::{ErrorCode, MlflowError};
use crate::wire;

fn repo(app: &AppState) -> Result<&ArtifactRepo, ApiError> {
    app.artifacts.as_ref().ok_or_else(|| {
        ApiError(MlflowError::new(
            ErrorCode::TemporarilyUnavailable,
            "This server does not serve artifacts (started with --no-serve-artifacts).",
        ))
    })
}

#[derive(Serialize)]
pub(super) struct FileInfo {
    path: String,
    is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_size: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct Listing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
}

fn file_infos(entries: Vec<FileEntry>, base: &str) -> Vec<FileInfo> {
    entries
        .into_iter()
        .map(|e| FileInfo {
            path: if base.is_empty() {
                e.name
            } else {
                format!("{base}/{}", e.name)
            },
            is_dir: e.is_dir,
            file_size: if e.is_dir { None } else { e.size },
        })
        .collect()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default, deserialize_with = "wire::opt_string")]
    path: Option<String>,
}

/// `GET .../mlflow-artifacts/artifacts?path=dir`: basenames directly below `dir`.
pub async fn list(State(app): State<AppState>, msg: Message) -> ApiResult {
    let repo = repo(&app)?;
    let q: ListQuery = msg.parse()?;
    let dir = RelPath::parse(q.path.as_deref().unwrap_or(""))?;
    let entries = repo.list(&dir).await?;
    reply(&Listing {
        root_uri: None,
        files: file_infos(entries, ""),
    })
}

/// Parses `Range: bytes=a-b` (one range). `None` means "the whole file".
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let unsatisfiable = || {
        ApiError(MlflowError::invalid(format!(
            "Invalid or unsatisfiable Range header for a file of {size} bytes"
        )))
    };
    let text = value.to_str().map_err(|_| unsatisfiable())?;
    let spec = text.strip_prefix("bytes=").ok_or_else(unsatisfiable)?;
    if spec.contains(',') {
        return Err(unsatisfiable());
    }
    let (start, end) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            size.saturating_sub(n)..size
        }
        (s, "") => s.parse().map_err(|_| unsatisfiable())?..size,
        (s, e) => {
            let s: u64 = s.parse().map_err(|_| unsatisfiable())?;
            let e: u64 = e.parse().map_err(|_| unsatisfiable())?;
            s..e.saturating_add(1).min(size)
        }
    };
    if range.start >= range.end || range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

/// `GET .../mlflow-artifacts/artifacts/<path>`: the file's bytes, streamed.
pub async fn download(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let repo = repo(&app)?;
    let file = RelPath::parse_file(&raw)?;
    send_file(repo, &file, &headers).await
}

/// MLflow's Content-Disposition: a download, never shown inline (that would let an artifact
/// run script on this server's origin). The name is quoted only when it must be, as Flask
/// writes it; a non-ASCII name also goes in `filename*`.
fn disposition(name: &str) -> String {
    const TOKEN: &str = "!#$%&'*+-.^_`|~";
    let is_token = |c: char| c.is_ascii_alphanumeric() || TOKEN.contains(c);
    let ascii: String = name
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    let simple = if !ascii.is_empty() && ascii.chars().all(is_token) {
        ascii.clone()
    } else {
        format!("\"{}\"", ascii.replace('\\', "\\\\").replace('"', "\\\""))
    };
    if ascii.len() == name.len() {
        return format!("attachment; filename={simple}");
    }
    // Python's `quote` with Flask's safe set.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'^')
        .remove(b'`')
        .remove(b'|');
    let encoded = percent_encoding::utf8_percent_encode(name, KEEP);
    format!("attachment; filename={simple}; filename*=UTF-8''{encoded}")
}

/// Streams one file of `repo` with MLflow's content type and disposition; `Range` honoured.
pub(super) async fn send_file(
    repo: &ArtifactRepo,
    file: &RelPath,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // The size is needed to resolve suffix ranges; one metadata call covers it.
    let whole = match repo.get(file, None).await {
        Ok(d) => d,
        Err(e) if e.code == ErrorCode::ResourceDoesNotExist => {
            if repo.is_dir(file).await? {
                return Err(ApiError(MlflowError::invalid(format!(
                    "'{}' is a directory, not a file",
                    file.as_str()
                ))));
            }
            return Err(ApiError(MlflowError::not_found(format!(
                "Artifact '{}' does not exist",
                file.as_str()
            ))));
        }
        Err(e) => return Err(e.into()),
    };
    let range = parse_range(headers, whole.size)?;
    let download = match range {
        Some(r) => {
            drop(whole);
            repo.get(file, Some(r)).await?
        }
        None => whole,
    };
    let mime = mime_type(file.file_name());
    let mut response = Response::new(Body::from_stream(download.stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition(file.file_name())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    match download.range {
        Some(r) => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "bytes {}-{}/{}",
                r.start,
                r.end - 1,
                download.size
            )) {
                h.insert(header::CONTENT_RANGE, v);
            }
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
        }
    }
    Ok(response)
}

/// `PUT .../mlflow-artifacts/artifacts/<path>`: stores the body under `path`.
pub async fn upload(State(app): State<AppState>, Path(raw): Path<String>, body: Body) -> ApiResult {
    let repo = repo(&app)?;
    let file = RelPath::parse_file(&raw)?;
    repo.put(&file, body.into_data_stream()).await?;
    empty()
}

/// `DELETE .../mlflow-artifacts/artifacts/<path>`: removes a file or a directory tree.
pub async fn delete(State(app): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let repo = repo(&app)?;
    let target = RelPath::parse(&raw)?;
    repo.delete(&target).await?;
    empty()
}

/// A known route with no artifact path, e.g. `PUT .../artifacts/`.
pub async fn missing_path() -> ApiError {
    ApiError(MlflowError::invalid("The artifact path must name a file"))
}

/// A run (by `run_id` or MLflow's older `run_uuid`) and a path in its artifacts.
#[derive(Deserialize)]
pub(super) struct RunList {
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub run_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub run_uuid: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_string")]
    pub path: Option<String>,
}

/// MLflow's one word for any artifact path it refuses on the tracking API.
pub(super) fn checked_path(raw: &str) -> Result<RelPath, ApiError> {
    RelPath::parse(raw).map_err(|err| {
        tracing::debug!(reason = %err.message, "artifact path refused");
        ApiError(MlflowError::invalid("Invalid path"))
    })
}

/// `GET .../mlflow/artifacts/list`: a run's artifacts below `path`, paths relative to
/// the run's artifact root. Only locations in this server's own stores are listed (see
/// [`crate::artifacts::roots`]).
pub async fn list_run(State(app): State<AppState>, msg: Message) -> ApiResult {
    let q: RunList = msg.parse()?;
    let run_id = required_str(q.run_id.filter(|s| !s.is_empty()).or(q.run_uuid), "run_id")?;
    let sub = checked_path(q.path.as_deref().unwrap_or(""))?;
    let run = app.tracking.get_run(&run_id).await?;
    let root_uri = run.info.artifact_uri.clone();
    let files = list_below(&app, &root_uri, &sub).await?;
    reply(&Listing {
        root_uri: Some(root_uri),
        files,
    })
}

/// The entries directly below `sub` in the artifact location `root_uri`, their paths
/// relative to that location.
pub(super) async fn list_below(
    app: &AppState,
    root_uri: &str,
    sub: &RelPath,
) -> Result<Vec<FileInfo>, ApiError> {
    let located = app.roots.locate(root_uri)?;
    let dir = located.path.join(sub);
    if !dir.starts_with(&located.path) {
        return Err(ApiError(MlflowError::invalid("Invalid path")));
    }
    let entries = located.repo.list(&dir).await?;
    Ok(file_infos(entries, sub.as_str()))
}

/// The 503 MLflow answers on tracking routes of an `--artifacts-only` server.
pub fn artifacts_only() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "This server was started with --artifacts-only: only the artifact API is served.",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<Range<u64>>, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        parse_range(&h, size)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(range("bytes=95-200", 100).unwrap(), Some(95..100));
        assert!(range("bytes=100-", 100).is_err());
        assert!(range("bytes=0-1,5-6", 100).is_err());
        assert!(range("items=0-1", 100).is_err());
        assert!(parse_range(&HeaderMap::new(), 5).unwrap().is_none());
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            disposition("a+step+1.png"),
            "attachment; filename=a+step+1.png"
        );
        assert_eq!(
            disposition("my file.txt"),
            "attachment; filename=\"my file.txt\""
        );
        assert_eq!(
            disposition("q\"b.txt"),
            "attachment; filename=\"q\\\"b.txt\""
        );
        assert_eq!(
            disposition("é.txt"),
            "attachment; filename=.txt; filename*=UTF-8''%C3%A9.txt"
        );
    }
}
