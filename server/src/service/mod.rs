//! MLflow's rules between the HTTP layer and the store: validation, limits, truncation,
//! defaults and run-name generation. Handlers call these; these call the store.

mod datasets;
mod gateway;
mod issues;
mod logged_models;
mod registry;
mod registry_events;
mod scorers;
mod sources;
mod trace_metrics;
mod traces;
mod tracking;
mod webhook_delivery;
mod webhooks;

pub use gateway::parse_experiment;
pub use issues::IssueQuery;
pub use logged_models::{DatasetIn, ModelOrderIn};
pub use registry::{NewVersionRequest, SEARCH_MODEL_VERSIONS_MAX};
pub use sources::SourcePolicy;

pub use trace_metrics::{Correlation, MetricsRequest};
pub use traces::AssessmentChanges;
pub use tracking::{LogBatch, Paged, Tracking};
pub use webhooks::{WebhookFields, WebhookSettings, Webhooks};
