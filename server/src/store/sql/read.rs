//! Column readers that accept whatever type each database and the Any driver hand back. Each
//! takes the column by name (`"start_time"`), resolved once per read to its position; a name
//! the row lacks is a bug in the query, caught by a debug assertion.

use sqlx::any::AnyRow;
use sqlx::{ColumnIndex, Row};

/// The position of column `col` in `row`.
fn position<I: ColumnIndex<AnyRow>>(row: &AnyRow, col: I) -> Option<usize> {
    let found = col.index(row);
    debug_assert!(found.is_ok(), "{found:?}");
    found.ok()
}

/// Reads an integer column whatever width the database gave it.
pub fn get_i64<I: ColumnIndex<AnyRow>>(row: &AnyRow, col: I) -> Option<i64> {
    let idx = position(row, col)?;
    row.try_get::<Option<i64>, _>(idx)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<i32>, _>(idx)
                .ok()
                .flatten()
                .map(i64::from)
        })
        .or_else(|| {
            row.try_get::<Option<f64>, _>(idx)
                .ok()
                .flatten()
                .map(|f| f as i64)
        })
        .or_else(|| {
            row.try_get::<Option<String>, _>(idx)
                .ok()
                .flatten()
                .and_then(|s| s.parse().ok())
        })
}

/// Reads a floating-point column; SQLite may hand back integers for whole values.
pub fn get_f64<I: ColumnIndex<AnyRow>>(row: &AnyRow, col: I) -> Option<f64> {
    let idx = position(row, col)?;
    row.try_get::<Option<f64>, _>(idx)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<f32>, _>(idx)
                .ok()
                .flatten()
                .map(f64::from)
        })
        .or_else(|| {
            row.try_get::<Option<i64>, _>(idx)
                .ok()
                .flatten()
                .map(|i| i as f64)
        })
}

/// Reads a text column. MySQL reports TEXT columns as BLOBs, which the Any driver hands over
/// as bytes: those are decoded as UTF-8 (what the utf8mb4 connection sends).
pub fn get_str<I: ColumnIndex<AnyRow>>(row: &AnyRow, col: I) -> Option<String> {
    let idx = position(row, col)?;
    match row.try_get::<Option<String>, _>(idx) {
        Ok(v) => v,
        Err(_) => row
            .try_get::<Option<Vec<u8>>, _>(idx)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok()),
    }
}
