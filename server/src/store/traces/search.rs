//! Trace search: MLflow's trace filter grammar compiled to one SQL statement per page, with
//! MLflow's order (the requested keys, then newest first, then by id) and offset paging.
//! Every value is a bound parameter.

use super::{info_row, InfoRow, INFO_COLUMNS};
use crate::domain::search::traces::{TraceAttr, TraceClause, TraceField};
use crate::domain::search::{Comparator, Literal};
use crate::domain::traces::pyjson::PyValue;
use crate::domain::traces::{
    TraceInfo, META_SESSION, META_SOURCE_RUN, TAG_LINKED_PROMPTS, TAG_TRACE_NAME,
};
use crate::error::{MlflowError, Result};
use crate::store::sql::{Dialect, Sql};
use crate::store::Store;

/// One `order_by` key and its direction.
pub type TraceOrder = (TraceField, bool);

/// A page request of a trace search.
pub struct TraceSearch<'a> {
    pub experiment_ids: &'a [i64],
    pub clauses: &'a [TraceClause],
    pub order: &'a [TraceOrder],
    pub max_results: i64,
    pub offset: i64,
}

fn attr_column(a: TraceAttr) -> &'static str {
    match a {
        TraceAttr::RequestId => "t.request_id",
        TraceAttr::TimestampMs => "t.timestamp_ms",
        TraceAttr::ExecutionTimeMs => "t.execution_time_ms",
        TraceAttr::EndTimeMs => "(t.timestamp_ms + COALESCE(t.execution_time_ms, 0))",
        TraceAttr::Status => "t.status",
        TraceAttr::ClientRequestId => "t.client_request_id",
        TraceAttr::ExperimentId => "t.experiment_id",
    }
}

/// `column <cmp> value` for a text column, case-sensitive on every database.
fn text_compare(
    sql: &mut Sql,
    d: Dialect,
    column: &str,
    cmp: Comparator,
    value: &Literal,
) -> Result<()> {
    let s = |v: &Literal| match v {
        Literal::Str(s) => s.clone(),
        Literal::Num(n) => PyValue::Float(*n).dumps(false),
        _ => String::new(),
    };
    match cmp {
        Comparator::Eq => d.push_text_compare(sql, column, "=", &s(value)),
        Comparator::Ne => d.push_text_compare(sql, column, "!=", &s(value)),
        Comparator::Like => d.push_like(sql, column, &s(value)),
        Comparator::ILike => d.push_ilike(sql, column, &s(value)),
        Comparator::RLike => {
            match d {
                Dialect::Postgres => {
                    sql.push(column).push(" ~ ").bind(s(value));
                }
                Dialect::Mysql => {
                    sql.push("(CAST(")
                        .push(column)
                        .push(" AS BINARY) REGEXP BINARY ")
                        .bind(s(value))
                        .push(")");
                }
                Dialect::Sqlite => return Err(MlflowError::invalid(
                    "RLIKE is not supported on a SQLite backend store by this server; use LIKE \
                     or ILIKE",
                )),
            }
        }
        Comparator::In | Comparator::NotIn => {
            let items = match value {
                Literal::List(items) => items.clone(),
                other => vec![s(other)],
            };
            if d == Dialect::Mysql {
                sql.push("BINARY ");
            }
            sql.push(column)
                .push(if cmp == Comparator::In {
                    " IN "
                } else {
                    " NOT IN "
                })
                .bind_list(items);
        }
        Comparator::Lt | Comparator::Le | Comparator::Gt | Comparator::Ge => {
            sql.push(column)
                .push(" ")
                .push(cmp.as_str())
                .push(" ")
                .bind(s(value));
        }
        Comparator::IsNull => {
            sql.push(column).push(" IS NULL");
        }
        Comparator::IsNotNull => {
            sql.push(column).push(" IS NOT NULL");
        }
    }
    Ok(())
}

fn numeric_compare(sql: &mut Sql, column: &str, cmp: Comparator, value: &Literal) {
    sql.push(column).push(" ").push(cmp.as_str()).push(" ");
    match value {
        Literal::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => sql.bind(*n as i64),
        Literal::Num(n) => sql.bind(*n),
        Literal::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => sql.bind(i),
            Err(_) => sql.bind(s.as_str()),
        },
        _ => sql.push("NULL"),
    };
}

