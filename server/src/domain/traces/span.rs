//! Spans as MLflow stores them: the row of the `spans` table, whose `content` column holds
//! the span as JSON text (MLflow's `Span.to_dict()` after attribute translation), and the
//! way back from that text to the OpenTelemetry JSON that trace responses carry.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::pyjson::PyValue;
use super::translate::{sanitize, translate, Attributes};
use super::{LLM_COST, MODEL, MODEL_PROVIDER, REQUEST_ID_ATTRIBUTE, SPAN_TYPE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// The `spans.status` column (MLflow's `SpanStatusCode` value).
    pub fn column(self) -> &'static str {
        match self {
            SpanStatus::Unset => "UNSET",
            SpanStatus::Ok => "OK",
            SpanStatus::Error => "ERROR",
        }
    }

    /// The OpenTelemetry protobuf enum name, as stored in the content.
    pub fn proto_name(self) -> &'static str {
        match self {
            SpanStatus::Unset => "STATUS_CODE_UNSET",
            SpanStatus::Ok => "STATUS_CODE_OK",
            SpanStatus::Error => "STATUS_CODE_ERROR",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub name: String,
    pub time_unix_nano: i64,
    pub attributes: Vec<(String, PyValue)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Option<Vec<(String, PyValue)>>,
}

/// A span received over OTLP, with MLflow's ids and attribute values as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingSpan {
    /// The MLflow trace id, `tr-<32 hex>`.
    pub trace_id: String,
    pub trace_id_b64: String,
    /// 16 hex digits.
    pub span_id: String,
    pub span_id_b64: String,
    pub parent_id: Option<String>,
    pub parent_id_b64: Option<String>,
    pub name: String,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub status: SpanStatus,
    pub status_message: String,
    pub attributes: Attributes,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    /// The OTLP resource's attributes (every span of one resource block has them).
    pub resource: Vec<(String, PyValue)>,
}

/// One row of the `spans` table (without `experiment_id`, which comes from the trace).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub span_type: Option<String>,
    pub status: &'static str,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub content: String,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    pub total_cost: Option<f64>,
    pub model_name: Option<String>,
    pub model_provider: Option<String>,
    /// The translated attributes, for the trace-level aggregates.
    pub attributes: Attributes,
}

const MODEL_DIMENSION_MAX_LENGTH: usize = 500;

fn decoded_str(attrs: &Attributes, key: &str) -> Option<String> {
    let raw = attrs.iter().find(|(k, _)| k == key)?.1.as_str();
    Some(match PyValue::loads(raw) {
        Some(PyValue::Str(s)) => s,
        _ => raw.to_string(),
    })
}

