//! MLflow's input rules and size limits (`mlflow/utils/validation.py` semantics).

use crate::error::{MlflowError, Result};

pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20_000;
pub const MAX_ARTIFACT_LOCATION_LENGTH: usize = 2048;
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_DATASET_NAME_LENGTH: usize = 500;
pub const MAX_DATASET_DIGEST_LENGTH: usize = 36;
pub const MAX_DATASET_SOURCE_LENGTH: usize = 65_535;
pub const MAX_DATASET_SCHEMA_LENGTH: usize = 1_048_575;
pub const MAX_DATASET_PROFILE_LENGTH: usize = 16_777_215;
pub const MAX_INPUT_TAG_KEY_LENGTH: usize = 255;
pub const MAX_INPUT_TAG_VALUE_LENGTH: usize = 500;
pub const SEARCH_MAX_RESULTS: i64 = 50_000;

/// What kind of key is being checked, for the error message.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    Metric,
    Param,
    Tag,
}

impl KeyKind {
    fn noun(self) -> &'static str {
        match self {
            Self::Metric => "metric",
            Self::Param => "param",
            Self::Tag => "tag",
        }
    }
}

/// A name that would not survive `posixpath.normpath` unchanged (`a//b`, `./a`, `a/..`, `/a`).
fn is_path_ambiguous(name: &str) -> bool {
    name.is_empty()
        || name.starts_with('/')
        || name.ends_with('/')
        || name
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
}

/// Checks a metric, param or run-tag key.
pub fn validate_key(kind: KeyKind, key: &str) -> Result<()> {
    let allowed = key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':'));
    if !allowed {
        return Err(MlflowError::invalid(format!(
            "Invalid {} name: '{}'. Names may only contain alphanumerics, underscores (_), \
             dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
            kind.noun(),
            key
        )));
    }
    if is_path_ambiguous(key) {
        return Err(MlflowError::invalid(format!(
            "Invalid {} name: '{}'. Names cannot resolve to a different path when \
             normalized, be empty, or start with a slash.",
            kind.noun(),
            key
        )));
    }
    check_length(&format!("{} name", kind.noun()), key, MAX_ENTITY_KEY_LENGTH)
}

/// Rejects a value longer than `limit` characters.
pub fn check_length(what: &str, value: &str, limit: usize) -> Result<()> {
    let len = value.chars().count();
    if len > limit {
        let shown: String = value.chars().take(64).collect();
        return Err(MlflowError::invalid(format!(
            "{what} '{shown}...' had length {len}, which exceeded length limit of {limit}"
        )));
    }
    Ok(())
}

/// Cuts a value to `limit` characters, as MLflow does with `MLFLOW_TRUNCATE_LONG_VALUES`.
pub fn truncate(value: String, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        Some((byte, _)) => {
            tracing::warn!(limit, "value truncated to the length limit");
            value[..byte].to_string()
        }
        None => value,
    }
}

/// Run ids are uuid4 hex in practice; anything matching MLflow's regex is accepted.
pub fn validate_run_id(run_id: &str) -> Result<()> {
    let mut chars = run_id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if !first_ok || !rest_ok || run_id.len() > 256 {
        return Err(MlflowError::invalid(format!("Invalid run ID: '{run_id}'")));
    }
    Ok(())
}

/// Parses an experiment id; the SQL store needs integers.
pub fn parse_experiment_id(id: &str) -> Result<i64> {
    id.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| MlflowError::invalid(format!("Invalid experiment ID: '{id}'")))
}

pub fn validate_experiment_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(MlflowError::invalid(
            "Invalid experiment name: must be a non-empty string",
        ));
    }
    check_length("Experiment name", name, MAX_EXPERIMENT_NAME_LENGTH)
}

pub fn validate_experiment_tag(key: &str, value: &str) -> Result<()> {
    validate_key(KeyKind::Tag, key)?;
    check_length("Experiment tag value", value, MAX_EXPERIMENT_TAG_VAL_LENGTH)
}

