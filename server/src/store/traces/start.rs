//! Start-trace: the trace info the client sends when a trace ends (MLflow 3's start-trace,
//! or the legacy v2 start), creating the trace or completing one its spans created first.

use std::collections::HashMap;

use super::ingest::{
    bump_generation, experiment_location, float_of, int_of, trace_artifact_location, NewTrace,
};
use super::lock::lock_traces;
use super::{dedup_last, kv_upsert, TOKEN_COLUMNS};
use crate::domain::traces::pyjson::PyValue;
use crate::domain::traces::{
    validate_trace_name, TraceInfo, META_COST, META_INFO_FINALIZED, META_SESSION, META_TOKEN_USAGE,
    TAG_ARTIFACT_LOCATION, TAG_TRACE_NAME,
};
use crate::error::Result;
use crate::store::assessments::assessment_insert;
use crate::store::sql::Sql;
use crate::store::Store;

impl Store {
    /// Creates a trace from the info the client sends when the trace ends, or completes one
    /// its spans created first. Returns the stored info.
    /// `finalize` marks the info as final (MLflow 3's start-trace, sent when the trace ends);
    /// the legacy v2 start does not.
    pub async fn start_trace(&self, info: &NewTrace, finalize: bool) -> Result<TraceInfo> {
        let experiment_id = crate::domain::validation::parse_experiment_id(&info.experiment_id)?;
        if let Some((_, name)) = info.tags.iter().find(|(k, _)| k == TAG_TRACE_NAME) {
            validate_trace_name(name)?;
        }
        self.save_trace_start(experiment_id, info, finalize).await?;
        self.get_trace_info(&info.trace_id).await
    }

