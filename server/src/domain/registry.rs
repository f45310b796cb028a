//! Model-registry rules that need neither HTTP nor SQL: names, versions, stages, aliases,
//! tags, and the syntax of a model version's `source`.
//!
//! `source` is hostile input: a client may name any string, and MLflow's own server has had
//! several path-traversal bugs around it. [`parse_source`] accepts only the forms that point
//! into this server's own stores (`models:/m-…`, `models:/<name>/<version>`, `runs:/<run>/…`,
//! `mlflow-artifacts:/…`, or a plain location that the service later proves lies inside a
//! run's or logged model's artifact location); every form is checked raw and after one and
//! two rounds of percent-decoding. Nothing here (or above it) ever opens the path or fetches
//! the URL: a source is only ever stored and handed back.

use percent_encoding::percent_decode_str;

use super::validation::{check_length, validate_key, validate_run_id, KeyKind};
use crate::error::{MlflowError, Result};

/// The stages a version can be in, in MLflow's order.
pub const ALL_STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

/// The stage a deleted version is parked in; it is hidden from every read.
pub const STAGE_DELETED_INTERNAL: &str = "Deleted_Internal";

/// The tag that marks a registered model (or its versions) as a prompt.
pub const IS_PROMPT_TAG_KEY: &str = "mlflow.prompt.is_prompt";

pub const MAX_REGISTRY_TAG_KEY_LENGTH: usize = 250;
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_ALIAS_LENGTH: usize = 255;
/// Column widths of MLflow's schema: PostgreSQL and MySQL refuse longer values (SQLite
/// keeps them, so there they are not enforced, as with MLflow's server).
pub const MAX_MODEL_NAME_LENGTH: usize = 256;
pub const MAX_DESCRIPTION_LENGTH: usize = 5000;
pub const MAX_RUN_LINK_LENGTH: usize = 500;
pub const MAX_MODEL_TAG_COLUMN_LENGTH: usize = 5000;
/// A cap on `source` on every backend: it is hostile input, and no store-internal URI
/// comes near it.
pub const MAX_SOURCE_LENGTH: usize = 500;

/// The canonical spelling of a stage given in any case.
pub fn canonical_stage(stage: &str) -> Result<&'static str> {
    ALL_STAGES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .copied()
        .ok_or_else(|| {
            MlflowError::invalid(format!(
                "Invalid Model Version stage: {stage}. Value must be one of {}.",
                ALL_STAGES.join(", ")
            ))
        })
}

/// Whether `archive_existing_versions` may be used with this (canonical) stage.
pub fn is_active_stage(stage: &str) -> bool {
    matches!(stage, "Staging" | "Production")
}

/// Checks a registered-model name (MLflow's `_validate_model_name`).
pub fn validate_model_name(name: &str, field: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(MlflowError::invalid(format!(
            "Missing value for required parameter '{field}'."
        )));
    }
    if name.contains(['/', ':']) {
        return Err(MlflowError::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    // Without '/', only these forms would resolve to another name as a file path.
    if name == "." || name.starts_with("..") {
        return Err(MlflowError::invalid(format!(
            "Invalid value {} for parameter '{field}' supplied: Names may be treated as files \
             in certain cases, and must not resolve to other names when treated as such.",
            serde_json::Value::String(name.to_string())
        )));
    }
    Ok(())
}

/// Parses a version number given as a string.
pub fn parse_version(version: &str) -> Result<i64> {
    version.trim().parse::<i64>().map_err(|_| {
        MlflowError::invalid(format!(
            "Parameter 'version' must be an integer, got '{version}'."
        ))
    })
}

/// Checks an alias name; `for_set` also refuses the reserved names.
pub fn validate_alias(alias: &str, for_set: bool) -> Result<()> {
    if alias.is_empty() {
        return Err(MlflowError::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(MlflowError::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores \
             (_), and dashes (-)."
        )));
    }
    check_length("Registered model alias name", alias, MAX_ALIAS_LENGTH)?;
    if for_set {
        if alias.eq_ignore_ascii_case("latest") {
            return Err(MlflowError::invalid(
                "'latest' alias name (case insensitive) is reserved.",
            ));
        }
        let mut chars = alias.chars();
        if matches!(chars.next(), Some('v' | 'V'))
            && alias.len() > 1
            && chars.all(|c| c.is_ascii_digit())
        {
            return Err(MlflowError::invalid(format!(
                "Version alias name '{alias}' is reserved."
            )));
        }
    }
    Ok(())
}

/// Checks a registered-model or model-version tag.
pub fn validate_tag(key: &str, value: &str) -> Result<()> {
    validate_key(KeyKind::Tag, key)?;
    check_length("key", key, MAX_REGISTRY_TAG_KEY_LENGTH)?;
    check_length("value", value, MAX_REGISTRY_TAG_VALUE_LENGTH)
}

/// Checks an optional free-text field against its column width.
pub fn validate_text(what: &str, value: Option<&str>, limit: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check_length(what, v, limit))
}

