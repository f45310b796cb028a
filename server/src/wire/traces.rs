//! The JSON of MLflow 3's tracing messages: `TraceInfoV3` (and the v2 `TraceInfo` of the
//! legacy endpoints), `Trace` with OpenTelemetry spans, and `Assessment`, both ways.

use serde_json::{json, Map, Value};

use super::time::{duration_from_ms, duration_to_ms, timestamp_from_ms, timestamp_to_ms};
use crate::domain::assessments::{
    standard_source_type, Assessment, AssessmentError, AssessmentValue,
};
use crate::domain::traces::pyjson::PyValue;
use crate::domain::traces::{Trace, TraceInfo, TraceState};
use crate::error::{MlflowError, Result};

/// Metadata keys and values and tag keys are cut to this on the wire; tag values to 4096.
const MAX_WIRE_METADATA: usize = 250;
const MAX_WIRE_TAG_VALUE: usize = 4096;

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn string_map(
    entries: &[(String, String)],
    key_len: usize,
    value_len: usize,
) -> Map<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (cut(k, key_len), Value::String(cut(v, value_len))))
        .collect()
}

/// `TraceInfoV3` as the v3 endpoints answer it.
pub fn trace_info_json(info: &TraceInfo) -> Value {
    let mut m = Map::new();
    m.insert("trace_id".into(), json!(info.trace_id));
    if let Some(c) = &info.client_request_id {
        m.insert("client_request_id".into(), json!(c));
    }
    m.insert(
        "trace_location".into(),
        json!({"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": info.experiment_id}}),
    );
    if let Some(p) = &info.request_preview {
        m.insert("request_preview".into(), json!(p));
    }
    if let Some(p) = &info.response_preview {
        m.insert("response_preview".into(), json!(p));
    }
    m.insert(
        "request_time".into(),
        json!(timestamp_from_ms(info.request_time)),
    );
    if let Some(d) = info.execution_duration {
        m.insert("execution_duration".into(), json!(duration_from_ms(d)));
    }
    m.insert("state".into(), json!(info.state.as_str()));
    if !info.trace_metadata.is_empty() {
        m.insert(
            "trace_metadata".into(),
            Value::Object(string_map(
                &info.trace_metadata,
                MAX_WIRE_METADATA,
                MAX_WIRE_METADATA,
            )),
        );
    }
    if !info.assessments.is_empty() {
        m.insert(
            "assessments".into(),
            Value::Array(info.assessments.iter().map(assessment_json).collect()),
        );
    }
    if !info.tags.is_empty() {
        m.insert(
            "tags".into(),
            Value::Object(string_map(
                &info.tags,
                MAX_WIRE_METADATA,
                MAX_WIRE_TAG_VALUE,
            )),
        );
    }
    Value::Object(m)
}

/// The legacy v2 `TraceInfo`.
pub fn trace_info_v2_json(info: &TraceInfo) -> Value {
    let pairs = |entries: &[(String, String)], value_len: usize| -> Vec<Value> {
        entries
            .iter()
            .map(|(k, v)| json!({"key": cut(k, MAX_WIRE_METADATA), "value": cut(v, value_len)}))
            .collect()
    };
    let mut m = Map::new();
    m.insert("request_id".into(), json!(info.trace_id));
    m.insert("experiment_id".into(), json!(info.experiment_id));
    m.insert("timestamp_ms".into(), json!(info.request_time));
    m.insert(
        "execution_time_ms".into(),
        json!(info.execution_duration.unwrap_or(0)),
    );
    m.insert("status".into(), json!(info.state.v2_name()));
    if !info.trace_metadata.is_empty() {
        m.insert(
            "request_metadata".into(),
            Value::Array(pairs(&info.trace_metadata, MAX_WIRE_METADATA)),
        );
    }
    if !info.tags.is_empty() {
        m.insert(
            "tags".into(),
            Value::Array(pairs(&info.tags, MAX_WIRE_TAG_VALUE)),
        );
    }
    Value::Object(m)
}

