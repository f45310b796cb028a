//! GenAI issues: the checks in front of the store (experiment id, vocabularies, lengths,
//! the source run, the search filter and page).

use super::tracking::{paged, Paged, Tracking};
use crate::domain::issues::{self as issues, Issue, IssueChanges, NewIssue};
use crate::domain::paging;
use crate::domain::validation as v;
use crate::error::{MlflowError, Result};

/// A search request as the handler reads it.
#[derive(Debug, Default)]
pub struct IssueQuery {
    pub experiment_id: Option<String>,
    pub filter: Option<String>,
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
    pub include_trace_count: bool,
}

fn check_name(name: &str) -> Result<()> {
    v::check_length("Issue name", name, issues::MAX_NAME_LENGTH)
}

impl Tracking {
    pub async fn create_issue(&self, experiment_id: &str, mut new: NewIssue) -> Result<Issue> {
        new.experiment_id = v::parse_experiment_id(experiment_id)?;
        check_name(&new.name)?;
        issues::check_status(&new.status)?;
        if let Some(s) = &new.severity {
            issues::check_severity(s)?;
        }
        if let Some(run_id) = &new.source_run_id {
            // The column references runs: an unknown run is refused as the foreign key
            // refuses it in MLflow (400), on every database.
            if self.get_run(run_id).await.is_err() {
                return Err(MlflowError::invalid(format!(
                    "Invalid source_run_id '{run_id}': no such run"
                )));
            }
        }
        self.store().create_issue(new).await
    }

    pub async fn get_issue(&self, issue_id: &str) -> Result<Issue> {
        self.store().get_issue(issue_id).await
    }

    pub async fn update_issue(&self, issue_id: &str, changes: IssueChanges) -> Result<Issue> {
        if let Some(name) = &changes.name {
            check_name(name)?;
        }
        if let Some(s) = &changes.status {
            issues::check_status(s)?;
        }
        if let Some(s) = &changes.severity {
            issues::check_severity(s)?;
        }
        self.store().update_issue(issue_id, changes).await
    }

    pub async fn search_issues(&self, q: IssueQuery) -> Result<Paged<Issue>> {
        let max_results = q.max_results.unwrap_or(issues::DEFAULT_MAX_RESULTS);
        v::validate_max_results(max_results, v::SEARCH_MAX_RESULTS)?;
        let experiment_id = match q.experiment_id.as_deref() {
            Some(id) => Some(v::parse_experiment_id(id)?),
            None => None,
        };
        let filters = match q.filter.as_deref() {
            Some(f) => issues::parse_filter(f)?,
            None => Vec::new(),
        };
        let offset = paging::decode(q.page_token.as_deref())?;
        let page = self
            .store()
            .search_issues(
                experiment_id,
                &filters,
                q.include_trace_count,
                max_results,
                offset,
            )
            .await?;
        Ok(paged(page.items, page.has_more, offset))
    }
}
