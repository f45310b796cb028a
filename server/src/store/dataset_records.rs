//! The records of evaluation datasets (`evaluation_dataset_records`): upsert deduplicated by
//! the hash of their inputs, pages in creation order, deletion; each change updates the
//! dataset's schema, profile, digest and update time as MLflow's SQL store does.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sqlx::any::AnyRow;

use super::datasets::{dataset_not_found, schema_col};
use super::sql::{get_i64, get_str, Dialect, Sql};
use super::{now_ms, Store};
use crate::domain::datasets::{
    digest, input_hash, merge_record, new_record, profile, record_user, update_schema,
    DatasetRecord, WRAPPED_OUTPUT_KEY,
};
use crate::domain::traces::pyjson::PyValue;
use crate::error::{MlflowError, Result};

const RECORD_COLUMNS: [&str; 13] = [
    "dataset_record_id",
    "dataset_id",
    "inputs",
    "outputs",
    "expectations",
    "tags",
    "source",
    "source_id",
    "source_type",
    "created_time",
    "last_update_time",
    "created_by",
    "last_updated_by",
];

/// The JSON columns are `json` on PostgreSQL: read as text there (under their own names).
fn select_columns(d: Dialect) -> String {
    RECORD_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| match (d, i) {
            (Dialect::Postgres, 2..=6) => format!("CAST({c} AS TEXT) AS {c}"),
            _ => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds a JSON value (SQL NULL for `None`), cast to `json` on PostgreSQL.
fn bind_json(sql: &mut Sql, value: Option<&PyValue>) {
    let text = value.map(|v| v.dumps(true));
    if sql.dialect == Dialect::Postgres {
        sql.push("CAST(").bind(text).push(" AS JSON)");
    } else {
        sql.bind(text);
    }
}

fn json_at(row: &AnyRow, column: &str) -> Option<PyValue> {
    get_str(row, column).and_then(|t| PyValue::loads(&t))
}

/// Outputs are stored wrapped (`{"mlflow_wrapped": value}`) so any JSON value fits.
fn wrap(outputs: Option<&PyValue>) -> Option<PyValue> {
    outputs.map(|v| PyValue::Dict(vec![(WRAPPED_OUTPUT_KEY.to_string(), v.clone())]))
}

fn unwrap(stored: Option<PyValue>) -> Option<PyValue> {
    match stored {
        Some(d @ PyValue::Dict(_)) if d.truthy() => d
            .get(WRAPPED_OUTPUT_KEY)
            .filter(|v| !matches!(v, PyValue::Null))
            .cloned(),
        _ => None,
    }
}

fn record_from_row(row: &AnyRow) -> DatasetRecord {
    DatasetRecord {
        dataset_record_id: get_str(row, "dataset_record_id").unwrap_or_default(),
        dataset_id: get_str(row, "dataset_id").unwrap_or_default(),
        inputs: json_at(row, "inputs").unwrap_or(PyValue::Dict(Vec::new())),
        outputs: unwrap(json_at(row, "outputs")),
        expectations: json_at(row, "expectations"),
        tags: json_at(row, "tags"),
        source: json_at(row, "source"),
        source_id: get_str(row, "source_id"),
        source_type: get_str(row, "source_type"),
        created_time: get_i64(row, "created_time").unwrap_or_default(),
        last_update_time: get_i64(row, "last_update_time").unwrap_or_default(),
        created_by: get_str(row, "created_by"),
        last_updated_by: get_str(row, "last_updated_by"),
    }
}

fn insert_record(d: Dialect, r: &DatasetRecord, hash: &str) -> Sql {
    let mut sql = Sql::new(d);
    sql.push(&format!(
        "INSERT INTO evaluation_dataset_records ({}, input_hash) VALUES (",
        RECORD_COLUMNS.join(", ")
    ))
    .bind(r.dataset_record_id.as_str())
    .push(", ")
    .bind(r.dataset_id.as_str())
    .push(", ");
    bind_json(&mut sql, Some(&r.inputs));
    sql.push(", ");
    bind_json(&mut sql, wrap(r.outputs.as_ref()).as_ref());
    sql.push(", ");
    bind_json(&mut sql, r.expectations.as_ref());
    sql.push(", ");
    bind_json(&mut sql, r.tags.as_ref());
    sql.push(", ");
    bind_json(&mut sql, r.source.as_ref());
    sql.push(", ")
        .bind(r.source_id.clone())
        .push(", ")
        .bind(r.source_type.clone())
        .push(", ")
        .bind(r.created_time)
        .push(", ")
        .bind(r.last_update_time)
        .push(", ")
        .bind(r.created_by.clone())
        .push(", ")
        .bind(r.last_updated_by.clone())
        .push(", ")
        .bind(hash)
        .push(")");
    sql
}

fn update_record(d: Dialect, r: &DatasetRecord) -> Sql {
    let mut sql = Sql::new(d);
    sql.push("UPDATE evaluation_dataset_records SET outputs = ");
    bind_json(&mut sql, wrap(r.outputs.as_ref()).as_ref());
    sql.push(", expectations = ");
    bind_json(&mut sql, r.expectations.as_ref());
    sql.push(", tags = ");
    bind_json(&mut sql, r.tags.as_ref());
    sql.push(", last_update_time = ")
        .bind(r.last_update_time)
        .push(", last_updated_by = ")
        .bind(r.last_updated_by.clone())
        .push(" WHERE dataset_record_id = ")
        .bind(r.dataset_record_id.as_str());
    sql
}

/// A records page token: base64 of `created_time:record_id` of the page's last record.
fn cursor_token(r: &DatasetRecord) -> String {
    STANDARD.encode(format!("{}:{}", r.created_time, r.dataset_record_id))
}

enum Cursor {
    After(i64, String),
    Offset(i64),
}

fn parse_cursor(token: &str) -> Result<Cursor> {
    let decoded = STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((time, id)) = decoded.as_deref().and_then(|t| t.split_once(':')) {
        if let Ok(time) = time.parse() {
            return Ok(Cursor::After(time, id.to_string()));
        }
    }
    token
        .parse()
        .ok()
        .filter(|o: &i64| *o >= 0)
        .map(Cursor::Offset)
        .ok_or_else(|| MlflowError::invalid(format!("Invalid page token '{token}'")))
}

impl Store {
    /// Inserts new records and merges those whose inputs are already in the dataset; returns
    /// (inserted, updated).
    pub async fn upsert_dataset_records(
        &self,
        dataset_id: &str,
        records: &[PyValue],
    ) -> Result<(i64, i64)> {
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let now = now_ms();
                let mut sql = Sql::new(d);
                sql.push(&format!(
                    "SELECT name, {} FROM evaluation_datasets WHERE dataset_id = ",
                    schema_col(d)
                ))
                .bind(dataset_id)
                .push(d.row_lock());
                let row = sql
                    .query()
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| dataset_not_found(dataset_id))?;
                let name = get_str(&row, "name").unwrap_or_default();
                let old_schema = get_str(&row, "schema");
                let (mut inserted, mut updated) = (0, 0);
                let mut updated_by = None;
                for raw in records {
                    let inputs = raw
                        .get("inputs")
                        .cloned()
                        .unwrap_or(PyValue::Dict(Vec::new()));
                    let hash = input_hash(&inputs);
                    if let Some(user) = record_user(raw.get("tags").filter(|t| t.truthy())) {
                        updated_by = Some(user);
                    }
                    let mut sql = Sql::new(d);
                    sql.push("SELECT ")
                        .push(&select_columns(d))
                        .push(" FROM evaluation_dataset_records WHERE dataset_id = ")
                        .bind(dataset_id)
                        .push(" AND input_hash = ")
                        .bind(hash.as_str());
                    match sql.query().fetch_optional(&mut *tx).await? {
                        Some(row) => {
                            let mut record = record_from_row(&row);
                            merge_record(&mut record, raw, now);
                            update_record(d, &record).query().execute(&mut *tx).await?;
                            updated += 1;
                        }
                        None => {
                            let record = new_record(dataset_id, raw, now)?;
                            insert_record(d, &record, &hash)
                                .query()
                                .execute(&mut *tx)
                                .await?;
                            inserted += 1;
                        }
                    }
                }
                let mut sql = Sql::new(d);
                sql.push(
                    "SELECT COUNT(*) AS n FROM evaluation_dataset_records WHERE dataset_id = ",
                )
                .bind(dataset_id);
                let count = get_i64(&sql.query().fetch_one(&mut *tx).await?, "n").unwrap_or(0);
                let mut sql = Sql::new(d);
                sql.push("UPDATE evaluation_datasets SET last_update_time = ")
                    .bind(now)
                    .push(", last_updated_by = ")
                    .bind(updated_by.clone())
                    .push(", digest = ")
                    .bind(digest(&name, now));
                if let Some(schema) = update_schema(old_schema.as_deref(), records) {
                    sql.push(&format!(", {} = ", schema_col(d))).bind(schema);
                }
                if let Some(p) = profile(count) {
                    sql.push(", profile = ").bind(p);
                }
                sql.push(" WHERE dataset_id = ").bind(dataset_id);
                sql.query().execute(&mut *tx).await?;
                Ok((inserted, updated))
            })
        })
        .await
    }

    /// One page of a dataset's records in creation order (`max_results` `None`: all of
    /// them), and the token of the next page.
    pub async fn dataset_records(
        &self,
        dataset_id: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<(Vec<DatasetRecord>, Option<String>)> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(&select_columns(self.dialect))
            .push(" FROM evaluation_dataset_records WHERE dataset_id = ")
            .bind(dataset_id);
        let mut offset = None;
        match page_token.filter(|t| !t.is_empty()).map(parse_cursor) {
            Some(Ok(Cursor::After(time, id))) => {
                sql.push(" AND (created_time > ")
                    .bind(time)
                    .push(" OR (created_time = ")
                    .bind(time)
                    .push(" AND dataset_record_id > ")
                    .bind(id)
                    .push("))");
            }
            Some(Ok(Cursor::Offset(o))) => offset = Some(o),
            Some(Err(e)) => return Err(e),
            None => {}
        }
        sql.push(" ORDER BY created_time, dataset_record_id");
        if let Some(max) = max_results {
            sql.push(" LIMIT ").bind(max + 1);
        }
        if let Some(o) = offset {
            if max_results.is_none() {
                // An OFFSET needs a LIMIT in SQLite and MySQL.
                sql.push(" LIMIT ").bind(i64::MAX);
            }
            sql.push(" OFFSET ").bind(o);
        }
        let mut records: Vec<DatasetRecord> = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(record_from_row)
            .collect();
        let next = match max_results {
            Some(max) if records.len() as i64 > max => {
                records.truncate(max as usize);
                records.last().map(cursor_token)
            }
            _ => None,
        };
        Ok((records, next))
    }

    /// Deletes records by id; the profile's count follows. Returns how many went.
    pub async fn delete_dataset_records(&self, dataset_id: &str, ids: &[String]) -> Result<i64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push("DELETE FROM evaluation_dataset_records WHERE dataset_id = ")
                    .bind(dataset_id)
                    .push(" AND dataset_record_id IN ")
                    .bind_list(ids);
                let deleted = sql.query().execute(&mut *tx).await?.rows_affected() as i64;
                if deleted > 0 {
                    let mut sql = Sql::new(d);
                    sql.push("SELECT profile FROM evaluation_datasets WHERE dataset_id = ")
                        .bind(dataset_id);
                    if let Some(row) = sql.query().fetch_optional(&mut *tx).await? {
                        let before = get_str(&row, "profile")
                            .and_then(|p| PyValue::loads(&p))
                            .and_then(|p| match p.get("num_records") {
                                Some(PyValue::Int(n)) => Some(*n as i64),
                                _ => None,
                            })
                            .unwrap_or(0);
                        // MLflow writes JSON null when no record is left.
                        let after = profile((before - deleted).max(0)).unwrap_or("null".into());
                        let mut sql = Sql::new(d);
                        sql.push("UPDATE evaluation_datasets SET profile = ")
                            .bind(after)
                            .push(" WHERE dataset_id = ")
                            .bind(dataset_id);
                        sql.query().execute(&mut *tx).await?;
                    }
                }
                Ok(deleted)
            })
        })
        .await
    }
}
