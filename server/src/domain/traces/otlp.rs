//! OTLP trace export requests (`POST /v1/traces`): body decoding and the conversion of each
//! OpenTelemetry span into the span MLflow stores ([`IncomingSpan`]).
//!
//! Bodies are `application/x-protobuf` or `application/json` (the OTLP JSON mapping, hex ids),
//! optionally gzip or deflate (zlib or raw) compressed. The messages are the
//! `opentelemetry-proto` crate's prost types; nothing here parses protobuf by hand.

use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::Link as ProtoLink, status, Span as ProtoSpan};
use prost::Message;

use super::pyjson::{py_bytes_repr, PyValue};
use super::span::{IncomingSpan, SpanEvent, SpanLink, SpanStatus};
use super::{REQUEST_ID_ATTRIBUTE, TRACE_ID_PREFIX};

/// Largest OTLP body accepted, compressed or not (a batch of thousands of spans fits).
pub const MAX_OTLP_BODY: usize = 64 * 1024 * 1024;

/// Why a request was refused; the HTTP layer maps these to 400 and 422 as MLflow does.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OtlpError {
    #[error("Invalid Content-Type: {0}. Expected: application/x-protobuf or application/json")]
    ContentType(String),
    #[error("Failed to decompress {0} payload")]
    Decompress(&'static str),
    #[error("Unsupported Content-Encoding: {0}")]
    Encoding(String),
    #[error("Invalid OpenTelemetry format")]
    Format,
    #[error("Invalid OpenTelemetry format - no spans found")]
    NoResourceSpans,
    /// A span without a trace or span id (or with one longer than OTLP allows).
    #[error("Cannot convert OpenTelemetry span to MLflow span")]
    Span,
}

/// The body's encoding, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn from_content_type(content_type: Option<&str>) -> Result<Encoding, OtlpError> {
        let media = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim())
            .unwrap_or("");
        match media {
            "application/x-protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(OtlpError::ContentType(
                content_type.unwrap_or("None").to_string(),
            )),
        }
    }
}

/// Undoes `Content-Encoding` (gzip, or deflate as zlib or raw), never past the size limit.
pub fn decompress(body: &[u8], content_encoding: Option<&str>) -> Result<Vec<u8>, OtlpError> {
    let Some(enc) = content_encoding.map(|e| e.trim().to_ascii_lowercase()) else {
        return Ok(body.to_vec());
    };
    let limit = MAX_OTLP_BODY as u64 + 1;
    let read_all = |mut r: Box<dyn Read + '_>| -> Option<Vec<u8>> {
        let mut out = Vec::new();
        (&mut r).take(limit).read_to_end(&mut out).ok()?;
        (out.len() <= MAX_OTLP_BODY).then_some(out)
    };
    match enc.as_str() {
        "" | "identity" => Ok(body.to_vec()),
        "gzip" => read_all(Box::new(flate2::read::MultiGzDecoder::new(body)))
            .ok_or(OtlpError::Decompress("gzip")),
        "deflate" => read_all(Box::new(flate2::read::ZlibDecoder::new(body)))
            .or_else(|| read_all(Box::new(flate2::read::DeflateDecoder::new(body))))
            .ok_or(OtlpError::Decompress("deflate")),
        other => Err(OtlpError::Encoding(other.to_string())),
    }
}

/// Decodes an export request; one without resource spans is refused, as MLflow does.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, OtlpError> {
    let request = match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|_| OtlpError::Format)?
        }
        Encoding::Json => serde_json::from_slice(body).map_err(|_| OtlpError::Format)?,
    };
    if request.resource_spans.is_empty() {
        return Err(OtlpError::NoResourceSpans);
    }
    Ok(request)
}

/// The answer's body: an empty `ExportTraceServiceResponse` in the request's encoding.
pub fn empty_response(encoding: Encoding) -> (&'static str, Vec<u8>) {
    match encoding {
        Encoding::Protobuf => ("application/x-protobuf", Vec::new()),
        Encoding::Json => ("application/json", b"{}".to_vec()),
    }
}

/// OTel clients whose `service.name` MLflow copies onto root spans (others stay off, so a
/// client cannot put free text there).
const KNOWN_SERVICE_NAMES: [&str; 5] = [
    "claude-code",
    "codex_cli_rs",
    "codex_vscode",
    "gemini-cli",
    "qwen-code",
];

