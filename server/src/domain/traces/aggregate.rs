//! What a batch of spans says about its trace (MLflow's `_TraceAggregate`): time range,
//! state from the root span, token usage and cost summed over the span tree, session and
//! user ids, request/response previews and the `mlflow.traceTag.*` tags of the root span.

use std::collections::HashMap;

use super::pyjson::PyValue;
use super::span::{IncomingSpan, SpanRow, SpanStatus};
use super::translate::Attributes;
use super::{CHAT_USAGE, INPUTS, LLM_COST, OUTPUTS};

/// Longest request/response preview, in characters (MLflow's OSS limit).
pub const PREVIEW_MAX_LENGTH: usize = 1000;
/// Session ids and metadata values longer than this are refused.
pub const MAX_METADATA_VALUE_LENGTH: usize = 250;
pub const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";

/// One span of the usage/cost tree: its id, its parent, and its dict of numbers.
#[derive(Debug, Clone)]
pub struct Node {
    pub span_id: String,
    pub parent_id: Option<String>,
    pub data: Option<Vec<(String, PyValue)>>,
}

impl Node {
    pub fn new(span_id: &str, parent_id: Option<&str>, attrs: &Attributes, key: &str) -> Node {
        let data = attrs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match PyValue::loads(v) {
                // A value stored as JSON text of JSON text.
                Some(PyValue::Str(inner)) => PyValue::loads(&inner),
                other => other,
            })
            .and_then(|v| match v {
                PyValue::Dict(d) => Some(d),
                _ => None,
            });
        Node {
            span_id: span_id.to_string(),
            parent_id: parent_id.map(str::to_string),
            data,
        }
    }
}

/// Sums `keys` over the nodes whose ancestors carry no data (a parent that rolls its
/// children's usage up is counted once, not twice). `None` when no node has data.
fn sum_tree(nodes: &[Node], keys: &[&str], optional: &[&str], float: bool) -> Option<PyValue> {
    let ids: std::collections::HashSet<&str> = nodes.iter().map(|n| n.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&Node>> = HashMap::new();
    let mut stack: Vec<(&Node, bool)> = Vec::new();
    for n in nodes {
        match n.parent_id.as_deref().filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(n),
            None => stack.push((n, false)),
        }
    }
    let mut totals: Vec<(String, f64, bool)> =
        keys.iter().map(|k| (k.to_string(), 0.0, true)).collect();
    let mut any = false;
    let num = |v: &PyValue| match v {
        PyValue::Int(i) => Some(*i as f64),
        PyValue::Float(f) => Some(*f),
        PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    while let Some((node, ancestor_has)) = stack.pop() {
        if let (Some(data), false) = (&node.data, ancestor_has) {
            any = true;
            for (key, total, _) in totals.iter_mut() {
                if let Some(v) = data
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| num(v))
                {
                    *total += v;
                }
            }
            for key in optional {
                if let Some(v) = data
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| num(v))
                {
                    match totals.iter_mut().find(|(k, _, _)| k == key) {
                        Some(slot) => slot.1 += v,
                        None => totals.push((key.to_string(), v, false)),
                    }
                }
            }
        }
        let next = ancestor_has || node.data.is_some();
        if let Some(kids) = children.get(node.span_id.as_str()) {
            stack.extend(kids.iter().map(|k| (*k, next)));
        }
    }
    any.then(|| {
        PyValue::Dict(
            totals
                .into_iter()
                .map(|(k, v, _)| {
                    let value = if float {
                        PyValue::Float(v)
                    } else {
                        PyValue::Int(v as i128)
                    };
                    (k, value)
                })
                .collect(),
        )
    })
}

pub const TOKEN_KEYS: [&str; 3] = ["input_tokens", "output_tokens", "total_tokens"];
pub const CACHE_TOKEN_KEYS: [&str; 3] = [
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_input_tokens_above_1hr",
];
pub const COST_KEYS: [&str; 3] = ["input_cost", "output_cost", "total_cost"];

pub fn usage_of(nodes: &[Node]) -> Option<PyValue> {
    sum_tree(nodes, &TOKEN_KEYS, &CACHE_TOKEN_KEYS, false)
}

pub fn cost_of(nodes: &[Node]) -> Option<PyValue> {
    sum_tree(nodes, &COST_KEYS, &[], true)
}

