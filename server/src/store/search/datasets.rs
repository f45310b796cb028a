//! Search-evaluation-datasets: filter clauses and ORDER BY.

use super::{push_compare, push_key_value, push_order_by};
use crate::domain::search::{Clause, Entity, OrderKey};
use crate::store::sql::Sql;

/// Appends one search-evaluation-datasets clause (attributes and `tags.<key>`).
pub fn dataset_clause(sql: &mut Sql, clause: &Clause) {
    match clause.entity {
        Entity::Tag => push_key_value(
            sql,
            "evaluation_dataset_tags",
            "d.dataset_id",
            "dataset_id",
            clause,
        ),
        _ => match clause.key.as_str() {
            key @ ("name" | "created_by" | "last_updated_by" | "created_time"
            | "last_update_time") => {
                push_compare(sql, &format!("d.{key}"), clause.comparator, &clause.value);
            }
            _ => {
                sql.push("1 = 0");
            }
        },
    }
}

/// Appends ORDER BY: MLflow's default is the newest first, ties broken by id descending.
pub fn dataset_order(sql: &mut Sql, order: &[OrderKey]) {
    let column = |key: &str| match key {
        "name" => "d.name",
        "last_update_time" => "d.last_update_time",
        _ => "d.created_time",
    };
    let defaults = [OrderKey {
        entity: Entity::Attribute,
        key: "created_time".into(),
        ascending: false,
    }];
    let order = if order.is_empty() {
        &defaults[..]
    } else {
        order
    };
    push_order_by(sql, order, column, &[("d.dataset_id", false)]);
}
