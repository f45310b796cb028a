//! Trace metrics and filter correlation as MLflow's SQL store computes them: one GROUP BY
//! over `trace_info` (joined with `spans`, or from `assessments`), grouped by the time
//! bucket and the dimensions in that order and ordered the same way, rows with a NULL
//! dimension or metric left out. Percentiles are interpolated here from the group's sorted
//! values, the same on every database (PostgreSQL's `percentile_cont`).

use std::collections::HashMap;

use sqlx::any::AnyRow;

use crate::domain::search::traces::TraceClause;
use crate::domain::traces::metrics::{
    bucket_label, percentile, AggKind, DataPoint, MetricFilter, MetricsQuery, View,
};
use crate::error::Result;
use crate::store::sql::{get_f64, get_i64, get_str, Dialect, Sql};
use crate::store::Store;

/// Trace, span and assessment counts behind an NPMI.
pub struct CorrelationCounts {
    pub total: i64,
    pub first: i64,
    pub second: i64,
    pub joint: i64,
}

/// The column (or expression) a metric aggregates.
fn metric_column(d: Dialect, view: View, metric: &str) -> String {
    match (view, metric) {
        (View::Traces, "trace_count") => "t.request_id".into(),
        (View::Traces, "session_count") => "DISTINCT t.session_id".into(),
        (View::Traces, "latency") => "t.execution_time_ms".into(),
        // Validated before: the remaining trace metrics are token columns of trace_info.
        (View::Traces, tokens) => format!("t.{tokens}"),
        (View::Spans, "span_count") => "s.span_id".into(),
        (View::Spans, "latency") => {
            d.int_div("(s.end_time_unix_nano - s.start_time_unix_nano)", 1_000_000)
        }
        (View::Spans, cost) => format!("s.{cost}"),
        (View::Assessments, "assessment_count") => "a.assessment_id".into(),
        (View::Assessments, _) => "a.aggregate_value".into(),
    }
}

fn dimension_column(dimension: &str) -> &'static str {
    match dimension {
        "trace_name" => "t.trace_name",
        "trace_status" => "t.status",
        "span_name" => "s.name",
        "span_type" => "s.type",
        "span_status" => "s.status",
        "span_model_name" => "s.model_name",
        "span_model_provider" => "s.model_provider",
        "assessment_name" => "a.name",
        _ => "a.value",
    }
}

/// The start of a row's time bucket, in the unit of the view's timestamp (spans: ns).
fn bucket_column(view: View, seconds: i64) -> String {
    let (column, size) = match view {
        View::Traces => ("t.timestamp_ms", seconds * 1000),
        View::Spans => ("s.start_time_unix_nano", seconds * 1_000_000_000),
        View::Assessments => ("a.trace_timestamp_ms", seconds * 1000),
    };
    format!("({column} - ({column} % {size}))")
}

/// `EXISTS` over a key/value table of the trace.
fn push_kv(sql: &mut Sql, d: Dialect, table: &str, key: &str, value: &str) {
    sql.push(&format!(
        "EXISTS (SELECT 1 FROM {table} kv WHERE kv.request_id = t.request_id AND kv.{} = ",
        d.key_col()
    ))
    .bind(key)
    .push(" AND ");
    d.push_text_compare(sql, "kv.value", "=", value);
    sql.push(")");
}

fn push_filter(sql: &mut Sql, d: Dialect, f: &MetricFilter) {
    sql.push(" AND ");
    let (column, value) = match f {
        MetricFilter::TraceStatus(v) => ("t.status", v),
        MetricFilter::TraceTag(k, v) if k == "mlflow.traceName" => ("t.trace_name", v),
        MetricFilter::TraceTag(k, v) => return push_kv(sql, d, "trace_tags", k, v),
        MetricFilter::TraceMetadata(k, v) if k == "mlflow.trace.session" => ("t.session_id", v),
        MetricFilter::TraceMetadata(k, v) if k == "mlflow.sourceRun" => {
            // A run link is metadata, or an association written by link-to-run.
            sql.push(
                "(EXISTS (SELECT 1 FROM entity_associations ea WHERE ea.source_id = \
                 t.request_id AND ea.source_type = 'trace' AND ea.destination_type = 'run' \
                 AND ea.destination_id = ",
            )
            .bind(v.as_str())
            .push(") OR ");
            push_kv(sql, d, "trace_request_metadata", k, v);
            sql.push(")");
            return;
        }
        MetricFilter::TraceMetadata(k, v) => {
            return push_kv(sql, d, "trace_request_metadata", k, v)
        }
        MetricFilter::SpanName(v) => ("s.name", v),
        MetricFilter::SpanStatus(v) => ("s.status", v),
        MetricFilter::SpanType(v) => ("s.type", v),
        MetricFilter::AssessmentName(v) => ("a.name", v),
        MetricFilter::AssessmentType(v) => ("a.assessment_type", v),
    };
    d.push_text_compare(sql, column, "=", value);
}

