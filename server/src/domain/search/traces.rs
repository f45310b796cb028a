//! MLflow's trace filter grammar (`SearchTraceUtils`) and trace `order_by` keys.
//!
//! Keys are `[prefix.]name`: attributes (`request_id`, `timestamp_ms`, `execution_time_ms`,
//! `end_time_ms`, `status`, `client_request_id`, with `trace.`/`attributes.`/`attribute.` or
//! no prefix), `tags.`, `metadata.`/`request_metadata.`, `span.` (`name`, `type`, `status`,
//! `content`, `attributes.<name>`), `feedback.<name>`, `expectation.<name>` and `issue.id`.
//! As in MLflow, the names `name`, `prompt`, `run_id` and `text` stand for the trace-name
//! tag, the linked-prompt tag, the source-run metadata and the span content whatever their
//! prefix.

use super::parser::{parse_clauses, parse_order_item, RawKey};
use super::{Comparator, Literal};
use crate::domain::traces::{META_SOURCE_RUN, TAG_LINKED_PROMPTS, TAG_TRACE_NAME};
use crate::error::{MlflowError, Result};

/// A trace attribute column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceAttr {
    RequestId,
    TimestampMs,
    ExecutionTimeMs,
    /// `timestamp_ms + execution_time_ms`.
    EndTimeMs,
    Status,
    ClientRequestId,
    ExperimentId,
}

impl TraceAttr {
    fn numeric(self) -> bool {
        matches!(
            self,
            TraceAttr::TimestampMs | TraceAttr::ExecutionTimeMs | TraceAttr::EndTimeMs
        )
    }
}

/// What a clause or an order key talks about.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceField {
    Attr(TraceAttr),
    Tag(String),
    Metadata(String),
    SpanName,
    SpanType,
    SpanStatus,
    SpanContent,
    SpanAttribute(String),
    Feedback(String),
    Expectation(String),
    IssueId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TraceClause {
    pub field: TraceField,
    pub comparator: Comparator,
    pub value: Literal,
}

/// The identifier types of the grammar after aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attribute,
    Tag,
    Metadata,
    Span,
    Feedback,
    Expectation,
    Issue,
}

const VALID_TYPES: &str = "{'tag', 'request_metadata', 'attribute', 'span', 'feedback', \
     'expectation', 'issue', 'tags', 'attributes', 'trace', 'metadata'}";

fn kind_of(prefix: &str) -> Result<Kind> {
    let p = prefix.trim_matches('`');
    Ok(match p {
        "attribute" | "attributes" | "trace" => Kind::Attribute,
        "tag" | "tags" => Kind::Tag,
        "request_metadata" | "metadata" => Kind::Metadata,
        "span" => Kind::Span,
        "feedback" => Kind::Feedback,
        "expectation" => Kind::Expectation,
        "issue" => Kind::Issue,
        _ => {
            return Err(MlflowError::invalid(format!(
                "Invalid entity type '{p}'. Valid values are {VALID_TYPES}"
            )))
        }
    })
}

fn attr(name: &str, for_order: bool) -> Option<TraceAttr> {
    Some(match name {
        "request_id" => TraceAttr::RequestId,
        "timestamp_ms" | "timestamp" => TraceAttr::TimestampMs,
        "execution_time_ms" | "execution_time" => TraceAttr::ExecutionTimeMs,
        "end_time_ms" | "end_time" => TraceAttr::EndTimeMs,
        "status" => TraceAttr::Status,
        "client_request_id" if !for_order => TraceAttr::ClientRequestId,
        "experiment_id" if for_order => TraceAttr::ExperimentId,
        _ => return None,
    })
}

