//! Search-runs: filter clauses and ORDER BY with MLflow's tie-breakers.

use super::{key_column, push_compare, push_key_value, push_nulls_last};
use crate::domain::search::{Clause, Entity, OrderKey};
use crate::store::sql::{Arg, Sql};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{parse_filter, parse_order_by, SearchTarget};
    use crate::store::sql::Dialect;

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
