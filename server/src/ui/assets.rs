//! The files of an installed bundle as the server sends them: read once, with their
//! content type, a strong ETag, a cache policy, and gzip and brotli variants made on first
//! demand. The bundle never changes under a running server (an install renames a complete
//! folder into place), so everything read is kept.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A bundle folder and what has been read of it.
#[derive(Debug)]
pub struct Bundle {
    root: PathBuf,
    files: Mutex<HashMap<String, Arc<Asset>>>,
}

/// One file, ready to send.
#[derive(Debug)]
pub struct Asset {
    pub body: Bytes,
    pub content_type: String,
    pub etag: String,
    pub cache_control: &'static str,
    gzip: OnceLock<Option<Bytes>>,
    brotli: OnceLock<Option<Bytes>>,
}

/// A content coding the client accepts and we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    pub fn name(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// Names with a content hash (`main.c2f5f8d4.js`, `7720.1cbd9501.chunk.js`) never change
/// content, so browsers may keep them for a year without asking again.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The rest (index.html, favicon, manifest) are revalidated with their ETag.
const REVALIDATE: &str = "no-cache";

/// Smaller bodies gain nothing from compression.
const MIN_COMPRESSED: usize = 1024;

impl Bundle {
    pub fn new(root: PathBuf) -> Self {
        Bundle {
            root,
            files: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Compresses the files every page load needs (index.html and the entry points listed
    /// in asset-manifest.json), so that the first visitor does not wait for it. Blocking.
    pub fn warm(&self) {
        let manifest = std::fs::read(self.root.join("asset-manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let entrypoints = manifest
            .as_ref()
            .and_then(|m| m["entrypoints"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str());
        for rel in std::iter::once(super::INDEX).chain(entrypoints) {
            if let Some(asset) = self.get(rel) {
                asset.encoded(Coding::Brotli);
                asset.encoded(Coding::Gzip);
            }
        }
    }

    /// The file at `rel` (a `/`-separated path inside the bundle), or `None` when there is no
    /// such file or the path tries to leave the bundle.
    pub fn get(&self, rel: &str) -> Option<Arc<Asset>> {
        if let Some(hit) = self.files.lock().ok()?.get(rel) {
            return Some(hit.clone());
        }
        let path = self.resolve(rel)?;
        let body = std::fs::read(&path).ok()?;
        let asset = Arc::new(Asset::new(rel, Bytes::from(body)));
        self.files
            .lock()
            .ok()?
            .insert(rel.to_string(), asset.clone());
        Some(asset)
    }

    fn resolve(&self, rel: &str) -> Option<PathBuf> {
        let rel = Path::new(rel);
        let plain = rel.components().all(|c| match c {
            Component::Normal(part) => {
                let part = part.to_string_lossy();
                !part.starts_with('.') && !part.contains(['\\', '\0'])
            }
            _ => false,
        });
        if !plain || rel.as_os_str().is_empty() {
            return None;
        }
        let path = self.root.join(rel);
        // A symbolic link inside the bundle must not lead out of it.
        let real = path.canonicalize().ok()?;
        let root = self.root.canonicalize().ok()?;
        (real.starts_with(&root) && real.is_file()).then_some(real)
    }
}

impl Asset {
    fn new(rel: &str, body: Bytes) -> Self {
        let digest = Sha256::digest(&body);
        let etag = format!(
            "\"{}\"",
            digest[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Asset {
            content_type: content_type(rel),
            cache_control: if is_hashed(rel) {
                IMMUTABLE
            } else {
                REVALIDATE
            },
            etag,
            body,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    fn compressible(&self) -> bool {
        let t = self.content_type.as_str();
        self.body.len() >= MIN_COMPRESSED
            && (t.starts_with("text/")
                || t.starts_with("application/json")
                || t.starts_with("application/javascript")
                || t.starts_with("image/svg")
                || t.starts_with("application/manifest"))
    }

    /// The body in `coding`, compressed once and kept; `None` when not worth compressing.
    /// Blocking: call it off the async runtime's threads.
    pub fn encoded(&self, coding: Coding) -> Option<Bytes> {
        if !self.compressible() {
            return None;
        }
        let slot = match coding {
            Coding::Brotli => &self.brotli,
            Coding::Gzip => &self.gzip,
        };
        slot.get_or_init(|| compress(&self.body, coding).map(Bytes::from))
            .clone()
    }

    /// Whether `encoded` would do work (so the caller can skip a thread hop).
    pub fn has_encoding(&self, coding: Coding) -> bool {
        let slot = match coding {
            Coding::Brotli => &self.brotli,
            Coding::Gzip => &self.gzip,
        };
        !self.compressible() || slot.get().is_some()
    }
}

fn compress(body: &[u8], coding: Coding) -> Option<Vec<u8>> {
    match coding {
        Coding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            enc.write_all(body).ok()?;
            enc.finish().ok()
        }
        Coding::Brotli => {
            // Quality 5: close to gzip's speed, about 15% smaller; 11 takes seconds per MB.
            let mut out = Vec::new();
            {
                let mut enc = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                enc.write_all(body).ok()?;
                enc.flush().ok()?;
            }
            Some(out)
        }
    }
}

/// The coding to use given an Accept-Encoding header: brotli, else gzip, else none.
pub fn negotiate(accept_encoding: &str) -> Option<Coding> {
    let accepts = |name: &str| {
        accept_encoding.split(',').any(|item| {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            token.eq_ignore_ascii_case(name) && !refused
        })
    };
    if accepts("br") {
        Some(Coding::Brotli)
    } else if accepts("gzip") {
        Some(Coding::Gzip)
    } else {
        None
    }
}

fn is_hashed(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.split('.').count() >= 3
        && name
            .split('.')
            .any(|part| part.len() >= 8 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn content_type(rel: &str) -> String {
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let mime = match ext {
        // mime_guess has no entry for ES modules' extension (pdf.js's worker).
        "js" | "mjs" => "text/javascript".to_string(),
        "map" => "application/json".to_string(),
        _ => mime_guess::from_ext(ext)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
    };
    if mime.starts_with("text/") || mime == "application/json" {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_immutable() {
        assert!(is_hashed("static/js/main.c2f5f8d4.js"));
        assert!(is_hashed("static/js/7720.1cbd9501.chunk.js"));
        assert!(is_hashed(
            "static/media/pdf.worker.min.16b289c2599c81a29db9.mjs"
        ));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("manifest.json"));
        assert!(!is_hashed("favicon.ico"));
    }

    #[test]
    fn encodings_are_negotiated() {
        assert_eq!(negotiate("gzip, deflate, br, zstd"), Some(Coding::Brotli));
        assert_eq!(negotiate("gzip"), Some(Coding::Gzip));
        assert_eq!(negotiate("br;q=0, gzip;q=0.5"), Some(Coding::Gzip));
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate(""), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("a/main.1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.png"), "image/png");
        assert_eq!(content_type("x.woff2"), "font/woff2");
        assert_eq!(content_type("x.json"), "application/json; charset=utf-8");
    }

    #[test]
    fn paths_stay_inside_the_bundle() {
        let bundle = Bundle::new(std::env::temp_dir());
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../x",
            ".hidden",
            "",
            "a\\b",
        ] {
            assert!(bundle.resolve(bad).is_none(), "{bad}");
        }
    }
}
