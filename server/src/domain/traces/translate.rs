//! Translation of OpenTelemetry GenAI attributes into MLflow's own, applied when spans are
//! stored (MLflow's `translate_span_when_storing`): the span type, inputs and outputs, token
//! usage, model name and provider, for the GenAI semantic conventions, OpenInference and
//! Traceloop. MLflow's further translators (vendor-specific ones, chat message formats, tool
//! definitions, LiteLLM cost pricing) are not done here; spans keep their raw attributes.
//!
//! Attribute values are the JSON text MLflow keeps them as (`"\"LLM\""`, `"100"`).

use super::pyjson::PyValue;
use super::{CHAT_USAGE, INPUTS, MODEL, MODEL_PROVIDER, OUTPUTS, SPAN_TYPE};

/// Span attributes in order, values as JSON text.
pub type Attributes = Vec<(String, String)>;

/// One OpenTelemetry convention's attribute names.
struct Convention {
    kind_key: &'static str,
    kinds: &'static [(&'static str, &'static str)],
    input_tokens: &'static str,
    output_tokens: &'static str,
    total_tokens: Option<&'static str>,
    cache_read: Option<&'static str>,
    cache_creation: &'static [&'static str],
    inputs: &'static [&'static str],
    outputs: &'static [&'static str],
    model_names: &'static [&'static str],
    provider: Option<&'static str>,
}

/// MLflow's translator order: OpenInference, then GenAI, then Traceloop (the others MLflow
/// has in between are not translated here).
const CONVENTIONS: [Convention; 3] = [
    Convention {
        kind_key: "openinference.span.kind",
        kinds: &[
            ("TOOL", "TOOL"),
            ("CHAIN", "CHAIN"),
            ("LLM", "LLM"),
            ("RETRIEVER", "RETRIEVER"),
            ("EMBEDDING", "EMBEDDING"),
            ("AGENT", "AGENT"),
            ("RERANKER", "RERANKER"),
            ("UNKNOWN", "UNKNOWN"),
            ("GUARDRAIL", "GUARDRAIL"),
            ("EVALUATOR", "EVALUATOR"),
        ],
        input_tokens: "llm.token_count.prompt",
        output_tokens: "llm.token_count.completion",
        total_tokens: Some("llm.token_count.total"),
        cache_read: Some("llm.token_count.prompt_details.cache_read"),
        cache_creation: &["llm.token_count.prompt_details.cache_write"],
        inputs: &["input.value"],
        outputs: &["output.value"],
        model_names: &[
            "llm.response.model_name",
            "llm.model_name",
            "llm.request.model_name",
            "embedding.model_name",
        ],
        provider: Some("llm.provider"),
    },
    Convention {
        kind_key: "gen_ai.operation.name",
        kinds: &[
            ("chat", "CHAT_MODEL"),
            ("create_agent", "AGENT"),
            ("embeddings", "EMBEDDING"),
            ("execute_tool", "TOOL"),
            ("generate_content", "LLM"),
            ("invoke_agent", "AGENT"),
            ("text_completion", "LLM"),
            ("response", "LLM"),
        ],
        input_tokens: "gen_ai.usage.input_tokens",
        output_tokens: "gen_ai.usage.output_tokens",
        total_tokens: None,
        cache_read: Some("gen_ai.usage.cache_read.input_tokens"),
        cache_creation: &[
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
        ],
        inputs: &["gen_ai.input.messages", "gen_ai.tool.call.arguments"],
        outputs: &["gen_ai.output.messages", "gen_ai.tool.call.result"],
        model_names: &["gen_ai.response.model", "gen_ai.request.model"],
        provider: Some("gen_ai.provider.name"),
    },
    Convention {
        kind_key: "traceloop.span.kind",
        kinds: &[
            ("workflow", "WORKFLOW"),
            ("task", "TASK"),
            ("agent", "AGENT"),
            ("tool", "TOOL"),
            ("unknown", "UNKNOWN"),
        ],
        input_tokens: "gen_ai.usage.prompt_tokens",
        output_tokens: "gen_ai.usage.completion_tokens",
        total_tokens: Some("llm.usage.total_tokens"),
        cache_read: None,
        cache_creation: &[],
        // Plus the numbered `gen_ai.prompt.N.content` / `gen_ai.completion.N.content` keys.
        inputs: &["traceloop.entity.input"],
        outputs: &["traceloop.entity.output"],
        model_names: &[],
        provider: Some("gen_ai.system"),
    },
];