/// Every span of the request, converted; resource attributes travel with each span.
pub fn spans_of(request: &ExportTraceServiceRequest) -> Result<Vec<IncomingSpan>, OtlpError> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let resource: Vec<(String, PyValue)> = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.iter().map(decode_kv).collect())
            .unwrap_or_default();
        let service = resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .and_then(|(_, v)| v.as_str())
            .filter(|name| KNOWN_SERVICE_NAMES.contains(name))
            .map(|name| PyValue::Str(name.to_string()).dumps(false));
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let mut converted = convert(span, &resource)?;
                if let (Some(name), None) = (&service, &converted.parent_id) {
                    match converted
                        .attributes
                        .iter_mut()
                        .find(|(k, _)| k == "service.name")
                    {
                        Some(slot) => slot.1 = name.clone(),
                        None => converted
                            .attributes
                            .push(("service.name".to_string(), name.clone())),
                    }
                }
                out.push(converted);
            }
        }
    }
    Ok(out)
}

/// An id as MLflow formats it: hex of the big-endian integer, zero-padded to `width`.
fn id_hex(bytes: &[u8], width: usize) -> Option<String> {
    let significant: &[u8] = {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        &bytes[start..]
    };
    if bytes.is_empty() || significant.len() > width / 2 {
        return None;
    }
    let hex: String = significant.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{hex:0>width$}"))
}

fn convert(span: &ProtoSpan, resource: &[(String, PyValue)]) -> Result<IncomingSpan, OtlpError> {
    let trace_hex = id_hex(&span.trace_id, 32).ok_or(OtlpError::Span)?;
    let span_hex = id_hex(&span.span_id, 16).ok_or(OtlpError::Span)?;
    let parent_hex = if span.parent_span_id.is_empty() {
        None
    } else {
        Some(id_hex(&span.parent_span_id, 16).ok_or(OtlpError::Span)?)
    };
    let trace_id = format!("{TRACE_ID_PREFIX}{trace_hex}");
    // The request id is always derived from the OTLP trace id (a client-sent one is not
    // trusted); it keeps the position the client gave it, else goes last.
    let request_id = PyValue::Str(trace_id.clone()).dumps(false);
    let mut attributes: Vec<(String, String)> = Vec::with_capacity(span.attributes.len() + 1);
    for kv in &span.attributes {
        let (key, value) = decode_kv(kv);
        let dumped = if key == REQUEST_ID_ATTRIBUTE {
            request_id.clone()
        } else {
            value.dumps(false)
        };
        match attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = dumped,
            None => attributes.push((key, dumped)),
        }
    }
    if !attributes.iter().any(|(k, _)| k == REQUEST_ID_ATTRIBUTE) {
        attributes.push((REQUEST_ID_ATTRIBUTE.to_string(), request_id));
    }
    let (status, message) = match &span.status {
        Some(s) if s.code == status::StatusCode::Ok as i32 => (SpanStatus::Ok, String::new()),
        // OpenTelemetry keeps a status description only for errors.
        Some(s) if s.code == status::StatusCode::Error as i32 => {
            (SpanStatus::Error, s.message.clone())
        }
        _ => (SpanStatus::Unset, String::new()),
    };
    let events = span
        .events
        .iter()
        .map(|e| SpanEvent {
            name: e.name.clone(),
            time_unix_nano: e.time_unix_nano as i64,
            attributes: e.attributes.iter().map(decode_kv).collect(),
        })
        .collect();
    let links = span.links.iter().map(convert_link).collect();
    Ok(IncomingSpan {
        trace_id,
        trace_id_b64: STANDARD.encode(hex_to_bytes(&trace_hex)),
        span_id: span_hex.clone(),
        span_id_b64: STANDARD.encode(hex_to_bytes(&span_hex)),
        parent_id_b64: parent_hex
            .as_deref()
            .map(|p| STANDARD.encode(hex_to_bytes(p))),
        parent_id: parent_hex,
        name: span.name.clone(),
        start_time_unix_nano: span.start_time_unix_nano as i64,
        end_time_unix_nano: span.end_time_unix_nano as i64,
        status,
        status_message: message,
        attributes,
        events,
        links,
        resource: resource.to_vec(),
    })
}

