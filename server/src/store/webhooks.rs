//! Webhooks in MLflow's `webhooks` table (soft-deleted by `deleted_timestamp`, the secret as
//! the caller encrypted it) and their subscriptions in `webhook_events` (one row per
//! entity/action, lower-case names as the Python server writes them).

use sqlx::any::AnyRow;

use super::sql::{get_i64, get_str, Sql};
use super::{now_ms, Store};
use crate::error::{MlflowError, Result};

/// A webhook row with its subscribed events, as stored.
#[derive(Debug, Clone, Default)]
pub struct WebhookRow {
    pub webhook_id: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub status: String,
    /// Encrypted, as in the table.
    pub secret: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    /// `(entity, action)`, lower-case.
    pub events: Vec<(String, String)>,
}

/// Fields of an update; `None` leaves the column as it is.
#[derive(Debug, Default)]
pub struct WebhookChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<(String, String)>>,
    pub secret: Option<String>,
    pub status: Option<String>,
}

const SELECT: &str = "SELECT w.webhook_id, w.name, w.description, w.url, w.status, w.secret, \
     w.creation_timestamp, w.last_updated_timestamp FROM webhooks w";

fn from_row(row: &AnyRow) -> WebhookRow {
    WebhookRow {
        webhook_id: get_str(row, "webhook_id").unwrap_or_default(),
        name: get_str(row, "name").unwrap_or_default(),
        description: get_str(row, "description"),
        url: get_str(row, "url").unwrap_or_default(),
        status: get_str(row, "status").unwrap_or_default(),
        secret: get_str(row, "secret"),
        creation_timestamp: get_i64(row, "creation_timestamp").unwrap_or_default(),
        last_updated_timestamp: get_i64(row, "last_updated_timestamp").unwrap_or_default(),
        events: Vec::new(),
    }
}

pub fn webhook_not_found(webhook_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Webhook with ID {webhook_id} not found."))
}

fn insert_events(
    sql_dialect: super::sql::Dialect,
    webhook_id: &str,
    events: &[(String, String)],
) -> Option<Sql> {
    if events.is_empty() {
        return None;
    }
    let mut sql = Sql::new(sql_dialect);
    sql.push("INSERT INTO webhook_events (webhook_id, entity, action) VALUES ");
    for (i, (entity, action)) in events.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(webhook_id)
            .push(", ")
            .bind(entity.as_str())
            .push(", ")
            .bind(action.as_str())
            .push(")");
    }
    Some(sql)
}

impl Store {
    /// Inserts a webhook with its events; the id and timestamps are the row's.
    pub async fn create_webhook(&self, row: &WebhookRow) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push(
                    "INSERT INTO webhooks (webhook_id, name, description, url, status, secret, \
                 creation_timestamp, last_updated_timestamp) VALUES (",
                )
                .bind(row.webhook_id.as_str())
                .push(", ")
                .bind(row.name.as_str())
                .push(", ")
                .bind(row.description.clone())
                .push(", ")
                .bind(row.url.as_str())
                .push(", ")
                .bind(row.status.as_str())
                .push(", ")
                .bind(row.secret.clone())
                .push(", ")
                .bind(row.creation_timestamp)
                .push(", ")
                .bind(row.last_updated_timestamp)
                .push(")");
                sql.query().execute(&mut *tx).await?;
                if let Some(sql) = insert_events(d, &row.webhook_id, &row.events) {
                    sql.query().execute(&mut *tx).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// A live (not deleted) webhook, or MLflow's not-found error.
    pub async fn get_webhook(&self, webhook_id: &str) -> Result<WebhookRow> {
        let mut sql = self.sql();
        sql.push(SELECT)
            .push(" WHERE w.webhook_id = ")
            .bind(webhook_id)
            .push(" AND w.deleted_timestamp IS NULL");
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| webhook_not_found(webhook_id))?;
        let mut found = vec![from_row(&row)];
        self.attach_events(&mut found).await?;
        Ok(found.remove(0))
    }

