//! The webhooks API (`/mlflow/webhooks`): MLflow's rules in front of the store. Secrets are
//! kept Fernet-encrypted as the Python server keeps them, under
//! `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY` (without it, a key made at start, so secrets
//! written by one run cannot be read by the next, as with MLflow), and never returned.
//! Deliveries are in [`super::webhook_delivery`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::tracking::{paged, Paged};
use crate::domain::paging;
use crate::domain::webhooks::{self as wh, Action, Entity, Event, Status, Webhook};
use crate::error::{MlflowError, Result};
use crate::store::webhooks::{WebhookChanges, WebhookRow};
use crate::store::{now_ms, Store};

/// The `MLFLOW_WEBHOOK_*` settings, with MLflow's defaults.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// URL schemes a webhook may use (`MLFLOW_WEBHOOK_ALLOWED_SCHEMES`, default `https`).
    pub allowed_schemes: Vec<String>,
    /// Whether URLs may resolve to loopback, private or link-local addresses.
    pub allow_private_ips: bool,
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// How long the webhooks of one event are reused before they are read again.
    pub cache_ttl: Duration,
    pub max_workers: usize,
    pub encryption_key: Option<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allowed_schemes: vec!["https".into()],
            allow_private_ips: false,
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            cache_ttl: Duration::from_secs(60),
            max_workers: 10,
            encryption_key: None,
        }
    }
}

fn env_number(name: &str, default: u64) -> std::result::Result<u64, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got {v:?}")),
        _ => Ok(default),
    }
}