/// What a model version's `source` names, once its syntax has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `models:/m-<id>`: a logged model of this server.
    LoggedModel { model_id: String },
    /// `models:/<name>/<version>`: another version of this registry.
    ModelVersion { name: String, version: i64 },
    /// `runs:/<run_id>[/<path>]`: a run of this server.
    Run { run_id: String },
    /// `mlflow-artifacts:/<path>`: a location in this server's proxied artifact store.
    Proxied,
    /// Anything else without traversal; accepted only when the service proves it lies
    /// inside the run's or logged model's own artifact location.
    Location,
}

fn bad_source(source: &str, why: &str) -> MlflowError {
    let shown: String = source.chars().take(200).collect();
    MlflowError::invalid(format!(
        "Invalid model version source: '{}'. {why}",
        shown.escape_debug()
    ))
}

/// Refuses characters and path segments that could change what a path means.
fn check_form(source: &str, text: &str) -> Result<()> {
    for (c, why) in [
        ('\\', "Backslashes are not allowed."),
        ('#', "Fragments ('#') are not allowed."),
        ('?', "Query strings ('?') are not allowed."),
        (';', "';' is not allowed."),
    ] {
        if text.contains(c) {
            return Err(bad_source(source, why));
        }
    }
    if text.chars().any(char::is_control) {
        return Err(bad_source(
            source,
            "Control characters (including NUL) are not allowed.",
        ));
    }
    if text.contains('\u{FFFD}') {
        return Err(bad_source(source, "The source is not valid UTF-8."));
    }
    if text
        .split('/')
        .any(|seg| seg == ".." || seg == "." || seg.trim() == ".." || seg.trim() == ".")
    {
        return Err(bad_source(
            source,
            "Relative path references ('.' or '..') are not allowed.",
        ));
    }
    Ok(())
}

/// Runs [`check_form`] on the raw source and on its decoded forms; a source that still
/// decodes to something new after two rounds is refused outright.
fn check_all_forms(source: &str) -> Result<()> {
    check_form(source, source)?;
    let mut current = source.to_string();
    for round in 0..3 {
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| bad_source(source, "The source is not valid UTF-8 once decoded."))?
            .into_owned();
        if decoded == current {
            return Ok(());
        }
        if round == 2 {
            return Err(bad_source(
                source,
                "Nested percent-encoding is not allowed.",
            ));
        }
        check_form(source, &decoded)?;
        current = decoded;
    }
    Ok(())
}

/// The path part after `scheme:/`, which must not start with another `/` (no authority) and
/// must have no empty segments.
fn rooted_path<'a>(source: &str, rest: &'a str) -> Result<&'a str> {
    if rest.starts_with('/') {
        return Err(bad_source(
            source,
            "URIs with an authority ('scheme://host') are not allowed.",
        ));
    }
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    if trimmed.is_empty() || trimmed.split('/').any(str::is_empty) {
        return Err(bad_source(source, "Empty path segments are not allowed."));
    }
    Ok(trimmed)
}

/// Checks the syntax of a model version's `source` and says what it names.
pub fn parse_source(source: &str) -> Result<Source> {
    if source.is_empty() {
        return Err(MlflowError::missing("source"));
    }
    if source.chars().count() > MAX_SOURCE_LENGTH {
        return Err(bad_source(
            source,
            &format!("Sources are limited to {MAX_SOURCE_LENGTH} characters."),
        ));
    }
    if source.trim() != source {
        return Err(bad_source(
            source,
            "Leading or trailing whitespace is not allowed.",
        ));
    }
    check_all_forms(source)?;
    if let Some(rest) = source.strip_prefix("models:/") {
        let path = rooted_path(source, rest)?;
        let parts: Vec<&str> = path.split('/').collect();
        return match parts.as_slice() {
            [id] if is_logged_model_id(id) => Ok(Source::LoggedModel {
                model_id: (*id).to_string(),
            }),
            [name, version]
                if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) =>
            {
                validate_model_name(name, "source")?;
                Ok(Source::ModelVersion {
                    name: (*name).to_string(),
                    version: parse_version(version)?,
                })
            }
            _ => Err(bad_source(
                source,
                "A models:/ source must be models:/<model_id> or models:/<name>/<version>.",
            )),
        };
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let path = rooted_path(source, rest)?;
        let run_id = path.split('/').next().unwrap_or("");
        validate_run_id(run_id).map_err(|_| bad_source(source, "The run ID is not valid."))?;
        return Ok(Source::Run {
            run_id: run_id.to_string(),
        });
    }
    if let Some(rest) = source.strip_prefix("mlflow-artifacts:/") {
        rooted_path(source, rest)?;
        return Ok(Source::Proxied);
    }
    if (source.contains("//") && !source.contains("://")) || source.matches("//").count() > 1 {
        return Err(bad_source(source, "Empty path segments are not allowed."));
    }
    Ok(Source::Location)
}

