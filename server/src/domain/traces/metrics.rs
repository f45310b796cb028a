//! Trace metrics (`traces/metrics`) and filter correlation, free of SQL: the views and the
//! metrics, aggregations and dimensions each allows (MLflow's configuration table), the
//! `view.entity[.key] = 'value'` filters, the labels of the answer, percentiles by linear
//! interpolation, and the NPMI of two filters.

use super::pyjson::py_float;
use crate::error::{MlflowError, Result};

/// What is counted: traces, their spans, or their assessments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Traces,
    Spans,
    Assessments,
}

impl View {
    /// The proto enum by name (`TRACES`) or number (1).
    pub fn parse(value: &str) -> Result<View> {
        match value {
            "TRACES" | "1" => Ok(View::Traces),
            "SPANS" | "2" => Ok(View::Spans),
            "ASSESSMENTS" | "3" => Ok(View::Assessments),
            other => Err(MlflowError::invalid(format!(
                "view_type must be one of ['TRACES', 'SPANS', 'ASSESSMENTS'], got '{other}'"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            View::Traces => "TRACES",
            View::Spans => "SPANS",
            View::Assessments => "ASSESSMENTS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Sum,
    Avg,
    Percentile,
    Min,
    Max,
}

impl AggKind {
    pub fn parse(value: &str) -> Result<AggKind> {
        Ok(match value {
            "COUNT" | "1" => AggKind::Count,
            "SUM" | "2" => AggKind::Sum,
            "AVG" | "3" => AggKind::Avg,
            "PERCENTILE" | "4" => AggKind::Percentile,
            "MIN" | "5" => AggKind::Min,
            "MAX" | "6" => AggKind::Max,
            other => {
                return Err(MlflowError::invalid(format!(
                    "Invalid aggregation_type '{other}'"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count => "COUNT",
            AggKind::Sum => "SUM",
            AggKind::Avg => "AVG",
            AggKind::Percentile => "PERCENTILE",
            AggKind::Min => "MIN",
            AggKind::Max => "MAX",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub kind: AggKind,
    /// 0 to 100, only for percentiles.
    pub percentile: Option<f64>,
}

impl Aggregation {
    pub fn new(kind: AggKind, percentile: Option<f64>) -> Result<Aggregation> {
        match (kind, percentile) {
            (AggKind::Percentile, None) => Err(MlflowError::invalid(
                "Percentile value is required for PERCENTILE aggregation",
            )),
            (AggKind::Percentile, Some(p)) if !(0.0..=100.0).contains(&p) => {
                Err(MlflowError::invalid(format!(
                    "Percentile value must be between 0 and 100, got {p}"
                )))
            }
            (AggKind::Percentile, _) => Ok(Aggregation { kind, percentile }),
            (_, Some(_)) => Err(MlflowError::invalid(format!(
                "Percentile value is only allowed for PERCENTILE aggregation type, got {}",
                kind.name()
            ))),
            (_, None) => Ok(Aggregation { kind, percentile }),
        }
    }

    /// The key of the value in a data point: `COUNT`, or `P95.0` (the percentile as Python
    /// prints a float).
    pub fn label(&self) -> String {
        match self.percentile {
            Some(p) => format!("P{}", py_float(p)),
            None => self.kind.name().to_string(),
        }
    }
}

use AggKind::{Avg, Count, Max, Min, Percentile, Sum};

const NUMERIC: &[AggKind] = &[Sum, Avg, Min, Max, Percentile];
const TIMING: &[AggKind] = &[Avg, Min, Max, Percentile];

/// The aggregations and dimensions a metric of a view allows; `None`: no such metric.
fn config(view: View, metric: &str) -> Option<(&'static [AggKind], &'static [&'static str])> {
    const MODEL: &[&str] = &["span_model_name", "span_model_provider"];
    Some(match (view, metric) {
        (View::Traces, "trace_count") => (&[Count], &["trace_name", "trace_status"]),
        (View::Traces, "session_count") => (&[Count], &[]),
        (View::Traces, "latency") => (TIMING, &["trace_name"]),
        (View::Traces, m) if TOKEN_METRICS.contains(&m) => (NUMERIC, &["trace_name"]),
        (View::Spans, "span_count") => (
            &[Count],
            &[
                "span_name",
                "span_type",
                "span_status",
                "span_model_name",
                "span_model_provider",
            ],
        ),
        (View::Spans, "latency") => (TIMING, &["span_name", "span_status"]),
        (View::Spans, "input_cost" | "output_cost" | "total_cost") => (NUMERIC, MODEL),
        (View::Assessments, "assessment_count") => {
            (&[Count], &["assessment_name", "assessment_value"])
        }
        (View::Assessments, "assessment_value") => (TIMING, &["assessment_name"]),
        _ => return None,
    })
}

/// Trace metrics kept in columns of `trace_info` of the same name.
pub const TOKEN_METRICS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
];

fn metric_names(view: View) -> &'static [&'static str] {
    match view {
        View::Traces => &[
            "trace_count",
            "session_count",
            "latency",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ],
        View::Spans => &[
            "span_count",
            "latency",
            "input_cost",
            "output_cost",
            "total_cost",
        ],
        View::Assessments => &["assessment_count", "assessment_value"],
    }
}

fn py_list<T: AsRef<str>>(items: &[T]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{}'", s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// Checks the metric, aggregations and dimensions against the view's table.
pub fn validate(
    view: View,
    metric: &str,
    aggregations: &[Aggregation],
    dimensions: &[String],
) -> Result<()> {
    let Some((aggs, dims)) = config(view, metric) else {
        return Err(MlflowError::invalid(format!(
            "metric_name must be one of {}, got '{metric}'",
            py_list(metric_names(view))
        )));
    };
    let mut bad: Vec<&str> = aggregations
        .iter()
        .map(|a| a.kind)
        .filter(|k| !aggs.contains(k))
        .map(AggKind::name)
        .collect();
    if !bad.is_empty() {
        bad.sort_unstable();
        bad.dedup();
        let mut ok: Vec<&str> = aggs.iter().map(|k| k.name()).collect();
        ok.sort_unstable();
        return Err(MlflowError::invalid(format!(
            "Found invalid aggregation_type(s): {}. Supported aggregation types: {}",
            py_list(&bad),
            py_list(&ok)
        )));
    }
    let mut bad: Vec<&str> = dimensions
        .iter()
        .map(String::as_str)
        .filter(|d| !dims.contains(d))
        .collect();
    if !bad.is_empty() {
        bad.sort_unstable();
        bad.dedup();
        let mut ok = dims.to_vec();
        ok.sort_unstable();
        return Err(MlflowError::invalid(format!(
            "Found invalid dimension(s): {}. Supported dimensions: {}",
            py_list(&bad),
            py_list(&ok)
        )));
    }
    Ok(())
}

/// One `view.entity[.key] = 'value'` filter of a metrics query.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricFilter {
    TraceStatus(String),
    TraceTag(String, String),
    TraceMetadata(String, String),
    SpanName(String),
    SpanStatus(String),
    SpanType(String),
    AssessmentName(String),
    AssessmentType(String),
}

/// Parses one filter; each filter string holds exactly one `=` comparison.
pub fn parse_filter(filter: &str, view: View) -> Result<MetricFilter> {
    let invalid = || {
        MlflowError::invalid(format!(
            "Invalid filter: '{filter}'. Expected one filter clause."
        ))
    };
    let at = filter.find(['=', '!', '<', '>']).ok_or_else(invalid)?;
    let (left, rest) = (filter[..at].trim(), &filter[at..]);
    let op_len = rest
        .find(|c: char| !matches!(c, '=' | '!' | '<' | '>'))
        .unwrap_or(rest.len());
    if &rest[..op_len] != "=" {
        return Err(MlflowError::invalid(format!(
            "Invalid comparator: '{}', only '=' operator is supported",
            &rest[..op_len]
        )));
    }
    let right = rest[op_len..].trim();
    let value = match right.chars().next() {
        Some(q @ ('\'' | '"')) if right.len() >= 2 && right.ends_with(q) => {
            let inner = &right[1..right.len() - 1];
            if inner.contains(q) {
                return Err(invalid());
            }
            inner.to_string()
        }
        _ => {
            return Err(MlflowError::invalid(format!(
                "Expected a quoted string value (e.g. 'my-value'). Got value {right}"
            )))
        }
    };
    let parts: Vec<&str> = left.splitn(3, '.').collect();
    let trim = |s: &str| s.trim_matches('`').to_string();
    let key = |s: &str| s.trim_matches(['`', '"', '\'']).to_string();
    let view_name = parts.first().map(|s| trim(s)).unwrap_or_default();
    let wrong_view = |wanted: View| {
        MlflowError::invalid(format!(
            "Filtering by {} is only supported for {} view type, got {}",
            view_name,
            wanted.name(),
            view.name()
        ))
    };
    let parsed = match (view_name.as_str(), &parts[1..]) {
        ("trace", ["status"]) => MetricFilter::TraceStatus(value),
        ("trace", ["tag", k]) => MetricFilter::TraceTag(key(k), value),
        ("trace", ["metadata", k]) => MetricFilter::TraceMetadata(key(k), value),
        ("span", ["name"]) => MetricFilter::SpanName(value),
        ("span", ["status"]) => MetricFilter::SpanStatus(value),
        ("span", ["type"]) => MetricFilter::SpanType(value),
        ("assessment", ["name"]) => MetricFilter::AssessmentName(value),
        ("assessment", ["type"]) => MetricFilter::AssessmentType(value),
        _ => {
            return Err(MlflowError::invalid(format!(
                "Invalid identifier '{left}'. Columns should be specified as 'trace.<key>', \
                 'span.<key>', 'assessment.<key>'."
            )))
        }
    };
    match view_name.as_str() {
        "span" if view != View::Spans => Err(wrong_view(View::Spans)),
        "assessment" if view != View::Assessments => Err(wrong_view(View::Assessments)),
        _ => Ok(parsed),
    }
}

/// A metrics query after validation.
#[derive(Debug, Clone)]
pub struct MetricsQuery {
    pub experiment_ids: Vec<i64>,
    pub view: View,
    pub metric: String,
    pub aggregations: Vec<Aggregation>,
    pub dimensions: Vec<String>,
    pub filters: Vec<MetricFilter>,
    pub bucket_seconds: Option<i64>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub max_results: i64,
}

/// One row of the answer: the dimension values by name and the aggregated values by label.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    pub dimensions: Vec<(String, String)>,
    pub values: Vec<(String, f64)>,
}

/// A time bucket's start (milliseconds) as Python's `datetime.isoformat()` of a UTC time.
pub fn bucket_label(start_ms: i64) -> String {
    let micros = start_ms.saturating_mul(1000);
    let text = crate::domain::time::python_datetime(micros).replacen(' ', "T", 1);
    format!("{text}+00:00")
}

/// The `p`th percentile (0 to 100) of sorted values, interpolating linearly between the two
/// nearest ranks (PostgreSQL's `percentile_cont`).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = p / 100.0 * last as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let (a, b) = (sorted[low.min(last)], sorted[high.min(last)]);
    Some(a + (b - a) * (rank - low as f64))
}

/// The normalised pointwise mutual information of two filters from their counts, unsmoothed
/// and with Jeffreys smoothing (0.5 added to each cell); NaN where it is undefined.
pub fn npmi(joint: i64, first: i64, second: i64, total: i64) -> (f64, f64) {
    if total <= 0 || first == 0 || second == 0 {
        return (f64::NAN, f64::NAN);
    }
    let cells = [
        joint,
        first - joint,
        second - joint,
        total - first - second + joint,
    ];
    if cells.iter().any(|c| *c < 0) {
        return (f64::NAN, f64::NAN);
    }
    let plain = if joint == 0 {
        -1.0
    } else {
        npmi_core(cells, 0.0)
    };
    (plain, npmi_core(cells, 0.5))
}

fn npmi_core(cells: [i64; 4], smoothing: f64) -> f64 {
    let [n11, n10, n01, n00] = cells.map(|c| c as f64 + smoothing);
    let n = n11 + n10 + n01 + n00;
    let (n1, n2) = (n11 + n10, n11 + n01);
    if n1 <= 0.0 || n2 <= 0.0 || n11 <= 0.0 {
        return f64::NAN;
    }
    if cells[1] == 0 && cells[2] == 0 && cells[3] == 0 {
        return 1.0;
    }
    let pmi = (n11.ln() + n.ln()) - (n1.ln() + n2.ln());
    let denominator = -(n11.ln() - n.ln());
    (pmi / denominator).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_buckets() {
        let p = Aggregation::new(AggKind::Percentile, Some(95.0)).unwrap();
        assert_eq!(p.label(), "P95.0");
        assert_eq!(
            Aggregation::new(AggKind::Count, None).unwrap().label(),
            "COUNT"
        );
        assert!(Aggregation::new(AggKind::Percentile, None).is_err());
        assert!(Aggregation::new(AggKind::Count, Some(5.0)).is_err());
        assert_eq!(bucket_label(3_600_000), "1970-01-01T01:00:00+00:00");
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert_eq!(percentile(&v, 100.0), Some(4.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn npmi_matches_mlflow() {
        let (plain, smooth) = npmi(6, 6, 7, 10);
        assert!(plain > 0.6 && plain < 0.8, "{plain}");
        assert!(smooth.is_finite());
        assert!(npmi(0, 0, 7, 10).0.is_nan());
        assert_eq!(npmi(0, 3, 3, 10).0, -1.0);
        assert_eq!(npmi(5, 5, 5, 5).0, 1.0);
    }

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("trace.tag.env = 'prod'", View::Traces).unwrap(),
            MetricFilter::TraceTag("env".into(), "prod".into())
        );
        assert_eq!(
            parse_filter("span.type = \"LLM\"", View::Spans).unwrap(),
            MetricFilter::SpanType("LLM".into())
        );
        assert!(parse_filter("span.type = 'LLM'", View::Traces).is_err());
        assert!(parse_filter("trace.status != 'OK'", View::Traces).is_err());
        assert!(parse_filter("trace.status = OK", View::Traces).is_err());
        assert!(parse_filter("trace.color = 'x'", View::Traces).is_err());
    }

    #[test]
    fn validation() {
        let count = [Aggregation::new(AggKind::Count, None).unwrap()];
        assert!(validate(
            View::Traces,
            "trace_count",
            &count,
            &["trace_status".into()]
        )
        .is_ok());
        assert!(validate(View::Traces, "latency", &count, &[]).is_err());
        assert!(validate(View::Traces, "nope", &count, &[]).is_err());
        assert!(validate(View::Spans, "span_count", &count, &["trace_name".into()]).is_err());
    }
}