fn convert_link(link: &ProtoLink) -> SpanLink {
    let attributes: Vec<(String, PyValue)> = link
        .attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::BytesValue(b)) => PyValue::Str(STANDARD.encode(b)),
                _ => decode_value(kv.value.as_ref()),
            };
            (kv.key.clone(), value)
        })
        .collect();
    SpanLink {
        trace_id: id_hex(&link.trace_id, 32)
            .map(|h| format!("{TRACE_ID_PREFIX}{h}"))
            .unwrap_or_else(|| format!("{TRACE_ID_PREFIX}{:032x}", 0)),
        span_id: id_hex(&link.span_id, 16).unwrap_or_else(|| format!("{:016x}", 0)),
        attributes: (!attributes.is_empty()).then_some(attributes),
    }
}

fn decode_kv(kv: &KeyValue) -> (String, PyValue) {
    (kv.key.clone(), decode_value(kv.value.as_ref()))
}

/// An `AnyValue` as the Python value MLflow decodes it to (bytes as their `str()`).
pub fn decode_value(value: Option<&AnyValue>) -> PyValue {
    match value.and_then(|v| v.value.as_ref()) {
        // No value, or a string-table index that only profiles use.
        None | Some(any_value::Value::StringValueStrindex(_)) => PyValue::Null,
        Some(any_value::Value::StringValue(s)) => PyValue::Str(s.clone()),
        Some(any_value::Value::BoolValue(b)) => PyValue::Bool(*b),
        Some(any_value::Value::IntValue(i)) => PyValue::Int(*i as i128),
        Some(any_value::Value::DoubleValue(f)) => PyValue::Float(*f),
        Some(any_value::Value::BytesValue(b)) => PyValue::Str(py_bytes_repr(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            PyValue::List(a.values.iter().map(|v| decode_value(Some(v))).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            PyValue::Dict(kv.values.iter().map(decode_kv).collect())
        }
    }
}

pub fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ids_are_padded_hex_and_bounded() {
        assert_eq!(id_hex(&[0, 0, 1, 2], 16).unwrap(), "0000000000000102");
        assert!(id_hex(&[], 16).is_none());
        assert!(id_hex(&[1; 9], 16).is_none());
        assert_eq!(id_hex(&[0; 20], 32).unwrap(), "0".repeat(32));
    }

    #[test]
    fn content_types_and_encodings() {
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            Encoding::Json
        );
        assert!(Encoding::from_content_type(Some("text/plain")).is_err());
        assert!(Encoding::from_content_type(None).is_err());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress(&gz, Some("gzip")).unwrap(), b"hello");
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(b"hello").unwrap();
        assert_eq!(
            decompress(&raw.finish().unwrap(), Some("deflate")).unwrap(),
            b"hello"
        );
        assert_eq!(
            decompress(b"junk", Some("gzip")),
            Err(OtlpError::Decompress("gzip"))
        );
        assert!(matches!(
            decompress(b"x", Some("br")),
            Err(OtlpError::Encoding(_))
        ));
    }

    #[test]
    fn json_requests_use_hex_ids() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "name":"s","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
            "attributes":[{"key":"n","value":{"intValue":"3"}}],"status":{"code":2,"message":"bad"}}]}]}]}"#;
        let req = decode(body, Encoding::Json).unwrap();
        let spans = spans_of(&req).unwrap();
        assert_eq!(spans[0].trace_id, "tr-5b8efff798038103d269b633813fc60c");
        assert_eq!(spans[0].span_id, "eee19b7ec3c1b174");
        assert_eq!(spans[0].start_time_unix_nano, 1544712660000000000);
        assert_eq!(spans[0].status, SpanStatus::Error);
        assert_eq!(spans[0].attributes[0], ("n".into(), "3".into()));
        assert_eq!(
            spans[0].attributes[1],
            (
                REQUEST_ID_ATTRIBUTE.into(),
                "\"tr-5b8efff798038103d269b633813fc60c\"".into()
            )
        );
        assert_eq!(
            decode(b"{}", Encoding::Json),
            Err(OtlpError::NoResourceSpans)
        );
        assert_eq!(
            decode(b"\xff\xff", Encoding::Protobuf),
            Err(OtlpError::Format)
        );
    }
}