    async fn save_trace_start(
        &self,
        experiment_id: i64,
        info: &NewTrace,
        finalize: bool,
    ) -> Result<()> {
        let d = self.dialect;
        let id = info.trace_id.as_str();
        self.write(|tx, _| {
            Box::pin(async move {
                let location = experiment_location(&mut *tx, d, experiment_id, true).await?;
                let metadata: HashMap<&str, &str> = info
                    .trace_metadata
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let analytics = analytics_columns(&metadata);
                let trace_name = info
                    .tags
                    .iter()
                    .find(|(k, _)| k == TAG_TRACE_NAME)
                    .map(|(_, v)| v.clone());
                let mut tags: Vec<(String, String)> = info
                    .tags
                    .iter()
                    .filter(|(k, _)| k != TAG_TRACE_NAME)
                    .cloned()
                    .collect();
                tags.push((
                    TAG_ARTIFACT_LOCATION.to_string(),
                    trace_artifact_location(&location, id),
                ));
                let mut meta: Vec<(String, String)> = info
                    .trace_metadata
                    .iter()
                    .filter(|(k, _)| {
                        ![META_SESSION, META_TOKEN_USAGE, META_COST].contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                if finalize {
                    meta.push((META_INFO_FINALIZED.to_string(), "true".to_string()));
                }
                let mut meta = dedup_last(meta);
                meta.sort();

                let mut sql = Sql::new(d);
                let mut columns = String::from(
                    "request_id, experiment_id, timestamp_ms, execution_time_ms, status, \
             client_request_id, request_preview, response_preview, trace_name",
                );
                for (col, _) in &analytics {
                    columns.push_str(", ");
                    columns.push_str(col);
                }
                sql.push(&d.insert_ignore("trace_info", &columns))
                    .push("(")
                    .bind(id)
                    .push(", ")
                    .bind(experiment_id)
                    .push(", ")
                    .bind(info.request_time)
                    .push(", ")
                    .bind(info.execution_duration)
                    .push(", ")
                    .bind(info.state.as_str())
                    .push(", ")
                    .bind(info.client_request_id.clone())
                    .push(", ")
                    .bind(info.request_preview.clone())
                    .push(", ")
                    .bind(info.response_preview.clone())
                    .push(", ")
                    .bind(trace_name.clone());
                for (_, v) in &analytics {
                    sql.push(", ");
                    v.bind(&mut sql);
                }
                sql.push(")").push(d.insert_ignore_suffix());
                let inserted = sql.query().execute(&mut *tx).await?.rows_affected() == 1;
                if !inserted {
                    // The spans came first: lock the row and merge this info into it.
                    lock_traces(&mut *tx, d, &[id]).await?;
                    bump_generation(&mut *tx, d, &[id]).await?;
                    let mut sql = Sql::new(d);
                    sql.push("UPDATE trace_info SET experiment_id = ")
                        .bind(experiment_id)
                        .push(", timestamp_ms = ")
                        .bind(info.request_time)
                        .push(", execution_time_ms = ")
                        .bind(info.execution_duration)
                        .push(", status = ")
                        .bind(info.state.as_str())
                        .push(", client_request_id = ")
                        .bind(info.client_request_id.clone());
                    if trace_name.is_some() {
                        sql.push(", trace_name = ").bind(trace_name.clone());
                    }
                    for (col, v) in &analytics {
                        sql.push(", ").push(col).push(" = ");
                        v.bind(&mut sql);
                    }
                    if info.request_preview.is_some() {
                        sql.push(", request_preview = ")
                            .bind(info.request_preview.clone());
                    }
                    if info.response_preview.is_some() {
                        sql.push(", response_preview = ")
                            .bind(info.response_preview.clone());
                    }
                    sql.push(" WHERE request_id = ").bind(id);
                    sql.query().execute(&mut *tx).await?;
                    for table in ["spans", "assessments"] {
                        let mut sql = Sql::new(d);
                        sql.push("UPDATE ")
                            .push(table)
                            .push(" SET experiment_id = ")
                            .bind(experiment_id);
                        if table == "assessments" {
                            sql.push(", trace_timestamp_ms = ").bind(info.request_time);
                        }
                        sql.push(" WHERE trace_id = ").bind(id);
                        sql.query().execute(&mut *tx).await?;
                    }
                }
                if let Some(q) = kv_upsert(d, "trace_tags", id, &dedup_last(tags)) {
                    q.query().execute(&mut *tx).await?;
                }
                if let Some(q) = kv_upsert(d, "trace_request_metadata", id, &meta) {
                    q.query().execute(&mut *tx).await?;
                }
                for a in &info.assessments {
                    let mut a = a.clone();
                    a.trace_id = id.to_string();
                    assessment_insert(d, &a, experiment_id, info.request_time, true)
                        .query()
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }
}

/// A value for an analytics column of `trace_info`.
enum Analytic {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
}

impl Analytic {
    fn bind(&self, sql: &mut Sql) {
        match self {
            Analytic::Text(v) => sql.bind(v.clone()),
            Analytic::Int(v) => sql.bind(*v),
            Analytic::Float(Some(f)) => sql.bind(*f),
            Analytic::Float(None) => sql.push("NULL"),
        };
    }
}

/// MLflow's `analytics_columns_from_metadata`: session, token and cost columns from the
/// reserved metadata keys (only the keys present; unusable numbers become NULL).
fn analytics_columns(meta: &HashMap<&str, &str>) -> Vec<(&'static str, Analytic)> {
    let mut out = Vec::new();
    if let Some(s) = meta.get(META_SESSION) {
        out.push(("session_id", Analytic::Text(Some(s.to_string()))));
    }
    let dict = |key: &str| match meta.get(key).and_then(|v| PyValue::loads(v)) {
        Some(PyValue::Dict(d)) => Some(PyValue::Dict(d)),
        _ => None,
    };
    if let Some(usage) = dict(META_TOKEN_USAGE) {
        for (key, column) in TOKEN_COLUMNS {
            if let Some(v) = usage.get(key) {
                out.push((column, Analytic::Int(int_of(Some(v)))));
            }
        }
    }
    if let Some(cost) = dict(META_COST) {
        for key in ["input_cost", "output_cost", "total_cost"] {
            if let Some(v) = cost.get(key) {
                let column: &'static str = match key {
                    "input_cost" => "input_cost",
                    "output_cost" => "output_cost",
                    _ => "total_cost",
                };
                out.push((column, Analytic::Float(float_of(Some(v)))));
            }
        }
    }
    out
}