/// FROM, joins and WHERE of a metrics query: the rows to aggregate.
fn push_rows(sql: &mut Sql, q: &MetricsQuery, metric_col: &str, bucket: Option<&str>) {
    let d = sql.dialect;
    match q.view {
        View::Traces => sql.push(" FROM trace_info t WHERE t.experiment_id IN "),
        View::Spans => sql.push(
            " FROM trace_info t JOIN spans s ON s.trace_id = t.request_id \
             WHERE t.experiment_id IN ",
        ),
        View::Assessments => sql
            .push(
                " FROM assessments a JOIN trace_info t ON t.request_id = a.trace_id \
             WHERE a.valid = ",
            )
            .bind(true)
            .push(" AND a.experiment_id IN "),
    };
    if q.experiment_ids.is_empty() {
        // No experiment: nothing matches, and an aggregate without groups still answers.
        sql.push("(NULL) AND 1 = 0");
    } else {
        sql.bind_list(q.experiment_ids.iter().copied());
    }
    for f in &q.filters {
        push_filter(sql, d, f);
    }
    let cost = q.view == View::Spans && q.metric.ends_with("_cost");
    let (time_col, scale) = match q.view {
        View::Spans if cost => ("s.start_time_unix_nano", 1_000_000),
        View::Assessments => ("a.trace_timestamp_ms", 1),
        _ => ("t.timestamp_ms", 1),
    };
    if let Some(start) = q.start_ms {
        sql.push(&format!(" AND {time_col} >= "))
            .bind(start.saturating_mul(scale));
    }
    if let Some(end) = q.end_ms {
        if scale == 1 {
            sql.push(&format!(" AND {time_col} <= ")).bind(end);
        } else {
            // Every nanosecond of the last millisecond is in.
            sql.push(&format!(" AND {time_col} < "))
                .bind(end.saturating_add(1).saturating_mul(scale));
        }
    }
    let not_null = metric_col.trim_start_matches("DISTINCT ");
    sql.push(&format!(" AND {not_null} IS NOT NULL"));
    if let Some(b) = bucket {
        sql.push(&format!(" AND {b} IS NOT NULL"));
    }
    for dim in &q.dimensions {
        sql.push(&format!(" AND {} IS NOT NULL", dimension_column(dim)));
    }
}

/// The select list of a metrics query's groups: the time bucket as `time_bucket`, then each
/// dimension as `dim_<i>` (the names [`row_dimensions`] reads), followed by `values`.
fn select_list(bucket: Option<&str>, q: &MetricsQuery, values: Vec<String>) -> String {
    let mut select: Vec<String> = bucket
        .iter()
        .map(|b| format!("{b} AS time_bucket"))
        .collect();
    select.extend(
        q.dimensions
            .iter()
            .enumerate()
            .map(|(i, dm)| format!("{} AS dim_{i}", dimension_column(dm))),
    );
    select.extend(values);
    select.join(", ")
}

/// The column names of a query's dimensions, `dim_<i>`, made once per query.
fn dimension_names(q: &MetricsQuery) -> Vec<String> {
    (0..q.dimensions.len())
        .map(|i| format!("dim_{i}"))
        .collect()
}

/// The dimension values of a row (see [`select_list`]) as labelled strings; `names` from
/// [`dimension_names`].
fn row_dimensions(row: &AnyRow, q: &MetricsQuery, names: &[String]) -> Vec<(String, String)> {
    let mut dims = Vec::new();
    if q.bucket_seconds.is_some() {
        let start = get_i64(row, "time_bucket").unwrap_or_default();
        let ms = if q.view == View::Spans {
            start / 1_000_000
        } else {
            start
        };
        dims.push(("time_bucket".to_string(), bucket_label(ms)));
    }
    for (name, column) in q.dimensions.iter().zip(names) {
        let value = get_str(row, column.as_str())
            .or_else(|| get_i64(row, column.as_str()).map(|n| n.to_string()))
            .unwrap_or_default();
        dims.push((name.clone(), value));
    }
    dims
}

