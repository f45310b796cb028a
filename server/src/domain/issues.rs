//! GenAI issues (MLflow 3's `Issue`: a quality problem found in an experiment's traces):
//! the entity, its status and severity vocabularies, and the small filter grammar of
//! `issues/search` (`status` and `source_run_id` with `=` or `!=`, joined by AND).

use crate::error::{MlflowError, Result};

/// Statuses MLflow accepts; a new issue is `pending`.
pub const STATUSES: [&str; 3] = ["pending", "rejected", "resolved"];

/// Severities from lowest to highest; the position is the rank search orders by.
pub const SEVERITIES: [&str; 4] = ["not_an_issue", "low", "medium", "high"];

/// The longest name the `issues.name` column holds.
pub const MAX_NAME_LENGTH: usize = 250;

/// One page of `issues/search` unless the request asks for another size.
pub const DEFAULT_MAX_RESULTS: i64 = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub issue_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub description: String,
    pub status: String,
    pub severity: Option<String>,
    pub root_causes: Vec<String>,
    pub source_run_id: Option<String>,
    pub categories: Vec<String>,
    pub created_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub created_by: Option<String>,
    /// Traces carrying an `issue` assessment named after this issue; only when asked for.
    pub trace_count: Option<i64>,
}

/// The fields of a new issue.
#[derive(Debug, Clone, Default)]
pub struct NewIssue {
    pub experiment_id: i64,
    pub name: String,
    pub description: String,
    pub status: String,
    pub severity: Option<String>,
    pub root_causes: Vec<String>,
    pub source_run_id: Option<String>,
    pub categories: Vec<String>,
    pub created_by: Option<String>,
}

/// The fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IssueChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub severity: Option<String>,
}

/// Checks a status against MLflow's `IssueStatus` values.
pub fn check_status(value: &str) -> Result<()> {
    check_member("status", value, &STATUSES)
}

/// Checks a severity against MLflow's `IssueSeverity` values.
pub fn check_severity(value: &str) -> Result<()> {
    check_member("severity", value, &SEVERITIES)
}

fn check_member(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(MlflowError::invalid(format!(
        "Invalid {field} '{value}'. Supported values: {}",
        allowed.join(", ")
    )))
}

/// One condition of an issue search filter.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueFilter {
    /// `status` or `source_run_id`: both are column names of `issues`.
    pub key: &'static str,
    /// `=` or `!=`.
    pub op: &'static str,
    pub value: String,
}

/// Parses `status = 'resolved' AND source_run_id != 'abc'`.
pub fn parse_filter(filter: &str) -> Result<Vec<IssueFilter>> {
    split_and(filter)?
        .iter()
        .map(|clause| parse_comparison(clause.trim()))
        .collect()
}

/// Splits on the keyword AND outside quotes.
fn split_and(filter: &str) -> Result<Vec<String>> {
    let mut clauses = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => quote = Some(c),
            None => {
                let word: String = chars[i..].iter().take(3).collect();
                let before_ok = i == 0 || chars[i - 1].is_whitespace();
                let after_ok = chars.get(i + 3).is_none_or(|c| c.is_whitespace());
                if before_ok && after_ok && word.eq_ignore_ascii_case("and") {
                    clauses.push(std::mem::take(&mut current));
                    i += 3;
                    continue;
                }
            }
        }
        current.push(c);
        i += 1;
    }
    if quote.is_some() {
        return Err(MlflowError::invalid(format!(
            "Invalid filter string '{filter}': unterminated quote"
        )));
    }
    clauses.push(current);
    Ok(clauses)
}

fn parse_comparison(clause: &str) -> Result<IssueFilter> {
    let invalid = || MlflowError::invalid(format!("Invalid clause(s) in filter string: {clause}"));
    let (key, rest) = clause
        .find(['=', '!', '<', '>', ' '])
        .map(|at| (&clause[..at], clause[at..].trim_start()))
        .ok_or_else(invalid)?;
    let key = unquote(key.trim()).ok_or_else(invalid)?;
    let key = match key.as_str() {
        "status" => "status",
        "source_run_id" => "source_run_id",
        other => {
            return Err(MlflowError::invalid(format!(
                "Invalid filter field '{other}'. Supported fields: status, source_run_id"
            )))
        }
    };
    let op_len = rest
        .find(|c: char| !matches!(c, '=' | '!' | '<' | '>'))
        .unwrap_or(rest.len());
    let op = match &rest[..op_len] {
        "=" => "=",
        "!=" => "!=",
        "" => return Err(invalid()),
        other => {
            return Err(MlflowError::invalid(format!(
                "Invalid comparator '{other}'. Supported comparators: =, !="
            )))
        }
    };
    let value = rest[op_len..].trim();
    let value = match value.chars().next() {
        Some('\'' | '"') => unquote(value).ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    Ok(IssueFilter { key, op, value })
}

/// The text between matching quotes, or the word itself if it is not quoted.
fn unquote(text: &str) -> Option<String> {
    let mut chars = text.chars();
    match chars.next() {
        Some(q @ ('\'' | '"' | '`')) => {
            let inner = &text[1..];
            inner
                .strip_suffix(q)
                .filter(|s| !s.contains(q))
                .map(str::to_string)
        }
        Some(_) => Some(text.to_string()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters() {
        let f = parse_filter("status = 'resolved' AND source_run_id != \"r1\"").unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].key, f[0].op, f[0].value.as_str()),
            ("status", "=", "resolved")
        );
        assert_eq!(
            (f[1].key, f[1].op, f[1].value.as_str()),
            ("source_run_id", "!=", "r1")
        );
        let f = parse_filter("status='a and b'").unwrap();
        assert_eq!(f[0].value, "a and b");
    }

    #[test]
    fn rejects_bad_filters() {
        assert!(parse_filter("name = 'x'").is_err());
        assert!(parse_filter("status > 'x'").is_err());
        assert!(parse_filter("status = x").is_err());
        assert!(parse_filter("status = 'x").is_err());
        assert!(parse_filter("status = 'a' OR status = 'b'").is_err());
    }
}
