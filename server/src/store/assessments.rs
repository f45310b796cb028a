//! Assessments of traces in the `assessments` table: create (and override, which marks the
//! overridden one invalid), read, update in place, delete (which makes the overridden one
//! valid again). Each row carries the trace's experiment and timestamp, as MLflow's does.

use super::sql::is_unique_violation;
use super::sql::{get_i64, get_str, Dialect, Sql};
use super::traces::{assessment_from_row, trace_not_found, ASSESSMENT_COLUMNS};
use super::{now_ms, Store};
use crate::domain::assessments::{new_id, Assessment};
use crate::error::{MlflowError, Result};

const INSERT_COLUMNS: [&str; 20] = [
    "assessment_id",
    "trace_id",
    "name",
    "assessment_type",
    "value",
    "error",
    "created_timestamp",
    "last_updated_timestamp",
    "source_type",
    "source_id",
    "run_id",
    "span_id",
    "rationale",
    "overrides",
    "valid",
    "assessment_metadata",
    "experiment_id",
    "trace_timestamp_ms",
    "aggregate_value",
    "is_numeric_value",
];

/// The INSERT of one assessment row (`upsert`: replacing a row of the same id).
pub(super) fn assessment_insert(
    d: Dialect,
    a: &Assessment,
    experiment_id: i64,
    trace_timestamp_ms: i64,
    upsert: bool,
) -> Sql {
    let (aggregate, numeric) = a.value.aggregate();
    let mut sql = Sql::new(d);
    sql.push(&format!(
        "INSERT INTO assessments ({}) VALUES (",
        INSERT_COLUMNS.join(", ")
    ))
    .bind(a.assessment_id.as_str())
    .push(", ")
    .bind(a.trace_id.as_str())
    .push(", ")
    .bind(a.name.as_str())
    .push(", ")
    .bind(a.value.kind())
    .push(", ")
    .bind(a.value.value_column())
    .push(", ")
    .bind(a.value.error_column())
    .push(", ")
    .bind(a.create_time_ms)
    .push(", ")
    .bind(a.last_update_time_ms)
    .push(", ")
    .bind(a.source_type.as_str())
    .push(", ")
    .bind(a.source_id.clone())
    .push(", ")
    .bind(a.run_id.clone())
    .push(", ")
    .bind(a.span_id.clone())
    .push(", ")
    .bind(a.rationale.clone())
    .push(", ")
    .bind(a.overrides.clone())
    .push(", ")
    .bind(a.valid)
    .push(", ")
    .bind(a.metadata_column())
    .push(", ")
    .bind(experiment_id)
    .push(", ")
    .bind(trace_timestamp_ms)
    .push(", ");
    match aggregate {
        Some(v) => sql.bind(v),
        None => sql.push("NULL"),
    };
    sql.push(", ").bind(numeric).push(")");
    if upsert {
        let update: Vec<&str> = INSERT_COLUMNS[1..].to_vec();
        sql.push(&d.upsert_columns(&["assessment_id"], &update));
    }
    sql
}

fn assessment_not_found(trace_id: &str, assessment_id: &str) -> MlflowError {
    MlflowError::not_found(format!(
        "Assessment with ID '{assessment_id}' not found for trace '{trace_id}'"
    ))
}

