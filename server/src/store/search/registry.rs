//! Search-registered-models and search-model-versions: filters (with MLflow's prompt
//! exclusion) and ORDER BY with tie-breakers.

use super::push_compare;
use crate::domain::registry::IS_PROMPT_TAG_KEY;
use crate::domain::search::{Clause, Comparator, Entity, Literal, OrderKey};
use crate::store::sql::Sql;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RegistryTable {
    Models,
    Versions,
}

/// Whether a filter asks for prompts (MLflow's `_is_querying_prompt`): the first clause on
/// the prompt tag decides.
fn is_querying_prompt(clauses: &[Clause]) -> bool {
    clauses
        .iter()
        .find(|c| c.entity == Entity::Tag && c.key == IS_PROMPT_TAG_KEY)
        .is_some_and(|c| match (&c.comparator, &c.value) {
            (Comparator::Eq, Literal::Str(v)) => v.eq_ignore_ascii_case("true"),
            (Comparator::Ne, Literal::Str(v)) => v.eq_ignore_ascii_case("false"),
            _ => false,
        })
}

/// Appends ORDER BY: the requested keys as columns, then each tie-breaker column the request
/// did not name, so that paging sees one fixed order.
pub fn push_order_by(
    sql: &mut Sql,
    order: &[OrderKey],
    column: impl Fn(&str) -> &'static str,
    tie_breakers: &[(&'static str, bool)],
) {
    let mut items: Vec<(&str, bool)> = order
        .iter()
        .map(|o| (column(&o.key), o.ascending))
        .collect();
    for &(tie, ascending) in tie_breakers {
        if !items.iter().any(|&(c, _)| c == tie) {
            items.push((tie, ascending));
        }
    }
    let list: Vec<String> = items
        .iter()
        .map(|&(c, asc)| format!("{c} {}", if asc { "ASC" } else { "DESC" }))
        .collect();
    sql.push(" ORDER BY ").push(&list.join(", "));
}

/// Appends ` AND ...` for every clause, plus MLflow's prompt exclusion: unless the filter
/// asks for prompts, clauses on the prompt tag are dropped and models tagged as prompts
/// are left out (models without the tag match `tag.mlflow.prompt.is_prompt != 'true'`).
pub fn push_registry_filter(sql: &mut Sql, clauses: &[Clause], table: RegistryTable) {
    let key = sql.dialect.key_col();
    let (tag_table, owner, version_join) = match table {
        RegistryTable::Models => ("registered_model_tags", "rm", ""),
        RegistryTable::Versions => ("model_version_tags", "mv", " AND t.version = mv.version"),
    };
    let prompts = is_querying_prompt(clauses);
    for clause in clauses {
        match clause.entity {
            Entity::Tag => {
                if !prompts && clause.key == IS_PROMPT_TAG_KEY {
                    continue;
                }
                sql.push(&format!(
                    " AND EXISTS (SELECT 1 FROM {tag_table} t WHERE t.workspace = {owner}.workspace AND t.name = {owner}.name\
                     {version_join} AND t.{key} = "
                ))
                .bind(&clause.key)
                .push(" AND ");
                push_compare(sql, "t.value", clause.comparator, &clause.value);
                sql.push(")");
            }
            _ => {
                sql.push(" AND ");
                match (clause.key.as_str(), &clause.value) {
                    ("version_number", Literal::Num(n)) => {
                        sql.push("mv.version ")
                            .push(clause.comparator.as_str())
                            .push(" ")
                            .bind(*n as i64);
                    }
                    (attr, value) => {
                        let column = match attr {
                            "run_id" => "mv.run_id",
                            "source_path" => "mv.source",
                            _ if table == RegistryTable::Models => "rm.name",
                            _ => "mv.name",
                        };
                        push_compare(sql, column, clause.comparator, value);
                    }
                }
            }
        }
    }
    if !prompts {
        sql.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM {tag_table} p WHERE p.workspace = {owner}.workspace AND p.name = {owner}.name AND p.{key} = "
        ))
        .bind(IS_PROMPT_TAG_KEY)
        .push(" AND p.value = 'true')");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{parse_filter, SearchTarget};
    use crate::store::sql::Dialect;

    fn compile(target: SearchTarget, filter: &str) -> Sql {
        let table = if target == SearchTarget::RegisteredModels {
            RegistryTable::Models
        } else {
            RegistryTable::Versions
        };
        let mut sql = Sql::new(Dialect::Sqlite);
        push_registry_filter(&mut sql, &parse_filter(target, filter).unwrap(), table);
        sql
    }

    #[test]
    fn prompt_clause_becomes_an_anti_join() {
        let sql = compile(
            SearchTarget::RegisteredModels,
            "name LIKE 'p%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
        );
        assert_eq!(sql.text.matches("EXISTS").count(), 1);
        assert!(sql.text.contains("NOT EXISTS"));
        let sql = compile(
            SearchTarget::RegisteredModels,
            "tags.`mlflow.prompt.is_prompt` = 'true'",
        );
        assert!(!sql.text.contains("NOT EXISTS"));
        assert!(sql.text.contains(" AND EXISTS"));
    }

    #[test]
    fn version_filters_bind_integers() {
        let sql = compile(
            SearchTarget::ModelVersions,
            "name = 'x''; DROP TABLE model_versions; --' AND version_number > 2",
        );
        assert!(!sql.text.contains("DROP"));
        assert!(sql.args.contains(&crate::store::sql::Arg::I64(2)));
    }
}