/// Resolves a key to its kind and name, with MLflow's key aliases applied.
fn resolve(key: &RawKey, for_order: bool) -> Result<(Kind, String)> {
    let (kind, name) = match key.prefix.as_deref() {
        None => (Kind::Attribute, key.name.clone()),
        // `span.attributes.`name`` arrives as prefix `span.attributes`.
        Some(p) if p.trim_matches('`') == "span.attributes" => {
            (Kind::Span, format!("attributes.{}", key.name))
        }
        Some(p) => (kind_of(p)?, key.name.clone()),
    };
    let valid: &[&str] = if for_order {
        &[
            "experiment_id",
            "timestamp",
            "timestamp_ms",
            "execution_time",
            "execution_time_ms",
            "end_time",
            "end_time_ms",
            "status",
            "request_id",
            "name",
            "run_id",
        ]
    } else {
        &[
            "request_id",
            "timestamp",
            "timestamp_ms",
            "execution_time",
            "execution_time_ms",
            "end_time",
            "end_time_ms",
            "status",
            "client_request_id",
            "name",
            "run_id",
            "prompt",
            "text",
        ]
    };
    if kind == Kind::Attribute && !valid.contains(&name.as_str()) {
        return Err(MlflowError::invalid(format!(
            "Invalid attribute key '{name}' specified. Valid keys are '{valid:?}'"
        )));
    }
    if kind == Kind::Span {
        return Ok((kind, name));
    }
    Ok(match name.to_lowercase().as_str() {
        "name" => (Kind::Tag, TAG_TRACE_NAME.to_string()),
        "prompt" => (Kind::Tag, TAG_LINKED_PROMPTS.to_string()),
        "run_id" => (Kind::Metadata, META_SOURCE_RUN.to_string()),
        "text" => (Kind::Span, "content".to_string()),
        _ => (kind, name),
    })
}

fn cmp_set(cmp: Comparator, allowed: &[Comparator], what: &str) -> Result<()> {
    if allowed.contains(&cmp) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
    Err(MlflowError::invalid(format!(
        "Invalid comparator '{}' not one of '{names:?}'{what}",
        cmp.as_str()
    )))
}

use Comparator::*;
const TAG_CMPS: [Comparator; 7] = [Ne, Eq, Like, ILike, RLike, IsNull, IsNotNull];
const STRING_ATTR_CMPS: [Comparator; 7] = [Ne, Eq, In, NotIn, Like, ILike, RLike];
const NUMERIC_CMPS: [Comparator; 6] = [Gt, Ge, Ne, Eq, Lt, Le];
const ASSESSMENT_CMPS: [Comparator; 11] = [
    Ne, Eq, Gt, Ge, Lt, Le, Like, ILike, RLike, IsNull, IsNotNull,
];

fn expect_string(value: &Literal, kind: &str) -> Result<()> {
    match value {
        Literal::Str(_) | Literal::None => Ok(()),
        other => Err(MlflowError::invalid(format!(
            "Expected a quoted string value for {kind} (e.g. 'my-value'). Got value {}",
            show(other)
        ))),
    }
}

fn show(v: &Literal) -> String {
    match v {
        Literal::Str(s) => format!("'{s}'"),
        Literal::Num(n) => n.to_string(),
        Literal::List(l) => format!("{l:?}"),
        Literal::None => "NULL".into(),
    }
}

