//! Column readers that accept whatever type each database and the Any driver hand back.

use sqlx::any::AnyRow;
use sqlx::Row;

/// Reads an integer column whatever width the database gave it.
pub fn get_i64(row: &AnyRow, idx: usize) -> Option<i64> {
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
pub fn get_f64(row: &AnyRow, idx: usize) -> Option<f64> {
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
pub fn get_str(row: &AnyRow, idx: usize) -> Option<String> {
    match row.try_get::<Option<String>, _>(idx) {
        Ok(v) => v,
        Err(_) => row
            .try_get::<Option<Vec<u8>>, _>(idx)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok()),
    }
}
