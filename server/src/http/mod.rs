//! The HTTP layer: routes under `/api/2.0`, `/api/3.0` (and their `/ajax-api` twins) and
//! OTLP's `/v1/traces`, request decoding,
//! error mapping, request logging and graceful shutdown.

mod artifacts;
mod assessments;
pub mod auth;
mod auth_api;
mod auth_resolve;
mod datasets;
mod error;
mod experiments;
mod gateway;
mod graphql;
mod infra;
mod issues;
mod logged_models;
mod otlp;
mod promptlab;
mod registry;
mod reply;
pub mod request;
mod runs;
mod scorers;
pub mod security;
pub mod tls;
mod trace_metrics;
mod traces;
mod ui;
mod ui_api;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use axum::serve::ListenerExt;
use axum::Router;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;

use crate::config::ServerConfig;
use crate::service::Tracking;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub tracking: Tracking,
    /// Webhooks of the registry, and their deliveries.
    pub webhooks: crate::service::Webhooks,
    /// The proxied artifact root; `None` with `--no-serve-artifacts`.
    pub artifacts: Option<crate::artifacts::ArtifactRepo>,
    /// Every store this server reads and writes run and model artifacts in.
    pub roots: crate::artifacts::ServedRoots,
    pub config: Arc<ServerConfig>,
    /// MLflow's web UI bundle, when one is installed.
    pub ui: Option<Arc<crate::ui::assets::Bundle>>,
    /// Users and permissions, with `--app-name basic-auth`.
    pub auth: Option<crate::auth::Auth>,
}

/// What handlers return.
pub type ApiResult = Result<Response, ApiError>;

/// The MLflow service routes, mounted under both API prefixes.
fn mlflow_routes() -> Router<AppState> {
    Router::new()
        .route("/mlflow/experiments/create", post(experiments::create))
        .route("/mlflow/experiments/get", get(experiments::get))
        .route(
            "/mlflow/experiments/get-by-name",
            get(experiments::get_by_name),
        )
        .route(
            "/mlflow/experiments/search",
            post(experiments::search).get(experiments::search),
        )
        .route("/mlflow/experiments/update", post(experiments::update))
        .route(
            "/mlflow/experiments/search-datasets",
            post(ui_api::search_datasets),
        )
        .route(
            "/mlflow/gateway-proxy",
            get(gateway::info::gateway_proxy).post(gateway::info::gateway_proxy),
        )
        .route("/mlflow/experiments/delete", post(experiments::delete))
        .route("/mlflow/experiments/restore", post(experiments::restore))
        .route(
            "/mlflow/experiments/set-experiment-tag",
            post(experiments::set_tag),
        )
        .route(
            "/mlflow/experiments/delete-experiment-tag",
            post(experiments::delete_tag),
        )
        .route("/mlflow/runs/create", post(runs::create))
        .route("/mlflow/runs/get", get(runs::get))
        .route("/mlflow/runs/update", post(runs::update))
        .route("/mlflow/runs/delete", post(runs::delete))
        .route("/mlflow/runs/restore", post(runs::restore))
        .route("/mlflow/runs/search", post(runs::search))
        .route("/mlflow/runs/log-metric", post(runs::log_metric))
        .route("/mlflow/runs/log-parameter", post(runs::log_param))
        .route("/mlflow/runs/log-batch", post(runs::log_batch))
        .route("/mlflow/runs/log-inputs", post(runs::log_inputs))
        .route("/mlflow/runs/log-model", post(runs::log_model))
        .route("/mlflow/runs/outputs", post(runs::log_outputs))
        .route("/mlflow/runs/set-tag", post(runs::set_tag))
        .route("/mlflow/runs/delete-tag", post(runs::delete_tag))
        .route("/mlflow/logged-models", post(logged_models::create))
        .route("/mlflow/logged-models/search", post(logged_models::search))
        .route(
            "/mlflow/logged-models/{model_id}",
            get(logged_models::get)
                .patch(logged_models::finalize)
                .delete(logged_models::delete),
        )
        .route(
            "/mlflow/logged-models/{model_id}/tags",
            patch(logged_models::set_tags),
        )
        .route(
            "/mlflow/logged-models/{model_id}/tags/{tag_key}",
            delete(logged_models::delete_tag),
        )
        .route(
            "/mlflow/logged-models/{model_id}/params",
            post(logged_models::log_params),
        )
        .route(
            "/mlflow/logged-models/{model_id}/artifacts/directories",
            get(logged_models::list_artifacts),
        )
        .merge(registry_routes())
        .merge(webhook_routes())
        .merge(trace_v2_routes())
        .route("/mlflow/metrics/get-history", get(runs::metric_history))
        .route(
            "/mlflow/metrics/get-history-bulk-interval",
            get(runs::metric_history_bulk_interval),
        )
        .route(
            "/mlflow/metrics/get-history-bulk",
            get(runs::metric_history_bulk),
        )
}

