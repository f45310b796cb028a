//! Writes to Google Cloud Storage through its JSON API.
//!
//! `object_store` reads, lists and deletes GCS objects well, but writes them through the XML
//! API (a plain object PUT, XML multipart uploads). Google's own client libraries upload
//! through the JSON API instead, and so do we: one `uploadType=media` request for a small
//! file, a resumable upload session for a large one, streamed in chunks so memory stays flat.
//! An object appears only when its upload completes, so readers never see a partial file.
//! The JSON upload API is also what every GCS emulator serves, which lets CI test uploads
//! for real (fake-gcs-server and gcp-storage-emulator implement neither XML write).

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::gcp::GcpCredentialProvider;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

use crate::error::{ErrorCode, MlflowError, Result};

/// Files up to this size go up in one request.
const SINGLE_REQUEST_LIMIT: usize = 8 * 1024 * 1024;
/// Bytes per request of a resumable upload; GCS wants a multiple of 256 KiB.
const CHUNK: usize = 32 * 256 * 1024;

/// Uploads objects into one bucket.
pub struct Uploader {
    http: reqwest::Client,
    /// `https://storage.googleapis.com`, or an emulator's address.
    base: String,
    bucket: String,
    credentials: GcpCredentialProvider,
}

fn failed(what: &str, detail: impl std::fmt::Display) -> MlflowError {
    tracing::warn!(error = %detail, "GCS {what} failed");
    MlflowError::new(
        ErrorCode::TemporarilyUnavailable,
        format!("Artifact storage failed: GCS {what}: {detail}"),
    )
}

fn interrupted(e: impl std::fmt::Display) -> MlflowError {
    MlflowError::invalid(format!("The upload was interrupted: {e}"))
}

impl Uploader {
    pub fn new(base: &str, bucket: &str, credentials: GcpCredentialProvider) -> Result<Self> {
        let http = reqwest::Client::builder()
            // A 308 here means "resume incomplete", not a redirect to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed("client", e))?;
        Ok(Uploader {
            http,
            base: base.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            credentials,
        })
    }

    fn upload_url(&self, kind: &str, name: &str) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o?uploadType={kind}&name={}",
            self.base,
            utf8_percent_encode(&self.bucket, NON_ALPHANUMERIC),
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        )
    }

    /// The request with the OAuth bearer token, when there is one (emulators have none).
    async fn authorized(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| failed("credentials", e))?;
        Ok(if credential.bearer.is_empty() {
            req
        } else {
            req.bearer_auth(&credential.bearer)
        })
    }

    /// Sends a request with the credentials; `what` names the step in errors.
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response> {
        self.authorized(req)
            .await?
            .send()
            .await
            .map_err(|e| failed(what, e))
    }

    /// Writes object `name` from a stream; returns the number of bytes written.
    pub async fn put<S, E>(&self, name: &str, mut body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    if buf.len() > SINGLE_REQUEST_LIMIT {
                        return self.put_resumable(name, buf, body).await;
                    }
                }
                Some(Err(e)) => return Err(interrupted(e)),
                None => {
                    let len = buf.len() as u64;
                    let req = self
                        .http
                        .post(self.upload_url("media", name))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(buf);
                    let resp = self.send(req, "upload").await?;
                    expect_success(resp, "upload").await?;
                    return Ok(len);
                }
            }
        }
    }

    async fn put_resumable<S, E>(&self, name: &str, mut buf: Vec<u8>, mut body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let session = self.start_session(name).await?;
        let mut sent = 0u64;
        loop {
            while buf.len() >= CHUNK {
                let rest = buf.split_off(CHUNK);
                self.send_chunk(&session, sent, std::mem::replace(&mut buf, rest), None)
                    .await?;
                sent += CHUNK as u64;
            }
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.cancel(&session).await;
                    return Err(interrupted(e));
                }
                None => break,
            }
        }
        let total = sent + buf.len() as u64;
        self.send_chunk(&session, sent, buf, Some(total)).await?;
        Ok(total)
    }

    async fn start_session(&self, name: &str) -> Result<String> {
        let req = self
            .http
            .post(self.upload_url("resumable", name))
            .header("X-Upload-Content-Type", "application/octet-stream")
            .header(CONTENT_LENGTH, 0);
        let resp = self.send(req, "upload session").await?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        expect_success(resp, "upload session").await?;
        location.ok_or_else(|| failed("upload session", "no session URL in the answer"))
    }

    /// Sends bytes `start..` of the object; `total` is known only with the last chunk.
    async fn send_chunk(
        &self,
        session: &str,
        start: u64,
        data: Vec<u8>,
        total: Option<u64>,
    ) -> Result<()> {
        let range = match (data.is_empty(), total) {
            (true, Some(t)) => format!("bytes */{t}"),
            (_, t) => format!(
                "bytes {start}-{}/{}",
                start + data.len() as u64 - 1,
                t.map_or("*".to_string(), |t| t.to_string())
            ),
        };
        let req = self
            .http
            .put(session)
            .header(CONTENT_RANGE, range)
            .body(data);
        let resp = self.send(req, "upload").await?;
        // 308: GCS has the bytes so far and waits for more.
        if total.is_none() && resp.status() == StatusCode::PERMANENT_REDIRECT {
            return Ok(());
        }
        expect_success(resp, "upload").await
    }

    /// Abandons an upload session, so nothing of it is ever visible; best effort.
    async fn cancel(&self, session: &str) {
        if let Ok(req) = self.authorized(self.http.delete(session)).await {
            let _ = req.send().await;
        }
    }
}

async fn expect_success(resp: reqwest::Response, what: &str) -> Result<()> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(300).collect();
    Err(failed(what, format!("{status}: {text}")))
}
