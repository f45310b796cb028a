//! MLflow's AI gateway configuration: secrets (provider credentials, encrypted at rest, see
//! [`crypto`]), model definitions (a provider's model plus the secret to call it with),
//! endpoints (named routes to one or more model definitions, with traffic split and
//! fallback), and bindings (which MLflow resource, e.g. a scorer, uses which endpoint).
//! [`providers`] answers the UI's provider catalogue.
//!
//! Secret values never leave the server: replies carry masked values only.

pub mod crypto;
pub mod providers;

use std::collections::BTreeMap;

use crate::domain::traces::pyjson::PyValue;
use crate::error::{MlflowError, Result};

/// A secret's metadata as replies carry it (never the value).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretInfo {
    pub secret_id: String,
    pub secret_name: String,
    pub masked_values: BTreeMap<String, String>,
    pub created_at: i64,
    pub last_updated_at: i64,
    pub provider: Option<String>,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub auth_config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelDefinition {
    pub model_definition_id: String,
    pub name: String,
    pub secret_id: Option<String>,
    pub secret_name: Option<String>,
    pub provider: String,
    pub model_name: String,
    pub created_at: i64,
    pub last_updated_at: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
}

/// How an endpoint uses a model definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    Primary,
    Fallback,
}

impl Linkage {
    pub fn as_str(self) -> &'static str {
        match self {
            Linkage::Primary => "PRIMARY",
            Linkage::Fallback => "FALLBACK",
        }
    }

    /// The wire name or proto number; MLflow treats an unset linkage as PRIMARY's default.
    pub fn parse(value: &serde_json::Value) -> Result<Self> {
        match value {
            serde_json::Value::Null => Ok(Linkage::Primary),
            serde_json::Value::String(s) if s == "PRIMARY" => Ok(Linkage::Primary),
            serde_json::Value::String(s) if s == "FALLBACK" => Ok(Linkage::Fallback),
            serde_json::Value::Number(n) if n.as_i64() == Some(1) => Ok(Linkage::Primary),
            serde_json::Value::Number(n) if n.as_i64() == Some(2) => Ok(Linkage::Fallback),
            other => Err(MlflowError::invalid_value("linkage_type", other)),
        }
    }
}

/// One model of an endpoint as a request gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub model_definition_id: String,
    pub linkage: Linkage,
    pub weight: f64,
    pub fallback_order: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub mapping_id: String,
    pub endpoint_id: String,
    pub model_definition_id: String,
    pub model_definition: Option<ModelDefinition>,
    pub weight: f64,
    pub linkage: Linkage,
    pub fallback_order: Option<i64>,
    pub created_at: i64,
    pub created_by: Option<String>,
}

/// An endpoint's fallback settings (`fallback_config_json`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fallback {
    /// `SEQUENTIAL`, the one strategy MLflow knows.
    pub strategy: Option<String>,
    pub max_attempts: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub last_updated_at: i64,
    pub mappings: Vec<Mapping>,
    pub tags: Vec<(String, Option<String>)>,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub routing_strategy: Option<String>,
    pub fallback: Option<Fallback>,
    pub experiment_id: Option<String>,
    pub usage_tracking: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub endpoint_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub created_at: i64,
    pub last_updated_at: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub display_name: Option<String>,
}

/// The resource types MLflow lets bind to an endpoint.
pub const RESOURCE_TYPES: &[&str] = &["scorer"];

/// The tags MLflow puts on the experiment it creates for an endpoint's usage tracking.
pub const EXPERIMENT_SOURCE_TYPE_TAG: &str = "mlflow.experiment.sourceType";
pub const EXPERIMENT_SOURCE_ID_TAG: &str = "mlflow.experiment.sourceId";
pub const EXPERIMENT_IS_GATEWAY_TAG: &str = "mlflow.experiment.isGateway";

/// Masks one credential for display: the first three and last four characters, or `***`
/// for values shorter than eight characters (so short values leak nothing).
pub fn mask_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 8 {
        return "***".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

pub fn mask_values(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), mask_value(v)))
        .collect()
}

/// The text MLflow encrypts for a secret value: Python's `json.dumps` of the map, keys in
/// the order given.
pub fn secret_plaintext(values: &[(String, String)]) -> String {
    PyValue::Dict(
        values
            .iter()
            .map(|(k, v)| (k.clone(), PyValue::Str(v.clone())))
            .collect(),
    )
    .dumps(true)
}

/// MLflow's rule for endpoint names: letters, digits, `_`, `-` and `.` only (they appear in
/// URLs).
pub fn validate_endpoint_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(MlflowError::invalid(format!(
            "Invalid endpoint name '{name}'. Name can only contain letters, numbers, \
             underscores, hyphens, and dots."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_mlflow() {
        assert_eq!(mask_value("AKIATEST1234"), "AKI...1234");
        assert_eq!(mask_value("secret123abc"), "sec...3abc");
        assert_eq!(mask_value("short"), "***");
    }

    #[test]
    fn plaintext_is_python_json_dumps() {
        let v = vec![
            ("api_key".to_string(), "sk-\"x\"".to_string()),
            ("b".to_string(), "é".to_string()),
        ];
        assert_eq!(
            secret_plaintext(&v),
            r#"{"api_key": "sk-\"x\"", "b": "\u00e9"}"#
        );
    }

    #[test]
    fn endpoint_names() {
        assert!(validate_endpoint_name("my-endpoint_1.0").is_ok());
        assert!(validate_endpoint_name("bad name").is_err());
        assert!(validate_endpoint_name("a/b").is_err());
    }
}