fn finite(v: Option<&PyValue>) -> Option<f64> {
    let f = match v? {
        PyValue::Int(i) => *i as f64,
        PyValue::Float(f) => *f,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

impl IncomingSpan {
    /// The stored row: content as MLflow writes it (`ensure_ascii=False`), translated
    /// attributes, and the denormalised columns.
    pub fn to_row(&self) -> SpanRow {
        let mut attributes = self.attributes.clone();
        sanitize(&mut attributes);
        translate(&mut attributes);
        let content = self.content(&attributes);
        // The `type` column is the span's own type attribute, before translation.
        let span_type =
            self.attributes.iter().find(|(k, _)| k == SPAN_TYPE).map(
                |(_, v)| match PyValue::loads(v) {
                    Some(PyValue::Str(s)) => s,
                    _ => v.clone(),
                },
            );
        let cost = decoded_str(&attributes, LLM_COST).and_then(|c| PyValue::loads(&c));
        let bounded = |v: Option<String>| {
            v.map(|s| {
                s.chars()
                    .take(MODEL_DIMENSION_MAX_LENGTH)
                    .collect::<String>()
            })
        };
        SpanRow {
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            parent_span_id: self.parent_id.clone(),
            name: self.name.clone(),
            span_type,
            status: self.status.column(),
            start_time_unix_nano: self.start_time_unix_nano,
            end_time_unix_nano: self.end_time_unix_nano,
            content,
            input_cost: finite(cost.as_ref().and_then(|c| c.get("input_cost"))),
            output_cost: finite(cost.as_ref().and_then(|c| c.get("output_cost"))),
            total_cost: finite(cost.as_ref().and_then(|c| c.get("total_cost"))),
            model_name: bounded(model_string(&attributes, MODEL)),
            model_provider: bounded(model_string(&attributes, MODEL_PROVIDER)),
            attributes,
        }
    }

    fn content(&self, attributes: &Attributes) -> String {
        let str_or_null = |s: &Option<String>| s.clone().map_or(PyValue::Null, PyValue::Str);
        let events = self
            .events
            .iter()
            .map(|e| {
                PyValue::Dict(vec![
                    ("name".into(), PyValue::Str(e.name.clone())),
                    (
                        "time_unix_nano".into(),
                        PyValue::Int(e.time_unix_nano as i128),
                    ),
                    ("attributes".into(), PyValue::Dict(e.attributes.clone())),
                ])
            })
            .collect();
        let links = self
            .links
            .iter()
            .map(|l| {
                PyValue::Dict(vec![
                    ("trace_id".into(), PyValue::Str(l.trace_id.clone())),
                    ("span_id".into(), PyValue::Str(l.span_id.clone())),
                    (
                        "attributes".into(),
                        l.attributes.clone().map_or(PyValue::Null, PyValue::Dict),
                    ),
                ])
            })
            .collect();
        let dict = PyValue::Dict(vec![
            ("trace_id".into(), PyValue::Str(self.trace_id_b64.clone())),
            ("span_id".into(), PyValue::Str(self.span_id_b64.clone())),
            ("parent_span_id".into(), str_or_null(&self.parent_id_b64)),
            ("name".into(), PyValue::Str(self.name.clone())),
            (
                "start_time_unix_nano".into(),
                PyValue::Int(self.start_time_unix_nano as i128),
            ),
            (
                "end_time_unix_nano".into(),
                PyValue::Int(self.end_time_unix_nano as i128),
            ),
            ("events".into(), PyValue::List(events)),
            (
                "status".into(),
                PyValue::Dict(vec![
                    ("code".into(), PyValue::Str(self.status.proto_name().into())),
                    ("message".into(), PyValue::Str(self.status_message.clone())),
                ]),
            ),
            (
                "attributes".into(),
                PyValue::Dict(
                    attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), PyValue::Str(v.clone())))
                        .collect(),
                ),
            ),
            ("links".into(), PyValue::List(links)),
        ]);
        dict.dumps(false)
    }
}

/// A model dimension: the attribute's string value, else nothing.
fn model_string(attrs: &Attributes, key: &str) -> Option<String> {
    let raw = attrs.iter().find(|(k, _)| k == key)?.1.as_str();
    match PyValue::loads(raw) {
        Some(PyValue::Str(s)) => Some(s),
        Some(_) => None,
        None => Some(raw.to_string()),
    }
}

/// An attribute value as an OpenTelemetry `AnyValue` in MLflow's JSON (snake_case names).
pub fn any_value_json(value: &PyValue) -> Value {
    match value {
        PyValue::Null => json!({}),
        PyValue::Bool(b) => json!({ "bool_value": b }),
        PyValue::Int(i) => json!({ "int_value": PyValue::Int(*i).to_json() }),
        PyValue::Float(f) => json!({ "double_value": PyValue::Float(*f).to_json() }),
        PyValue::Str(s) => json!({ "string_value": s }),
        PyValue::List(items) if items.is_empty() => json!({ "array_value": {} }),
        PyValue::List(items) => json!({
            "array_value": { "values": items.iter().map(any_value_json).collect::<Vec<_>>() }
        }),
        PyValue::Dict(entries) if entries.is_empty() => json!({ "kvlist_value": {} }),
        PyValue::Dict(entries) => json!({ "kvlist_value": { "values": key_values(entries) } }),
    }
}

fn key_values(entries: &[(String, PyValue)]) -> Vec<Value> {
    entries
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": any_value_json(v) }))
        .collect()
}

