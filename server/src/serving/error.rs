//! Errors: [`ServingError`] for what stops a command (resolving, downloading, loading a
//! model), [`ScoringError`] for one `/invocations` request, answered with MLflow's error JSON
//! (`error_code`, `message`, `sqlstate`, `error_class`), as the Python scoring server does.

use std::path::Path;

use serde::Serialize;

use crate::client::ClientError;

/// Why `models serve|predict|...` cannot go on; `Display` is the one line printed.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error("invalid model URI {uri}: {reason}")]
    Uri { uri: String, reason: String },
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("registered model '{name}' has no version{}", stage.as_ref().map(|s| format!(" in stage {s}")).unwrap_or_default())]
    NoVersion { name: String, stage: Option<String> },
    #[error("unexpected answer from the tracking server to {what}: {reason}")]
    Remote { what: String, reason: String },
    #[error("{0}")]
    Model(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A model needs Python and none is usable; the message says what to install or set.
    #[error("{0}")]
    Python(String),
    #[error("{0}")]
    Unsupported(String),
}

impl ServingError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ServingError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// An error answer of the scoring server.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoringError {
    #[serde(skip)]
    pub status: u16,
    pub error_code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<&'static str>,
}

impl ScoringError {
    /// MLflow's `MlflowInvalidInputException`: "Invalid input. ..." with BAD_REQUEST.
    pub fn invalid_input(message: impl AsRef<str>) -> Self {
        Self::bad_request(format!("Invalid input. {}", message.as_ref()))
    }

    /// BAD_REQUEST as MLflow classifies it.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ScoringError {
            status: 400,
            error_code: "BAD_REQUEST",
            message: message.into(),
            sqlstate: Some("KAM00"),
            error_class: Some("INVALID_PARAMETER_VALUE"),
        }
    }

    /// A failed schema enforcement.
    pub fn schema(message: impl Into<String>) -> Self {
        ScoringError {
            status: 400,
            error_code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
            sqlstate: Some("KAM01"),
            error_class: Some("SCHEMA_ENFORCEMENT_FAILED"),
        }
    }

    /// Our own failures (a worker that died, a model that errs natively).
    pub fn internal(message: impl Into<String>) -> Self {
        ScoringError {
            status: 500,
            error_code: "INTERNAL_ERROR",
            message: message.into(),
            sqlstate: None,
            error_class: None,
        }
    }

    /// MLflow's `json.dumps` form (", " and ": " separators).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        let mut field = |k: &str, v: &str| {
            if out.len() > 1 {
                out.push_str(", ");
            }
            out.push_str(&serde_json::to_string(k).unwrap_or_default());
            out.push_str(": ");
            out.push_str(&serde_json::to_string(v).unwrap_or_default());
        };
        field("error_code", self.error_code);
        field("message", &self.message);
        if let Some(s) = self.sqlstate {
            field("sqlstate", s);
        }
        if let Some(c) = self.error_class {
            field("error_class", c);
        }
        out.push('}');
        out
    }
}