/// Routes MLflow serves under `/ajax-api/2.0` only (Flask routes of the UI, not part of
/// the REST API).
fn ajax_only_routes() -> Router<AppState> {
    Router::new()
        .route("/mlflow/upload-artifact", post(ui_api::upload_artifact))
        .route(
            "/mlflow/logged-models/{model_id}/artifacts/files",
            get(logged_models::artifact_file),
        )
        .route(
            "/mlflow/runs/create-promptlab-run",
            post(promptlab::create_run),
        )
}

/// The trace routes of `/api/2.0`: legacy trace infos, and the tag, delete and link calls
/// the 3.17.2 client still makes there.
fn trace_v2_routes() -> Router<AppState> {
    use traces as t;
    Router::new()
        .route("/mlflow/traces", post(t::start_v2).get(t::search_v2))
        .route("/mlflow/traces/{request_id}", patch(t::end_v2))
        .route("/mlflow/traces/{request_id}/info", get(t::get_info_v2))
        .route(
            "/mlflow/traces/{request_id}/tags",
            patch(t::set_tag).delete(t::delete_tag),
        )
        .route("/mlflow/traces/delete-traces", post(t::delete))
        .route("/mlflow/traces/link-to-run", post(t::link_to_run))
        .route("/mlflow/traces/link-prompts", post(t::link_prompts))
        .route("/mlflow/get-trace-artifact", get(t::trace_artifact))
}

/// The evaluation dataset routes of `/api/3.0`.
fn dataset_routes() -> Router<AppState> {
    use datasets as ds;
    Router::new()
        .route("/mlflow/datasets/create", post(ds::create))
        .route("/mlflow/datasets/search", post(ds::search).get(ds::search))
        .route(
            "/mlflow/datasets/{dataset_id}",
            get(ds::get).delete(ds::delete),
        )
        .route("/mlflow/datasets/{dataset_id}/tags", patch(ds::set_tags))
        .route(
            "/mlflow/datasets/{dataset_id}/tags/{key}",
            delete(ds::delete_tag),
        )
        .route(
            "/mlflow/datasets/{dataset_id}/records",
            post(ds::upsert_records)
                .get(ds::get_records)
                .delete(ds::delete_records),
        )
        .route(
            "/mlflow/datasets/{dataset_id}/experiment-ids",
            get(ds::experiment_ids),
        )
        .route(
            "/mlflow/datasets/{dataset_id}/add-experiments",
            post(ds::add_experiments),
        )
        .route(
            "/mlflow/datasets/{dataset_id}/remove-experiments",
            post(ds::remove_experiments),
        )
}

/// The registered-scorer routes of `/api/3.0`.
fn scorer_routes() -> Router<AppState> {
    Router::new()
        .route("/mlflow/scorers/register", post(scorers::register))
        .route("/mlflow/scorers/list", get(scorers::list))
        .route("/mlflow/scorers/versions", get(scorers::versions))
        .route("/mlflow/scorers/get", get(scorers::get))
        .route("/mlflow/scorers/delete", delete(scorers::delete))
        .route(
            "/mlflow/scorers/online-configs",
            get(scorers::online_configs),
        )
        .route(
            "/mlflow/scorers/online-config",
            axum::routing::put(scorers::upsert_online_config),
        )
}