/// What one log-spans batch says about one trace.
#[derive(Debug, Clone)]
pub struct TraceAggregate {
    pub trace_id: String,
    pub min_start_ms: i64,
    pub max_end_ms: Option<i64>,
    /// `OK` or `ERROR` when the batch holds the root span.
    pub root_status: Option<&'static str>,
    pub usage_nodes: Vec<Node>,
    pub cost_nodes: Vec<Node>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    /// `mlflow.traceTag.<key>` attributes of the root span, as tags.
    pub tags: Vec<(String, String)>,
    /// The OTLP resource attributes of the batch's spans of this trace.
    pub resource: Vec<(String, PyValue)>,
}

impl TraceAggregate {
    pub fn usage(&self) -> Option<PyValue> {
        usage_of(&self.usage_nodes)
    }

    pub fn cost(&self) -> Option<PyValue> {
        cost_of(&self.cost_nodes)
    }

    pub fn state(&self) -> &'static str {
        self.root_status.unwrap_or("IN_PROGRESS")
    }
}

fn attr_text(attrs: &Attributes, key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| match PyValue::loads(v) {
            Some(PyValue::Str(s)) => s,
            _ => v.clone(),
        })
}

/// The aggregates of each trace in a batch, in the order traces first appear.
pub fn aggregate(spans: &[IncomingSpan], rows: &[SpanRow]) -> Vec<TraceAggregate> {
    let mut out: Vec<TraceAggregate> = Vec::new();
    for (span, row) in spans.iter().zip(rows) {
        let idx = match out.iter().position(|a| a.trace_id == span.trace_id) {
            Some(i) => i,
            None => {
                out.push(TraceAggregate {
                    trace_id: span.trace_id.clone(),
                    min_start_ms: i64::MAX,
                    max_end_ms: None,
                    root_status: None,
                    usage_nodes: Vec::new(),
                    cost_nodes: Vec::new(),
                    session_id: None,
                    user_id: None,
                    request_preview: None,
                    response_preview: None,
                    tags: Vec::new(),
                    resource: Vec::new(),
                });
                out.len() - 1
            }
        };
        let agg = &mut out[idx];
        agg.min_start_ms = agg
            .min_start_ms
            .min(span.start_time_unix_nano.div_euclid(1_000_000));
        let end = span.end_time_unix_nano.div_euclid(1_000_000);
        agg.max_end_ms = Some(agg.max_end_ms.map_or(end, |m| m.max(end)));
        let attrs = &row.attributes;
        let parent = span.parent_id.as_deref();
        agg.usage_nodes
            .push(Node::new(&span.span_id, parent, attrs, CHAT_USAGE));
        agg.cost_nodes
            .push(Node::new(&span.span_id, parent, attrs, LLM_COST));
        if agg.session_id.is_none() {
            agg.session_id = ["session.id", "gen_ai.conversation.id"]
                .iter()
                .find_map(|k| {
                    attrs
                        .iter()
                        .find(|(key, v)| key == k && !v.is_empty())
                        .and(attr_text(attrs, k))
                });
        }
        if agg.user_id.is_none() {
            agg.user_id = attr_text(attrs, "user.id")
                .filter(|_| attrs.iter().any(|(k, v)| k == "user.id" && !v.is_empty()));
        }
        if agg.resource.is_empty() && !span.resource.is_empty() {
            agg.resource = span.resource.clone();
        }
        if span.parent_id.is_none() {
            if agg.root_status.is_none() {
                agg.root_status = Some(match span.status {
                    SpanStatus::Error => "ERROR",
                    _ => "OK",
                });
            }
            agg.request_preview = attrs
                .iter()
                .find(|(k, v)| k == INPUTS && !v.is_empty())
                .map(|(_, v)| preview(v, "user"));
            agg.response_preview = attrs
                .iter()
                .find(|(k, v)| k == OUTPUTS && !v.is_empty())
                .map(|(_, v)| preview(v, "assistant"));
            for (k, v) in attrs {
                if let Some(tag) = k.strip_prefix(TRACE_TAG_PREFIX) {
                    let value = match PyValue::loads(v) {
                        Some(PyValue::Str(s)) => s,
                        _ => v.clone(),
                    };
                    match agg.tags.iter_mut().find(|(key, _)| key == tag) {
                        Some(slot) => slot.1 = value,
                        None => agg.tags.push((tag.to_string(), value)),
                    }
                }
            }
        }
    }
    out
}