fn get<'a>(attrs: &'a Attributes, key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn has(attrs: &Attributes, key: &str) -> bool {
    attrs.iter().any(|(k, _)| k == key)
}

fn set(attrs: &mut Attributes, key: &str, value: String) {
    match attrs.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => attrs.push((key.to_string(), value)),
    }
}

/// A value that is present and not JSON-falsy (`""`, `{}`, `null`, `0` count as absent).
fn present<'a>(attrs: &'a Attributes, key: &str) -> Option<&'a str> {
    let v = get(attrs, key)?;
    match PyValue::loads(v) {
        Some(parsed) if !parsed.truthy() => None,
        _ => (!v.is_empty()).then_some(v),
    }
}

fn parse_int(value: Option<&str>) -> Option<i128> {
    let v = value?;
    match PyValue::loads(v) {
        Some(PyValue::Int(i)) => Some(i),
        Some(PyValue::Str(s)) => s.trim().parse().ok(),
        _ => v.trim().parse().ok(),
    }
}

fn numbered_key(key: &str, prefix: &str, suffix: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn first_present(
    attrs: &Attributes,
    keys: &[&str],
    numbered: Option<(&str, &str)>,
) -> Option<String> {
    for key in keys {
        if let Some(v) = present(attrs, key) {
            return Some(v.to_string());
        }
    }
    let (prefix, suffix) = numbered?;
    attrs
        .iter()
        .filter(|(k, _)| numbered_key(k, prefix, suffix))
        .find_map(|(k, _)| present(attrs, k).map(str::to_string))
}

/// Applies MLflow's attribute translations in place.
pub fn translate(attrs: &mut Attributes) {
    // The type from a span-kind attribute replaces an absent or UNKNOWN type.
    let kind = CONVENTIONS.iter().find_map(|c| {
        let raw = present(attrs, c.kind_key)?;
        let kind = PyValue::loads(raw)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| raw.to_string());
        c.kinds.iter().find(|(k, _)| *k == kind).map(|(_, t)| *t)
    });
    if let Some(kind) = kind {
        let current = get(attrs, SPAN_TYPE).and_then(PyValue::loads);
        if matches!(current, None | Some(PyValue::Str(_)))
            && current
                .as_ref()
                .and_then(PyValue::as_str)
                .unwrap_or("UNKNOWN")
                == "UNKNOWN"
        {
            set(attrs, SPAN_TYPE, PyValue::Str(kind.into()).dumps(false));
        }
    }
    if !has(attrs, INPUTS) {
        let numbered = Some(("gen_ai.prompt.", ".content"));
        if let Some(v) = CONVENTIONS
            .iter()
            .enumerate()
            .find_map(|(i, c)| first_present(attrs, c.inputs, if i == 2 { numbered } else { None }))
        {
            set(attrs, INPUTS, v);
        }
    }
    if !has(attrs, OUTPUTS) {
        let numbered = Some(("gen_ai.completion.", ".content"));
        if let Some(v) = CONVENTIONS.iter().enumerate().find_map(|(i, c)| {
            first_present(attrs, c.outputs, if i == 2 { numbered } else { None })
        }) {
            set(attrs, OUTPUTS, v);
        }
    }
    if !has(attrs, CHAT_USAGE) {
        if let Some(usage) = token_usage(attrs) {
            set(attrs, CHAT_USAGE, usage.dumps(false));
        }
    }
    if !has(attrs, MODEL) {
        if let Some(m) = CONVENTIONS
            .iter()
            .find_map(|c| first_present(attrs, c.model_names, None))
        {
            set(attrs, MODEL, decoded(&m).dumps(false));
        }
    }
    if !has(attrs, MODEL_PROVIDER) {
        if let Some(p) = CONVENTIONS.iter().find_map(|c| {
            c.provider
                .and_then(|k| present(attrs, k))
                .map(str::to_string)
        }) {
            set(attrs, MODEL_PROVIDER, decoded(&p).dumps(false));
        }
    }
}