/// The AI gateway's configuration routes of `/api/3.0`.
fn gateway_routes() -> Router<AppState> {
    use gateway as g;
    use gateway::endpoints as e;
    Router::new()
        .route("/mlflow/gateway/secrets/create", post(g::create_secret))
        .route("/mlflow/gateway/secrets/get", get(g::get_secret))
        .route("/mlflow/gateway/secrets/update", post(g::update_secret))
        .route("/mlflow/gateway/secrets/delete", delete(g::delete_secret))
        .route("/mlflow/gateway/secrets/list", get(g::list_secrets))
        .route(
            "/mlflow/gateway/secrets/config",
            get(g::info::secrets_config),
        )
        .route("/mlflow/gateway/endpoints/create", post(e::create))
        .route("/mlflow/gateway/endpoints/get", get(e::get))
        .route("/mlflow/gateway/endpoints/update", post(e::update))
        .route("/mlflow/gateway/endpoints/delete", delete(e::delete))
        .route("/mlflow/gateway/endpoints/list", get(e::list))
        .route("/mlflow/gateway/endpoints/models/attach", post(e::attach))
        .route("/mlflow/gateway/endpoints/models/detach", post(e::detach))
        .route(
            "/mlflow/gateway/endpoints/bindings/create",
            post(e::create_binding),
        )
        .route(
            "/mlflow/gateway/endpoints/bindings/delete",
            delete(e::delete_binding),
        )
        .route(
            "/mlflow/gateway/endpoints/bindings/list",
            get(e::list_bindings),
        )
        .route("/mlflow/gateway/endpoints/set-tag", post(e::set_tag))
        .route(
            "/mlflow/gateway/endpoints/delete-tag",
            delete(e::delete_tag),
        )
        .route(
            "/mlflow/gateway/model-definitions/create",
            post(g::create_model),
        )
        .route("/mlflow/gateway/model-definitions/get", get(g::get_model))
        .route(
            "/mlflow/gateway/model-definitions/list",
            get(g::list_models),
        )
        .route(
            "/mlflow/gateway/model-definitions/update",
            post(g::update_model),
        )
        .route(
            "/mlflow/gateway/model-definitions/delete",
            delete(g::delete_model),
        )
        .route(
            "/mlflow/gateway/supported-providers",
            get(g::info::providers),
        )
        .route("/mlflow/gateway/provider-config", get(g::info::config))
}

/// The GenAI issue routes of `/api/3.0`.
fn issue_routes() -> Router<AppState> {
    Router::new()
        .route("/mlflow/issues", post(issues::create))
        .route("/mlflow/issues/search", post(issues::search))
        .route(
            "/mlflow/issues/{issue_id}",
            get(issues::get).patch(issues::update),
        )
}

/// The MLflow 3 routes of `/api/3.0`: traces, assessments, datasets, scorers, server info.
fn v3_routes() -> Router<AppState> {
    use traces as t;
    Router::new()
        .merge(dataset_routes())
        .merge(scorer_routes())
        .merge(issue_routes())
        .merge(gateway_routes())
        .route("/mlflow/server-info", get(infra::server_info))
        .route(
            "/mlflow/ui-telemetry",
            get(ui_api::telemetry_config).post(ui_api::telemetry_records),
        )
        .route("/mlflow/assistant/config", get(ui_api::assistant_config))
        .route(
            "/mlflow/assistant/providers",
            get(ui_api::assistant_providers),
        )
        .route("/mlflow/traces/metrics", post(trace_metrics::query))
        .route(
            "/mlflow/traces/calculate-filter-correlation",
            post(trace_metrics::correlation),
        )
        .route("/mlflow/get-trace-artifact", get(t::trace_artifact))
        .route("/mlflow/traces", post(t::start_v3))
        .route("/mlflow/traces/get", get(t::get_trace))
        .route("/mlflow/traces/batchGet", get(t::batch_get))
        .route("/mlflow/traces/batchGetInfos", post(t::batch_get_infos))
        .route("/mlflow/traces/search", post(t::search_v3))
        .route("/mlflow/traces/delete-traces", post(t::delete))
        .route("/mlflow/traces/{trace_id}", get(t::get_info_v3))
        .route(
            "/mlflow/traces/{trace_id}/tags",
            patch(t::set_tag).delete(t::delete_tag),
        )
        .route(
            "/mlflow/traces/{trace_id}/assessments",
            post(assessments::create),
        )
        .route(
            "/mlflow/traces/{trace_id}/assessments/{assessment_id}",
            get(assessments::get)
                .patch(assessments::update)
                .delete(assessments::delete),
        )
}

/// The model-registry routes (`ModelRegistryService`).
fn registry_routes() -> Router<AppState> {
    use registry as r;
    Router::new()
        .route("/mlflow/registered-models/create", post(r::create_model))
        .route("/mlflow/registered-models/get", get(r::get_model))
        .route("/mlflow/registered-models/rename", post(r::rename_model))
        .route("/mlflow/registered-models/update", patch(r::update_model))
        .route("/mlflow/registered-models/delete", delete(r::delete_model))
        .route("/mlflow/registered-models/search", get(r::search_models))
        .route(
            "/mlflow/registered-models/get-latest-versions",
            post(r::latest_versions).get(r::latest_versions),
        )
        .route("/mlflow/registered-models/set-tag", post(r::set_model_tag))
        .route(
            "/mlflow/registered-models/delete-tag",
            delete(r::delete_model_tag),
        )
        .route(
            "/mlflow/registered-models/alias",
            post(r::set_alias)
                .delete(r::delete_alias)
                .get(r::get_by_alias),
        )
        .route("/mlflow/model-versions/create", post(r::create_version))
        .route("/mlflow/model-versions/get", get(r::get_version))
        .route("/mlflow/model-versions/update", patch(r::update_version))
        .route("/mlflow/model-versions/delete", delete(r::delete_version))
        .route("/mlflow/model-versions/search", get(r::search_versions))
        .route(
            "/mlflow/model-versions/transition-stage",
            post(r::transition_stage),
        )
        .route(
            "/mlflow/model-versions/get-download-uri",
            get(r::download_uri),
        )
        .route("/mlflow/model-versions/set-tag", post(r::set_version_tag))
        .route(
            "/mlflow/model-versions/delete-tag",
            delete(r::delete_version_tag),
        )
}

