//! GenAI issues in MLflow's `issues` table. `root_causes` and `categories` are JSON lists
//! of strings (NULL when empty), as MLflow writes them; an issue's trace count is the
//! number of traces with an assessment of type `issue` named after the issue id.

use sqlx::any::AnyRow;

use super::sql::{get_i64, get_str};
use super::{now_ms, Page, Store};
use crate::domain::issues::{Issue, IssueChanges, IssueFilter, NewIssue, SEVERITIES};
use crate::error::{MlflowError, Result};

const COLUMNS: &str = "issue_id, experiment_id, name, description, status, severity, \
     root_causes, source_run_id, categories, created_timestamp, last_updated_timestamp, \
     created_by";

const TRACE_COUNT: &str = "(SELECT COUNT(DISTINCT a.trace_id) FROM assessments a \
     WHERE a.name = issues.issue_id AND a.assessment_type = 'issue')";

fn json_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| serde_json::Value::from(items.to_vec()).to_string())
}

/// A stored JSON list; anything else another writer left there reads as empty.
fn parse_list(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn issue_from_row(row: &AnyRow, with_count: bool) -> Issue {
    Issue {
        issue_id: get_str(row, "issue_id").unwrap_or_default(),
        experiment_id: get_i64(row, "experiment_id").unwrap_or_default(),
        name: get_str(row, "name").unwrap_or_default(),
        description: get_str(row, "description").unwrap_or_default(),
        status: get_str(row, "status").unwrap_or_default(),
        severity: get_str(row, "severity"),
        root_causes: parse_list(get_str(row, "root_causes")),
        source_run_id: get_str(row, "source_run_id"),
        categories: parse_list(get_str(row, "categories")),
        created_timestamp: get_i64(row, "created_timestamp").unwrap_or_default(),
        last_updated_timestamp: get_i64(row, "last_updated_timestamp").unwrap_or_default(),
        created_by: get_str(row, "created_by"),
        trace_count: if with_count {
            get_i64(row, "trace_count")
        } else {
            None
        },
    }
}

fn issue_not_found(issue_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Issue with ID '{issue_id}' not found"))
}

impl Store {
    pub async fn create_issue(&self, new: NewIssue) -> Result<Issue> {
        self.require_active_experiment(new.experiment_id).await?;
        let issue_id = format!("iss-{}", uuid::Uuid::new_v4().simple());
        let now = now_ms();
        let mut sql = self.sql();
        sql.push("INSERT INTO issues (")
            .push(COLUMNS)
            .push(") VALUES (")
            .bind(issue_id.as_str())
            .push(", ")
            .bind(new.experiment_id)
            .push(", ")
            .bind(new.name.as_str())
            .push(", ")
            .bind(new.description.as_str())
            .push(", ")
            .bind(new.status.as_str())
            .push(", ")
            .bind(new.severity.clone())
            .push(", ")
            .bind(json_list(&new.root_causes))
            .push(", ")
            .bind(new.source_run_id.clone())
            .push(", ")
            .bind(json_list(&new.categories))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(new.created_by.clone())
            .push(")");
        self.write_statement(&sql).await?;
        self.get_issue(&issue_id).await
    }

    pub async fn get_issue(&self, issue_id: &str) -> Result<Issue> {
        let mut sql = self.sql();
        sql.push("SELECT ")
            .push(COLUMNS)
            .push(" FROM issues WHERE issue_id = ")
            .bind(issue_id);
        // Read from the writer: a just-created issue must be visible to its creator.
        let row = sql
            .query()
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| issue_not_found(issue_id))?;
        Ok(issue_from_row(&row, false))
    }

    /// Changes the given fields and stamps `last_updated_timestamp`.
    pub async fn update_issue(&self, issue_id: &str, changes: IssueChanges) -> Result<Issue> {
        let mut sql = self.sql();
        sql.push("UPDATE issues SET last_updated_timestamp = ")
            .bind(now_ms());
        for (column, value) in [
            ("name", changes.name),
            ("description", changes.description),
            ("status", changes.status),
            ("severity", changes.severity),
        ] {
            if let Some(value) = value {
                sql.push(", ").push(column).push(" = ").bind(value);
            }
        }
        sql.push(" WHERE issue_id = ").bind(issue_id);
        let done = self.write_statement(&sql).await?;
        if done == 0 {
            return Err(issue_not_found(issue_id));
        }
        self.get_issue(issue_id).await
    }

    /// Issues by severity (highest first), then trace count when counted, then newest.
    pub async fn search_issues(
        &self,
        experiment_id: Option<i64>,
        filters: &[IssueFilter],
        with_trace_count: bool,
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Issue>> {
        let d = self.dialect;
        let mut sql = self.sql();
        sql.push("SELECT ").push(COLUMNS);
        if with_trace_count {
            sql.push(", ").push(TRACE_COUNT).push(" AS trace_count");
        }
        sql.push(" FROM issues WHERE 1 = 1");
        if let Some(exp) = experiment_id {
            sql.push(" AND experiment_id = ").bind(exp);
        }
        for f in filters {
            sql.push(" AND ");
            d.push_text_compare(&mut sql, f.key, f.op, &f.value);
        }
        sql.push(" ORDER BY CASE severity");
        for (rank, severity) in SEVERITIES.iter().enumerate() {
            sql.push(&format!(" WHEN '{severity}' THEN {rank}"));
        }
        sql.push(" ELSE -1 END DESC");
        if with_trace_count {
            sql.push(", trace_count DESC");
        }
        sql.push(", created_timestamp DESC, issue_id DESC");
        let (items, has_more) = self
            .fetch_page(sql, max_results, offset, |row| {
                issue_from_row(row, with_trace_count)
            })
            .await?;
        Ok(Page { items, has_more })
    }
}
