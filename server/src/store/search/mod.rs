//! Compiles checked search clauses and orderings (`domain::search`) to SQL with bound
//! parameters, one file per searchable aggregate; the comparisons and orderings they share
//! are here. Every value is bound, never written into the SQL text.

mod datasets;
mod experiments;
mod logged_models;
mod registry;
mod runs;

pub use datasets::{dataset_clause, dataset_order};
pub use experiments::{experiment_clause, experiment_order};
pub use logged_models::{
    datasets_clause, model_clause, model_column, model_order, DatasetFilter, ModelOrder,
};
pub use registry::{push_order_by, push_registry_filter, RegistryTable};
pub use runs::{run_clause, run_order};

use super::sql::{Arg, Dialect, Sql};
use crate::domain::search::{Clause, Comparator, Literal};

/// Appends `column <cmp> value` for one comparison; the value is always bound.
pub fn push_compare(sql: &mut Sql, column: &str, cmp: Comparator, value: &Literal) {
    let dialect = sql.dialect;
    match (cmp, value) {
        (Comparator::Like, Literal::Str(s)) => dialect.push_like(sql, column, s),
        (Comparator::ILike, Literal::Str(s)) => dialect.push_ilike(sql, column, s),
        (Comparator::In, Literal::List(items)) => {
            sql.push(column).push(" IN ").bind_list(items);
        }
        (Comparator::NotIn, Literal::List(items)) => {
            sql.push(column).push(" NOT IN ").bind_list(items);
        }
        (_, Literal::Str(s)) => dialect.push_text_compare(sql, column, cmp.as_str(), s),
        (_, Literal::Num(n)) => {
            sql.push(column)
                .push(" ")
                .push(cmp.as_str())
                .push(" ")
                .bind(*n);
        }
        // The grammar checks rule out the other combinations; match nothing rather than panic.
        _ => {
            sql.push("1 = 0");
        }
    }
}

fn key_column(dialect: Dialect, alias: &str) -> String {
    format!("{alias}.{}", dialect.key_col())
}

/// Appends a key/value-table clause (params, tags) as an EXISTS subquery.
fn push_key_value(sql: &mut Sql, table: &str, owner: &str, owner_col: &str, clause: &Clause) {
    let key = key_column(sql.dialect, "kv");
    let exists = if clause.comparator == Comparator::IsNull {
        "NOT EXISTS"
    } else {
        "EXISTS"
    };
    sql.push(&format!(
        "{exists} (SELECT 1 FROM {table} kv WHERE kv.{owner_col} = {owner} AND {key} = "
    ))
    .bind(&clause.key);
    if !matches!(
        clause.comparator,
        Comparator::IsNull | Comparator::IsNotNull
    ) {
        sql.push(" AND ");
        push_compare(sql, "kv.value", clause.comparator, &clause.value);
    }
    sql.push(")");
}

/// Appends `expr` ordered with NULLs last whatever the direction.
fn push_nulls_last(sql: &mut Sql, expr: &str, args: Vec<Arg>, ascending: bool) {
    let dir = if ascending { "ASC" } else { "DESC" };
    // The expression appears twice, so its arguments are bound twice.
    sql.push("CASE WHEN ");
    push_expr(sql, expr, &args);
    sql.push(" IS NULL THEN 1 ELSE 0 END, ");
    push_expr(sql, expr, &args);
    sql.push(" ").push(dir);
}

/// Writes `expr`, replacing each `{}` with the next bound argument.
fn push_expr(sql: &mut Sql, expr: &str, args: &[Arg]) {
    let mut parts = expr.split("{}");
    if let Some(first) = parts.next() {
        sql.push(first);
    }
    for (part, arg) in parts.zip(args.iter()) {
        sql.bind(arg.clone());
        sql.push(part);
    }
}
