//! The metric points of `mlflowGetMetricHistoryBulkInterval`, resolved in one pass.
//!
//! A page of the UI's charts is 100 runs of 300 steps: 30,000 points. async-graphql resolves
//! every field of every object as a boxed future of its own, which took most of that
//! request's time (perf). Every point has the same selection, so it is read once, and each
//! point is written straight into the answer. Type information, and so validation and
//! introspection, is the derived `[MlflowMetricWithRunId!]!`'s.

use std::borrow::Cow;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value,
};

use super::types::MetricWithRunId;
use super::write_json;

/// The `metrics` list of a bulk-interval answer.
#[derive(Debug, Clone, Default)]
pub struct MetricPoints(pub Vec<MetricWithRunId>);

/// A field of `MlflowMetricWithRunId`.
#[derive(Clone, Copy)]
enum Column {
    Key,
    Value,
    Timestamp,
    Step,
    RunId,
    Typename,
}

/// The response keys and fields a point is answered with, in the query's order, fragments
/// expanded (`@skip`/`@include` are already applied by async-graphql before execution).
fn plan(
    ctx: &ContextSelectionSet<'_>,
    set: &SelectionSet,
    out: &mut Vec<(Name, Column)>,
) -> ServerResult<()> {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let column = match field.node.name.node.as_str() {
                    "key" => Column::Key,
                    "value" => Column::Value,
                    "timestamp" => Column::Timestamp,
                    "step" => Column::Step,
                    "runId" => Column::RunId,
                    "__typename" => Column::Typename,
                    other => {
                        return Err(ServerError::new(
                            format!(r#"Unknown field "{other}" on type "MlflowMetricWithRunId"."#),
                            Some(field.pos),
                        ))
                    }
                };
                let key = field.node.response_key().node.clone();
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, column));
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let fragment = ctx.query_env.fragments.get(name).ok_or_else(|| {
                    ServerError::new(format!(r#"Unknown fragment "{name}"."#), Some(spread.pos))
                })?;
                plan(ctx, &fragment.node.selection_set.node, out)?;
            }
            Selection::InlineFragment(fragment) => {
                plan(ctx, &fragment.node.selection_set.node, out)?;
            }
        }
    }
    Ok(())
}

/// The points as a JSON array, written straight from the metrics: 30,000 objects built as
/// async-graphql values and then serialized cost a quarter of the request (perf). The
/// answer carries the text as [`Value::Binary`], which [`super::answer`] writes unchanged
/// (nothing else in this schema makes binary values).
fn points_json(points: &[MetricWithRunId], plan: &[(Name, Column)]) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = plan
        .iter()
        .map(|(key, _)| {
            let mut quoted = Vec::new();
            write_json(&mut quoted, key.as_str());
            quoted.push(b':');
            quoted
        })
        .collect();
    let mut out = Vec::with_capacity(points.len() * (32 + 24 * plan.len()));
    out.push(b'[');
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        for (j, ((_, column), key)) in plan.iter().zip(&keys).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            write_column(&mut out, p, *column);
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

/// One field of a point, as the derived type would answer it: text, a JSON number (null
/// for NaN and the infinities), 64-bit integers as strings (`LongString`).
fn write_column(out: &mut Vec<u8>, p: &MetricWithRunId, column: Column) {
    let text = |out: &mut Vec<u8>, s: &Option<String>| match s {
        Some(s) => write_json(out, s),
        None => out.extend_from_slice(b"null"),
    };
    let long = |out: &mut Vec<u8>, n: Option<i64>| match n {
        Some(n) => {
            out.push(b'"');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    };
    match column {
        Column::Key => text(out, &p.key),
        Column::RunId => text(out, &p.run_id),
        Column::Value => match p.value.and_then(async_graphql::Number::from_f64) {
            Some(n) => write_json(out, &n),
            None => out.extend_from_slice(b"null"),
        },
        Column::Timestamp => long(out, p.timestamp.as_ref().map(|t| t.0)),
        Column::Step => long(out, p.step.as_ref().map(|s| s.0)),
        Column::Typename => out.extend_from_slice(br#""MlflowMetricWithRunId""#),
    }
}

impl OutputType for MetricPoints {
    fn type_name() -> Cow<'static, str> {
        <Vec<MetricWithRunId> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<MetricWithRunId> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<MetricWithRunId> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let mut columns = Vec::new();
        plan(ctx, &ctx.item.node, &mut columns)?;
        Ok(Value::Binary(points_json(&self.0, &columns).into()))
    }
}
