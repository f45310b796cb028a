//! Search-runs: one page of runs with all their data, read the fastest way each database
//! allows (one JSON document on SQLite, JSON columns on PostgreSQL, rows on MySQL).

use std::collections::HashMap;

use serde::Deserialize;

use super::load::{
    key_values, key_values_from_json, metrics_from_items, metrics_from_json, JsonMetric,
};
use super::{info_from_columns, info_from_row, InfoColumns, CHUNK, RUN_COLUMNS};
use crate::domain::search::{Clause, OrderKey};
use crate::error::{MlflowError, Result};
use crate::store::search::{run_clause, run_order};
use crate::store::sql::{get_i64, get_str, Dialect, Sql};
use crate::store::{Page, Store};
use crate::wire::{Run, RunData, RunInfo, ViewType};

/// `RUN_COLUMNS` read through the alias `r` (PostgreSQL's search page).
const PG_PAGE_COLUMNS: &str = "r.run_uuid, r.name, r.user_id, r.status, r.start_time, \
     r.end_time, r.artifact_uri, r.lifecycle_stage, r.experiment_id";
/// PostgreSQL: a page's run columns (from a derived table named `runs`), then its params,
/// tags and latest metrics as JSON arrays in the shapes SQLite's aggregation gives (the
/// value as text: PostgreSQL prints doubles shortest and exact), then 1 where the run has
/// dataset or model inputs or outputs.
const PG_RUN_DATA_SELECT: &str = "SELECT runs.*, \
     (SELECT json_agg(json_build_array(p.key, p.value))::text FROM params p \
      WHERE p.run_uuid = runs.run_uuid) AS params, \
     (SELECT json_agg(json_build_array(t.key, t.value))::text FROM tags t \
      WHERE t.run_uuid = runs.run_uuid) AS tags, \
     (SELECT json_agg(json_build_array(lm.key, lm.value::text, lm.timestamp, lm.step, \
      lm.is_nan::int))::text FROM latest_metrics lm WHERE lm.run_uuid = runs.run_uuid) \
      AS metrics, \
     CASE WHEN EXISTS (SELECT 1 FROM inputs i WHERE i.destination_type = 'RUN' \
      AND i.destination_id = runs.run_uuid) OR EXISTS (SELECT 1 FROM inputs i \
      WHERE i.source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND i.source_id = runs.run_uuid) \
     THEN 1 ELSE 0 END AS has_inputs";
/// SQLite: a whole search page as one JSON document, `[[info columns], params, tags, latest
/// metrics, has inputs]` per run, aggregated over a derived table named `runs` (the caller
/// appends the aggregate's ORDER BY, then `) AS page FROM (page query) runs`). Every row SQLite
/// returns is a hand-over between its thread and the runtime; one row instead of two
/// hundred per page.
const SQLITE_PAGE_SELECT: &str = "SELECT json_group_array(json_array(\
     json_array(runs.run_uuid, runs.name, runs.user_id, runs.status, runs.start_time, \
      runs.end_time, runs.artifact_uri, runs.lifecycle_stage, runs.experiment_id), \
     json((SELECT json_group_array(json_array(p.key, p.value)) FROM params p \
      WHERE p.run_uuid = runs.run_uuid)), \
     json((SELECT json_group_array(json_array(t.key, t.value)) FROM tags t \
      WHERE t.run_uuid = runs.run_uuid)), \
     json((SELECT json_group_array(json_array(lm.key, printf('%!.17g', lm.value), \
      lm.timestamp, lm.step, lm.is_nan)) FROM latest_metrics lm \
      WHERE lm.run_uuid = runs.run_uuid)), \
     EXISTS (SELECT 1 FROM inputs i WHERE i.destination_type = 'RUN' \
      AND i.destination_id = runs.run_uuid) OR EXISTS (SELECT 1 FROM inputs i \
      WHERE i.source_type IN ('RUN_INPUT', 'RUN_OUTPUT') AND i.source_id = runs.run_uuid))";
/// One run of `SQLITE_PAGE_SELECT`'s document, read from its JSON array field by field.
#[derive(Deserialize)]
struct JsonRun {
    info: InfoColumns,
    params: Vec<(String, Option<String>)>,
    tags: Vec<(String, Option<String>)>,
    metrics: Vec<JsonMetric>,
    has_inputs: i64,
}