/// Checks an experiment's `artifact_location` as MLflow does: no fragment (`#`) or path
/// parameters (`;`), no `..` in the query, not a `runs:` URI, at most 2048 characters.
pub fn validate_artifact_location(location: &str) -> Result<()> {
    let (before_fragment, fragment) = match location.split_once('#') {
        Some((head, frag)) => (head, !frag.is_empty()),
        None => (location, false),
    };
    let (path_part, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    // `urllib.parse` splits `;params` off the last segment only for these schemes.
    const PARAM_SCHEMES: &[&str] = &[
        "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu", "sip",
        "sips", "mms", "sftp", "tel",
    ];
    let scheme = uri_scheme(location).unwrap_or("").to_ascii_lowercase();
    let last_segment = path_part.rsplit('/').next().unwrap_or("");
    let params = PARAM_SCHEMES.contains(&scheme.as_str())
        && last_segment
            .split_once(';')
            .is_some_and(|(_, p)| !p.is_empty());
    if fragment || params {
        return Err(MlflowError::invalid(
            "'artifact_location' URL can't include fragments or params.",
        ));
    }
    if percent_decode_fully(query).contains("..") {
        return Err(MlflowError::invalid("Invalid query string"));
    }
    if location.starts_with("runs:") {
        return Err(MlflowError::invalid(format!(
            "Artifact location cannot be a runs:/ URI. Given: '{location}'"
        )));
    }
    check_length("Artifact location", location, MAX_ARTIFACT_LOCATION_LENGTH)
}

/// Decodes percent-escapes until the text stops changing (at most 10 rounds, as MLflow).
fn percent_decode_fully(text: &str) -> String {
    let mut current = text.to_string();
    for _ in 0..10 {
        let next = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// The URI scheme of `uri` as `urllib.parse` finds it (`None` for a plain path).
fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// A relative local artifact location made absolute against `cwd`, as MLflow's SQL store
/// does (`my_location` → `<cwd>/my_location`, `file:rel` → `file://<cwd>/rel`); any other
/// location is returned unchanged.
pub fn resolve_local_location(location: &str, cwd: &std::path::Path) -> String {
    let join = |relative: &str| {
        let mut path = cwd.to_path_buf();
        for segment in relative.split('/').filter(|s| !s.is_empty() && *s != ".") {
            path.push(segment);
        }
        path.to_string_lossy().into_owned()
    };
    match uri_scheme(location) {
        None if !location.starts_with('/') => join(location),
        Some(scheme) if scheme.eq_ignore_ascii_case("file") => {
            let rest = &location[scheme.len() + 1..];
            if rest.starts_with('/') {
                location.to_string()
            } else {
                format!("{scheme}://{}", join(rest))
            }
        }
        _ => location.to_string(),
    }
}

/// Checks a metric's timestamp and step.
pub fn validate_metric(key: &str, timestamp: i64) -> Result<()> {
    validate_key(KeyKind::Metric, key)?;
    if timestamp < 0 {
        return Err(MlflowError::invalid(format!(
            "Got invalid timestamp {timestamp} for metric '{key}'. Timestamp must be a \
             nonnegative long (64-bit integer)"
        )));
    }
    Ok(())
}

/// Checks `max_results` of a search request.
pub fn validate_max_results(value: i64, limit: i64) -> Result<()> {
    if value < 1 || value > limit {
        return Err(MlflowError::invalid(format!(
            "Invalid value {value} for parameter 'max_results' supplied. It must be at \
             least 1 and at most {limit}."
        )));
    }
    Ok(())
}

/// Python's repr of a str, as MLflow's messages quote values.
pub fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_locations_resolve_against_the_working_directory() {
        let cwd = std::path::Path::new("/srv/mlflow");
        assert_eq!(
            resolve_local_location("my_location", cwd),
            "/srv/mlflow/my_location"
        );
        assert_eq!(resolve_local_location("./a//b/", cwd), "/srv/mlflow/a/b");
        assert_eq!(
            resolve_local_location("file:rel/x", cwd),
            "file:///srv/mlflow/rel/x"
        );
        for kept in [
            "/abs/path",
            "file:///abs",
            "s3://bucket/x",
            "mlflow-artifacts:/x",
            "gs://b",
        ] {
            assert_eq!(resolve_local_location(kept, cwd), kept);
        }
    }

    #[test]
    fn artifact_locations_follow_mlflow_rules() {
        validate_artifact_location("s3://bucket/path?versionId=3").unwrap();
        validate_artifact_location("/abs/a;b/c").unwrap();
        validate_artifact_location("s3://b/x;kept").unwrap();
        for bad in [
            "s3://b/x#frag",
            "https://h/x;params",
            "/a/b;p",
            "s3://b/x?q=..%2f",
            "runs:/abc/x",
        ] {
            assert!(validate_artifact_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_follow_mlflow_rules() {
        for ok in ["acc", "val/loss", "a.b-c d:e", "ünïcode_1"] {
            validate_key(KeyKind::Metric, ok).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "./a", "a/../b", "..", "a\\b", "a;b", "x'y", "a\nb",
        ] {
            assert!(validate_key(KeyKind::Param, bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(KeyKind::Tag, &"k".repeat(250)).is_ok());
        assert!(validate_key(KeyKind::Tag, &"k".repeat(251)).is_err());
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo".into(), 2), "hé");
        assert_eq!(truncate("abc".into(), 5), "abc");
    }

    #[test]
    fn ids_are_checked() {
        validate_run_id("0123abcd").unwrap();
        assert!(validate_run_id("").is_err());
        assert!(validate_run_id("-x").is_err());
        assert!(validate_run_id("a'; drop table runs; --").is_err());
        assert_eq!(parse_experiment_id("12").unwrap(), 12);
        assert!(parse_experiment_id("x").is_err());
        assert!(parse_experiment_id("-1").is_err());
    }

    #[test]
    fn max_results_bounds() {
        assert!(validate_max_results(0, 100).is_err());
        assert!(validate_max_results(101, 100).is_err());
        validate_max_results(100, 100).unwrap();
    }
}
