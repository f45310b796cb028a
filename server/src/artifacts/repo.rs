//! An artifact root on one backend, addressed by [`RelPath`]s.

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};

use super::gcs;
use super::path::RelPath;
use crate::error::{MlflowError, Result};

/// Google Cloud Storage's endpoint, unless STORAGE_EMULATOR_HOST names an emulator.
const GCS_BASE_URL: &str = "https://storage.googleapis.com";

/// Files up to this size are written with one request.
const SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;

fn interrupted(e: impl std::fmt::Display) -> MlflowError {
    MlflowError::invalid(format!("The upload was interrupted: {e}"))
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    /// The entry's name (its last path segment).
    pub name: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// A file being downloaded.
pub struct Download {
    pub size: u64,
    /// The byte range served, when a range was asked for.
    pub range: Option<Range<u64>>,
    pub stream: BoxStream<'static, std::result::Result<Bytes, object_store::Error>>,
}

/// An artifact root: a backend plus a prefix inside it.
#[derive(Clone)]
pub struct ArtifactRepo {
    store: Arc<dyn ObjectStore>,
    prefix: Vec<String>,
    /// For local roots: the canonical directory, used to refuse symlinks leading outside.
    local_root: Option<PathBuf>,
    /// For GCS roots: writes go through the JSON upload API (see [`gcs`]).
    gcs_uploader: Option<Arc<gcs::Uploader>>,
    uri: String,
}

fn storage_error(err: object_store::Error) -> MlflowError {
    match err {
        object_store::Error::NotFound { .. } => {
            MlflowError::not_found("The artifact does not exist")
        }
        other => {
            tracing::warn!(error = %other, "artifact storage error");
            MlflowError::new(
                crate::error::ErrorCode::TemporarilyUnavailable,
                format!("Artifact storage failed: {other}"),
            )
        }
    }
}

/// A write that fails is the storage's fault, even when the backend says "not found"
/// (a missing bucket or container).
fn write_error(err: object_store::Error) -> MlflowError {
    tracing::warn!(error = %err, "artifact write failed");
    MlflowError::new(
        crate::error::ErrorCode::TemporarilyUnavailable,
        format!("Artifact storage failed: {err}"),
    )
}

fn bad_uri(uri: &str, why: impl std::fmt::Display) -> MlflowError {
    MlflowError::invalid(format!("Invalid artifact location '{uri}': {why}"))
}

/// Splits `scheme://bucket/prefix` into bucket and prefix segments.
fn bucket_and_prefix(rest: &str) -> (String, Vec<String>) {
    let mut parts = rest.splitn(2, '/');
    let bucket = parts.next().unwrap_or("").to_string();
    let prefix = parts
        .next()
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (bucket, prefix)
}

impl ArtifactRepo {
    /// Opens the root named by `uri`: a path, `file://`, `s3://`, `gs://`, `wasbs://` or
    /// `abfss://`. Credentials come from the environment variables MLflow reads.
    pub fn open(uri: &str) -> Result<Self> {
        let (scheme, rest) = match uri.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("file".to_string(), uri),
        };
        match scheme.as_str() {
            "file" => Self::open_local(uri, rest),
            "s3" => {
                let (bucket, prefix) = bucket_and_prefix(rest);
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
                if let Ok(endpoint) = std::env::var("MLFLOW_S3_ENDPOINT_URL") {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false)
                        .with_endpoint(endpoint);
                }
                if std::env::var("AWS_DEFAULT_REGION").is_err()
                    && std::env::var("AWS_REGION").is_err()
                {
                    builder = builder.with_region("us-east-1");
                }
                let store = builder.build().map_err(|e| bad_uri(uri, e))?;
                Ok(Self::remote(uri, Arc::new(store), prefix))
            }
            "gs" => {
                let (bucket, prefix) = bucket_and_prefix(rest);
                let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(&bucket);
                let mut base = GCS_BASE_URL.to_string();
                // The variable Google's own client libraries honour for emulators.
                if let Ok(host) = std::env::var("STORAGE_EMULATOR_HOST") {
                    base = if host.contains("://") {
                        host
                    } else {
                        format!("http://{host}")
                    };
                    let key = serde_json::json!({
                        "private_key": "", "private_key_id": "", "client_email": "",
                        "gcs_base_url": base.trim_end_matches('/'), "disable_oauth": true,
                    });
                    builder = builder.with_service_account_key(key.to_string());
                }
                let store = builder.build().map_err(|e| bad_uri(uri, e))?;
                let uploader = gcs::Uploader::new(&base, &bucket, store.credentials().clone())?;
                let mut repo = Self::remote(uri, Arc::new(store), prefix);
                repo.gcs_uploader = Some(Arc::new(uploader));
                Ok(repo)
            }
            "wasbs" | "wasb" | "abfss" | "abfs" => {
                // container@account.blob.core.windows.net/prefix
                let (authority, prefix) = bucket_and_prefix(rest);
                let (container, host) = authority
                    .split_once('@')
                    .ok_or_else(|| bad_uri(uri, "expected container@account.<host>/path"))?;
                let account = host.split('.').next().unwrap_or("");
                let store = azure_builder(account)
                    .with_container_name(container)
                    .build()
                    .map_err(|e| bad_uri(uri, e))?;
                Ok(Self::remote(uri, Arc::new(store), prefix))
            }
            other => Err(bad_uri(uri, format!("unsupported scheme '{other}'"))),
        }
    }

    fn open_local(uri: &str, path: &str) -> Result<Self> {
        let root = PathBuf::from(path);
        std::fs::create_dir_all(&root)
            .map_err(|e| bad_uri(uri, format!("cannot create the directory: {e}")))?;
        let canonical = root
            .canonicalize()
            .map_err(|e| bad_uri(uri, format!("cannot resolve the directory: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(&canonical).map_err(|e| bad_uri(uri, e))?;
        Ok(ArtifactRepo {
            store: Arc::new(store),
            prefix: Vec::new(),
            local_root: Some(canonical),
            gcs_uploader: None,
            uri: uri.to_string(),
        })
    }

    fn remote(uri: &str, store: Arc<dyn ObjectStore>, prefix: Vec<String>) -> Self {
        ArtifactRepo {
            store,
            prefix,
            local_root: None,
            gcs_uploader: None,
            uri: uri.to_string(),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn object_path(&self, rel: &RelPath) -> Result<ObjPath> {
        let mut parts: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        if !rel.is_root() {
            parts.extend(rel.as_str().split('/'));
        }
        let joined = parts.join("/");
        ObjPath::parse(&joined)
            .map_err(|e| MlflowError::invalid(format!("Invalid artifact path: {e}")))
    }

    /// On local disk, refuses a path whose existing part resolves (through symlinks) to
    /// somewhere outside the root.
    fn check_local(&self, rel: &RelPath) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let mut probe = root.join(rel.as_str());
        loop {
            if let Ok(real) = probe.canonicalize() {
                if real.starts_with(root) {
                    return Ok(());
                }
                return Err(MlflowError::invalid(format!(
                    "Invalid artifact path '{}': it leads outside the artifact root",
                    rel.as_str()
                )));
            }
            if !probe.pop() || !probe.starts_with(root) {
                return Ok(());
            }
        }
    }

    /// The entries directly below `dir`; a missing directory has none.
    pub async fn list(&self, dir: &RelPath) -> Result<Vec<FileEntry>> {
        self.check_local(dir)?;
        let prefix = self.object_path(dir)?;
        let prefix = if prefix.as_ref().is_empty() {
            None
        } else {
            Some(&prefix)
        };
        let listing = match self.store.list_with_delimiter(prefix).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(storage_error(e)),
        };
        let mut entries: Vec<FileEntry> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .map(|name| FileEntry {
                name,
                is_dir: true,
                size: None,
            })
            .chain(listing.objects.iter().filter_map(|o| {
                o.location.filename().map(|name| FileEntry {
                    name: name.to_string(),
                    is_dir: false,
                    size: Some(o.size),
                })
            }))
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Whether anything lies below `dir`.
    pub async fn is_dir(&self, dir: &RelPath) -> Result<bool> {
        if dir.is_root() {
            return Ok(true);
        }
        Ok(!self.list(dir).await?.is_empty())
    }

    /// Streams a file, or the part of it in `range`.
    pub async fn get(&self, file: &RelPath, range: Option<Range<u64>>) -> Result<Download> {
        self.check_local(file)?;
        if let Some(root) = &self.local_root {
            return local_get(&root.join(file.as_str()), range).await;
        }
        let path = self.object_path(file)?;
        let opts = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&path, opts)
            .await
            .map_err(storage_error)?;
        let size = result.meta.size;
        let served = result.range.clone();
        Ok(Download {
            size,
            range: range.map(|_| served),
            stream: result.into_stream().boxed(),
        })
    }

    /// Writes a file from a stream; readers see either the old file or the whole new one.
    pub async fn put<S, E>(&self, file: &RelPath, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.check_local(file)?;
        let path = self.object_path(file)?;
        if let Some(root) = &self.local_root {
            if root.join(file.as_str()).is_dir() {
                return Err(MlflowError::invalid(format!(
                    "Invalid artifact path '{}': it is a directory",
                    file.as_str()
                )));
            }
        }
        if let Some(uploader) = &self.gcs_uploader {
            return uploader.put(path.as_ref(), body).await;
        }
        // Small files go up in one request; larger ones stream through a multipart upload.
        // Both are atomic: readers never see a partial object under the final name.
        let mut body = body;
        let mut head: Vec<u8> = Vec::new();
        let mut total = 0u64;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    total += chunk.len() as u64;
                    head.extend_from_slice(&chunk);
                    if head.len() >= SINGLE_PUT_LIMIT {
                        break;
                    }
                }
                Some(Err(e)) => return Err(interrupted(e)),
                None => {
                    self.store
                        .put(&path, PutPayload::from(head))
                        .await
                        .map_err(write_error)?;
                    return Ok(total);
                }
            }
        }
        let upload = self.store.put_multipart(&path).await.map_err(write_error)?;
        let mut writer = WriteMultipart::new(upload);
        writer.write(&head);
        drop(head);
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    total += chunk.len() as u64;
                    writer.wait_for_capacity(4).await.map_err(write_error)?;
                    writer.write(&chunk);
                }
                Some(Err(e)) => {
                    let _ = writer.abort().await;
                    return Err(interrupted(e));
                }
                None => break,
            }
        }
        writer.finish().await.map_err(write_error)?;
        Ok(total)
    }

    /// Deletes a file, or a directory with everything below it.
    pub async fn delete(&self, target: &RelPath) -> Result<()> {
        if target.is_root() {
            return Err(MlflowError::invalid("Refusing to delete the artifact root"));
        }
        self.check_local(target)?;
        let path = self.object_path(target)?;
        let mut deleted = false;
        let children: Vec<ObjPath> = self
            .store
            .list(Some(&path))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                other => Err(storage_error(other)),
            })?;
        for child in children {
            self.store.delete(&child).await.map_err(storage_error)?;
            deleted = true;
        }
        match self.store.delete(&path).await {
            Ok(()) => deleted = true,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(storage_error(e)),
        }
        if let Some(root) = &self.local_root {
            let dir = root.join(target.as_str());
            if dir.is_dir() && std::fs::remove_dir_all(&dir).is_ok() {
                deleted = true;
            }
        }
        if !deleted {
            return Err(MlflowError::not_found(format!(
                "No artifact at '{}'",
                target.as_str()
            )));
        }
        Ok(())
    }

    /// The local directory of this root, if it is on local disk.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }
}