/// `EXISTS`/`NOT EXISTS` of a key (and value condition) in a key/value child table.
fn kv_exists(
    sql: &mut Sql,
    d: Dialect,
    table: &str,
    key: &str,
    cond: Option<(Comparator, &Literal)>,
    negate: bool,
) -> Result<()> {
    let k = d.key_col();
    sql.push(if negate { "NOT EXISTS (" } else { "EXISTS (" })
        .push(&format!(
            "SELECT 1 FROM {table} kv WHERE kv.request_id = t.request_id AND kv.{k} = "
        ))
        .bind(key);
    if let Some((cmp, value)) = cond {
        sql.push(" AND ");
        text_compare(sql, d, "kv.value", cmp, value)?;
    }
    sql.push(")");
    Ok(())
}

/// The assessment conditions of a feedback/expectation clause (without the EXISTS).
fn assessment_conditions(
    sql: &mut Sql,
    d: Dialect,
    alias: &str,
    kind: &str,
    name: &str,
    cmp: Comparator,
    value: &Literal,
) -> Result<()> {
    sql.push(&format!("{alias}.assessment_type = "))
        .bind(kind)
        .push(&format!(" AND {alias}.name = "))
        .bind(name)
        .push(&format!(" AND {alias}.valid = "))
        .bind(true);
    let col = format!("{alias}.value");
    match cmp {
        Comparator::IsNull | Comparator::IsNotNull => {}
        Comparator::Lt | Comparator::Le | Comparator::Gt | Comparator::Ge => {
            sql.push(&format!(" AND {alias}.is_numeric_value = "))
                .bind(true)
                .push(" AND ");
            numeric_compare(sql, &format!("{alias}.aggregate_value"), cmp, value);
        }
        Comparator::Eq | Comparator::Ne => {
            let raw = match value {
                Literal::Str(s) => s.clone(),
                _ => String::new(),
            };
            // Values are stored as JSON: a string matches its quoted form, a number or a
            // boolean its bare one.
            let quoted = PyValue::Str(raw.clone()).dumps(true);
            sql.push(if cmp == Comparator::Ne {
                " AND NOT ("
            } else {
                " AND ("
            });
            d.push_text_compare(sql, &col, "=", &raw);
            sql.push(" OR ");
            d.push_text_compare(sql, &col, "=", &quoted);
            sql.push(")");
        }
        other => {
            sql.push(" AND ");
            text_compare(sql, d, &col, other, value)?;
        }
    }
    Ok(())
}

impl Store {
    /// A page of traces matching the search, and whether the page is full.
    pub async fn search_traces(&self, s: &TraceSearch<'_>) -> Result<Vec<TraceInfo>> {
        if s.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.dialect;
        let k = d.key_col();
        let mut sql = self.sql();
        sql.push("SELECT ").push(INFO_COLUMNS);
        // Order keys that live in other tables are joined in first.
        let mut joins = Sql::new(d);
        let mut order_sql: Vec<(String, bool, bool)> = Vec::new();
        for (i, (field, asc)) in s.order.iter().enumerate() {
            let (expr, nullable) = match field {
                TraceField::Attr(a) => (
                    attr_column(*a).to_string(),
                    matches!(a, TraceAttr::ExecutionTimeMs | TraceAttr::ClientRequestId),
                ),
                TraceField::Tag(name) if name == TAG_TRACE_NAME => ("t.trace_name".into(), true),
                TraceField::Metadata(name) if name == META_SESSION => ("t.session_id".into(), true),
                TraceField::Tag(name) | TraceField::Metadata(name) => {
                    let table = if matches!(field, TraceField::Tag(_)) {
                        "trace_tags"
                    } else {
                        "trace_request_metadata"
                    };
                    joins
                        .push(&format!(
                            " LEFT JOIN (SELECT request_id, value FROM {table} WHERE {k} = "
                        ))
                        .bind(name.as_str())
                        .push(&format!(") o{i} ON o{i}.request_id = t.request_id"));
                    (format!("o{i}.value"), true)
                }
                _ => return Err(MlflowError::invalid("Invalid order_by key")),
            };
            order_sql.push((expr, *asc, nullable));
        }
        sql.push(" FROM trace_info t");
        append(&mut sql, joins);
        sql.push(" WHERE t.experiment_id IN ")
            .bind_list(s.experiment_ids.iter().copied());
        self.push_conditions(&mut sql, s.clauses, s.experiment_ids)?;
        sql.push(" ORDER BY ");
        let mut parts: Vec<String> = Vec::new();
        for (expr, asc, nullable) in &order_sql {
            if *nullable {
                parts.push(format!("CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END"));
            }
            parts.push(format!("{expr}{}", if *asc { "" } else { " DESC" }));
        }
        let has = |a: TraceAttr| s.order.iter().any(|(f, _)| *f == TraceField::Attr(a));
        if !has(TraceAttr::TimestampMs) {
            parts.push("t.timestamp_ms DESC".into());
        }
        if !has(TraceAttr::RequestId) {
            parts.push("t.request_id".into());
        }
        sql.push(&parts.join(", "));
        sql.push(" LIMIT ")
            .bind(s.max_results)
            .push(" OFFSET ")
            .bind(s.offset);
        let rows: Vec<InfoRow> = self.fetch_all(&sql).await?.iter().map(info_row).collect();
        self.complete_infos(rows).await
    }

