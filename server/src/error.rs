//! The one error type of the server: an MLflow error code plus a message.
//!
//! Everything below the HTTP layer returns [`MlflowError`]; `http::error` maps the code
//! to a status and MLflow's JSON body in one place.

use std::fmt;

/// MLflow's `ErrorCode` names that this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    BadRequest,
    EndpointNotFound,
    InvalidState,
    InternalError,
    TemporarilyUnavailable,
    NotImplemented,
    RequestLimitExceeded,
}

impl ErrorCode {
    /// The name MLflow uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            Self::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            Self::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            Self::BadRequest => "BAD_REQUEST",
            Self::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Self::InvalidState => "INVALID_STATE",
            Self::InternalError => "INTERNAL_ERROR",
            Self::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
        }
    }

    /// HTTP status for the code. `INVALID_STATE` is a user error here (400), not MLflow's 500,
    /// because the client retries 5xx answers for minutes.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidParameterValue
            | Self::ResourceAlreadyExists
            | Self::BadRequest
            | Self::InvalidState => 400,
            Self::ResourceDoesNotExist | Self::EndpointNotFound => 404,
            Self::RequestLimitExceeded => 413,
            Self::InternalError => 500,
            Self::NotImplemented => 501,
            Self::TemporarilyUnavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error the API reports to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct MlflowError {
    pub code: ErrorCode,
    pub message: String,
}

impl MlflowError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
    /// MLflow's request-validation error for a field of the wrong type or form, with the
    /// value as compact JSON and its Python type name, word for word as MLflow writes it.
    pub fn invalid_value(field: &str, value: &serde_json::Value) -> Self {
        let type_name = match value {
            serde_json::Value::Null => "NoneType",
            serde_json::Value::Bool(_) => "bool",
            serde_json::Value::Number(n) if n.is_f64() => "float",
            serde_json::Value::Number(_) => "int",
            serde_json::Value::String(_) => "str",
            serde_json::Value::Array(_) => "list",
            serde_json::Value::Object(_) => "dict",
        };
        Self::invalid(format!(
            "Invalid value {value} for parameter '{field}' supplied:  Hint: Value was of type \
             '{type_name}'. See the API docs for more information about request parameters."
        ))
    }
    pub fn missing(field: &str) -> Self {
        Self::invalid(format!(
            "Missing value for required parameter '{field}'. See the API docs for more \
             information about request parameters."
        ))
    }
}

/// Result alias used throughout the server.
pub type Result<T, E = MlflowError> = std::result::Result<T, E>;
