//! `/health`, `/version` and `/api/3.0/mlflow/server-info`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn health() -> &'static str {
    "OK"
}

pub async fn version() -> &'static str {
    crate::MLFLOW_COMPAT_VERSION
}

/// Capabilities the client reads before artifact transfers. Multipart and presigned-only
/// stay off, which keeps the client on plain PUT/GET.
pub async fn server_info(State(app): State<super::AppState>) -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "artifact_serving_enabled": app.artifacts.is_some(),
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "model_artifact_presigned_downloads_supported": false,
        "artifacts_presigned_only": false,
        "features_enabled": { "gateway": false, "scheduled_issue_detection": false },
    }))
}