fn decoded(text: &str) -> PyValue {
    PyValue::loads(text).unwrap_or_else(|| PyValue::Str(text.to_string()))
}

fn token_usage(attrs: &Attributes) -> Option<PyValue> {
    for c in &CONVENTIONS {
        let input = parse_int(get(attrs, c.input_tokens));
        let output = parse_int(get(attrs, c.output_tokens));
        let mut total = c.total_tokens.and_then(|k| parse_int(get(attrs, k)));
        if total.is_none() {
            if let (Some(i), Some(o)) = (input, output) {
                total = Some(i + o);
            }
        }
        if input.is_none() && output.is_none() && total.is_none() {
            continue;
        }
        let mut usage = Vec::new();
        for (key, v) in [
            ("input_tokens", input),
            ("output_tokens", output),
            ("total_tokens", total),
        ] {
            if let Some(v) = v {
                usage.push((key.to_string(), PyValue::Int(v)));
            }
        }
        if let Some(v) = c.cache_read.and_then(|k| parse_int(get(attrs, k))) {
            usage.push(("cache_read_input_tokens".into(), PyValue::Int(v)));
        }
        if let Some(v) = c
            .cache_creation
            .iter()
            .find_map(|k| parse_int(get(attrs, k)))
        {
            usage.push(("cache_creation_input_tokens".into(), PyValue::Int(v)));
        }
        return Some(PyValue::Dict(usage));
    }
    None
}

/// MLflow's `sanitize_attributes`: a value JSON-encoded twice (an OTLP string attribute that
/// already held JSON text of a string, dict or list) loses one layer.
pub fn sanitize(attrs: &mut Attributes) {
    for (_, value) in attrs.iter_mut() {
        if let Some(PyValue::Str(inner)) = PyValue::loads(value) {
            if matches!(
                PyValue::loads(&inner),
                Some(PyValue::Str(_) | PyValue::Dict(_) | PyValue::List(_))
            ) {
                *value = inner;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kinds_inputs_and_usage() {
        let mut a = attrs(&[
            ("openinference.span.kind", "\"LLM\""),
            ("input.value", "\"Hello\""),
            ("llm.token_count.prompt", "100"),
            ("llm.token_count.completion", "50"),
        ]);
        translate(&mut a);
        assert_eq!(get(&a, SPAN_TYPE), Some("\"LLM\""));
        assert_eq!(get(&a, INPUTS), Some("\"Hello\""));
        assert_eq!(
            get(&a, CHAT_USAGE),
            Some(r#"{"input_tokens": 100, "output_tokens": 50, "total_tokens": 150}"#)
        );
        let mut b = attrs(&[
            (SPAN_TYPE, "\"CHAIN\""),
            ("traceloop.span.kind", "\"tool\""),
            ("gen_ai.completion.0.content", "\"Bye\""),
        ]);
        translate(&mut b);
        assert_eq!(get(&b, SPAN_TYPE), Some("\"CHAIN\""));
        assert_eq!(get(&b, OUTPUTS), Some("\"Bye\""));
    }

    #[test]
    fn double_encoded_values_lose_a_layer() {
        let mut a = attrs(&[("x", r#""{\"a\": 1}""#), ("y", "\"plain\""), ("z", "\"1\"")]);
        sanitize(&mut a);
        assert_eq!(get(&a, "x"), Some(r#"{"a": 1}"#));
        assert_eq!(get(&a, "y"), Some("\"plain\""));
        assert_eq!(get(&a, "z"), Some("\"1\""));
    }
}
