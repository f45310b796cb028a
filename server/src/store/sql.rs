//! SQL text and bound arguments, built per dialect.
//!
//! Every dialect difference the store needs (placeholders, insert-or-ignore, the
//! latest-metric upsert, case-sensitive LIKE) lives here, so the query code above it is
//! written once for SQLite, PostgreSQL and MySQL.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

/// The SQL dialect of the backend store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// A bound argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    I64(i64),
    F64(f64),
    Str(String),
    Bool(bool),
    NullI64,
    NullStr,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::F64(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Str(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Str(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Str(v.clone())
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NullI64, Arg::I64)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::NullStr, Arg::Str)
    }
}

/// SQL text plus its arguments, with placeholders written for the dialect.
#[derive(Debug, Clone)]
pub struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: String::new(),
            args: Vec::new(),
        }
    }

    /// Appends literal SQL (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Self {
        self.args.push(arg.into());
        match self.dialect {
            Dialect::Postgres => {
                let n = self.args.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    /// Appends `(?, ?, ...)` for a list of arguments.
    pub fn bind_list<A: Into<Arg>>(&mut self, items: impl IntoIterator<Item = A>) -> &mut Self {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(item);
        }
        self.push(")")
    }

    /// Builds the sqlx query; the result borrows `self`.
    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::I64(v) => q.bind(*v),
                Arg::F64(v) => q.bind(*v),
                Arg::Str(v) => q.bind(v.as_str()),
                Arg::Bool(v) => q.bind(*v),
                Arg::NullI64 => q.bind(Option::<i64>::None),
                Arg::NullStr => q.bind(Option::<String>::None),
            };
        }
        q
    }
}

impl Dialect {
    /// `INSERT` that silently skips rows whose key already exists.
    pub fn insert_ignore(self, table: &str, columns: &str) -> String {
        match self {
            Dialect::Mysql => format!("INSERT IGNORE INTO {table} ({columns}) VALUES "),
            _ => format!("INSERT INTO {table} ({columns}) VALUES "),
        }
    }

    /// Suffix completing [`Dialect::insert_ignore`].
    pub fn insert_ignore_suffix(self) -> &'static str {
        match self {
            Dialect::Mysql => "",
            _ => " ON CONFLICT DO NOTHING",
        }
    }

    /// Upsert of `latest_metrics` that keeps the row with the greatest (step, timestamp, value),
    /// the order MLflow uses to define a run's latest metric value: the statement's head
    /// (followed by one or more `(key, value, timestamp, step, is_nan, run_uuid)` rows) and
    /// its tail.
    pub fn latest_metric_upsert(self) -> (&'static str, &'static str) {
        match self {
            // `VALUES(col)` rather than MySQL 8's `AS new` alias, which MariaDB lacks. The SET
            // clauses run left to right and later ones see earlier assignments, so each repeats
            // the whole comparison: once `value` is replaced, the comparison can only turn false
            // where the remaining columns already hold the new values, so every assignment
            // stays right (tests/e2e test_latest_metric_tie_breaks runs on MariaDB too).
            Dialect::Mysql => (
                "INSERT INTO latest_metrics (`key`, value, timestamp, step, is_nan, run_uuid) VALUES ",
                concat!(
                    " ON DUPLICATE KEY UPDATE ",
                    "is_nan = IF(VALUES(step) > step OR (VALUES(step) = step AND (VALUES(timestamp) > timestamp OR (VALUES(timestamp) = timestamp AND VALUES(value) > value))), VALUES(is_nan), is_nan), ",
                    "value = IF(VALUES(step) > step OR (VALUES(step) = step AND (VALUES(timestamp) > timestamp OR (VALUES(timestamp) = timestamp AND VALUES(value) > value))), VALUES(value), value), ",
                    "timestamp = IF(VALUES(step) > step OR (VALUES(step) = step AND (VALUES(timestamp) > timestamp OR (VALUES(timestamp) = timestamp AND VALUES(value) > value))), VALUES(timestamp), timestamp), ",
                    "step = IF(VALUES(step) > step OR (VALUES(step) = step AND (VALUES(timestamp) > timestamp OR (VALUES(timestamp) = timestamp AND VALUES(value) > value))), VALUES(step), step)",
                ),
            ),
            Dialect::Postgres | Dialect::Sqlite => (
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES ",
                " ON CONFLICT (key, run_uuid) DO UPDATE SET \
                 value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, \
                 is_nan = excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) \
                 > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)",
            ),
        }
    }

    /// The quoted name of the `key` column, a reserved word in MySQL.
    pub fn key_col(self) -> &'static str {
        match self {
            Dialect::Mysql => "`key`",
            _ => "key",
        }
    }

    /// Appends a case-sensitive LIKE of `column` against `pattern` (MLflow's `%`/`_`).
    pub fn push_like(self, sql: &mut Sql, column: &str, pattern: &str) {
        match self {
            // SQLite's LIKE ignores ASCII case; GLOB with a translated pattern does not.
            Dialect::Sqlite => {
                sql.push(column).push(" GLOB ").bind(like_to_glob(pattern));
            }
            // The plain LIKE can use an index on a prefix pattern; the BINARY one adds case.
            Dialect::Mysql => {
                sql.push("(")
                    .push(column)
                    .push(" LIKE ")
                    .bind(pattern)
                    .push(" AND CAST(")
                    .push(column)
                    .push(" AS BINARY) LIKE CAST(")
                    .bind(pattern)
                    .push(" AS BINARY))");
            }
            Dialect::Postgres => {
                sql.push(column).push(" LIKE ").bind(pattern);
            }
        }
    }

    /// Appends `column <op> ?` for a comparison with text. MySQL's default collations ignore
    /// case; like MLflow's search there, `=` and `!=` add a BINARY comparison, next to the plain
    /// one so an index on the column still narrows the rows.
    pub fn push_text_compare(self, sql: &mut Sql, column: &str, op: &str, value: &str) {
        match (self, op) {
            (Dialect::Mysql, "=") => {
                sql.push("(")
                    .push(column)
                    .push(" = ")
                    .bind(value)
                    .push(" AND BINARY ")
                    .push(column)
                    .push(" = ")
                    .bind(value)
                    .push(")");
            }
            (Dialect::Mysql, "!=") => {
                sql.push("(")
                    .push(column)
                    .push(" != ")
                    .bind(value)
                    .push(" OR BINARY ")
                    .push(column)
                    .push(" != ")
                    .bind(value)
                    .push(")");
            }
            _ => {
                sql.push(column).push(" ").push(op).push(" ").bind(value);
            }
        }
    }

    /// Appends a case-insensitive LIKE.
    pub fn push_ilike(self, sql: &mut Sql, column: &str, pattern: &str) {
        sql.push("LOWER(")
            .push(column)
            .push(") LIKE LOWER(")
            .bind(pattern)
            .push(")");
    }
}

