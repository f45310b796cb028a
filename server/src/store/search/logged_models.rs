//! Search-logged-models: filter clauses (status names as the stored numbers) and ORDER BY.

use super::push_compare;
use crate::domain::search::{Clause, Comparator, Entity, Literal};
use crate::store::sql::Sql;
use crate::wire::LOGGED_MODEL_STATUSES;

/// An `order_by` item of search-logged-models.
pub enum ModelOrder {
    /// A column of `logged_models`.
    Column {
        column: &'static str,
        ascending: bool,
    },
    /// `metrics.<name>`: the model's latest value of that metric (by timestamp, then step),
    /// optionally only values logged against one dataset.
    Metric {
        name: String,
        dataset_name: Option<String>,
        dataset_digest: Option<String>,
        ascending: bool,
    },
}

/// A `datasets` item of search-logged-models: metrics logged against this dataset.
pub struct DatasetFilter {
    pub name: String,
    pub digest: Option<String>,
}

/// `(m.dataset_name = ? [AND m.dataset_digest = ?]) OR ...` for metric rows aliased `m`.
fn push_datasets(sql: &mut Sql, datasets: &[DatasetFilter]) {
    sql.push("(");
    for (i, d) in datasets.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(m.dataset_name = ").bind(&d.name);
        if let Some(digest) = &d.digest {
            sql.push(" AND m.dataset_digest = ").bind(digest);
        }
        sql.push(")");
    }
    sql.push(")");
}

/// Models with a metric logged against one of `datasets` (MLflow's `datasets` argument
/// when the filter names no metric).
pub fn datasets_clause(sql: &mut Sql, datasets: &[DatasetFilter]) {
    sql.push("EXISTS (SELECT 1 FROM logged_model_metrics m WHERE m.model_id = lm.model_id AND ");
    push_datasets(sql, datasets);
    sql.push(")");
}

/// The latest value of a metric of the model in `lm`, as a scalar subquery.
fn push_latest_metric(sql: &mut Sql, name: &str, dataset: (&Option<String>, &Option<String>)) {
    sql.push(
        "(SELECT m.metric_value FROM logged_model_metrics m WHERE m.model_id = lm.model_id AND \
         m.metric_name = ",
    )
    .bind(name);
    if let Some(dataset_name) = dataset.0 {
        sql.push(" AND m.dataset_name = ").bind(dataset_name);
    }
    if let Some(digest) = dataset.1 {
        sql.push(" AND m.dataset_digest = ").bind(digest);
    }
    sql.push(" ORDER BY m.metric_timestamp_ms DESC, m.metric_step DESC, m.run_id ASC LIMIT 1)");
}

/// Appends ORDER BY as MLflow sorts: each requested key with NULLs last, then creation time
/// (newest first) and the model id unless they were requested, so paging sees one order.
pub fn model_order(sql: &mut Sql, order: &[ModelOrder]) {
    let direction = |ascending: bool| if ascending { " ASC" } else { " DESC" };
    let mut has_creation = false;
    let mut has_id = false;
    sql.push(" ORDER BY ");
    for o in order {
        match o {
            ModelOrder::Column { column, ascending } => {
                has_creation |= *column == "creation_timestamp_ms";
                has_id |= *column == "model_id";
                sql.push(&format!(
                    "CASE WHEN lm.{column} IS NULL THEN 1 ELSE 0 END ASC, lm.{column}{}, ",
                    direction(*ascending)
                ));
            }
            ModelOrder::Metric {
                name,
                dataset_name,
                dataset_digest,
                ascending,
            } => {
                sql.push("CASE WHEN ");
                push_latest_metric(sql, name, (dataset_name, dataset_digest));
                sql.push(" IS NULL THEN 1 ELSE 0 END ASC, ");
                push_latest_metric(sql, name, (dataset_name, dataset_digest));
                sql.push(direction(*ascending)).push(", ");
            }
        }
    }
    if !has_creation {
        sql.push("lm.creation_timestamp_ms DESC, ");
    }
    sql.push(if has_id {
        // Every key above ends with ", "; this one repeats the id, which changes nothing.
        "lm.model_id"
    } else {
        "lm.model_id ASC"
    });
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

/// One filter clause; a metric clause only sees metrics logged against `datasets` when
/// there are any, as in MLflow.
pub fn model_clause(sql: &mut Sql, clause: &Clause, datasets: &[DatasetFilter]) {
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
            if !datasets.is_empty() {
                sql.push(" AND ");
                push_datasets(sql, datasets);
            }
            sql.push(")");
        }
        Entity::Dataset => {
            sql.push("1 = 0");
        }
    }
}
