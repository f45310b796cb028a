//! A model version's `source`: which strings MLflow 3.17.2 accepts and refuses (handlers.py's
//! `_create_model_version` and the checks it calls, store/artifact/host_policy.py), without
//! touching anything.
//!
//! MLflow accepts remote locations (`s3://`, `gs://`, ...), `runs:/` and `models:/` forms, and
//! local or proxied locations inside the named run's or logged model's artifact root; it
//! refuses relative path references and hosts other than the server's own storage. This
//! server accepts and refuses the same, but is safe for a different reason than a check: a
//! source is only ever stored and handed back. Nothing here or above it opens a path, resolves
//! a symlink or fetches a URL named by a source (paths are compared lexically where MLflow
//! calls `Path.resolve()`), and artifact downloads only ever read this server's own store.

use percent_encoding::percent_decode_str;

use crate::error::{MlflowError, Result};

/// A URI split as Python's `urllib.parse.urlsplit` splits it (query and fragment dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriParts {
    /// Lower-cased; empty for a plain path.
    pub scheme: String,
    /// The authority after `//`, if the URI has one (possibly empty).
    pub netloc: Option<String>,
    pub path: String,
}

impl UriParts {
    pub fn parse(uri: &str) -> UriParts {
        // urlsplit drops leading C0 controls and spaces, and every tab and newline.
        let cleaned: String = uri
            .trim_start_matches(|c: char| c <= ' ')
            .chars()
            .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
            .collect();
        let mut rest = cleaned.as_str();
        let mut scheme = String::new();
        if let Some(i) = rest.find(':') {
            let candidate = &rest[..i];
            let valid = candidate
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && candidate
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if valid {
                scheme = candidate.to_ascii_lowercase();
                rest = &rest[i + 1..];
            }
        }
        let mut netloc = None;
        if let Some(after) = rest.strip_prefix("//") {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            netloc = Some(after[..end].to_string());
            rest = &after[end..];
        }
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        UriParts {
            scheme,
            netloc,
            path: rest[..end].to_string(),
        }
    }

    fn netloc_str(&self) -> &str {
        self.netloc.as_deref().unwrap_or("")
    }

    /// The host name (lower-cased, brackets removed), as Python's `.hostname`.
    pub fn hostname(&self) -> Option<String> {
        let host_port = self.netloc_str().rsplit('@').next().unwrap_or("");
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }

    /// The port as Python's `.port`: `Ok(None)` when absent, `Err` when not a number.
    pub fn port(&self) -> std::result::Result<Option<u16>, BadPort> {
        let host_port = self.netloc_str().rsplit('@').next().unwrap_or("");
        let port = match host_port.strip_prefix('[') {
            Some(v6) => {
                let after = v6.split_once(']').map_or("", |(_, p)| p);
                after.split_once(':').map_or("", |(_, p)| p)
            }
            None => host_port.split_once(':').map_or("", |(_, p)| p),
        };
        if port.is_empty() {
            return Ok(None);
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadPort);
        }
        port.parse::<u16>().map(Some).map_err(|_| BadPort)
    }

    /// Path segments, each percent-decoded until it no longer changes (MLflow's
    /// `_normalized_uri_parts`).
    fn decoded_segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| unquote_fully(s, false))
            .collect()
    }
}

/// A port that is not a number from 0 to 65535 (Python's `.port` raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPort;

/// Percent-decodes until nothing changes (and `+` as a space when `plus`); invalid UTF-8
/// becomes U+FFFD, as Python's `unquote` does.
pub fn unquote_fully(text: &str, plus: bool) -> String {
    let mut current = text.to_string();
    // Each round shortens the text, so this ends; the bound is a belt.
    for _ in 0..64 {
        let spaced = if plus {
            current.replace('+', " ")
        } else {
            current.clone()
        };
        let decoded = percent_decode_str(&spaced).decode_utf8_lossy().into_owned();
        if decoded == current {
            break;
        }
        current = decoded;
    }
    current
}

/// A `models:/` URI as MLflow's `_parse_model_uri` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/<model_id>`.
    LoggedModel(String),
    Version {
        name: String,
        version: String,
    },
    Stage {
        name: String,
        stage: String,
    },
    Latest {
        name: String,
    },
    Alias {
        name: String,
        alias: String,
    },
}