/// Renders stored span content as the OpenTelemetry span JSON of a trace response
/// (MLflow's `Span.from_dict(...).to_otel_proto()`), or `None` if the content is not a span.
pub fn render(content: &str) -> Option<Value> {
    let dict = PyValue::loads(content)?;
    let text = |key: &str| dict.get(key).and_then(PyValue::as_str);
    let attributes = match dict.get("attributes") {
        Some(PyValue::Dict(entries)) => entries,
        _ => return None,
    };
    attributes.iter().find(|(k, _)| k == REQUEST_ID_ATTRIBUTE)?;
    let (trace_id, span_id, parent) = ids(&dict)?;
    let mut span = Map::new();
    span.insert("trace_id".into(), Value::String(trace_id));
    span.insert("span_id".into(), Value::String(span_id));
    if let Some(p) = parent {
        span.insert("parent_span_id".into(), Value::String(p));
    }
    span.insert("name".into(), json!(text("name").unwrap_or("")));
    let nanos = |key: &str| match dict.get(key) {
        Some(PyValue::Int(i)) => Some(*i),
        Some(PyValue::Str(s)) => s.parse::<i128>().ok(),
        _ => None,
    };
    span.insert(
        "start_time_unix_nano".into(),
        PyValue::Int(nanos("start_time_unix_nano").unwrap_or(0)).to_json(),
    );
    if let Some(end) = nanos("end_time_unix_nano").filter(|e| *e != 0) {
        span.insert("end_time_unix_nano".into(), PyValue::Int(end).to_json());
    }
    let attrs: Vec<Value> = attributes
        .iter()
        .map(|(k, v)| {
            // Values are JSON text; one that is not stays the string it is.
            let value = match v {
                PyValue::Str(s) => PyValue::loads(s).unwrap_or_else(|| v.clone()),
                other => other.clone(),
            };
            json!({ "key": k, "value": any_value_json(&value) })
        })
        .collect();
    if !attrs.is_empty() {
        span.insert("attributes".into(), Value::Array(attrs));
    }
    if let Some(PyValue::List(events)) = dict.get("events") {
        let events: Vec<Value> = events.iter().map(render_event).collect();
        if !events.is_empty() {
            span.insert("events".into(), Value::Array(events));
        }
    }
    if let Some(PyValue::List(links)) = dict.get("links") {
        let links: Vec<Value> = links.iter().filter_map(render_link).collect();
        if !links.is_empty() {
            span.insert("links".into(), Value::Array(links));
        }
    }
    let status = dict.get("status");
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(PyValue::as_str)
        .map(status_name)
        .unwrap_or("STATUS_CODE_UNSET");
    let mut st = Map::new();
    if let Some(m) = status
        .and_then(|s| s.get("message"))
        .and_then(PyValue::as_str)
        .filter(|m| !m.is_empty() && code == "STATUS_CODE_ERROR")
    {
        st.insert("message".into(), json!(m));
    }
    if code != "STATUS_CODE_UNSET" {
        st.insert("code".into(), json!(code));
    }
    span.insert("status".into(), Value::Object(st));
    Some(Value::Object(span))
}