/// Parses a trace filter; an empty filter matches every trace.
pub fn parse_trace_filter(filter: &str) -> Result<Vec<TraceClause>> {
    let mut out = Vec::new();
    for raw in parse_clauses(filter)? {
        let (kind, name) = resolve(&raw.key, false)?;
        let cmp = raw.comparator;
        let value = raw.value;
        let field = match kind {
            Kind::Attribute => {
                let a = attr(&name, false).ok_or_else(|| {
                    MlflowError::invalid(format!("Invalid attribute key '{name}' specified."))
                })?;
                if a.numeric() {
                    cmp_set(cmp, &NUMERIC_CMPS, "")?;
                    if let Literal::List(_) = value {
                        return Err(MlflowError::invalid(
                            "Expected a quoted string value or a number for numeric attributes",
                        ));
                    }
                } else {
                    cmp_set(cmp, &STRING_ATTR_CMPS, "")?;
                    match &value {
                        Literal::Num(_) => {
                            return Err(MlflowError::invalid(
                                "Only the '{'timestamp_ms', 'timestamp', 'execution_time_ms', \
                                 'execution_time', 'end_time_ms', 'end_time'}' attributes \
                                 support comparison with numeric values.",
                            ))
                        }
                        Literal::List(_)
                            if a == TraceAttr::Status
                                || a == TraceAttr::RequestId
                                || a == TraceAttr::ClientRequestId => {}
                        Literal::List(_) => {
                            return Err(MlflowError::invalid(
                                "Only attributes in {'name', 'status', 'request_id', 'run_id', \
                                 'client_request_id'} supports comparison with a list of quoted \
                                 string values.",
                            ))
                        }
                        _ => {}
                    }
                }
                TraceField::Attr(a)
            }
            Kind::Tag => {
                cmp_set(cmp, &TAG_CMPS, "")?;
                expect_string(&value, "tag")?;
                if name == TAG_LINKED_PROMPTS {
                    if cmp != Eq {
                        return Err(MlflowError::invalid(format!(
                            "Invalid comparator '{}' for prompts filter. Only '=' is supported \
                             with format: prompt = \"name/version\"",
                            cmp.as_str()
                        )));
                    }
                    if let Literal::Str(s) = &value {
                        if s.matches('/').count() != 1 {
                            return Err(MlflowError::invalid(format!(
                                "Invalid prompts filter value '{s}'. Expected format: prompt = \"name/version\""
                            )));
                        }
                    }
                }
                TraceField::Tag(name)
            }
            Kind::Metadata => {
                cmp_set(cmp, &TAG_CMPS, "")?;
                expect_string(&value, "request_metadata")?;
                TraceField::Metadata(name)
            }
            Kind::Span => {
                let field = if let Some(attr_name) = name.strip_prefix("attributes.") {
                    let attr_name = attr_name.trim_matches('`');
                    if attr_name.is_empty() {
                        return Err(MlflowError::invalid(
                            "Span attribute name cannot be empty after 'attributes.'",
                        ));
                    }
                    cmp_set(cmp, &STRING_ATTR_CMPS, &format!(" for span.{name}"))?;
                    TraceField::SpanAttribute(attr_name.to_string())
                } else {
                    match name.as_str() {
                        "name" | "type" | "status" => {
                            cmp_set(cmp, &STRING_ATTR_CMPS, &format!(" for span.{name}"))?;
                            match name.as_str() {
                                "name" => TraceField::SpanName,
                                "type" => TraceField::SpanType,
                                _ => TraceField::SpanStatus,
                            }
                        }
                        "content" => {
                            cmp_set(cmp, &[Like, ILike], " for span.content")?;
                            TraceField::SpanContent
                        }
                        _ => {
                            return Err(MlflowError::invalid(format!(
                                "Invalid span attribute '{name}'. Supported attributes: name, \
                                 status, type, attributes.<attribute_name>."
                            )))
                        }
                    }
                };
                if let Literal::Num(_) = value {
                    expect_string(&value, "span")?;
                }
                field
            }
            Kind::Feedback | Kind::Expectation => {
                if name.is_empty() {
                    return Err(MlflowError::invalid(
                        "Assessment field name cannot be empty",
                    ));
                }
                cmp_set(cmp, &ASSESSMENT_CMPS, "")?;
                let numeric = matches!(cmp, Gt | Ge | Lt | Le);
                let ok = matches!(
                    (&value, numeric),
                    (Literal::Num(_), true) | (Literal::Str(_), false) | (Literal::None, false)
                );
                if !ok {
                    let which = if kind == Kind::Feedback {
                        "feedback"
                    } else {
                        "expectation"
                    };
                    return Err(MlflowError::invalid(if numeric {
                        format!(
                            "Expected a numeric value for {which} when using comparator '{}'. Got value {}",
                            cmp.as_str(),
                            show(&value)
                        )
                    } else {
                        format!(
                            "Expected a quoted string value for {which} (e.g. 'my-value'). Got value {}",
                            show(&value)
                        )
                    }));
                }
                let name = name.trim_matches('`').to_string();
                if kind == Kind::Feedback {
                    TraceField::Feedback(name)
                } else {
                    TraceField::Expectation(name)
                }
            }
            Kind::Issue => {
                if name != "id" {
                    return Err(MlflowError::invalid(format!(
                        "Invalid issue attribute '{name}'. Supported attributes: id"
                    )));
                }
                cmp_set(cmp, &[Eq], " for issue.id")?;
                expect_string(&value, "issue")?;
                TraceField::IssueId
            }
        };
        out.push(TraceClause {
            field,
            comparator: cmp,
            value,
        });
    }
    Ok(out)
}

