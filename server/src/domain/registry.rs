//! Model-registry rules that need neither HTTP nor SQL: names, versions, stages, aliases
//! and tags. A model version's `source` has its own module, [`super::source`].

use super::validation::{check_length, validate_key, KeyKind};
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
/// Width of `model_versions.source` (and `storage_location`) in MLflow's schema.
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
}
