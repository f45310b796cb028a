//! The SQL dialect and every fragment of SQL text that differs between the databases.

use super::Sql;

/// The SQL dialect of the backend store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
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

    /// Appends the placeholder of the `n`-th bound argument (1-based).
    pub fn push_placeholder(self, text: &mut String, n: usize) {
        match self {
            Dialect::Postgres => text.push_str(&format!("${n}")),
            _ => text.push('?'),
        }
    }

    /// An aggregate packing one run's metric points into a single text value, for the
    /// driver that hands rows over one by one from its own thread (SQLite), where 30,000
    /// rows cost more in hand-offs than in the query: `step timestamp value is_nan` per
    /// point, comma-separated, in history order. `%!.17g` keeps every bit of the double,
    /// which SQLite's text and JSON conversions (15 digits) do not.
    pub fn packed_points(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some(
                "group_concat(step || ' ' || timestamp || ' ' || printf('%!.17g', value) || ' ' \
                 || CASE WHEN is_nan THEN 1 ELSE 0 END, ',' ORDER BY step, timestamp, value)",
            ),
            _ => None,
        }
    }

    /// Whether other server processes may write to the same database at the same time
    /// (PostgreSQL, MySQL). SQLite's single writer connection never races another writer.
    pub fn has_concurrent_writers(self) -> bool {
        self != Dialect::Sqlite
    }

    /// Whether a value longer than its column is an error (PostgreSQL, MySQL in strict mode);
    /// SQLite keeps any length.
    pub fn enforces_column_widths(self) -> bool {
        self != Dialect::Sqlite
    }

    /// `FOR UPDATE` where the dialect has row locks; SQLite's single writer already serialises.
    pub fn row_lock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            _ => " FOR UPDATE",
        }
    }

    /// A locking read's suffix where only a locking read sees rows committed since the
    /// transaction's snapshot (MySQL's REPEATABLE READ); empty elsewhere.
    pub fn read_latest(self) -> &'static str {
        match self {
            Dialect::Mysql => " FOR UPDATE",
            _ => "",
        }
    }

    /// The tail of an `INSERT` that overwrites `column` when the key already exists, so two
    /// writers setting the same tag or alias at once both succeed (the last one wins).
    pub fn upsert(self, key_columns: &str, column: &str) -> String {
        match self {
            Dialect::Mysql => format!(" ON DUPLICATE KEY UPDATE {column} = VALUES({column})"),
            _ => format!(" ON CONFLICT ({key_columns}) DO UPDATE SET {column} = excluded.{column}"),
        }
    }

    /// The tail of an `INSERT` that overwrites every column of `columns` when the key exists
    /// (with no columns: leaves the existing row as it is).
    pub fn upsert_columns(self, key_columns: &[&str], columns: &[&str]) -> String {
        match (self, columns.is_empty()) {
            (Dialect::Mysql, true) => {
                format!(" ON DUPLICATE KEY UPDATE {0} = {0}", key_columns[0])
            }
            (Dialect::Mysql, false) => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect();
                format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
            }
            (_, true) => format!(" ON CONFLICT ({}) DO NOTHING", key_columns.join(", ")),
            (_, false) => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    key_columns.join(", "),
                    sets.join(", ")
                )
            }
        }
    }

    /// `expr` cast to text.
    pub fn cast_text(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// `expr` cast to a double, so that aggregates (NUMERIC on PostgreSQL, DECIMAL on MySQL)
    /// reach the driver as floats.
    pub fn cast_double(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({expr} AS DOUBLE PRECISION)"),
            Dialect::Mysql => format!("CAST({expr} AS DOUBLE)"),
            Dialect::Sqlite => format!("CAST({expr} AS REAL)"),
        }
    }

    /// Integer division of `expr` by `divisor`, truncating (MySQL's `/` gives decimals).
    pub fn int_div(self, expr: &str, divisor: i64) -> String {
        match self {
            Dialect::Mysql => format!("({expr} DIV {divisor})"),
            _ => format!("({expr} / {divisor})"),
        }
    }

    /// The statement that begins a write transaction: on SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`, waiting under the busy timeout), so a transaction never reads a
    /// snapshot that another process then outdates before its first write
    /// (SQLITE_BUSY_SNAPSHOT). `None`: the driver's plain `BEGIN`.
    pub fn begin_write(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some("BEGIN IMMEDIATE"),
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
