//! Metric histories: one run's, and several runs' within a step range.

use crate::error::Result;
use crate::store::sql::get_str;
use crate::store::{Page, Store};
use crate::wire::Metric;

use super::metric_by_name;

impl Store {
    /// A metric's full history, one page from `offset` (`limit` None = all).
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<Page<Metric>> {
        // An unknown run has an empty history, as in MLflow.
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {k}, value, timestamp, step, CASE WHEN is_nan THEN 1 ELSE 0 END AS is_nan \
             FROM metrics \
             WHERE run_uuid = ",
            k = self.dialect.key_col()
        ))
        .bind(run_id)
        .push(&format!(" AND {} = ", self.dialect.key_col()))
        .bind(key)
        .push(" ORDER BY timestamp, step, value");
        if let Some(limit) = limit {
            sql.push(" LIMIT ")
                .bind(limit + 1)
                .push(" OFFSET ")
                .bind(offset);
        }
        let rows = self.fetch_all(&sql).await?;
        let has_more = limit.is_some_and(|l| rows.len() as i64 > l);
        let take = limit.map_or(rows.len(), |l| l as usize);
        Ok(Page {
            items: rows.iter().take(take).map(metric_by_name).collect(),
            has_more,
        })
    }

    /// History of `key` for several runs, restricted to a step range, sorted by run then step.
    pub async fn metric_history_in_steps(
        &self,
        run_ids: &[String],
        key: &str,
        steps: Option<(i64, i64)>,
    ) -> Result<Vec<Metric>> {
        let mut sql = self.sql();
        sql.push(&format!(
            "SELECT {k}, value, timestamp, step, CASE WHEN is_nan THEN 1 ELSE 0 END AS is_nan, \
             run_uuid \
             FROM metrics WHERE {k} = ",
            k = self.dialect.key_col()
        ))
        .bind(key)
        .push(" AND run_uuid IN ")
        .bind_list(run_ids);
        if let Some((start, end)) = steps {
            sql.push(" AND step >= ")
                .bind(start)
                .push(" AND step <= ")
                .bind(end);
        }
        sql.push(" ORDER BY run_uuid, step, timestamp, value");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| {
                let mut m = metric_by_name(r);
                m.run_id = get_str(r, "run_uuid");
                m
            })
            .collect())
    }
}