/// MLflow's `_get_truncated_preview`: for chat payloads the text of the last message of
/// `role`, else the JSON text itself; at most [`PREVIEW_MAX_LENGTH`] characters.
pub fn preview(json_text: &str, role: &str) -> String {
    let content = PyValue::loads(json_text)
        .as_ref()
        .and_then(messages)
        .and_then(|msgs| {
            let msg = msgs
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(PyValue::as_str) == Some(role))
                .or(msgs.last())?;
            Some(message_text(msg))
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| json_text.to_string());
    if content.chars().count() <= PREVIEW_MAX_LENGTH {
        return content;
    }
    let mut cut: String = content.chars().take(PREVIEW_MAX_LENGTH - 3).collect();
    cut.push_str("...");
    cut
}

fn is_message(v: &PyValue) -> bool {
    matches!(v, PyValue::Dict(_)) && v.get("role").is_some() && v.get("content").is_some()
}

fn messages(obj: &PyValue) -> Option<Vec<PyValue>> {
    if !matches!(obj, PyValue::Dict(_)) {
        return None;
    }
    let list = |key: &str| match obj.get(key) {
        Some(PyValue::List(items)) if !items.is_empty() => {
            Some(items.iter().filter(|i| is_message(i)).cloned().collect())
        }
        _ => None,
    };
    if let Some(m) = list("messages") {
        return Some(m);
    }
    if let Some(PyValue::List(choices)) = obj.get("choices") {
        if let Some(msg) = choices.first().and_then(|c| c.get("message")) {
            if msg.truthy() && is_message(msg) {
                return Some(vec![msg.clone()]);
            }
        }
    }
    if let Some(m) = list("input").or_else(|| list("output")) {
        return Some(m);
    }
    obj.get("request").and_then(messages)
}

fn message_text(msg: &PyValue) -> String {
    match msg.get("content") {
        Some(PyValue::Str(s)) => s.clone(),
        Some(PyValue::List(parts)) => parts
            .iter()
            .find_map(|p| match p {
                PyValue::Str(s) => Some(s.clone()),
                PyValue::Dict(_)
                    if matches!(
                        p.get("type").and_then(PyValue::as_str),
                        Some("text" | "output_text")
                    ) =>
                {
                    Some(
                        p.get("text")
                            .and_then(PyValue::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                }
                _ => None,
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, parent: Option<&str>, usage: Option<&str>) -> Node {
        let attrs: Attributes = usage
            .map(|u| vec![(CHAT_USAGE.to_string(), u.to_string())])
            .unwrap_or_default();
        Node::new(id, parent, &attrs, CHAT_USAGE)
    }

    #[test]
    fn usage_counts_a_rollup_parent_once() {
        let nodes = vec![
            node(
                "a",
                None,
                Some(r#"{"input_tokens": 100, "output_tokens": 50, "total_tokens": 150}"#),
            ),
            node(
                "b",
                Some("a"),
                Some(r#"{"input_tokens": 200, "output_tokens": 75, "total_tokens": 275}"#),
            ),
            node(
                "c",
                None,
                Some(
                    r#"{"input_tokens": 1, "output_tokens": 2, "total_tokens": 3, "cache_read_input_tokens": 4}"#,
                ),
            ),
            node("d", None, None),
        ];
        assert_eq!(
            usage_of(&nodes).unwrap().dumps(false),
            r#"{"input_tokens": 101, "output_tokens": 52, "total_tokens": 153, "cache_read_input_tokens": 4}"#
        );
        assert!(usage_of(&[node("x", None, None)]).is_none());
    }

    #[test]
    fn previews() {
        assert_eq!(preview("\"Hello\"", "user"), "\"Hello\"");
        let chat = r#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}"#;
        assert_eq!(preview(chat, "user"), "hi");
        let resp = r#"{"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}}]}"#;
        assert_eq!(preview(resp, "assistant"), "yo");
        let long = format!("\"{}\"", "é".repeat(2000));
        let p = preview(&long, "user");
        assert_eq!(p.chars().count(), PREVIEW_MAX_LENGTH);
        assert!(p.ends_with("..."));
    }
}