/// Translates a SQL LIKE pattern to a GLOB pattern with the same meaning.
pub fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            other => out.push(other),
        }
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_dialect() {
        let mut s = Sql::new(Dialect::Postgres);
        s.push("a = ")
            .bind(1i64)
            .push(" AND b IN ")
            .bind_list(["x", "y"]);
        assert_eq!(s.text, "a = $1 AND b IN ($2, $3)");
        let mut s = Sql::new(Dialect::Sqlite);
        s.push("a = ").bind("v");
        assert_eq!(s.text, "a = ?");
        assert_eq!(s.args, vec![Arg::Str("v".into())]);
    }

    #[test]
    fn mysql_text_comparisons_are_case_sensitive() {
        let mut s = Sql::new(Dialect::Mysql);
        Dialect::Mysql.push_text_compare(&mut s, "runs.name", "=", "Run");
        assert_eq!(s.text, "(runs.name = ? AND BINARY runs.name = ?)");
        assert_eq!(s.args.len(), 2);
        let mut s = Sql::new(Dialect::Mysql);
        Dialect::Mysql.push_like(&mut s, "kv.value", "a%");
        assert!(
            s.text.contains("AS BINARY) LIKE CAST(? AS BINARY)"),
            "{}",
            s.text
        );
        let mut s = Sql::new(Dialect::Postgres);
        Dialect::Postgres.push_text_compare(&mut s, "runs.name", "=", "Run");
        assert_eq!(s.text, "runs.name = $1");
    }

    #[test]
    fn mysql_upsert_compares_old_values_in_every_clause() {
        let (head, tail) = Dialect::Mysql.latest_metric_upsert();
        assert!(head.contains("`key`"));
        // MariaDB has no `AS new` row alias; VALUES() is understood by both.
        assert!(!tail.contains(" AS new"));
        // is_nan and value are assigned before the columns the comparison reads change.
        let order: Vec<usize> = ["is_nan = IF", "value = IF", "timestamp = IF", "step = IF"]
            .iter()
            .map(|c| tail.find(c).unwrap_or(usize::MAX))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn glob_translation() {
        assert_eq!(like_to_glob("a%b_c*?[d]"), "a*b?c[*][?][[]d]");
    }

    #[test]
    fn like_binds_the_pattern() {
        let mut s = Sql::new(Dialect::Sqlite);
        Dialect::Sqlite.push_like(&mut s, "name", "x'; DROP TABLE runs; --%");
        assert_eq!(s.text, "name GLOB ?");
        assert_eq!(s.args.len(), 1);
    }
}