/// `Trace`: its info and its spans.
pub fn trace_json(trace: &Trace) -> Value {
    let mut m = Map::new();
    m.insert("trace_info".into(), trace_info_json(&trace.info));
    if !trace.spans.is_empty() {
        m.insert("spans".into(), Value::Array(trace.spans.clone()));
    }
    Value::Object(m)
}

/// A value of a `google.protobuf.Value` field: every number is a double there.
fn proto_value(value: &PyValue) -> PyValue {
    match value {
        PyValue::Int(i) => PyValue::Float(*i as f64),
        PyValue::List(items) => PyValue::List(items.iter().map(proto_value).collect()),
        PyValue::Dict(entries) => PyValue::Dict(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), proto_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub fn assessment_json(a: &Assessment) -> Value {
    let mut m = Map::new();
    m.insert("assessment_id".into(), json!(a.assessment_id));
    m.insert("assessment_name".into(), json!(a.name));
    m.insert("trace_id".into(), json!(a.trace_id));
    if let Some(s) = &a.span_id {
        m.insert("span_id".into(), json!(s));
    }
    let mut source = Map::new();
    source.insert("source_type".into(), json!(a.source_type));
    if let Some(id) = &a.source_id {
        source.insert("source_id".into(), json!(id));
    }
    m.insert("source".into(), Value::Object(source));
    m.insert(
        "create_time".into(),
        json!(timestamp_from_ms(a.create_time_ms)),
    );
    m.insert(
        "last_update_time".into(),
        json!(timestamp_from_ms(a.last_update_time_ms)),
    );
    match &a.value {
        AssessmentValue::Feedback { value, error } => {
            let mut f = Map::new();
            f.insert("value".into(), proto_value(value).to_json());
            if let Some(e) = error {
                let mut err = Map::new();
                err.insert("error_code".into(), json!(e.error_code));
                if let Some(msg) = e.error_message.as_ref().filter(|m| !m.is_empty()) {
                    err.insert("error_message".into(), json!(msg));
                }
                if let Some(st) = e.stack_trace.as_ref().filter(|s| !s.is_empty()) {
                    err.insert("stack_trace".into(), json!(st));
                }
                f.insert("error".into(), Value::Object(err));
            }
            m.insert("feedback".into(), Value::Object(f));
        }
        AssessmentValue::Expectation { value } => {
            let scalar = matches!(
                value,
                PyValue::Bool(_)
                    | PyValue::Int(_)
                    | PyValue::Float(_)
                    | PyValue::Str(_)
                    | PyValue::Null
            );
            let e = if scalar {
                json!({ "value": proto_value(value).to_json() })
            } else {
                json!({"serialized_value": {"serialization_format": "JSON_FORMAT", "value": value.dumps(true)}})
            };
            m.insert("expectation".into(), e);
        }
        AssessmentValue::Issue { issue_name } => {
            m.insert("issue".into(), json!({ "issue_name": issue_name }));
        }
    }
    if let Some(r) = &a.rationale {
        m.insert("rationale".into(), json!(r));
    }
    if let Some(meta) = a.metadata.as_ref().filter(|m| !m.is_empty()) {
        m.insert(
            "metadata".into(),
            Value::Object(
                meta.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    if let Some(o) = &a.overrides {
        m.insert("overrides".into(), json!(o));
    }
    m.insert("valid".into(), json!(a.valid));
    if let Some(r) = &a.run_id {
        m.insert("run_id".into(), json!(r));
    }
    Value::Object(m)
}

fn opt_str(v: &Value, key: &str) -> Result<Option<String>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(MlflowError::invalid(format!(
            "Invalid value {other} for parameter '{key}' supplied: expected a string"
        ))),
    }
}

fn time_field(v: &Value, key: &str) -> Result<Option<i64>> {
    opt_str(v, key)?.map(|t| timestamp_to_ms(&t)).transpose()
}

/// An assessment as a client sends it (create and update); ids and times may be missing.
pub fn parse_assessment(v: &Value) -> Result<Assessment> {
    if !v.is_object() {
        return Err(MlflowError::invalid("'assessment' must be an object"));
    }
    let value = if let Some(f) = v.get("feedback").filter(|f| !f.is_null()) {
        let error = match f.get("error").filter(|e| !e.is_null()) {
            Some(e) => Some(AssessmentError {
                error_code: opt_str(e, "error_code")?.unwrap_or_default(),
                error_message: opt_str(e, "error_message")?.filter(|s| !s.is_empty()),
                stack_trace: opt_str(e, "stack_trace")?.filter(|s| !s.is_empty()),
            }),
            None => None,
        };
        AssessmentValue::Feedback {
            value: proto_value(&PyValue::from_json(f.get("value").unwrap_or(&Value::Null))),
            error,
        }
    } else if let Some(e) = v.get("expectation").filter(|e| !e.is_null()) {
        let value = match e.get("serialized_value").filter(|s| !s.is_null()) {
            Some(sv) => {
                let format = opt_str(sv, "serialization_format")?.unwrap_or_default();
                if format != "JSON_FORMAT" {
                    return Err(MlflowError::invalid(format!(
                        "Unknown serialization format: {format}. Only JSON_FORMAT is supported."
                    )));
                }
                let text = opt_str(sv, "value")?.unwrap_or_default();
                PyValue::loads(&text).ok_or_else(|| {
                    MlflowError::invalid(format!("Expectation value is not valid JSON: {text}"))
                })?
            }
            None => proto_value(&PyValue::from_json(e.get("value").unwrap_or(&Value::Null))),
        };
        AssessmentValue::Expectation { value }
    } else if let Some(i) = v.get("issue").filter(|i| !i.is_null()) {
        AssessmentValue::Issue {
            issue_name: opt_str(i, "issue_name")?.unwrap_or_default(),
        }
    } else {
        return Err(MlflowError::invalid(
            "Assessment must have either feedback, expectation, or issue value",
        ));
    };
    let source = v.get("source").cloned().unwrap_or(Value::Null);
    let source_type = match source.get("source_type") {
        Some(Value::String(s)) => standard_source_type(s)?,
        Some(Value::Number(n)) => {
            let names = crate::domain::assessments::SOURCE_TYPES;
            n.as_u64()
                .and_then(|i| names.get(i as usize))
                .map(|s| s.to_string())
                .ok_or_else(|| MlflowError::invalid(format!("Invalid source type {n}")))?
        }
        _ => "SOURCE_TYPE_UNSPECIFIED".to_string(),
    };
    let metadata = match v.get("metadata") {
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(k, val)| {
                    let s = match val {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect(),
        ),
        _ => None,
    };
    Ok(Assessment {
        assessment_id: opt_str(v, "assessment_id")?.unwrap_or_default(),
        trace_id: opt_str(v, "trace_id")?.unwrap_or_default(),
        name: opt_str(v, "assessment_name")?.unwrap_or_default(),
        value,
        source_type,
        source_id: opt_str(&source, "source_id")?.filter(|s| !s.is_empty()),
        run_id: opt_str(v, "run_id")?.filter(|s| !s.is_empty()),
        span_id: opt_str(v, "span_id")?.filter(|s| !s.is_empty()),
        rationale: opt_str(v, "rationale")?.filter(|s| !s.is_empty()),
        metadata,
        create_time_ms: time_field(v, "create_time")?.unwrap_or(0),
        last_update_time_ms: time_field(v, "last_update_time")?.unwrap_or(0),
        overrides: opt_str(v, "overrides")?.filter(|s| !s.is_empty()),
        valid: v.get("valid").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// A string map of a `TraceInfoV3` (`{"k": "v"}`); non-string values keep their JSON.
fn parse_string_map(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, val)| {
                let s = match val {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The `TraceInfoV3` of a start-trace request.
pub fn parse_trace_info(v: &Value) -> Result<TraceInfo> {
    if !v.is_object() {
        return Err(MlflowError::missing("trace"));
    }
    let trace_id = opt_str(v, "trace_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MlflowError::missing("trace_info.trace_id"))?;
    let location = v.get("trace_location").cloned().unwrap_or(Value::Null);
    let experiment_id = match location.get("mlflow_experiment").and_then(|e| e.get("experiment_id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(MlflowError::invalid(
                "The trace location must be an MLflow experiment (trace_location.mlflow_experiment.experiment_id)",
            ))
        }
    };
    let state = match v.get("state") {
        None | Some(Value::Null) => TraceState::Unspecified,
        Some(Value::String(s)) => TraceState::parse(s)
            .ok_or_else(|| MlflowError::invalid(format!("Invalid trace state '{s}'")))?,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => TraceState::Unspecified,
            Some(1) => TraceState::Ok,
            Some(2) => TraceState::Error,
            Some(3) => TraceState::InProgress,
            _ => return Err(MlflowError::invalid(format!("Invalid trace state {n}"))),
        },
        Some(other) => return Err(MlflowError::invalid(format!("Invalid trace state {other}"))),
    };
    let request_time = time_field(v, "request_time")?.unwrap_or(0);
    let execution_duration = opt_str(v, "execution_duration")?
        .map(|d| duration_to_ms(&d))
        .transpose()?;
    let assessments = match v.get("assessments") {
        Some(Value::Array(items)) => items
            .iter()
            .map(parse_assessment)
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok(TraceInfo {
        trace_id,
        experiment_id,
        request_time,
        execution_duration,
        state,
        request_preview: opt_str(v, "request_preview")?,
        response_preview: opt_str(v, "response_preview")?,
        client_request_id: opt_str(v, "client_request_id")?,
        trace_metadata: parse_string_map(v.get("trace_metadata")),
        tags: parse_string_map(v.get("tags")),
        assessments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_info_round_trip() {
        let body = json!({"trace_id": "tr-1", "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}},
            "request_time": "2026-12-04T16:17:45.507Z", "execution_duration": "0.126s", "state": "OK",
            "trace_metadata": {"a": "b"}, "tags": {"mlflow.traceName": "outer"}, "request_preview": "{\"x\": 5}"});
        let info = parse_trace_info(&body).unwrap();
        assert_eq!(info.request_time, 1796401065507);
        assert_eq!(info.execution_duration, Some(126));
        let out = trace_info_json(&info);
        assert_eq!(out["request_time"], body["request_time"]);
        assert_eq!(out["execution_duration"], "0.126s");
        assert_eq!(out["tags"]["mlflow.traceName"], "outer");
        assert!(parse_trace_info(&json!({"trace_id": "x"})).is_err());
    }

    #[test]
    fn assessments_both_ways() {
        let a = parse_assessment(&json!({"assessment_name": "q", "trace_id": "tr-1",
            "source": {"source_type": "HUMAN", "source_id": "me"}, "feedback": {"value": 5}, "rationale": "r"})).unwrap();
        assert_eq!(a.value.value_column(), "5.0");
        let e = parse_assessment(&json!({"assessment_name": "e", "expectation": {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": "{\"a\": 1}"}}})).unwrap();
        let out = assessment_json(&e);
        assert_eq!(
            out["expectation"]["serialized_value"]["value"],
            "{\"a\": 1}"
        );
        assert_eq!(out["source"]["source_type"], "SOURCE_TYPE_UNSPECIFIED");
        assert!(parse_assessment(&json!({"assessment_name": "x"})).is_err());
        assert!(parse_assessment(
            &json!({"feedback": {"value": 1}, "source": {"source_type": "BOT"}})
        )
        .is_err());
    }
}
