//! Search-experiments: filter clauses and ORDER BY.

use super::{push_compare, push_key_value, push_nulls_last};
use crate::domain::search::{Clause, Comparator, Entity, Literal, OrderKey};
use crate::store::sql::Sql;

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
            let column = sql.dialect.cast_text("experiments.experiment_id");
            push_compare(sql, &column, clause.comparator, &clause.value);
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