/// The webhook routes (`WebhookService`).
fn webhook_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/mlflow/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/mlflow/webhooks/{webhook_id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/mlflow/webhooks/{webhook_id}/test", post(webhooks::test))
}

/// The proxied artifact routes; uploads are streamed, so no body limit applies.
fn artifact_routes() -> Router<AppState> {
    Router::new()
        .route("/mlflow-artifacts/artifacts", get(artifacts::list))
        .route(
            "/mlflow-artifacts/artifacts/",
            get(artifacts::list).put(artifacts::missing_path),
        )
        .route(
            "/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::download)
                .put(artifacts::upload)
                .delete(artifacts::delete),
        )
        .layer(DefaultBodyLimit::disable())
}

/// Builds the whole application.
pub fn router(state: AppState) -> Router {
    let prefix = state.config.static_prefix.clone();
    let tracking = if state.config.artifacts_only {
        Router::new().fallback(|| async { artifacts::artifacts_only() })
    } else {
        mlflow_routes().route("/mlflow/artifacts/list", get(artifacts::list_run))
    };
    let v3 = if state.config.artifacts_only {
        Router::new()
            .route("/mlflow/server-info", get(infra::server_info))
            .fallback(|| async { artifacts::artifacts_only() })
    } else {
        v3_routes()
    };
    let ajax_only = if state.config.artifacts_only {
        Router::new()
    } else {
        ajax_only_routes()
    };
    let (users_v2, users_v3) = if state.auth.is_some() {
        (auth_api::routes_v2(), auth_api::routes_v3())
    } else {
        (Router::new(), Router::new())
    };
    let tracking = tracking.merge(users_v2);
    let v3 = v3.merge(users_v3);
    let api = Router::new()
        .route("/health", get(infra::health))
        .route("/version", get(infra::version))
        .route("/", get(ui::index))
        .route("/graphql", get(graphql::handle).post(graphql::handle))
        .route("/get-artifact", get(ui_api::run_artifact))
        .route(
            "/model-versions/get-artifact",
            get(ui_api::version_artifact),
        )
        .route("/static-files/{*path}", get(ui::static_file))
        .route("/api/2.0/experiments", get(experiments::list_array))
        .route("/v1/traces", post(otlp::export))
        .nest("/api/3.0", v3.clone())
        .nest("/ajax-api/3.0", v3)
        .nest("/api/2.0", artifact_routes().merge(tracking.clone()))
        .nest(
            "/ajax-api/2.0",
            artifact_routes().merge(ajax_only).merge(tracking),
        )
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found);
    let app = match prefix.as_deref() {
        // The UI's index.html loads `static-files/...` relative to itself: it must be
        // reachable as `PREFIX/` as in MLflow.
        Some(p) => Router::new()
            .route(&format!("{p}/"), get(ui::index))
            .nest(p, api)
            .fallback(error::not_found),
        None => api,
    };
    let security = Arc::new(state.config.security.clone());
    // Layers run outside-in from the last added: the security guards first, then auth.
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::layer,
    ))
    .layer(axum::middleware::from_fn_with_state(
        security,
        security::layer,
    ))
    .layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
    )
    .with_state(state)
}

/// Serves until SIGTERM or SIGINT; in-flight requests finish before it returns.
pub async fn serve(state: AppState, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(address = %local, scheme, "listening");
    tracing::info!("{}", state.config.security.summary());
    // The peer address is what the failed-login limit counts by.
    let app = router(state.clone());
    if let Some(files) = state.config.tls.clone() {
        let listener = tls::listen(listener, files)?;
        let app = app.into_make_service_with_connect_info::<auth::PeerAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        return Ok(());
    }
    // A streamed response goes out as headers then body in separate writes; with Nagle's
    // algorithm the body waits for the client's delayed ACK (40 ms) on keep-alive
    // connections, which capped small downloads at ~25 per second per connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