fn is_logged_model_id(id: &str) -> bool {
    id.strip_prefix("m-").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Whether `source` is `location` or lies below it, compared segment-wise on the stored
/// text (a percent-encoded variant of the location does not count). `file://` and plain
/// absolute paths are treated alike.
pub fn is_within(source: &str, location: &str) -> bool {
    fn norm(s: &str) -> &str {
        let s = s.strip_prefix("file://").unwrap_or(s);
        s.strip_suffix('/').unwrap_or(s)
    }
    let (src, root) = (norm(source), norm(location));
    // A bare scheme (`s3:`) or an empty root is no location at all.
    if root.is_empty() || root.ends_with(':') {
        return false;
    }
    src == root
        || src.strip_prefix(root).is_some_and(|rest| {
            rest.strip_prefix('/')
                .is_some_and(|tail| !tail.is_empty() && !tail.starts_with('/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_case_insensitive() {
        assert_eq!(canonical_stage("production").unwrap(), "Production");
        assert_eq!(canonical_stage("STAGING").unwrap(), "Staging");
        assert_eq!(canonical_stage("none").unwrap(), "None");
        assert_eq!(canonical_stage("Archived").unwrap(), "Archived");
        assert!(canonical_stage("prod").is_err());
        assert!(canonical_stage("Deleted_Internal").is_err());
        assert!(is_active_stage("Staging") && !is_active_stage("Archived"));
    }

    #[test]
    fn names_versions_aliases() {
        validate_model_name("my-model v2", "name").unwrap();
        for bad in ["", "  ", "a/b", "a:b", ".", "..", "..x"] {
            assert!(validate_model_name(bad, "name").is_err(), "{bad:?}");
        }
        assert_eq!(parse_version("12").unwrap(), 12);
        assert!(parse_version("1.5").is_err());
        assert!(parse_version("x").is_err());
        validate_alias("champion", true).unwrap();
        validate_alias("latest", false).unwrap();
        for bad in ["", "a b", "a/b", "latest", "LATEST", "v1", "V12"] {
            assert!(validate_alias(bad, true).is_err(), "{bad:?}");
        }
        validate_alias("v", true).unwrap();
        validate_alias("version1", true).unwrap();
    }

    #[test]
    fn accepted_sources() {
        assert_eq!(
            parse_source("models:/m-0123abcd").unwrap(),
            Source::LoggedModel {
                model_id: "m-0123abcd".into()
            }
        );
        assert_eq!(
            parse_source("models:/my model/3").unwrap(),
            Source::ModelVersion {
                name: "my model".into(),
                version: 3
            }
        );
        assert_eq!(
            parse_source("runs:/abc123/model").unwrap(),
            Source::Run {
                run_id: "abc123".into()
            }
        );
        assert_eq!(
            parse_source("mlflow-artifacts:/0/abc/artifacts/model").unwrap(),
            Source::Proxied
        );
        assert_eq!(
            parse_source("/srv/mlruns/0/abc/artifacts/model").unwrap(),
            Source::Location
        );
    }

    #[test]
    fn hostile_sources_are_rejected() {
        for bad in [
            "",
            " runs:/abc/model",
            "runs:/abc/../../etc/passwd",
            "runs:/abc/%2e%2e/%2e%2e/etc",
            "runs:/abc/%252e%252e/etc",
            "runs:/abc/%25252e%25252e/etc",
            "runs:/abc/model#frag",
            "runs:/abc/model?x=1",
            "runs:/abc/a\\..\\b",
            "runs:/abc/a%5c..%5cb",
            "runs:/abc/a%00b",
            "runs:/abc//model",
            "runs://host/abc/model",
            "runs:/../abc",
            "models:/m-123/../x",
            "models:/m-../x",
            "models://m-123",
            "models:/name/latest/extra",
            "mlflow-artifacts://evil.example/0/x",
            "mlflow-artifacts:/0/../../../etc",
            "mlflow-artifacts:/0/..%2f..%2fetc",
            "mlflow-artifacts:/%c0%ae%c0%ae/etc",
            "//proc/self/environ",
            "/tmp/./x",
        ] {
            assert!(parse_source(bad).is_err(), "{bad:?}");
        }
        assert!(parse_source(&format!("runs:/abc/{}", "a".repeat(600))).is_err());
    }

    #[test]
    fn containment() {
        assert!(is_within(
            "/srv/mlruns/0/r/artifacts/model",
            "/srv/mlruns/0/r/artifacts"
        ));
        assert!(is_within("file:///srv/a/model", "/srv/a"));
        assert!(is_within(
            "mlflow-artifacts:/0/r/artifacts/m",
            "mlflow-artifacts:/0/r/artifacts"
        ));
        assert!(!is_within(
            "/srv/mlruns/0/r/artifactsX",
            "/srv/mlruns/0/r/artifacts"
        ));
        assert!(!is_within("/srv/other", "/srv/mlruns"));
        assert!(!is_within("/etc/passwd", ""));
        assert!(!is_within("s3://b/x", "s3:"));
    }
}