/// Stored codes are protobuf names (`STATUS_CODE_OK`) or, from MLflow 3.5.0, plain ones.
fn status_name(code: &str) -> &'static str {
    match code {
        "STATUS_CODE_OK" | "OK" => "STATUS_CODE_OK",
        "STATUS_CODE_ERROR" | "ERROR" => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

/// The span's ids as base64 of their bytes; content written by MLflow 3.5.0 holds hex ids
/// (`tr-<hex>` trace ids) instead.
fn ids(dict: &PyValue) -> Option<(String, String, Option<String>)> {
    let trace = dict.get("trace_id")?.as_str()?;
    let span = dict.get("span_id")?.as_str()?;
    let parent = dict
        .get("parent_span_id")
        .and_then(PyValue::as_str)
        .filter(|p| !p.is_empty());
    if !trace.starts_with("tr-") && STANDARD.decode(trace).is_ok() {
        return Some((trace.into(), span.into(), parent.map(str::to_string)));
    }
    let hex = trace.rsplit('/').next()?.trim_start_matches("tr-");
    let b64 = |h: &str, width: usize| -> Option<String> {
        let padded = format!("{h:0>width$}");
        (padded.len() == width).then(|| STANDARD.encode(super::otlp::hex_to_bytes(&padded)))
    };
    Some((
        b64(hex, 32)?,
        b64(span, 16)?,
        parent.and_then(|p| b64(p, 16)),
    ))
}

fn render_event(event: &PyValue) -> Value {
    let mut e = Map::new();
    if let Some(PyValue::Int(t)) = event.get("time_unix_nano") {
        e.insert("time_unix_nano".into(), PyValue::Int(*t).to_json());
    }
    if let Some(name) = event.get("name").and_then(PyValue::as_str) {
        e.insert("name".into(), json!(name));
    }
    if let Some(PyValue::Dict(attrs)) = event.get("attributes") {
        if !attrs.is_empty() {
            e.insert("attributes".into(), Value::Array(key_values(attrs)));
        }
    }
    Value::Object(e)
}

fn render_link(link: &PyValue) -> Option<Value> {
    let trace = link.get("trace_id")?.as_str()?;
    let span = link.get("span_id")?.as_str()?;
    let hex = trace.rsplit('/').next()?.trim_start_matches("tr-");
    if hex.len() > 32 || span.len() > 16 {
        return None;
    }
    let mut l = Map::new();
    l.insert(
        "trace_id".into(),
        json!(STANDARD.encode(super::otlp::hex_to_bytes(&format!("{hex:0>32}")))),
    );
    l.insert(
        "span_id".into(),
        json!(STANDARD.encode(super::otlp::hex_to_bytes(&format!("{span:0>16}")))),
    );
    if let Some(PyValue::Dict(attrs)) = link.get("attributes") {
        if !attrs.is_empty() {
            l.insert("attributes".into(), Value::Array(key_values(attrs)));
        }
    }
    Some(Value::Object(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span exactly as the Python server stored it (from a real run of MLflow 3.17.2).
    const STORED: &str = r#"{"trace_id": "4+C9yz32FxkXdOG3JpVxNQ==", "span_id": "xn3JNTutac0=", "parent_span_id": "oOfZJGNsESk=", "name": "manual", "start_time_unix_nano": 1796401079276614897, "end_time_unix_nano": 1796401079276999968, "events": [{"name": "ev", "time_unix_nano": 1796401079276690688, "attributes": {"a": 1}}], "status": {"code": "STATUS_CODE_OK", "message": ""}, "attributes": {"mlflow.traceRequestId": "\"tr-e3e0bdcb3df617191774e1b726957135\"", "mlflow.spanType": "\"TOOL\"", "mlflow.spanInputs": "{\"x\": 5}", "num": "3", "mlflow.spanOutputs": "10", "mlflow.spanLogLevel": "20"}, "links": []}"#;

    fn incoming() -> IncomingSpan {
        IncomingSpan {
            trace_id: "tr-e3e0bdcb3df617191774e1b726957135".into(),
            trace_id_b64: "4+C9yz32FxkXdOG3JpVxNQ==".into(),
            span_id: "c67dc9353bad69cd".into(),
            span_id_b64: "xn3JNTutac0=".into(),
            parent_id: Some("a0e7d924636c1129".into()),
            parent_id_b64: Some("oOfZJGNsESk=".into()),
            name: "manual".into(),
            start_time_unix_nano: 1796401079276614897,
            end_time_unix_nano: 1796401079276999968,
            status: SpanStatus::Ok,
            status_message: String::new(),
            attributes: vec![
                (
                    REQUEST_ID_ATTRIBUTE.into(),
                    "\"tr-e3e0bdcb3df617191774e1b726957135\"".into(),
                ),
                (SPAN_TYPE.into(), "\"TOOL\"".into()),
                ("mlflow.spanInputs".into(), "{\"x\": 5}".into()),
                ("num".into(), "3".into()),
                ("mlflow.spanOutputs".into(), "10".into()),
                ("mlflow.spanLogLevel".into(), "20".into()),
            ],
            events: vec![SpanEvent {
                name: "ev".into(),
                time_unix_nano: 1796401079276690688,
                attributes: vec![("a".into(), PyValue::Int(1))],
            }],
            links: vec![],
            resource: vec![],
        }
    }

    #[test]
    fn content_matches_python_byte_for_byte() {
        let row = incoming().to_row();
        assert_eq!(row.content, STORED);
        assert_eq!(row.span_type.as_deref(), Some("TOOL"));
        assert_eq!(row.status, "OK");
    }

    #[test]
    fn renders_otel_json() {
        let v = render(STORED).unwrap();
        assert_eq!(v["span_id"], "xn3JNTutac0=");
        assert_eq!(v["parent_span_id"], "oOfZJGNsESk=");
        assert_eq!(
            v["attributes"][2]["value"]["kvlist_value"]["values"][0]["key"],
            "x"
        );
        assert_eq!(v["attributes"][3]["value"]["int_value"], 3);
        assert_eq!(v["events"][0]["attributes"][0]["value"]["int_value"], 1);
        assert_eq!(v["status"]["code"], "STATUS_CODE_OK");
        assert!(render("{}").is_none());
    }
}