    /// Appends ` AND <condition>` for each clause of a trace filter, over `trace_info t`;
    /// every span condition must hold for one and the same span.
    pub(super) fn push_conditions(
        &self,
        sql: &mut Sql,
        clauses: &[TraceClause],
        experiments: &[i64],
    ) -> Result<()> {
        let d = self.dialect;
        let mut spans: Vec<&TraceClause> = Vec::new();
        for c in clauses {
            match &c.field {
                TraceField::SpanName
                | TraceField::SpanType
                | TraceField::SpanStatus
                | TraceField::SpanContent
                | TraceField::SpanAttribute(_) => {
                    spans.push(c);
                    continue;
                }
                _ => {}
            }
            sql.push(" AND ");
            self.push_clause(sql, c, experiments)?;
        }
        if !spans.is_empty() {
            // All span conditions hold for one and the same span.
            sql.push(" AND EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = t.request_id AND s.experiment_id = t.experiment_id");
            for c in spans {
                sql.push(" AND ");
                let (col, value) = match &c.field {
                    TraceField::SpanName => ("s.name", c.value.clone()),
                    TraceField::SpanType => ("s.type", c.value.clone()),
                    TraceField::SpanStatus => ("s.status", c.value.clone()),
                    TraceField::SpanContent => ("s.content", c.value.clone()),
                    TraceField::SpanAttribute(name) => {
                        let v = match &c.value {
                            Literal::Str(v) => v.clone(),
                            _ => String::new(),
                        };
                        let pattern = if c.comparator == Comparator::RLike {
                            let (body, prefix) = match v.strip_prefix('^') {
                                Some(rest) => (rest.to_string(), "\"\\\\\""),
                                None => (v.clone(), "\"\\\\\".*"),
                            };
                            let (body, suffix) = match body.strip_suffix('$') {
                                Some(rest) => (rest.to_string(), "\\\\\""),
                                None => (body, ""),
                            };
                            format!("\"{name}\": {prefix}{body}{suffix}")
                        } else {
                            format!("%\"{name}\"{v}%")
                        };
                        ("s.content", Literal::Str(pattern))
                    }
                    _ => unreachable!("only span fields are collected"),
                };
                text_compare(sql, d, col, c.comparator, &value)?;
            }
            sql.push(")");
        }
        Ok(())
    }