impl Store {
    pub async fn query_trace_metrics(&self, q: &MetricsQuery) -> Result<Vec<DataPoint>> {
        let d = self.dialect;
        let metric_col = metric_column(d, q.view, &q.metric);
        let bucket = q.bucket_seconds.map(|s| bucket_column(q.view, s));
        // The groups lead the select list (see `select_list`): GROUP BY their positions.
        let group_count = usize::from(bucket.is_some()) + q.dimensions.len();
        let positions: Vec<String> = (1..=group_count).map(|i| i.to_string()).collect();

        let plain: Vec<_> = q
            .aggregations
            .iter()
            .filter(|a| a.kind != AggKind::Percentile)
            .collect();
        // Each plain aggregation as `agg_<i>`, its position among them.
        let agg_names: Vec<String> = (0..plain.len()).map(|i| format!("agg_{i}")).collect();
        let mut values: Vec<String> = plain
            .iter()
            .zip(&agg_names)
            .map(|(a, name)| {
                let agg = d.cast_double(&format!("{}({metric_col})", a.kind.name()));
                format!("{agg} AS {name}")
            })
            .collect();
        if plain.is_empty() {
            values.push("COUNT(*) AS n".into());
        }
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(&select_list(bucket.as_deref(), q, values));
        push_rows(&mut sql, q, &metric_col, bucket.as_deref());
        if !positions.is_empty() {
            sql.push(" GROUP BY ")
                .push(&positions.join(", "))
                .push(" ORDER BY ")
                .push(&positions.join(", "));
        }
        sql.push(" LIMIT ").bind(q.max_results);
        let rows = self.fetch_all(&sql).await?;

        let percentiles = self
            .percentile_values(q, &metric_col, bucket.as_deref())
            .await?;
        let dim_names = dimension_names(q);
        let mut points = Vec::new();
        for row in &rows {
            let dimensions = row_dimensions(row, q, &dim_names);
            let mut values = Vec::new();
            let mut plain_names = agg_names.iter();
            for a in &q.aggregations {
                let value = if a.kind == AggKind::Percentile {
                    let sorted = percentiles.get(&dimensions).map(Vec::as_slice);
                    sorted.and_then(|v| percentile(v, a.percentile.unwrap_or_default()))
                } else {
                    plain_names
                        .next()
                        .and_then(|name| get_f64(row, name.as_str()))
                };
                if let Some(v) = value {
                    values.push((a.label(), v));
                }
            }
            if !values.is_empty() {
                points.push(DataPoint { dimensions, values });
            }
        }
        Ok(points)
    }

    /// Each group's metric values, sorted, when a percentile is asked for.
    async fn percentile_values(
        &self,
        q: &MetricsQuery,
        metric_col: &str,
        bucket: Option<&str>,
    ) -> Result<HashMap<Vec<(String, String)>, Vec<f64>>> {
        let mut out: HashMap<Vec<(String, String)>, Vec<f64>> = HashMap::new();
        if !q.aggregations.iter().any(|a| a.kind == AggKind::Percentile) {
            return Ok(out);
        }
        let d = self.dialect;
        let value = d.cast_double(metric_col.trim_start_matches("DISTINCT "));
        let mut sql = self.sql();
        sql.push("SELECT ").push(&select_list(
            bucket,
            q,
            vec![format!("{value} AS metric_value")],
        ));
        push_rows(&mut sql, q, metric_col, bucket);
        let dim_names = dimension_names(q);
        for (dims, v) in self.fetch_all(&sql).await?.iter().filter_map(|row| {
            get_f64(row, "metric_value").map(|v| (row_dimensions(row, q, &dim_names), v))
        }) {
            out.entry(dims).or_default().push(v);
        }
        for values in out.values_mut() {
            values.sort_by(f64::total_cmp);
        }
        Ok(out)
    }

    /// How many traces of the experiments (matching `base`, if given) match each filter and
    /// both.
    pub async fn trace_filter_counts(
        &self,
        experiment_ids: &[i64],
        first: &[TraceClause],
        second: &[TraceClause],
        base: &[TraceClause],
    ) -> Result<CorrelationCounts> {
        if experiment_ids.is_empty() {
            return Ok(CorrelationCounts {
                total: 0,
                first: 0,
                second: 0,
                joint: 0,
            });
        }
        let mut sql = self.sql();
        sql.push("SELECT COUNT(*) AS n_total");
        for (filters, name) in [
            (&[first][..], "n_first"),
            (&[second][..], "n_second"),
            (&[first, second][..], "n_joint"),
        ] {
            sql.push(", COUNT(CASE WHEN 1 = 1");
            for clauses in filters {
                self.push_conditions(&mut sql, clauses, experiment_ids)?;
            }
            sql.push(&format!(" THEN 1 END) AS {name}"));
        }
        sql.push(" FROM trace_info t WHERE t.experiment_id IN ")
            .bind_list(experiment_ids.iter().copied());
        self.push_conditions(&mut sql, base, experiment_ids)?;
        let row = sql.query().fetch_one(&self.reader).await?;
        let count = |name| get_i64(&row, name).unwrap_or_default();
        Ok(CorrelationCounts {
            total: count("n_total"),
            first: count("n_first"),
            second: count("n_second"),
            joint: count("n_joint"),
        })
    }
}
