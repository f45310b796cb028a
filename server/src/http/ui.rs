//! MLflow's web UI: `/` and `/static-files/*` from the installed bundle, or, without one,
//! a small page of our own that lists the experiments and says how to install the UI.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiResult, AppState};
use crate::ui::assets::{negotiate, Asset, Coding};

/// `GET /`: the bundle's index.html, or our fallback page.
pub async fn index(State(app): State<AppState>, headers: HeaderMap) -> ApiResult {
    match app.ui.as_ref().and_then(|b| b.get(crate::ui::INDEX)) {
        Some(asset) => Ok(send(asset, &headers).await),
        None => fallback_page(&app).await,
    }
}

/// `GET /static-files/{*path}`.
pub async fn static_file(
    State(app): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    match app.ui.as_ref().and_then(|b| b.get(&path)) {
        Some(asset) => send(asset, &headers).await,
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn send(asset: Arc<Asset>, headers: &HeaderMap) -> Response {
    let coding = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(negotiate);
    let body = match coding {
        Some(c) if asset.has_encoding(c) => asset.encoded(c).map(|b| (c, b)),
        // The first request for a large file compresses it; keep that off the async workers.
        Some(c) => {
            let a = asset.clone();
            tokio::task::spawn_blocking(move || a.encoded(c))
                .await
                .ok()
                .flatten()
                .map(|b| (c, b))
        }
        None => None,
    };
    let etag = match &body {
        Some((c, _)) => format!("{}-{}\"", asset.etag.trim_end_matches('"'), c.name()),
        None => asset.etag.clone(),
    };
    let mut out = HeaderMap::new();
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    set(header::ETAG, &etag);
    set(header::CACHE_CONTROL, asset.cache_control);
    set(header::VARY, "Accept-Encoding");
    set(header::CONTENT_TYPE, &asset.content_type);
    if not_modified(headers, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    match body {
        Some((coding, bytes)) => {
            set_encoding(&mut out, coding);
            (out, bytes).into_response()
        }
        None => (out, asset.body.clone()).into_response(),
    }
}

fn set_encoding(out: &mut HeaderMap, coding: Coding) {
    out.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.name()),
    );
}

/// If-None-Match names this file's content (in any of its encodings).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let base = etag.trim_matches('"');
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == base || t.strip_prefix(base).is_some_and(|r| r.starts_with('-')))
}

async fn fallback_page(app: &AppState) -> ApiResult {
    let experiments = app.tracking.list_active_experiments().await?;
    let prefix = app.config.static_prefix.clone().unwrap_or_default();
    let mut rows = String::new();
    for e in &experiments {
        rows.push_str(&format!(
            "<li>{} <small>(id {})</small></li>\n",
            escape(&e.name),
            escape(&e.experiment_id),
        ));
    }
    if rows.is_empty() {
        rows.push_str("<li>none yet</li>\n");
    }
    let version = crate::MLFLOW_COMPAT_VERSION;
    let default_dir = crate::ui::default_dir(version);
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>MLflow</title></head>\n\
         <body>\n<h1>MLflow tracking server</h1>\n\
         <p>The web UI is not installed. Install MLflow's own UI (the bundle of the mlflow {version} \
         wheel) and restart the server:</p>\n\
         <pre>mlflow ui install</pre>\n\
         <p>That downloads the wheel from PyPI into <code>{}</code>. Offline: \
         <code>mlflow ui install --from-wheel mlflow-{version}-py3-none-any.whl</code>, or \
         <code>mlflow ui install --from-dir .../site-packages/mlflow/server/js/build</code>. \
         A bundle elsewhere is served with <code>mlflow server --ui-dir DIR</code> \
         (<code>MLFLOW_UI_DIR</code>).</p>\n\
         <h2>Experiments</h2>\n<ul>\n{rows}</ul>\n\
         <p>The REST API is at <code>{prefix}/api/2.0/mlflow/</code>; health at \
         <a href=\"{prefix}/health\">{prefix}/health</a>.</p>\n</body></html>\n",
        escape(&default_dir.display().to_string()),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
