//! Artifact paths as clients send them, checked before anything touches storage.
//!
//! MLflow's Python server has a long history of path-traversal bugs in its artifact
//! handlers. Every path here is percent-decoded (twice, so that `%252e%252e` is seen as
//! `..`) and refused when any form of it could leave the artifact root.

use percent_encoding::percent_decode_str;

use crate::error::{MlflowError, Result};

/// A relative artifact path that stays inside its root: non-empty `/`-separated segments,
/// none of them `.` or `..`, with no character that could change its meaning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelPath(String);

fn invalid(raw: &str, why: &str) -> MlflowError {
    let shown: String = raw.chars().take(200).collect();
    MlflowError::invalid(format!(
        "Invalid artifact path '{}': {why}",
        shown.escape_debug()
    ))
}

fn check_form(raw: &str, text: &str) -> Result<()> {
    if text.starts_with('/') {
        return Err(invalid(raw, "absolute paths are not allowed"));
    }
    for (c, why) in [
        ('\\', "backslashes are not allowed"),
        (';', "';' is not allowed"),
        ('#', "'#' is not allowed"),
        ('\0', "NUL bytes are not allowed"),
        ('?', "'?' is not allowed"),
    ] {
        if text.contains(c) {
            return Err(invalid(raw, why));
        }
    }
    if text.contains('\u{FFFD}') {
        return Err(invalid(raw, "not valid UTF-8"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(raw, "control characters are not allowed"));
    }
    let bytes = text.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(invalid(raw, "drive letters are not allowed"));
    }
    for segment in text.split('/') {
        if segment == ".." || segment == "." {
            return Err(invalid(raw, "'.' and '..' segments are not allowed"));
        }
        if segment.trim() != segment && segment.trim().chars().all(|c| c == '.') {
            return Err(invalid(raw, "dot segments with spaces are not allowed"));
        }
    }
    Ok(())
}

impl RelPath {
    /// Checks a path that has already been percent-decoded once (by the router or the query
    /// parser). A trailing `/` is tolerated; empty segments are not.
    pub fn parse(raw: &str) -> Result<Self> {
        check_form(raw, raw)?;
        // A second decoding catches double-encoded traversal.
        let once = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| invalid(raw, "not valid UTF-8 after decoding"))?;
        if once != raw {
            check_form(raw, &once)?;
            let twice = percent_decode_str(&once)
                .decode_utf8()
                .map_err(|_| invalid(raw, "not valid UTF-8 after decoding"))?;
            check_form(raw, &twice)?;
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Ok(RelPath(String::new()));
        }
        if trimmed.split('/').any(str::is_empty) {
            return Err(invalid(raw, "empty path segments are not allowed"));
        }
        Ok(RelPath(trimmed.to_string()))
    }

    /// The path for a file to write: it must name a file, not the root.
    pub fn parse_file(raw: &str) -> Result<Self> {
        let path = Self::parse(raw)?;
        if path.is_root() || raw.ends_with('/') {
            return Err(invalid(raw, "the path must end with a file name"));
        }
        Ok(path)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// `self/child`, for a child that is itself a checked path.
    pub fn join(&self, child: &RelPath) -> RelPath {
        match (self.is_root(), child.is_root()) {
            (true, _) => child.clone(),
            (_, true) => self.clone(),
            _ => RelPath(format!("{}/{}", self.0, child.0)),
        }
    }

    /// Whether `self` lies at or below `base`.
    pub fn starts_with(&self, base: &RelPath) -> bool {
        base.is_root()
            || self.0 == base.0
            || (self.0.starts_with(&base.0) && self.0.as_bytes().get(base.0.len()) == Some(&b'/'))
    }
}

/// The route every proxied artifact URL goes through.
const PROXY_ROUTE: &str = "/api/2.0/mlflow-artifacts/artifacts/";