impl Store {
    /// The trace's experiment and timestamp, locked for the transaction; not found otherwise.
    async fn lock_trace_row(
        conn: &mut sqlx::AnyConnection,
        d: Dialect,
        trace_id: &str,
    ) -> Result<(i64, i64)> {
        let mut sql = Sql::new(d);
        sql.push("SELECT experiment_id, timestamp_ms FROM trace_info WHERE request_id = ")
            .bind(trace_id);
        sql.push(d.row_lock());
        let row = sql
            .query()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| trace_not_found(trace_id))?;
        Ok((
            get_i64(&row, "experiment_id").unwrap_or_default(),
            get_i64(&row, "timestamp_ms").unwrap_or_default(),
        ))
    }

    /// Creates an assessment on its trace; with `overrides`, the overridden one turns invalid.
    pub async fn create_assessment(&self, assessment: &Assessment) -> Result<Assessment> {
        let now = now_ms();
        let mut a = assessment.clone();
        if a.assessment_id.is_empty() {
            a.assessment_id = new_id();
        }
        if a.create_time_ms == 0 {
            a.create_time_ms = now;
        }
        if a.last_update_time_ms == 0 {
            a.last_update_time_ms = now;
        }
        a.valid = true;
        let a = &a;
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let (exp, ts) = Self::lock_trace_row(&mut *tx, d, &a.trace_id).await?;
                if let Some(over) = &a.overrides {
                    let mut sql = Sql::new(d);
                    sql.push("UPDATE assessments SET valid = ")
                        .bind(false)
                        .push(" WHERE trace_id = ")
                        .bind(a.trace_id.as_str())
                        .push(" AND assessment_id = ")
                        .bind(over.as_str());
                    if sql.query().execute(&mut *tx).await?.rows_affected() == 0 {
                        return Err(assessment_not_found(&a.trace_id, over));
                    }
                }
                assessment_insert(d, a, exp, ts, false)
                    .query()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            MlflowError::already_exists(format!(
                                "Assessment with ID '{}' already exists",
                                a.assessment_id
                            ))
                        } else {
                            e.into()
                        }
                    })?;
                Ok(())
            })
        })
        .await?;
        self.get_assessment(&a.trace_id, &a.assessment_id).await
    }

    pub async fn get_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<Assessment> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(ASSESSMENT_COLUMNS)
            .push(" FROM assessments WHERE trace_id = ")
            .bind(trace_id)
            .push(" AND assessment_id = ")
            .bind(assessment_id);
        match self.fetch_optional(&sql).await? {
            Some(row) => assessment_from_row(&row),
            None => {
                let mut sql = self.sql();
                sql.push("SELECT request_id FROM trace_info WHERE request_id = ")
                    .bind(trace_id);
                if self.fetch_optional(&sql).await?.is_none() {
                    return Err(MlflowError::not_found(format!(
                        "Trace with request_id '{trace_id}' not found"
                    )));
                }
                Err(assessment_not_found(trace_id, assessment_id))
            }
        }
    }

    /// Replaces an assessment's mutable fields (name, value, error, rationale, metadata) and
    /// its update time; the caller has merged the old and new values.
    pub async fn update_assessment(&self, updated: &Assessment) -> Result<Assessment> {
        let (aggregate, numeric) = updated.value.aggregate();
        let mut sql = self.sql();
        sql.push("UPDATE assessments SET name = ")
            .bind(updated.name.as_str())
            .push(", value = ")
            .bind(updated.value.value_column())
            .push(", error = ")
            .bind(updated.value.error_column())
            .push(", last_updated_timestamp = ")
            .bind(updated.last_update_time_ms)
            .push(", rationale = ")
            .bind(updated.rationale.clone())
            .push(", assessment_metadata = ")
            .bind(updated.metadata_column())
            .push(", aggregate_value = ");
        match aggregate {
            Some(v) => sql.bind(v),
            None => sql.push("NULL"),
        };
        sql.push(", is_numeric_value = ")
            .bind(numeric)
            .push(" WHERE trace_id = ")
            .bind(updated.trace_id.as_str())
            .push(" AND assessment_id = ")
            .bind(updated.assessment_id.as_str());
        let sql = &sql;
        self.write(|tx, _| {
            Box::pin(async move {
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await?;
        self.get_assessment(&updated.trace_id, &updated.assessment_id)
            .await
    }

    /// Deletes an assessment (absent: nothing to do); the one it overrode is valid again.
    pub async fn delete_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                Self::lock_trace_row(&mut *tx, d, trace_id).await?;
                let mut sql = Sql::new(d);
                sql.push("SELECT overrides FROM assessments WHERE trace_id = ")
                    .bind(trace_id)
                    .push(" AND assessment_id = ")
                    .bind(assessment_id);
                let Some(row) = sql.query().fetch_optional(&mut *tx).await? else {
                    return Ok(());
                };
                if let Some(over) = get_str(&row, "overrides") {
                    let mut sql = Sql::new(d);
                    sql.push("UPDATE assessments SET valid = ")
                        .bind(true)
                        .push(" WHERE assessment_id = ")
                        .bind(over.as_str());
                    sql.query().execute(&mut *tx).await?;
                }
                let mut sql = Sql::new(d);
                sql.push("DELETE FROM assessments WHERE trace_id = ")
                    .bind(trace_id)
                    .push(" AND assessment_id = ")
                    .bind(assessment_id);
                sql.query().execute(&mut *tx).await?;
                Ok(())
            })
        })
        .await
    }
}
