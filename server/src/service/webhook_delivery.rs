//! Webhook deliveries, as MLflow makes them: a JSON body `{"entity", "action", "timestamp",
//! "data"}` POSTed with `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` and, when the webhook
//! has a secret, `X-MLflow-Signature` (see [`crate::domain::webhooks::signature`]).
//!
//! A registry write only schedules its deliveries ([`Webhooks::deliver`]): they run on their
//! own tasks, at most `MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS` at once, each with the request
//! timeout and up to `MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES` retries on 429/5xx answers and
//! connection errors (exponential backoff with jitter, `Retry-After` honoured, capped at
//! 60 s). A failed delivery is logged and never reaches the request that caused it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::registry::python_json;
use super::webhooks::Webhooks;
use crate::domain::webhooks::{self as wh, Event, TestResult, Webhook};
use crate::error::{MlflowError, Result};

/// Answers that urllib3's retry policy in MLflow retries.
const RETRY_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before retry `n` (1-based): none before the first, then 2, 4, 8... seconds
/// plus up to one second of jitter, as urllib3's backoff with factor 1.
fn backoff(n: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_BACKOFF);
    }
    if n <= 1 {
        return Duration::ZERO;
    }
    let base = Duration::from_secs(1u64 << (n - 1).min(6)).min(MAX_BACKOFF);
    base + Duration::from_millis(fastrand::u64(0..1000))
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    if !matches!(resp.status().as_u16(), 413 | 429 | 503) {
        return None;
    }
    crate::client::http::retry_after_header(resp.headers())
}

/// The body MLflow sends, written as Python's `json.dumps` writes it.
fn body(event: Event, data: &Value) -> String {
    let timestamp = format!(
        "{}+00:00",
        crate::domain::time::python_now().replacen(' ', "T", 1)
    );
    format!(
        "{{\"entity\": {}, \"action\": {}, \"timestamp\": {}, \"data\": {}}}",
        python_json(&json!(event.entity.as_str())),
        python_json(&json!(event.action.as_str())),
        python_json(&json!(timestamp)),
        python_json(data)
    )
}

impl Webhooks {
    /// Schedules the deliveries of `event` to every active webhook subscribed to it and
    /// returns at once.
    pub fn deliver(&self, event: Event, data: Value) {
        let this = self.clone();
        tokio::spawn(async move {
            let hooks = match this.subscribed(event).await {
                Ok(hooks) => hooks,
                Err(e) => {
                    tracing::error!(%event, error = %e.message, "cannot list the webhooks of an event");
                    return;
                }
            };
            for hook in hooks.into_iter().filter(|h| h.status == wh::Status::Active) {
                let this = this.clone();
                let data = data.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = this.inner.workers.clone().acquire_owned().await else {
                        return;
                    };
                    match this.send(&hook, event, &data).await {
                        Ok(status) if status.as_u16() < 400 => {}
                        Ok(status) => tracing::warn!(
                            url = %hook.url, %event, %status, "webhook delivery refused"
                        ),
                        Err(e) => tracing::error!(
                            url = %hook.url, %event, error = %e.message, "webhook delivery failed"
                        ),
                    }
                });
            }
        });
    }

    /// Sends `event`'s example payload (default: the webhook's first event) to the webhook
    /// now, and reports how its endpoint answered.
    pub async fn test(&self, webhook_id: &str, event: Option<Event>) -> Result<TestResult> {
        let hook = self.get(webhook_id).await?;
        let Some(event) = event.or_else(|| hook.events.first().copied()) else {
            return Ok(TestResult {
                error_message: Some("Failed to test webhook: the webhook has no events".into()),
                ..TestResult::default()
            });
        };
        let result = self
            .post_with_retries(&hook, event, &wh::example_payload(event))
            .await;
        Ok(match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                TestResult {
                    success: status < 400,
                    response_status: Some(status),
                    response_body: Some(resp.text().await.unwrap_or_default()),
                    error_message: None,
                }
            }
            Err(e) => TestResult {
                error_message: Some(format!("Failed to test webhook: {}", e.message)),
                ..TestResult::default()
            },
        })
    }

    async fn send(&self, hook: &Webhook, event: Event, data: &Value) -> Result<StatusCode> {
        Ok(self.post_with_retries(hook, event, data).await?.status())
    }

    /// One delivery with its retries; the last answer, or the last connection error.
    async fn post_with_retries(
        &self,
        hook: &Webhook,
        event: Event,
        data: &Value,
    ) -> Result<reqwest::Response> {
        // Checked again at send time: the host may resolve elsewhere than at creation.
        self.check_url(&hook.url).await?;
        let secret = hook
            .secret
            .as_deref()
            .map(|s| self.decrypt(s))
            .transpose()?;
        let body = body(event, data);
        let max_retries = self.inner.settings.max_retries;
        // Retries resend the same delivery (id, time and signature), as urllib3's do.
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let signature = secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| wh::signature(s, &delivery_id, &timestamp, &body));
        let mut attempt = 0;
        loop {
            let mut req = self
                .inner
                .http
                .post(&hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-MLflow-Delivery-Id", &delivery_id)
                .header("X-MLflow-Timestamp", &timestamp)
                .body(body.clone());
            if let Some(signature) = &signature {
                req = req.header("X-MLflow-Signature", signature);
            }
            let outcome = req.send().await;
            attempt += 1;
            let last = attempt > max_retries;
            let wait = match outcome {
                Ok(resp) if last || !RETRY_STATUSES.contains(&resp.status().as_u16()) => {
                    return Ok(resp)
                }
                Ok(resp) => retry_after(&resp),
                Err(e) if last => {
                    return Err(MlflowError::internal(format!(
                        "Webhook request to {} failed after {max_retries} retries: {e}",
                        hook.url
                    )))
                }
                Err(_) => None,
            };
            tokio::time::sleep(backoff(attempt, wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, None), Duration::ZERO);
        assert!(backoff(2, None) >= Duration::from_secs(2));
        assert!(backoff(2, None) < Duration::from_secs(3));
        assert!(backoff(12, None) <= MAX_BACKOFF + Duration::from_secs(1));
        assert_eq!(backoff(3, Some(Duration::from_secs(500))), MAX_BACKOFF);
    }

    #[test]
    fn body_is_python_json() {
        let event = Event {
            entity: wh::Entity::ModelVersionTag,
            action: wh::Action::Set,
        };
        let b = body(event, &json!({"name": "m", "key": "k"}));
        assert!(b.starts_with(
            "{\"entity\": \"model_version_tag\", \"action\": \"set\", \"timestamp\": \""
        ));
        assert!(b.ends_with("+00:00\", \"data\": {\"key\": \"k\", \"name\": \"m\"}}"));
    }
}