impl WebhookSettings {
    /// Reads the environment as the Python server does.
    pub fn from_env() -> std::result::Result<Self, String> {
        let d = Self::default();
        let schemes = std::env::var("MLFLOW_WEBHOOK_ALLOWED_SCHEMES")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or(d.allowed_schemes);
        let private = std::env::var("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS")
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
            .unwrap_or(false);
        Ok(Self {
            allowed_schemes: schemes,
            allow_private_ips: private,
            request_timeout: Duration::from_secs(env_number("MLFLOW_WEBHOOK_REQUEST_TIMEOUT", 30)?),
            max_retries: env_number("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", 3)? as u32,
            cache_ttl: Duration::from_secs(env_number("MLFLOW_WEBHOOK_CACHE_TTL", 60)?),
            max_workers: env_number("MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS", 10)?.max(1) as usize,
            encryption_key: std::env::var("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        })
    }
}

/// A create or update request after decoding; `None` (or empty, as MLflow's `or None`)
/// leaves a field unset.
#[derive(Debug, Default)]
pub struct WebhookFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<Event>>,
    pub secret: Option<String>,
    pub status: Option<Status>,
}

/// The webhooks service; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) settings: WebhookSettings,
    fernet: fernet::Fernet,
    pub(super) http: reqwest::Client,
    /// The live webhooks of each event, and when they were read.
    pub(super) cache: Mutex<HashMap<Event, (Instant, Vec<Webhook>)>>,
    pub(super) workers: Arc<Semaphore>,
}

fn to_webhook(row: WebhookRow) -> Webhook {
    let events = row
        .events
        .iter()
        .filter_map(|(e, a)| {
            let entity = Entity::parse(&serde_json::Value::String(e.clone()))?;
            let action = Action::parse(&serde_json::Value::String(a.clone()))?;
            Some(Event { entity, action })
        })
        .collect();
    Webhook {
        webhook_id: row.webhook_id,
        name: row.name,
        description: row.description.filter(|d| !d.is_empty()),
        url: row.url,
        events,
        status: Status::parse(&serde_json::Value::String(row.status)).unwrap_or(Status::Active),
        creation_timestamp: row.creation_timestamp,
        last_updated_timestamp: row.last_updated_timestamp,
        secret: row.secret,
    }
}

fn event_rows(events: &[Event]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for e in events {
        let row = (e.entity.as_str().to_string(), e.action.as_str().to_string());
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    rows
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl Webhooks {
    pub fn new(store: Store, settings: WebhookSettings) -> std::result::Result<Self, String> {
        let key = settings
            .encryption_key
            .clone()
            .unwrap_or_else(fernet::Fernet::generate_key);
        let fernet = fernet::Fernet::new(&key).ok_or(
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is not a Fernet key (32 bytes, URL-safe base64)",
        )?;
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            // A redirect could lead a delivery to an address the URL check refused.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        let workers = Arc::new(Semaphore::new(settings.max_workers));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                settings,
                fernet,
                http,
                cache: Mutex::new(HashMap::new()),
                workers,
            }),
        })
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Checks a URL's scheme and host, and unless private addresses are allowed, that every
    /// address the host resolves to is public.
    pub(super) async fn check_url(&self, url: &str) -> Result<()> {
        let settings = &self.inner.settings;
        let host = wh::validate_url(url, &settings.allowed_schemes)?;
        if settings.allow_private_ips {
            return Ok(());
        }
        let addrs: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| {
                    MlflowError::invalid(format!(
                        "Cannot resolve webhook URL hostname {}: {e}",
                        crate::domain::validation::py_repr(&host)
                    ))
                })?
                .map(|a| a.ip())
                .collect(),
        };
        if let Some(ip) = addrs.into_iter().find(|ip| !wh::is_global(*ip)) {
            return Err(MlflowError::invalid(format!(
                "Webhook URL must not resolve to a non-public IP address. {} resolves to {ip}.",
                crate::domain::validation::py_repr(&host)
            )));
        }
        Ok(())
    }

    fn encrypt(&self, secret: &str) -> String {
        self.inner.fernet.encrypt(secret.as_bytes())
    }

    /// The plain secret of a stored (encrypted) one.
    pub(super) fn decrypt(&self, stored: &str) -> Result<String> {
        let bytes = self.inner.fernet.decrypt(stored).map_err(|_| {
            MlflowError::internal(
                "cannot decrypt the webhook's secret: it was written under another \
                 MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
            )
        })?;
        String::from_utf8(bytes)
            .map_err(|_| MlflowError::internal("the webhook's secret is not UTF-8"))
    }

    /// Forgets the cached subscriptions after a change made here.
    fn invalidate(&self) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.clear();
        }
    }

    pub async fn create(&self, f: WebhookFields) -> Result<Webhook> {
        let name = f.name.unwrap_or_default();
        wh::validate_name(&name)?;
        let url = f.url.unwrap_or_default();
        self.check_url(&url).await?;
        let events = f.events.unwrap_or_default();
        if events.is_empty() {
            return Err(MlflowError::invalid(
                "Webhook events must be a non-empty list of WebhookEvent objects: [].",
            ));
        }
        let now = now_ms();
        let row = WebhookRow {
            webhook_id: uuid::Uuid::new_v4().to_string(),
            name,
            description: non_empty(f.description),
            url,
            status: f.status.unwrap_or(Status::Active).as_str().to_string(),
            secret: non_empty(f.secret).map(|s| self.encrypt(&s)),
            creation_timestamp: now,
            last_updated_timestamp: now,
            events: event_rows(&events),
        };
        self.store().create_webhook(&row).await?;
        self.invalidate();
        self.get(&row.webhook_id).await
    }

    pub async fn get(&self, webhook_id: &str) -> Result<Webhook> {
        Ok(to_webhook(self.store().get_webhook(webhook_id).await?))
    }

    /// One page, newest first; `max_results` 0 or absent means 100, as MLflow's default.
    pub async fn list(
        &self,
        max_results: Option<i64>,
        token: Option<&str>,
    ) -> Result<Paged<Webhook>> {
        let max = max_results.filter(|m| *m != 0).unwrap_or(100);
        if !(1..=1000).contains(&max) {
            return Err(MlflowError::invalid(
                "max_results must be between 1 and 1000.",
            ));
        }
        let offset = paging::decode(token)?;
        let (rows, more) = self.store().list_webhooks(None, max, offset).await?;
        Ok(paged(
            rows.into_iter().map(to_webhook).collect(),
            more,
            offset,
        ))
    }

    /// The live webhooks subscribed to `event`, all pages, through the cache.
    pub(super) async fn subscribed(&self, event: Event) -> Result<Vec<Webhook>> {
        let ttl = self.inner.settings.cache_ttl;
        if let Ok(cache) = self.inner.cache.lock() {
            if let Some((at, hooks)) = cache.get(&event) {
                if at.elapsed() < ttl {
                    return Ok(hooks.clone());
                }
            }
        }
        let key = (event.entity.as_str(), event.action.as_str());
        let mut hooks = Vec::new();
        let mut offset = 0;
        loop {
            let (rows, more) = self.store().list_webhooks(Some(key), 100, offset).await?;
            offset += rows.len() as i64;
            hooks.extend(rows.into_iter().map(to_webhook));
            if !more {
                break;
            }
        }
        if !ttl.is_zero() {
            if let Ok(mut cache) = self.inner.cache.lock() {
                cache.insert(event, (Instant::now(), hooks.clone()));
            }
        }
        Ok(hooks)
    }

    pub async fn update(&self, webhook_id: &str, f: WebhookFields) -> Result<Webhook> {
        // Not found comes before any check of the new values, as in MLflow.
        self.store().get_webhook(webhook_id).await?;
        let name = non_empty(f.name);
        if let Some(name) = &name {
            wh::validate_name(name)?;
        }
        let url = non_empty(f.url);
        if let Some(url) = &url {
            self.check_url(url).await?;
        }
        let changes = WebhookChanges {
            name,
            description: non_empty(f.description),
            url,
            events: f.events.filter(|e| !e.is_empty()).map(|e| event_rows(&e)),
            secret: non_empty(f.secret).map(|s| self.encrypt(&s)),
            status: f.status.map(|s| s.as_str().to_string()),
        };
        self.store().update_webhook(webhook_id, &changes).await?;
        self.invalidate();
        self.get(webhook_id).await
    }

    pub async fn delete(&self, webhook_id: &str) -> Result<()> {
        self.store().delete_webhook(webhook_id).await?;
        self.invalidate();
        Ok(())
    }
}