/// Where a proxied artifact location lives in this server's artifact store, as MLflow resolves
/// it: the path of `mlflow-artifacts:/p` or `mlflow-artifacts://host/p`, or the part after
/// `/api/2.0/mlflow-artifacts/artifacts/` of an `http(s)` URL (whatever its host: MLflow
/// treats every such URL as its own). `None` for any other location. The result is still
/// unchecked text: parse it with [`RelPath::parse`] before use.
pub fn proxied_location(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    let path = if scheme.eq_ignore_ascii_case("mlflow-artifacts") {
        match rest.strip_prefix("//") {
            Some(authority_and_path) => authority_and_path
                .find('/')
                .map_or("", |i| &authority_and_path[i..]),
            None => rest,
        }
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        let after = rest.strip_prefix("//")?;
        let path = &after[after.find('/')?..];
        &path[path.find(PROXY_ROUTE)? + PROXY_ROUTE.len()..]
    } else {
        return None;
    };
    Some(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths an attacker might send (after the router's one decoding).
    pub const HOSTILE: &[&str] = &[
        "..",
        "../etc/passwd",
        "a/../../etc/passwd",
        "a/..",
        "./a",
        "a/./b",
        "/etc/passwd",
        "//etc/passwd",
        "a\\..\\..\\etc",
        "..\\etc",
        "C:\\Windows",
        "c:/windows",
        "%2e%2e/etc/passwd",
        "%2E%2E%2Fetc%2Fpasswd",
        "..%2fetc%2fpasswd",
        "%252e%252e/etc",
        "%252e%252e%252fetc",
        "a/%2e%2e/%2e%2e/etc",
        "a;/../b",
        "a;b",
        "a#b",
        "a%23b",
        "a%3bb",
        "a\0b",
        "a%00b",
        "a/b\n",
        "a%0d%0ab",
        "a//b",
        "%2fetc%2fpasswd",
        "%5c..%5c..%5cetc",
        "a/%5c..",
        ". /a",
        "a/ ..",
        "a/.. /b",
        "a?b",
        "a%3f..",
        "..;/a",
        "a/..;/b",
        "%c0%ae%c0%ae/etc",
        "a/../",
    ];

    #[test]
    fn hostile_paths_are_refused() {
        for p in HOSTILE {
            assert!(RelPath::parse(p).is_err(), "accepted {p:?}");
        }
    }

    #[test]
    fn ordinary_paths_are_kept() {
        for p in [
            "a",
            "a/b.txt",
            "0/abc/artifacts/model/MLmodel",
            "dir/",
            "x y/é.png",
            "a..b",
            "...x",
        ] {
            RelPath::parse(p).unwrap();
        }
        assert!(RelPath::parse("").unwrap().is_root());
        assert_eq!(RelPath::parse("a/b/").unwrap().as_str(), "a/b");
        assert!(RelPath::parse_file("dir/").is_err());
        assert!(RelPath::parse_file("").is_err());
    }

    #[test]
    fn proxied_locations_resolve_like_mlflow() {
        assert_eq!(
            proxied_location("mlflow-artifacts:/0/r/artifacts"),
            Some("0/r/artifacts")
        );
        assert_eq!(
            proxied_location("mlflow-artifacts://h:5000/0/r"),
            Some("0/r")
        );
        assert_eq!(proxied_location("mlflow-artifacts:"), Some(""));
        assert_eq!(
            proxied_location(
                "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
            ),
            Some("1/r/artifacts")
        );
        assert_eq!(
            proxied_location("https://h/prefix/api/2.0/mlflow-artifacts/artifacts/x"),
            Some("x")
        );
        assert_eq!(proxied_location("http://h/api/2.0/other/x"), None);
        assert_eq!(proxied_location("file:///tmp/x"), None);
        assert_eq!(proxied_location("s3://b/x"), None);
        assert_eq!(proxied_location("relative/path"), None);
    }

    #[test]
    fn prefix_checks_respect_segments() {
        let base = RelPath::parse("0/run1/artifacts").unwrap();
        assert!(RelPath::parse("0/run1/artifacts/x")
            .unwrap()
            .starts_with(&base));
        assert!(!RelPath::parse("0/run10/artifacts")
            .unwrap()
            .starts_with(&base));
        assert!(!RelPath::parse("0/run1/artifactsx")
            .unwrap()
            .starts_with(&base));
    }
}
