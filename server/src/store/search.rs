//! Compiles checked search clauses (`domain::search`) to SQL with bound parameters.

use super::sql::{Arg, Dialect, Sql};
use crate::domain::search::{Clause, Comparator, Entity, Literal, OrderKey};

/// Appends `column <cmp> value` for one comparison; the value is always bound.
pub(super) fn push_compare(sql: &mut Sql, column: &str, cmp: Comparator, value: &Literal) {
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

/// Appends one search-runs clause.
pub fn run_clause(sql: &mut Sql, clause: &Clause) {
    match clause.entity {
        Entity::Attribute => {
            let column = run_attribute_column(&clause.key);
            push_compare(sql, column, clause.comparator, &clause.value);
        }
        Entity::Metric => {
            let key = key_column(sql.dialect, "lm");
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_uuid = runs.run_uuid AND \
                 lm.is_nan = FALSE AND {key} = "
            ))
            .bind(&clause.key)
            .push(" AND ");
            push_compare(sql, "lm.value", clause.comparator, &clause.value);
            sql.push(")");
        }
        Entity::Param => push_key_value(sql, "params", "runs.run_uuid", "run_uuid", clause),
        Entity::Tag => push_key_value(sql, "tags", "runs.run_uuid", "run_uuid", clause),
        Entity::Dataset => {
            let (join, column) = match clause.key.as_str() {
                "context" => (
                    " JOIN input_tags it ON it.input_uuid = i.input_uuid AND \
                     it.name = 'mlflow.data.context'",
                    "it.value",
                ),
                "digest" => ("", "d.digest"),
                _ => ("", "d.name"),
            };
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id{join} \
                 WHERE i.destination_id = runs.run_uuid AND i.source_type = 'DATASET' AND \
                 i.destination_type = 'RUN' AND "
            ));
            push_compare(sql, column, clause.comparator, &clause.value);
            sql.push(")");
        }
    }
}

fn run_attribute_column(attribute: &str) -> &'static str {
    match attribute {
        "run_id" => "runs.run_uuid",
        "run_name" => "runs.name",
        "status" => "runs.status",
        "user_id" => "runs.user_id",
        "artifact_uri" => "runs.artifact_uri",
        "end_time" => "runs.end_time",
        _ => "runs.start_time",
    }
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

/// Appends ORDER BY for search-runs, with MLflow's tie-breakers.
pub fn run_order(sql: &mut Sql, order: &[OrderKey]) {
    let key = sql.dialect.key_col();
    sql.push(" ORDER BY ");
    let mut has_start_time = false;
    for item in order {
        let (expr, args) = match item.entity {
            Entity::Metric => {
                // MLflow sorts NaN after every number and missing values after NaN, in
                // either direction.
                sql.push(&format!(
                    "COALESCE((SELECT CASE WHEN lm.is_nan THEN 1 ELSE 0 END FROM latest_metrics \
                     lm WHERE lm.run_uuid = runs.run_uuid AND lm.{key} = "
                ))
                .bind(item.key.clone())
                .push("), 2), ");
                (
                    format!(
                        "(SELECT lm.value FROM latest_metrics lm WHERE lm.run_uuid = \
                         runs.run_uuid AND lm.{key} = {{}} AND lm.is_nan = FALSE)"
                    ),
                    vec![Arg::Str(item.key.clone())],
                )
            }
            Entity::Param | Entity::Tag => {
                let table = if item.entity == Entity::Param {
                    "params"
                } else {
                    "tags"
                };
                (
                    format!(
                        "(SELECT kv.value FROM {table} kv WHERE kv.run_uuid = runs.run_uuid AND \
                         kv.{key} = {{}})"
                    ),
                    vec![Arg::Str(item.key.clone())],
                )
            }
            _ => {
                has_start_time |= item.key == "start_time";
                (run_attribute_column(&item.key).to_string(), Vec::new())
            }
        };
        push_nulls_last(sql, &expr, args, item.ascending);
        sql.push(", ");
    }
    if !has_start_time {
        sql.push("runs.start_time DESC, ");
    }
    sql.push("runs.run_uuid ASC");
}