/// Azure credentials from the variables MLflow reads: a connection string
/// (`AZURE_STORAGE_CONNECTION_STRING`, which also names an emulator's endpoint) or an
/// account key (`AZURE_STORAGE_ACCESS_KEY`).
fn azure_builder(account: &str) -> MicrosoftAzureBuilder {
    let mut builder = MicrosoftAzureBuilder::from_env().with_account(account);
    if let Ok(key) = std::env::var("AZURE_STORAGE_ACCESS_KEY") {
        builder = builder.with_access_key(key);
    }
    if let Ok(conn) = std::env::var("AZURE_STORAGE_CONNECTION_STRING") {
        for part in conn.split(';') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            match k.trim() {
                "AccountName" => builder = builder.with_account(v.trim()),
                "AccountKey" => builder = builder.with_access_key(v.trim()),
                "BlobEndpoint" => {
                    builder = builder
                        .with_endpoint(v.trim().to_string())
                        .with_allow_http(v.trim().starts_with("http://"));
                }
                _ => {}
            }
        }
    }
    builder
}

/// Local files are read directly with large buffers: object_store's local reader hands out
/// 8 KiB chunks, which caps a download well below the disk's speed.
async fn local_get(path: &FsPath, range: Option<Range<u64>>) -> Result<Download> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let missing = || MlflowError::not_found("The artifact does not exist");
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => {
            return Err(MlflowError::internal(format!(
                "cannot read the artifact: {e}"
            )))
        }
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| MlflowError::internal(format!("cannot read the artifact: {e}")))?;
    if !meta.is_file() {
        return Err(missing());
    }
    let size = meta.len();
    let served = match &range {
        Some(r) => {
            let r = r.start.min(size)..r.end.min(size);
            file.seek(std::io::SeekFrom::Start(r.start))
                .await
                .map_err(|e| MlflowError::internal(format!("cannot read the artifact: {e}")))?;
            r
        }
        None => 0..size,
    };
    let reader = file.take(served.end - served.start);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_err(|e| {
        object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        }
    });
    Ok(Download {
        size,
        range: range.map(|_| served),
        stream: stream.boxed(),
    })
}