    /// Live webhooks, newest first, optionally only those subscribed to `event`; one page from
    /// `offset`, and whether more follow.
    pub async fn list_webhooks(
        &self,
        event: Option<(&str, &str)>,
        max_results: i64,
        offset: i64,
    ) -> Result<(Vec<WebhookRow>, bool)> {
        let mut sql = self.sql();
        sql.push(SELECT).push(" WHERE w.deleted_timestamp IS NULL");
        if let Some((entity, action)) = event {
            sql.push(
                " AND EXISTS (SELECT 1 FROM webhook_events e WHERE e.webhook_id = w.webhook_id \
                 AND e.entity = ",
            )
            .bind(entity)
            .push(" AND e.action = ")
            .bind(action)
            .push(")");
        }
        // The id breaks ties of one millisecond so that pages neither repeat nor skip.
        sql.push(" ORDER BY w.creation_timestamp DESC, w.webhook_id");
        let (mut rows, has_more) = self.fetch_page(sql, max_results, offset, from_row).await?;
        self.attach_events(&mut rows).await?;
        Ok((rows, has_more))
    }

    async fn attach_events(&self, rows: &mut [WebhookRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sql = self.sql();
        sql.push("SELECT webhook_id, entity, action FROM webhook_events WHERE webhook_id IN ")
            .bind_list(rows.iter().map(|r| r.webhook_id.as_str()))
            .push(" ORDER BY entity, action");
        for event in self.fetch_all(&sql).await? {
            let id = get_str(&event, "webhook_id").unwrap_or_default();
            if let Some(row) = rows.iter_mut().find(|r| r.webhook_id == id) {
                row.events.push((
                    get_str(&event, "entity").unwrap_or_default(),
                    get_str(&event, "action").unwrap_or_default(),
                ));
            }
        }
        Ok(())
    }

    /// Applies `changes` to a live webhook and stamps it; not found if there is none.
    pub async fn update_webhook(&self, webhook_id: &str, changes: &WebhookChanges) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                let d = self.dialect;
                let mut sql = Sql::new(d);
                sql.push("UPDATE webhooks SET last_updated_timestamp = ")
                    .bind(now_ms());
                let columns = [
                    ("name", &changes.name),
                    ("description", &changes.description),
                    ("url", &changes.url),
                    ("secret", &changes.secret),
                    ("status", &changes.status),
                ];
                for (column, value) in columns {
                    if let Some(v) = value {
                        sql.push(&format!(", {column} = ")).bind(v.as_str());
                    }
                }
                sql.push(" WHERE webhook_id = ")
                    .bind(webhook_id)
                    .push(" AND deleted_timestamp IS NULL");
                if sql.query().execute(&mut *tx).await?.rows_affected() == 0 {
                    return Err(webhook_not_found(webhook_id));
                }
                if let Some(events) = &changes.events {
                    let mut sql = Sql::new(d);
                    sql.push("DELETE FROM webhook_events WHERE webhook_id = ")
                        .bind(webhook_id);
                    sql.query().execute(&mut *tx).await?;
                    if let Some(sql) = insert_events(d, webhook_id, events) {
                        sql.query().execute(&mut *tx).await?;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    /// Marks a live webhook deleted (MLflow keeps the row); not found if there is none.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<()> {
        self.write(|tx, _| {
            Box::pin(async move {
                let now = now_ms();
                let mut sql = self.sql();
                sql.push("UPDATE webhooks SET deleted_timestamp = ")
                    .bind(now)
                    .push(", last_updated_timestamp = ")
                    .bind(now)
                    .push(" WHERE webhook_id = ")
                    .bind(webhook_id)
                    .push(" AND deleted_timestamp IS NULL");
                if sql.query().execute(&mut *tx).await?.rows_affected() == 0 {
                    return Err(webhook_not_found(webhook_id));
                }
                Ok(())
            })
        })
        .await
    }
}
