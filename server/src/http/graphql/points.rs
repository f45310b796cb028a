//! The metric points of `mlflowGetMetricHistoryBulkInterval`, resolved in one pass.
//!
//! A page of the UI's charts is 100 runs of 300 steps: 30,000 points. async-graphql resolves
//! every field of every object as a boxed future of its own, which took most of that
//! request's time (perf). Every point has the same selection, so it is read once, and each
//! point is written straight into the answer. Type information, and so validation and
//! introspection, is the derived `[MlflowMetricWithRunId!]!`'s.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType, ServerError, ServerResult, Value,
};

use super::types::MetricWithRunId;

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

fn text(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn point(p: &MetricWithRunId, plan: &[(Name, Column)]) -> Value {
    let mut object = IndexMap::with_capacity(plan.len());
    for (key, column) in plan {
        let value = match column {
            Column::Key => text(&p.key),
            Column::RunId => text(&p.run_id),
            Column::Value => p
                .value
                .and_then(async_graphql::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            Column::Timestamp => p.timestamp.map_or(Value::Null, |t| t.to_value()),
            Column::Step => p.step.map_or(Value::Null, |s| s.to_value()),
            Column::Typename => Value::String("MlflowMetricWithRunId".into()),
        };
        object.insert(key.clone(), value);
    }
    Value::Object(object)
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
        Ok(Value::List(
            self.0.iter().map(|p| point(p, &columns)).collect(),
        ))
    }
}
