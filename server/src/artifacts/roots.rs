//! Which artifact locations this server reads and writes itself, and where they live.
//!
//! Runs and logged models record an artifact location. The UI's routes (`/get-artifact`,
//! `upload-artifact`, `artifacts/list`, logged-model artifacts) act on that location from
//! the server, as MLflow's do. Unlike MLflow, which opens whatever URI the row holds, this
//! server only touches locations inside the stores its operator configured:
//!
//! * a proxied location (`mlflow-artifacts:/...`, or an `http(s)` URL of the artifact route)
//!   resolves into the `--artifacts-destination` store;
//! * a location at or below `--default-artifact-root` (a local directory, `file://`, `s3://`,
//!   `gs://`, Azure) resolves into that root, opened on first use.
//!
//! Anything else (a location a client named when creating an experiment, say `file:///etc`)
//! is refused, so a client cannot make the server read or write arbitrary places.

use std::sync::{Arc, OnceLock};

use super::path::proxied_location;
use super::{ArtifactRepo, RelPath};
use crate::error::{MlflowError, Result};

/// A location resolved into a store: the store and the path of the location inside it.
pub struct Located {
    pub repo: ArtifactRepo,
    pub path: RelPath,
}

/// The server's own artifact stores.
#[derive(Clone)]
pub struct ServedRoots {
    /// The proxied store (`--artifacts-destination`); `None` with `--no-serve-artifacts`.
    proxied: Option<ArtifactRepo>,
    /// `--default-artifact-root` as a plain URI (no `file:` scheme for local paths).
    default_root: String,
    default_repo: Arc<OnceLock<std::result::Result<ArtifactRepo, String>>>,
}

/// `file:///x` and `file:/x` as the path `/x`; every other URI unchanged. Trailing `/` dropped.
fn plain(uri: &str) -> &str {
    let local = uri
        .strip_prefix("file://")
        .filter(|rest| rest.starts_with('/'))
        .or_else(|| {
            uri.strip_prefix("file:")
                .filter(|rest| rest.starts_with('/'))
        });
    let text = local.unwrap_or(uri);
    match text.trim_end_matches('/') {
        "" => text,
        trimmed => trimmed,
    }
}

/// The part of `uri` below `root`: `Some("")` for the root itself, `None` outside it.
fn below<'a>(uri: &'a str, root: &str) -> Option<&'a str> {
    let rest = uri.strip_prefix(root)?;
    if rest.is_empty() {
        return Some("");
    }
    if root.ends_with('/') {
        return Some(rest);
    }
    rest.strip_prefix('/')
}

fn outside(uri: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Artifacts stored at '{uri}' are outside this server's artifact stores; they are not \
         served"
    ))
}

impl ServedRoots {
    pub fn new(proxied: Option<ArtifactRepo>, default_artifact_root: &str) -> Self {
        ServedRoots {
            proxied,
            default_root: plain(default_artifact_root).to_string(),
            default_repo: Arc::new(OnceLock::new()),
        }
    }

    /// The proxied store, if this server serves one.
    pub fn proxied(&self) -> Option<&ArtifactRepo> {
        self.proxied.as_ref()
    }

    /// Where the artifact location `uri` lives. A proxied location needs the proxied store
    /// (503 with `--no-serve-artifacts`, as MLflow); a location outside every store is a
    /// 400, whatever it points to.
    pub fn locate(&self, uri: &str) -> Result<Located> {
        if let Some(inner) = proxied_location(uri) {
            let repo = self.proxied.clone().ok_or_else(|| {
                MlflowError::new(
                    crate::error::ErrorCode::TemporarilyUnavailable,
                    "This server does not serve artifacts (started with --no-serve-artifacts).",
                )
            })?;
            return Ok(Located {
                repo,
                path: RelPath::parse(inner).map_err(|_| outside(uri))?,
            });
        }
        if proxied_location(&self.default_root).is_some() {
            return Err(outside(uri));
        }
        let rest = below(plain(uri), &self.default_root).ok_or_else(|| outside(uri))?;
        let path = RelPath::parse(rest).map_err(|_| outside(uri))?;
        let repo = self
            .default_repo
            .get_or_init(|| ArtifactRepo::open(&self.default_root).map_err(|e| e.message))
            .clone()
            .map_err(|why| {
                MlflowError::new(
                    crate::error::ErrorCode::TemporarilyUnavailable,
                    format!("The default artifact root cannot be opened: {why}"),
                )
            })?;
        Ok(Located { repo, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_below_the_default_root() {
        assert_eq!(plain("file:///srv/mlruns/"), "/srv/mlruns");
        assert_eq!(plain("file:/srv/mlruns"), "/srv/mlruns");
        assert_eq!(plain("s3://b/p/"), "s3://b/p");
        assert_eq!(
            below("/srv/mlruns/1/r/artifacts", "/srv/mlruns"),
            Some("1/r/artifacts")
        );
        assert_eq!(below("/srv/mlruns", "/srv/mlruns"), Some(""));
        assert_eq!(below("/srv/mlruns2/x", "/srv/mlruns"), None);
        assert_eq!(below("s3://b/p/1", "s3://b"), Some("p/1"));
        assert_eq!(below("s3://bb/p", "s3://b"), None);
    }

    #[test]
    fn refuses_what_is_outside() {
        let roots = ServedRoots::new(None, "s3://bucket/base");
        for uri in [
            "file:///etc",
            "s3://bucket/basex/1",
            "s3://bucket/base/../other",
            "s3://other/base/1",
            "gs://bucket/base/1",
        ] {
            assert!(roots.locate(uri).is_err(), "{uri}");
        }
        let located = roots.locate("s3://bucket/base/1/abc/artifacts").unwrap();
        assert_eq!(located.path.as_str(), "1/abc/artifacts");
        assert!(roots.locate("mlflow-artifacts:/1/x").is_err());
    }
}
