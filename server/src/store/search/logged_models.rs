//! Search-logged-models: filter clauses (status names as the stored numbers) and ORDER BY.

use super::push_compare;
use crate::domain::search::{Clause, Comparator, Entity, Literal};
use crate::store::sql::Sql;
use crate::wire::LOGGED_MODEL_STATUSES;

/// An `order_by` item of search-logged-models.
pub struct ModelOrder {
    pub column: &'static str,
    pub ascending: bool,
}

/// Appends ORDER BY: the requested columns, then creation time (when none was requested) and
/// the model id, so that paging sees one fixed order.
pub fn model_order(sql: &mut Sql, order: &[ModelOrder]) {
    sql.push(" ORDER BY ");
    for o in order {
        sql.push(&format!(
            "lm.{} {}, ",
            o.column,
            if o.ascending { "ASC" } else { "DESC" }
        ));
    }
    if order.is_empty() {
        sql.push("lm.creation_timestamp_ms DESC, ");
    }
    sql.push("lm.model_id ASC");
}

/// The column of a logged-model attribute in `logged_models`.
pub fn model_column(attribute: &str) -> &'static str {
    match attribute {
        "model_id" => "model_id",
        "model_type" => "model_type",
        "status" => "status",
        "source_run_id" => "source_run_id",
        "creation_timestamp" => "creation_timestamp_ms",
        "last_updated_timestamp" => "last_updated_timestamp_ms",
        _ => "name",
    }
}

fn status_literal(value: &Literal) -> Literal {
    let number = |s: &str| {
        LOGGED_MODEL_STATUSES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map_or(-1.0, |i| i as f64)
    };
    match value {
        Literal::Str(s) => Literal::Num(number(s)),
        Literal::List(items) => Literal::List(
            items
                .iter()
                .map(|s| (number(s) as i64).to_string())
                .collect(),
        ),
        other => other.clone(),
    }
}

pub fn model_clause(sql: &mut Sql, clause: &Clause) {
    match clause.entity {
        Entity::Attribute => {
            let column = format!("lm.{}", model_column(&clause.key));
            if clause.key == "status" {
                let cmp = match clause.comparator {
                    Comparator::Like | Comparator::ILike => Comparator::Eq,
                    c => c,
                };
                let value = status_literal(&clause.value);
                let column = match value {
                    Literal::List(_) => format!("CAST({column} AS CHAR(8))"),
                    _ => column,
                };
                push_compare(sql, &column, cmp, &value);
            } else {
                push_compare(sql, &column, clause.comparator, &clause.value);
            }
        }
        Entity::Tag | Entity::Param => {
            let (table, key_col, value_col) = if clause.entity == Entity::Tag {
                ("logged_model_tags", "tag_key", "tag_value")
            } else {
                ("logged_model_params", "param_key", "param_value")
            };
            let exists = if clause.comparator == Comparator::IsNull {
                "NOT EXISTS"
            } else {
                "EXISTS"
            };
            sql.push(&format!(
                "{exists} (SELECT 1 FROM {table} kv WHERE kv.model_id = lm.model_id AND kv.{key_col} = "
            ))
            .bind(&clause.key);
            if !matches!(
                clause.comparator,
                Comparator::IsNull | Comparator::IsNotNull
            ) {
                sql.push(" AND ");
                push_compare(
                    sql,
                    &format!("kv.{value_col}"),
                    clause.comparator,
                    &clause.value,
                );
            }
            sql.push(")");
        }
        Entity::Metric => {
            sql.push(
                "EXISTS (SELECT 1 FROM logged_model_metrics m WHERE m.model_id = lm.model_id AND \
                 m.metric_name = ",
            )
            .bind(&clause.key)
            .push(" AND ");
            push_compare(sql, "m.metric_value", clause.comparator, &clause.value);
            sql.push(")");
        }
        Entity::Dataset => {
            sql.push("1 = 0");
        }
    }
}
