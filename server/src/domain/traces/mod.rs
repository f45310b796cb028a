//! MLflow 3 tracing: traces, spans and their rules, free of HTTP and SQL.
//!
//! [`otlp`] decodes OTLP export requests into spans, [`span`] turns a span into the row
//! MLflow stores (and stored content back into OpenTelemetry JSON), [`translate`] applies
//! MLflow's GenAI attribute translations, [`aggregate`] derives trace-level values from a
//! batch of spans, and [`pyjson`] writes JSON byte for byte as Python's `json.dumps` does,
//! so that rows this server writes are the rows the Python server writes.

pub mod aggregate;
pub mod metrics;
pub mod otlp;
pub mod pyjson;
pub mod span;
pub mod translate;

use crate::error::{MlflowError, Result};

/// MLflow trace ids are `tr-` and the 32 hex digits of the OpenTelemetry trace id.
pub const TRACE_ID_PREFIX: &str = "tr-";

// Span attributes (`SpanAttributeKey`).
pub const REQUEST_ID_ATTRIBUTE: &str = "mlflow.traceRequestId";
pub const SPAN_TYPE: &str = "mlflow.spanType";
pub const INPUTS: &str = "mlflow.spanInputs";
pub const OUTPUTS: &str = "mlflow.spanOutputs";
pub const CHAT_USAGE: &str = "mlflow.chat.tokenUsage";
pub const LLM_COST: &str = "mlflow.llm.cost";
pub const MODEL: &str = "mlflow.llm.model";
pub const MODEL_PROVIDER: &str = "mlflow.llm.provider";

// Trace tags (`TraceTagKey`) and metadata (`TraceMetadataKey`).
pub const TAG_TRACE_NAME: &str = "mlflow.traceName";
pub const TAG_SPANS_LOCATION: &str = "mlflow.trace.spansLocation";
pub const TAG_ARTIFACT_LOCATION: &str = "mlflow.artifactLocation";
pub const TAG_ARCHIVE_LOCATION: &str = "mlflow.trace.archiveLocation";
pub const TAG_ARCHIVAL_FAILURE: &str = "mlflow.trace.archivalFailure";
pub const TAG_LINKED_PROMPTS: &str = "mlflow.linkedPrompts";
pub const SPANS_IN_TRACKING_STORE: &str = "TRACKING_STORE";
pub const META_SOURCE_RUN: &str = "mlflow.sourceRun";
pub const META_INFO_FINALIZED: &str = "mlflow.trace.infoFinalized";
pub const META_SESSION: &str = "mlflow.trace.session";
pub const META_USER: &str = "mlflow.trace.user";
pub const META_TOKEN_USAGE: &str = "mlflow.trace.tokenUsage";
pub const META_COST: &str = "mlflow.trace.cost";

/// Trace tag values longer than this are cut (keys follow the run-tag rules).
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
/// Longest trace name (kept in `trace_info.trace_name`).
pub const MAX_TRACE_NAME_LENGTH: usize = 4096;

/// A trace's state (`TraceState`), as the `trace_info.status` column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceState {
    Unspecified,
    Ok,
    Error,
    InProgress,
}

impl TraceState {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceState::Unspecified => "STATE_UNSPECIFIED",
            TraceState::Ok => "OK",
            TraceState::Error => "ERROR",
            TraceState::InProgress => "IN_PROGRESS",
        }
    }

    /// From the column, or from a v2 `TraceStatus` name.
    pub fn parse(s: &str) -> Option<TraceState> {
        match s {
            "STATE_UNSPECIFIED" | "TRACE_STATUS_UNSPECIFIED" => Some(TraceState::Unspecified),
            "OK" => Some(TraceState::Ok),
            "ERROR" => Some(TraceState::Error),
            "IN_PROGRESS" => Some(TraceState::InProgress),
            _ => None,
        }
    }

    /// The v2 `TraceStatus` name.
    pub fn v2_name(self) -> &'static str {
        match self {
            TraceState::Unspecified => "TRACE_STATUS_UNSPECIFIED",
            other => other.as_str(),
        }
    }
}

/// Trace metadata as the trace-info response carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceInfo {
    pub trace_id: String,
    pub experiment_id: String,
    pub request_time: i64,
    pub execution_duration: Option<i64>,
    pub state: TraceState,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub client_request_id: Option<String>,
    pub trace_metadata: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub assessments: Vec<crate::domain::assessments::Assessment>,
}

impl TraceInfo {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A trace with its spans rendered as OpenTelemetry JSON.
#[derive(Debug, Clone)]
pub struct Trace {
    pub info: TraceInfo,
    pub spans: Vec<serde_json::Value>,
}

/// MLflow's tag-name rule (`_validate_tag_name`) plus the trace-tag length limits; the value
/// is cut, not refused, past its limit.
pub fn validate_tag(key: &str, value: &str) -> Result<(String, String)> {
    use crate::domain::validation::{validate_key, KeyKind};
    validate_key(KeyKind::Tag, key)?;
    let value: String = value.chars().take(MAX_TAG_VALUE_LENGTH).collect();
    Ok((key.to_string(), value))
}

/// A trace name, refused past [`MAX_TRACE_NAME_LENGTH`].
pub fn validate_trace_name(name: &str) -> Result<()> {
    if name.chars().count() > MAX_TRACE_NAME_LENGTH {
        return Err(MlflowError::invalid(format!(
            "Trace name exceeds the maximum length of {MAX_TRACE_NAME_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Tags the trace-tag endpoints may not set (and, but one, not delete): the server keeps them.
pub fn check_tag_mutation(key: &str, deleting: bool) -> Result<()> {
    let blocked = [
        TAG_SPANS_LOCATION,
        TAG_ARCHIVE_LOCATION,
        TAG_ARCHIVAL_FAILURE,
    ];
    if blocked.contains(&key) && !(deleting && key == TAG_ARCHIVAL_FAILURE) {
        let op = if deleting { "deleted" } else { "set" };
        return Err(MlflowError::invalid(format!(
            "Tag '{key}' is immutable and cannot be {op} on a trace."
        )));
    }
    Ok(())
}
