//! Everything that differs between SQLite, PostgreSQL and MySQL, so that the query code of
//! the aggregates is written once: [`Dialect`] (placeholders, insert-or-ignore, upserts,
//! quoting, row locks, case-sensitive comparisons), [`errors`] (what a database error
//! means: a lock conflict, an outage, a too-long value, a duplicate key), [`session`] (how
//! each connection is set up), and the column readers (`read`). This module itself is the
//! SQL builder: text plus bound arguments, with placeholders written for the dialect.
//!
//! Schema creation per database is in `store::schema`, and URI parsing in `store::uri`.

mod dialect;
mod errors;
mod read;
pub mod session;

pub use dialect::{like_to_glob, Dialect};
pub use errors::{conflict, is_too_long, is_transient, is_unique_violation, Conflict};
pub use read::{get_f64, get_i64, get_str};

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

/// A bound argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    I64(i64),
    F64(f64),
    Str(String),
    Bool(bool),
    NullI64,
    NullStr,
    /// Binary data (BLOB / bytea): the gateway's encrypted secrets.
    Bytes(Vec<u8>),
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
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
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
        self.dialect
            .push_placeholder(&mut self.text, self.args.len());
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
                Arg::Bytes(v) => q.bind(v.as_slice()),
            };
        }
        q
    }
}

impl Sql {
    /// Runs this `INSERT` and returns the value the database generated for the
    /// auto-increment `column` (`RETURNING` where the database has it, else MySQL's
    /// last insert id).
    pub async fn insert_returning_id(
        &mut self,
        column: &str,
        conn: &mut AnyConnection,
    ) -> Result<Option<i64>, sqlx::Error> {
        match self.dialect {
            Dialect::Mysql => Ok(self.query().execute(&mut *conn).await?.last_insert_id()),
            _ => {
                self.push(" RETURNING ").push(column);
                let row = self.query().fetch_one(&mut *conn).await?;
                Ok(get_i64(&row, column))
            }
        }
    }

    /// Runs this `INSERT`, which writes an explicit 0 into an auto-increment column (the
    /// Default experiment's id). MySQL reads an explicit 0 there as "generate one"; MLflow
    /// switches that off for the insert the same way.
    pub async fn insert_explicit_zero_id(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<(), sqlx::Error> {
        if self.dialect != Dialect::Mysql {
            self.query().execute(&mut *conn).await?;
            return Ok(());
        }
        sqlx::query(
            "SET @mlflow_saved_sql_mode = @@SESSION.sql_mode, \
             SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
        )
        .execute(&mut *conn)
        .await?;
        let inserted = self.query().execute(&mut *conn).await;
        sqlx::query("SET SESSION sql_mode = @mlflow_saved_sql_mode")
            .execute(&mut *conn)
            .await?;
        inserted.map(|_| ())
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
}