    fn push_clause(&self, sql: &mut Sql, c: &TraceClause, experiments: &[i64]) -> Result<()> {
        let d = self.dialect;
        let cmp = c.comparator;
        match &c.field {
            TraceField::Attr(a)
                if matches!(
                    a,
                    TraceAttr::TimestampMs | TraceAttr::ExecutionTimeMs | TraceAttr::EndTimeMs
                ) =>
            {
                numeric_compare(sql, attr_column(*a), cmp, &c.value);
            }
            TraceField::Attr(a) => text_compare(sql, d, attr_column(*a), cmp, &c.value)?,
            TraceField::Tag(name) if name == TAG_TRACE_NAME => {
                text_compare(sql, d, "t.trace_name", cmp, &c.value)?
            }
            TraceField::Tag(name) if name == TAG_LINKED_PROMPTS => {
                sql.push(
                    "EXISTS (SELECT 1 FROM entity_associations ea WHERE ea.source_id = t.request_id \
                     AND ea.source_type = 'trace' AND ea.destination_type = 'prompt_version' \
                     AND ea.destination_id = ",
                );
                let v = match &c.value {
                    Literal::Str(s) => s.clone(),
                    _ => String::new(),
                };
                sql.bind(v).push(")");
            }
            TraceField::Metadata(name) if name == META_SESSION => {
                text_compare(sql, d, "t.session_id", cmp, &c.value)?
            }
            TraceField::Metadata(name) if name == META_SOURCE_RUN && cmp == Comparator::Eq => {
                let run = match &c.value {
                    Literal::Str(s) => s.clone(),
                    _ => String::new(),
                };
                sql.push(
                    "(EXISTS (SELECT 1 FROM entity_associations ea WHERE ea.source_id = t.request_id \
                     AND ea.source_type = 'trace' AND ea.destination_type = 'run' AND ea.destination_id = ",
                )
                .bind(run.as_str())
                .push(") OR ");
                kv_exists(
                    sql,
                    d,
                    "trace_request_metadata",
                    META_SOURCE_RUN,
                    Some((Comparator::Eq, &c.value)),
                    false,
                )?;
                sql.push(")");
            }
            TraceField::Tag(name) | TraceField::Metadata(name) => {
                let table = if matches!(c.field, TraceField::Tag(_)) {
                    "trace_tags"
                } else {
                    "trace_request_metadata"
                };
                match cmp {
                    Comparator::IsNull => kv_exists(sql, d, table, name, None, true)?,
                    Comparator::IsNotNull => kv_exists(sql, d, table, name, None, false)?,
                    _ => kv_exists(sql, d, table, name, Some((cmp, &c.value)), false)?,
                }
            }
            TraceField::Feedback(name) | TraceField::Expectation(name) => {
                let kind = if matches!(c.field, TraceField::Feedback(_)) {
                    "feedback"
                } else {
                    "expectation"
                };
                let negate = cmp == Comparator::IsNull;
                sql.push(if negate { "(NOT EXISTS (" } else { "(EXISTS (" })
                    .push("SELECT 1 FROM assessments a WHERE a.trace_id = t.request_id AND ");
                assessment_conditions(sql, d, "a", kind, name, cmp, &c.value)?;
                // An assessment made on a session covers every trace of that session.
                sql.push(if negate {
                    ") AND (t.session_id IS NULL OR t.session_id NOT IN ("
                } else {
                    ") OR t.session_id IN ("
                });
                sql.push(
                    "SELECT st.session_id FROM trace_info st JOIN assessments sa ON \
                     sa.trace_id = st.request_id WHERE st.session_id IS NOT NULL AND \
                     st.experiment_id IN ",
                )
                .bind_list(experiments.iter().copied())
                .push(" AND sa.assessment_metadata LIKE ")
                .bind("%\"mlflow.trace.session\":%")
                .push(" AND ");
                assessment_conditions(sql, d, "sa", kind, name, cmp, &c.value)?;
                sql.push(if negate { ")))" } else { "))" });
            }
            TraceField::IssueId => {
                sql.push(
                    "EXISTS (SELECT 1 FROM assessments a WHERE a.trace_id = t.request_id AND \
                     a.assessment_type = 'issue' AND a.name = ",
                );
                let v = match &c.value {
                    Literal::Str(s) => s.clone(),
                    _ => String::new(),
                };
                sql.bind(v).push(")");
            }
            _ => {
                return Err(MlflowError::internal(
                    "span clause outside the span condition",
                ))
            }
        }
        Ok(())
    }
}

/// Appends `other`'s text and arguments; placeholders are renumbered for PostgreSQL.
fn append(sql: &mut Sql, other: Sql) {
    if other.text.is_empty() {
        return;
    }
    if sql.dialect == Dialect::Postgres {
        let base = sql.args.len();
        let mut text = String::new();
        let mut chars = other.text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
                let mut n = String::new();
                while let Some(dg) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*dg);
                    chars.next();
                }
                let idx: usize = n.parse().unwrap_or(0);
                text.push_str(&format!("${}", idx + base));
            } else {
                text.push(c);
            }
        }
        sql.text.push_str(&text);
    } else {
        sql.text.push_str(&other.text);
    }
    sql.args.extend(other.args);
}