/// Appends one search-experiments clause.
pub fn experiment_clause(sql: &mut Sql, clause: &Clause) {
    match clause.entity {
        Entity::Tag => push_key_value(
            sql,
            "experiment_tags",
            "experiments.experiment_id",
            "experiment_id",
            clause,
        ),
        _ => match clause.key.as_str() {
            "experiment_id" => push_experiment_id(sql, clause),
            "creation_time" | "last_update_time" | "name" => {
                let column = format!("experiments.{}", clause.key);
                push_compare(sql, &column, clause.comparator, &clause.value);
            }
            _ => {
                sql.push("1 = 0");
            }
        },
    }
}

/// Experiment ids are integers in the database and strings on the wire.
fn push_experiment_id(sql: &mut Sql, clause: &Clause) {
    let ids =
        |items: &[String]| -> Vec<i64> { items.iter().filter_map(|s| s.parse().ok()).collect() };
    match (&clause.comparator, &clause.value) {
        (Comparator::In | Comparator::NotIn, Literal::List(items)) => {
            let ids = ids(items);
            let negate = clause.comparator == Comparator::NotIn;
            if ids.is_empty() {
                sql.push(if negate { "1 = 1" } else { "1 = 0" });
            } else {
                sql.push("experiments.experiment_id ")
                    .push(if negate { "NOT IN " } else { "IN " })
                    .bind_list(ids);
            }
        }
        (Comparator::Eq | Comparator::Ne, Literal::Str(s)) => match s.parse::<i64>() {
            Ok(id) => {
                sql.push("experiments.experiment_id ")
                    .push(clause.comparator.as_str())
                    .push(" ")
                    .bind(id);
            }
            Err(_) => {
                sql.push(if clause.comparator == Comparator::Ne {
                    "1 = 1"
                } else {
                    "1 = 0"
                });
            }
        },
        _ => {
            // LIKE on ids compares their text form.
            let column = match sql.dialect {
                Dialect::Mysql => "CAST(experiments.experiment_id AS CHAR)",
                _ => "CAST(experiments.experiment_id AS TEXT)",
            };
            push_compare(sql, column, clause.comparator, &clause.value);
        }
    }
}

/// Appends ORDER BY for search-experiments.
pub fn experiment_order(sql: &mut Sql, order: &[OrderKey]) {
    sql.push(" ORDER BY ");
    let mut has_id = false;
    if order.is_empty() {
        sql.push("experiments.creation_time DESC, ");
    }
    for item in order {
        has_id |= item.key == "experiment_id";
        let column = format!("experiments.{}", item.key);
        push_nulls_last(sql, &column, Vec::new(), item.ascending);
        sql.push(", ");
    }
    if has_id {
        // Drop the trailing ", ".
        sql.text.truncate(sql.text.len() - 2);
    } else {
        sql.push("experiments.experiment_id ASC");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{parse_filter, parse_order_by, SearchTarget};

    fn compile(filter: &str) -> Sql {
        let mut sql = Sql::new(Dialect::Sqlite);
        for (i, c) in parse_filter(SearchTarget::Runs, filter)
            .unwrap()
            .iter()
            .enumerate()
        {
            if i > 0 {
                sql.push(" AND ");
            }
            run_clause(&mut sql, c);
        }
        sql
    }

    #[test]
    fn values_are_bound_never_inlined() {
        let sql = compile("params.`x'); DROP TABLE runs; --` = 'y''; DELETE FROM runs; --'");
        assert!(!sql.text.contains("DROP"));
        assert!(!sql.text.contains("DELETE"));
        assert_eq!(sql.args.len(), 2);
    }

    #[test]
    fn metric_clause_uses_latest_metrics() {
        let sql = compile("metrics.acc > 0.5");
        assert!(sql.text.contains("FROM latest_metrics lm"));
        assert_eq!(sql.args, vec![Arg::Str("acc".into()), Arg::F64(0.5)]);
    }

    #[test]
    fn is_null_is_not_exists() {
        let sql = compile("tags.t IS NULL");
        assert!(sql.text.starts_with("NOT EXISTS"));
    }

    #[test]
    fn order_has_tie_breakers() {
        let mut sql = Sql::new(Dialect::Postgres);
        let order = parse_order_by(SearchTarget::Runs, &["metrics.m DESC".into()]).unwrap();
        run_order(&mut sql, &order);
        assert!(sql
            .text
            .ends_with("runs.start_time DESC, runs.run_uuid ASC"));
        assert!(sql.text.contains("$1") && sql.text.contains("$2"));
    }
}
