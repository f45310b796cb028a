//! Trace metrics and filter correlation: MLflow's checks of the request (the view's metric
//! table, the time window a bucketed query needs, the page size), then the store.

use super::tracking::Tracking;
use crate::domain::search::traces::parse_trace_filter;
use crate::domain::traces::metrics::{self as m, Aggregation, DataPoint, MetricsQuery, View};
use crate::domain::validation as v;
use crate::error::{MlflowError, Result};

/// MLflow's page of data points when the request names none.
pub const DEFAULT_METRICS_MAX_RESULTS: i64 = 1000;

/// A metrics request as the handler reads it.
#[derive(Debug, Default)]
pub struct MetricsRequest {
    pub experiment_ids: Vec<String>,
    pub view_type: String,
    pub metric_name: String,
    pub aggregations: Vec<Aggregation>,
    pub dimensions: Vec<String>,
    pub filters: Vec<String>,
    pub time_interval_seconds: Option<i64>,
    pub start_time_ms: Option<i64>,
    pub end_time_ms: Option<i64>,
    pub max_results: Option<i64>,
}

/// The NPMI of two trace filters and the counts behind it.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub npmi: f64,
    pub npmi_smoothed: f64,
    pub filter1_count: i64,
    pub filter2_count: i64,
    pub joint_count: i64,
    pub total_count: i64,
}

fn experiment_ids(ids: &[String]) -> Result<Vec<i64>> {
    ids.iter().map(|id| v::parse_experiment_id(id)).collect()
}

impl Tracking {
    pub async fn query_trace_metrics(&self, r: MetricsRequest) -> Result<Vec<DataPoint>> {
        let view = View::parse(&r.view_type)?;
        m::validate(view, &r.metric_name, &r.aggregations, &r.dimensions)?;
        let bucket = r.time_interval_seconds.filter(|s| *s != 0);
        if let Some(s) = bucket {
            if r.start_time_ms.is_none() || r.end_time_ms.is_none() {
                return Err(MlflowError::invalid(
                    "start_time_ms and end_time_ms are required if time_interval_seconds is set",
                ));
            }
            if s < 0 {
                return Err(MlflowError::invalid(format!(
                    "time_interval_seconds must be positive, got {s}"
                )));
            }
        }
        let max_results = r.max_results.unwrap_or(DEFAULT_METRICS_MAX_RESULTS);
        if max_results < 0 {
            return Err(MlflowError::invalid(format!(
                "Invalid value {max_results} for parameter 'max_results' supplied. It must be \
                 a non-negative integer"
            )));
        }
        let filters = r
            .filters
            .iter()
            .map(|f| m::parse_filter(f, view))
            .collect::<Result<Vec<_>>>()?;
        let query = MetricsQuery {
            experiment_ids: experiment_ids(&r.experiment_ids)?,
            view,
            metric: r.metric_name,
            aggregations: r.aggregations,
            dimensions: r.dimensions,
            filters,
            bucket_seconds: bucket,
            start_ms: r.start_time_ms,
            end_ms: r.end_time_ms,
            max_results,
        };
        self.store().query_trace_metrics(&query).await
    }

    /// How strongly two trace filters go together over the experiments' traces (those
    /// matching `base_filter`, if given).
    pub async fn trace_filter_correlation(
        &self,
        experiments: &[String],
        filter1: &str,
        filter2: &str,
        base_filter: Option<&str>,
    ) -> Result<Correlation> {
        let ids = experiment_ids(experiments)?;
        let first = parse_trace_filter(filter1)?;
        let second = parse_trace_filter(filter2)?;
        let base = parse_trace_filter(base_filter.unwrap_or(""))?;
        let c = self
            .store()
            .trace_filter_counts(&ids, &first, &second, &base)
            .await?;
        let (npmi, npmi_smoothed) = m::npmi(c.joint, c.first, c.second, c.total);
        Ok(Correlation {
            npmi,
            npmi_smoothed,
            filter1_count: c.first,
            filter2_count: c.second,
            joint_count: c.joint,
            total_count: c.total,
        })
    }
}
