//! MLflow's guard against expensive GraphQL documents, checked before anything executes:
//! at most 10 levels of selection sets and 1000 field selections in the whole document,
//! and (configurable through the same environment variables as MLflow's server) at most
//! `MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS` root fields and `MLFLOW_SERVER_GRAPHQL_MAX_ALIASES`
//! aliases in one selection set. The error texts are MLflow's, which its tests match.
//!
//! The scan counts what MLflow's counts: field selections only (fragment spreads and inline
//! fragments are neither counted nor entered), and every top-level definition with a
//! selection set, fragments included, starts at depth 1.

use std::sync::OnceLock;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};

const MAX_DEPTH: usize = 10;
const MAX_SELECTIONS: usize = 1000;
const ROOT_FIELDS_VAR: &str = "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS";
const ALIASES_VAR: &str = "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES";

/// A limit from the environment (read once), MLflow's default 10 when unset or not a number.
fn env_limit(cell: &'static OnceLock<usize>, var: &str) -> usize {
    *cell.get_or_init(|| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(10)
    })
}

/// The message MLflow answers for a document over a limit, or `None` when it may run.
pub fn check(doc: &ExecutableDocument) -> Option<String> {
    static ROOT_FIELDS: OnceLock<usize> = OnceLock::new();
    static ALIASES: OnceLock<usize> = OnceLock::new();
    let (root_fields, aliases) = match scan(doc) {
        Ok(counts) => counts,
        Err(message) => return Some(message),
    };
    let over = |what: &str, var: &str, limit: usize, got: usize| {
        format!(
            "GraphQL queries should have at most {limit} {what}, got {got} {what}. \
             To increase the limit, set the {var} environment variable."
        )
    };
    let max_root = env_limit(&ROOT_FIELDS, ROOT_FIELDS_VAR);
    let max_aliases = env_limit(&ALIASES, ALIASES_VAR);
    if root_fields > max_root {
        Some(over("root fields", ROOT_FIELDS_VAR, max_root, root_fields))
    } else if aliases > max_aliases {
        Some(over("aliases", ALIASES_VAR, max_aliases, aliases))
    } else {
        None
    }
}

/// (root fields, most aliases in one selection set), or the depth/selection error.
fn scan(doc: &ExecutableDocument) -> Result<(usize, usize), String> {
    let mut tops: Vec<&SelectionSet> = match &doc.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => {
            ops.values().map(|op| &op.node.selection_set.node).collect()
        }
    };
    tops.extend(doc.fragments.values().map(|f| &f.node.selection_set.node));
    let (mut root_fields, mut max_aliases, mut selections) = (0, 0, 0);
    for top in tops {
        let mut stack = vec![(top, 1usize)];
        while let Some((set, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(format!("Query exceeds maximum depth of {MAX_DEPTH}"));
            }
            let mut aliases = 0;
            for item in &set.items {
                let Selection::Field(field) = &item.node else {
                    continue;
                };
                let field = &field.node;
                if depth == 1 {
                    root_fields += 1;
                }
                if field.alias.is_some() {
                    aliases += 1;
                }
                if !field.selection_set.node.items.is_empty() {
                    stack.push((&field.selection_set.node, depth + 1));
                }
                selections += 1;
                if selections > MAX_SELECTIONS {
                    return Err(format!(
                        "Query exceeds maximum total selections of {MAX_SELECTIONS}"
                    ));
                }
            }
            max_aliases = max_aliases.max(aliases);
        }
    }
    Ok((root_fields, max_aliases))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(query: &str) -> Option<String> {
        check(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn limits() {
        assert_eq!(verdict("{ a { b } c }"), None);
        let many: Vec<String> = (0..12)
            .map(|i| format!("k{i}: test {{ output }}"))
            .collect();
        let message = verdict(&format!("{{ {} }}", many.join(" "))).unwrap();
        assert!(message.starts_with("GraphQL queries should have at most 10 root fields, got 12"));
        let aliases: Vec<String> = (0..11).map(|i| format!("e{i}: name")).collect();
        let message = verdict(&format!("{{ x {{ {} }} }}", aliases.join(" "))).unwrap();
        assert!(message.contains("at most 10 aliases, got 11 aliases"));
        let mut deep = "name".to_string();
        for _ in 0..10 {
            deep = format!("name {{ {deep} }}");
        }
        assert_eq!(
            verdict(&format!("{{ {deep} }}")).unwrap(),
            "Query exceeds maximum depth of 10"
        );
        let wide: Vec<String> = (0..1001).map(|i| format!("f{i}")).collect();
        assert_eq!(
            verdict(&format!("{{ x {{ {} }} }}", wide.join(" "))).unwrap(),
            "Query exceeds maximum total selections of 1000"
        );
    }
}