/// Parses the `order_by` items of a trace search: attributes, tags and metadata.
pub fn parse_trace_order(items: &[String]) -> Result<Vec<(TraceField, bool)>> {
    let mut out: Vec<(TraceField, bool)> = Vec::new();
    for item in items {
        let (key, ascending) = parse_order_item(item)?;
        let (kind, name) = resolve(&key, true)?;
        let field = match kind {
            Kind::Attribute => TraceField::Attr(attr(&name, true).ok_or_else(|| {
                MlflowError::invalid(format!("Invalid attribute key '{name}' specified."))
            })?),
            Kind::Tag => TraceField::Tag(name),
            Kind::Metadata => {
                if [
                    crate::domain::traces::META_TOKEN_USAGE,
                    crate::domain::traces::META_COST,
                ]
                .contains(&name.as_str())
                {
                    return Err(MlflowError::invalid(format!(
                        "Ordering by reserved metadata '{name}' is not supported because it is \
                         represented by multiple columns."
                    )));
                }
                TraceField::Metadata(name)
            }
            _ => {
                return Err(MlflowError::invalid(format!(
                    "Invalid identifier type for order_by: '{item}'"
                )))
            }
        };
        if out.iter().any(|(f, _)| *f == field) {
            return Err(MlflowError::invalid(format!(
                "`order_by` contains duplicate fields: {items:?}"
            )));
        }
        out.push((field, ascending));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_aliases() {
        let c = parse_trace_filter(
            "trace.status = 'OK' AND name = 'x' AND tags.k != 'v' AND metadata.`mlflow.sourceRun` = 'r' \
             AND span.attributes.`my key` LIKE '%a%' AND feedback.quality > 0.5 AND timestamp > 10 \
             AND run_id = 'r2' AND text ILIKE '%hi%' AND span.type IN ('LLM', 'TOOL')",
        )
        .unwrap();
        assert_eq!(c[0].field, TraceField::Attr(TraceAttr::Status));
        assert_eq!(c[1].field, TraceField::Tag(TAG_TRACE_NAME.into()));
        assert_eq!(c[3].field, TraceField::Metadata(META_SOURCE_RUN.into()));
        assert_eq!(c[4].field, TraceField::SpanAttribute("my key".into()));
        assert_eq!(c[5].field, TraceField::Feedback("quality".into()));
        assert_eq!(c[6].field, TraceField::Attr(TraceAttr::TimestampMs));
        assert_eq!(c[7].field, TraceField::Metadata(META_SOURCE_RUN.into()));
        assert_eq!(c[8].field, TraceField::SpanContent);
        assert_eq!(c[9].comparator, In);
        assert!(parse_trace_filter("").unwrap().is_empty());
    }

    #[test]
    fn refusals() {
        for bad in [
            "foo.x = 'a'",
            "bogus = 'a'",
            "status > 'a'",
            "tags.k > 'a'",
            "timestamp_ms = 'x' OR status = 'OK'",
            "feedback.q > 'high'",
            "feedback.q = 5",
            "span.content = 'x'",
            "span.bogus = 'x'",
            "issue.other = 'x'",
            "prompt = 'noslash'",
            "status = 5",
        ] {
            assert!(parse_trace_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_keys() {
        let o = parse_trace_order(&[
            "timestamp_ms DESC".into(),
            "name".into(),
            "metadata.k".into(),
        ])
        .unwrap();
        assert_eq!(o[0], (TraceField::Attr(TraceAttr::TimestampMs), false));
        assert_eq!(o[1].0, TraceField::Tag(TAG_TRACE_NAME.into()));
        assert!(parse_trace_order(&["timestamp DESC".into(), "timestamp_ms".into()]).is_err());
        assert!(parse_trace_order(&["span.name".into()]).is_err());
    }
}