/// Parses `models:/...`; `None` when it is not a proper models URI.
pub fn parse_model_uri(uri: &str) -> Option<ModelUri> {
    let parts = UriParts::parse(uri);
    if parts.scheme != "models" {
        return None;
    }
    // urlparse also splits ";params" off the last segment.
    let path = parts.path.split(';').next().unwrap_or("");
    if !path.starts_with('/') || path.len() <= 1 {
        return None;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.len() > 2 || segments[0].trim().is_empty() {
        return None;
    }
    if let [name, suffix] = segments.as_slice() {
        let (name, suffix) = (name.to_string(), suffix.to_string());
        if suffix.trim().is_empty() {
            return None;
        }
        return Some(if suffix.chars().all(|c| c.is_ascii_digit()) {
            ModelUri::Version {
                name,
                version: suffix,
            }
        } else if suffix.eq_ignore_ascii_case("latest") {
            ModelUri::Latest { name }
        } else {
            ModelUri::Stage {
                name,
                stage: suffix,
            }
        });
    }
    if path.contains('@') {
        let (name, alias) = segments[0].rsplit_once('@')?;
        if alias.trim().is_empty() {
            return None;
        }
        return Some(ModelUri::Alias {
            name: name.to_string(),
            alias: alias.to_string(),
        });
    }
    Some(ModelUri::LoggedModel(segments[0].to_string()))
}

/// The run id of `runs:/<run_id>/<path>` (RunsArtifactRepository.parse_runs_uri).
pub fn runs_uri_run_id(parts: &UriParts) -> Option<String> {
    let path = parts.path.trim_start_matches('/');
    let run_id = path.split('/').next().unwrap_or("");
    (!run_id.is_empty()).then(|| run_id.to_string())
}

/// MLflow's `is_local_uri` for a source: a plain path, or `file:` on this machine.
pub fn is_local(source: &str, parts: &UriParts) -> Result<bool> {
    match parts.scheme.as_str() {
        "" => Ok(true),
        "file" => match parts.hostname() {
            Some(h) if h != "." && !h.starts_with("localhost") && !h.starts_with("127.0.0.1") => {
                Err(MlflowError::invalid(format!(
                    "{} is not a valid remote uri. For remote access on windows, please \
                     consider using a different scheme such as SMB (e.g. \
                     smb://<hostname>/<path>).",
                    shown(source)
                )))
            }
            _ => Ok(true),
        },
        _ => Ok(false),
    }
}

/// The filesystem path a local source names (`file:` URIs percent-decoded), absolute
/// against `cwd` and normalised lexically; `None` when `..` would climb above the root.
pub fn local_path(uri: &str, cwd: &str) -> Option<Vec<String>> {
    let raw = if uri.starts_with("file:") {
        percent_decode_str(&UriParts::parse(uri).path)
            .decode_utf8_lossy()
            .into_owned()
    } else {
        uri.to_string()
    };
    let joined = if raw.starts_with('/') {
        raw
    } else {
        format!("{cwd}/{raw}")
    };
    let mut out: Vec<String> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s.to_string()),
        }
    }
    Some(out)
}

/// MLflow's `_validate_non_local_source_contains_relative_paths`: after decoding, the path
/// must be absolute and already normal (no `.`/`..` segments, no NUL). MLflow compares with
/// `Path.resolve()`, which also reads symlinks on the server; this comparison is lexical.
pub fn has_relative_path_references(source: &str) -> bool {
    let decoded = unquote_fully(source, true);
    let path = UriParts::parse(&decoded).path;
    let path = path.split(';').next().unwrap_or("").trim_end_matches('/');
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    if collapsed.contains('\0') || decoded.split('/').any(|p| p == "..") {
        return true;
    }
    !collapsed.starts_with('/') || collapsed.split('/').any(|s| s == "." || s == "..")
}

/// Whether a source names the proxied artifact store: `mlflow-artifacts:` or an http(s) URL
/// of the `/api/2.0/mlflow-artifacts/artifacts` route.
pub fn is_mlflow_artifacts(parts: &UriParts) -> bool {
    if parts.scheme == "mlflow-artifacts" {
        return true;
    }
    let route = ["api", "2.0", "mlflow-artifacts", "artifacts"];
    matches!(parts.scheme.as_str(), "http" | "https")
        && parts
            .decoded_segments()
            .windows(route.len())
            .any(|w| w.iter().zip(route).all(|(a, b)| a == b))
}

/// MLflow's `_is_uri_within_root`: same scheme and authority, and the root's decoded path
/// segments are a prefix of the source's.
pub fn is_uri_within_root(source: &str, root: &str) -> bool {
    let (s, r) = (UriParts::parse(source), UriParts::parse(root));
    let (s_parts, r_parts) = (s.decoded_segments(), r.decoded_segments());
    s.scheme == r.scheme
        && s.netloc_str().eq_ignore_ascii_case(r.netloc_str())
        && !r_parts.is_empty()
        && s_parts.starts_with(&r_parts)
}