impl Store {
    /// Runs of `experiment_ids` matching `clauses`, ordered, one page from `offset`.
    pub async fn search_runs(
        &self,
        experiment_ids: &[i64],
        view: ViewType,
        clauses: &[Clause],
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Run>> {
        if experiment_ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        }
        // The same page query on every database; each reads the page its own way. PostgreSQL
        // wraps it to add the runs' data as JSON (`search_page_with_data`), and its filters and
        // order read `runs` while the columns and the lifecycle stage come from a second
        // reference `r` to the same row: PostgreSQL then walks the (experiment_id,
        // start_time, run_uuid) index without visiting the table for the runs the filters
        // reject (12% less work on a 10%-selective param filter over 100,000 runs). SQLite
        // aggregates the whole page into one JSON row (`search_page_json`); MySQL reads the
        // rows and then their data.
        let mut sql = self.sql();
        let (columns, from, stage) = match self.dialect {
            Dialect::Postgres => {
                sql.push(PG_RUN_DATA_SELECT).push(" FROM (");
                (
                    PG_PAGE_COLUMNS,
                    "runs JOIN runs r ON r.run_uuid = runs.run_uuid",
                    "r.lifecycle_stage",
                )
            }
            Dialect::Sqlite => {
                sql.push(SQLITE_PAGE_SELECT);
                run_order(&mut sql, order);
                sql.push(") AS page FROM (");
                (RUN_COLUMNS, "runs", "runs.lifecycle_stage")
            }
            Dialect::Mysql => (RUN_COLUMNS, "runs", "runs.lifecycle_stage"),
        };
        sql.push(&format!(
            "SELECT {columns} FROM {from} WHERE runs.experiment_id IN "
        ))
        .bind_list(experiment_ids.iter().copied())
        .push(&format!(" AND {stage} IN "))
        .bind_list(view.stages().iter().copied());
        for clause in clauses {
            sql.push(" AND ");
            run_clause(&mut sql, clause);
        }
        run_order(&mut sql, order);
        match self.dialect {
            Dialect::Postgres => {
                self.search_page_with_data(sql, order, max_results, offset)
                    .await
            }
            Dialect::Sqlite => self.search_page_json(sql, max_results, offset).await,
            Dialect::Mysql => {
                let (infos, has_more) = self
                    .fetch_page(sql, max_results, offset, info_from_row)
                    .await?;
                Ok(Page {
                    items: self.load_runs(infos).await?,
                    has_more,
                })
            }
        }
    }

    /// PostgreSQL: one statement returns the page and each run's params, tags and latest
    /// metrics as JSON, where separate queries per kind would cost the database a statement
    /// (planned afresh, with a hundred-id IN list) each. `sql` is the page's query up to its
    /// ORDER BY, preceded by `PG_RUN_DATA_SELECT ... FROM (`; the derived table is named
    /// `runs`, so the outer ORDER BY is the inner one's text. Inputs are read separately,
    /// for the runs that have any.
    async fn search_page_with_data(
        &self,
        mut sql: Sql,
        order: &[OrderKey],
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Run>> {
        close_page(&mut sql, max_results, offset);
        run_order(&mut sql, order);
        let rows = self.fetch_all(&sql).await?;
        let has_more = rows.len() as i64 > max_results;
        let mut page = Vec::with_capacity(rows.len());
        for row in rows.iter().take(max_results as usize) {
            let metrics = get_str(row, "metrics");
            let data = RunData {
                params: key_values_from_json(get_str(row, "params").as_deref())?,
                tags: key_values_from_json(get_str(row, "tags").as_deref())?,
                metrics: metrics_from_json(metrics.as_deref().unwrap_or("[]"))?,
            };
            page.push((
                info_from_row(row),
                data,
                get_i64(row, "has_inputs").unwrap_or(0) != 0,
            ));
        }
        self.finish_page(page, has_more).await
    }

    /// SQLite: the page as one JSON row (see `SQLITE_PAGE_SELECT`); `sql` ends with the page
    /// query's ORDER BY.
    async fn search_page_json(
        &self,
        mut sql: Sql,
        max_results: i64,
        offset: i64,
    ) -> Result<Page<Run>> {
        close_page(&mut sql, max_results, offset);
        let row = self.fetch_optional(&sql).await?;
        let json = row.and_then(|r| get_str(&r, "page"));
        let runs: Vec<JsonRun> = serde_json::from_str(json.as_deref().unwrap_or("[]"))
            .map_err(|e| MlflowError::internal(format!("cannot read a page of runs: {e}")))?;
        let has_more = runs.len() as i64 > max_results;
        let mut page = Vec::with_capacity(runs.len());
        for run in runs.into_iter().take(max_results as usize) {
            let data = RunData {
                params: key_values(run.params),
                tags: key_values(run.tags),
                metrics: metrics_from_items(run.metrics),
            };
            page.push((info_from_columns(run.info), data, run.has_inputs != 0));
        }
        self.finish_page(page, has_more).await
    }

    /// Turns a search page's runs into `Run`s: params sorted by key, and inputs and outputs
    /// read for the runs flagged as having any.
    async fn finish_page(
        &self,
        page: Vec<(RunInfo, RunData, bool)>,
        has_more: bool,
    ) -> Result<Page<Run>> {
        let with_inputs: Vec<String> = page
            .iter()
            .filter(|(_, _, has)| *has)
            .map(|(info, _, _)| info.run_id.clone())
            .collect();
        let mut loaded = HashMap::new();
        if !with_inputs.is_empty() {
            let mut conn = self.reader.acquire().await?;
            for chunk in with_inputs.chunks(CHUNK) {
                self.load_inputs(&mut conn, chunk, &mut loaded).await?;
            }
        }
        let items = page
            .into_iter()
            .map(|(info, mut data, _)| {
                data.params.sort_by(|a, b| a.key.cmp(&b.key));
                let (inputs, outputs) = loaded
                    .remove(&info.run_id)
                    .map(|(_, i, o)| (i, o))
                    .unwrap_or_default();
                Run {
                    info,
                    data,
                    inputs,
                    outputs,
                }
            })
            .collect();
        Ok(Page { items, has_more })
    }
}

/// Ends a search page's query: one row more than the page (to learn whether another follows)
/// from `offset`, closing the derived table `runs` it is read through.
fn close_page(sql: &mut Sql, max_results: i64, offset: i64) {
    sql.push(" LIMIT ")
        .bind(max_results + 1)
        .push(" OFFSET ")
        .bind(offset)
        .push(") runs");
}