/// Schemes whose artifact repositories connect to the host named in the URI.
const HOST_ADDRESSED: [&str; 10] = [
    "ftp",
    "sftp",
    "hdfs",
    "viewfs",
    "http",
    "https",
    "mlflow-artifacts",
    "r2",
    "b2",
    "abfss",
];

/// One host a URI makes a client connect to: scheme family, host, port.
type Target = (String, String, Option<u16>);

/// The hosts `uri` would make MLflow connect to (host_policy.py's
/// `host_addressed_uri_targets`); `None` when the scheme addresses no host.
fn host_targets(uri: &str) -> Option<Vec<Target>> {
    let parts = UriParts::parse(uri);
    let scheme = parts.scheme.as_str();
    if !HOST_ADDRESSED.contains(&scheme) {
        return None;
    }
    let netloc = parts.netloc.clone();
    if scheme == "mlflow-artifacts" && netloc.as_deref().unwrap_or("").is_empty() {
        return None;
    }
    let netloc = netloc.unwrap_or_default();
    let malformed = || vec![("malformed".to_string(), netloc.clone(), None)];
    if netloc.contains('\\') || netloc.chars().any(char::is_whitespace) {
        return Some(malformed());
    }
    let Ok(port) = parts.port() else {
        return Some(malformed());
    };
    let family = match scheme {
        "viewfs" => "hdfs",
        "https" | "mlflow-artifacts" => "http",
        s => s,
    };
    let host = parts.hostname().unwrap_or_default();
    let ports: Vec<Option<u16>> = match port {
        Some(p) => vec![Some(p)],
        None => match scheme {
            "ftp" => vec![Some(21)],
            "sftp" => vec![Some(22)],
            "http" => vec![Some(80)],
            "https" | "r2" | "b2" | "abfss" => vec![Some(443)],
            "mlflow-artifacts" => vec![Some(80), Some(443)],
            _ => vec![None],
        },
    };
    Some(
        ports
            .into_iter()
            .map(|p| (family.to_string(), host.clone(), p))
            .collect(),
    )
}

/// What the operator trusts: the hosts of the server's own artifact locations, and
/// `MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES`.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    trusted: Vec<Target>,
    allowed_schemes: Vec<String>,
}

impl HostPolicy {
    pub fn new(own_locations: &[&str], allowed_schemes: &str) -> HostPolicy {
        HostPolicy {
            trusted: own_locations
                .iter()
                .filter_map(|uri| host_targets(uri))
                .flatten()
                .collect(),
            allowed_schemes: allowed_schemes
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    /// MLflow's `_validate_artifact_uri_scheme(uri, field)`.
    pub fn check(&self, uri: &str, field: &str) -> Result<()> {
        let Some(targets) = host_targets(uri) else {
            return Ok(());
        };
        let scheme = UriParts::parse(uri).scheme;
        if self.allowed_schemes.contains(&scheme)
            || targets.iter().any(|t| self.trusted.contains(t))
        {
            return Ok(());
        }
        Err(MlflowError::invalid(format!(
            "'{field}' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host \
             other than the tracking server's configured artifact storage, so the server would \
             connect to the host named in the URI. Set the \
             MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES environment variable on the server \
             to allow it."
        )))
    }
}

/// A source as shown in an error message: bounded and with control characters escaped.
pub fn shown(source: &str) -> String {
    source
        .chars()
        .take(300)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

/// `Invalid model version source: '...'. The <field> request parameter must identify the
/// resource that contains the source.`
pub fn must_identify(source: &str, field: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Invalid model version source: '{}'. The {field} request parameter must identify the \
         resource that contains the source.",
        shown(source)
    ))
}

/// The refusal of a source with relative path references.
pub fn relative_path_error(source: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Invalid model version source: '{}'. If supplying a source as an http, https, local \
         file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be \
         provided without relative path references present. Please provide an absolute path.",
        shown(source)
    ))
}

/// The refusal of a local source outside the run's (or logged model's) artifact directory.
pub fn local_source_error(source: &str, field: &str, owner: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Invalid model version source: '{}'. To use a local path as a model version source, \
         the {field} request parameter has to be specified and the local path has to be \
         contained within the artifact directory of the {owner} specified by the {field}.",
        shown(source)
    ))
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
