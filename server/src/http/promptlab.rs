//! `POST /ajax-api/2.0/mlflow/runs/create-promptlab-run`: the UI's prompt-engineering run,
//! created, filled and finished in one call (rules in [`crate::domain::promptlab`]).
//!
//! As in MLflow, a failure after the run exists (writing its artifacts, say) does not fail
//! the request: the run ends FAILED and is returned, so the UI shows what happened.

use axum::extract::State;

use super::reply::{reply, Field};
use super::request::Message;
use super::{ApiResult, AppState};
use crate::artifacts::RelPath;
use crate::domain::promptlab::{run_tags, PromptlabRequest};
use crate::domain::time::python_now;
use crate::error::Result;
use crate::service::LogBatch;
use crate::store::RunUpdate;

pub async fn create_run(State(app): State<AppState>, msg: Message) -> ApiResult {
    let r = PromptlabRequest::parse(&msg.0)?;
    let mlflow_version = crate::MLFLOW_COMPAT_VERSION;
    let start_time = r.start_time.unwrap_or_else(now_ms);
    let run = app
        .tracking
        .create_run(
            Some(&r.experiment_id),
            Some(r.user_id.clone()),
            Some(start_time),
            r.run_name.clone(),
            r.tags.clone(),
        )
        .await?;
    let run_id = run.info.run_id.clone();
    let status = match fill(&app, &r, &run_id, &run.info.artifact_uri, mlflow_version).await {
        Ok(()) => "FINISHED",
        Err(err) => {
            tracing::warn!(run_id, error = %err.message, "promptlab run failed");
            "FAILED"
        }
    };
    app.tracking
        .update_run(
            &run_id,
            RunUpdate {
                status: Some(status.into()),
                end_time: Some(now_ms()),
                run_name: None,
            },
        )
        .await?;
    let run = app.tracking.get_run(&run_id).await?;
    reply(&Field("run", run))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Parameters, tags, the logged-model history entry, then the artifacts.
async fn fill(
    app: &AppState,
    r: &PromptlabRequest,
    run_id: &str,
    artifact_uri: &str,
    mlflow_version: &str,
) -> Result<()> {
    app.tracking
        .log_batch(
            run_id,
            LogBatch {
                metrics: Vec::new(),
                params: r.params(),
                tags: run_tags(),
            },
        )
        .await?;
    let created = python_now();
    app.tracking
        .log_model(run_id, &r.model_json(run_id, &created))
        .await?;
    let located = app.roots.locate(artifact_uri)?;
    let mut files = vec![("eval_results_table.json".to_string(), r.eval_results())];
    files.extend(
        r.model_files(run_id, &created, mlflow_version)
            .into_iter()
            .map(|(name, text)| (format!("model/{name}"), text)),
    );
    for (name, text) in files {
        let file = located.path.join(&RelPath::parse_file(&name)?);
        let chunk: std::result::Result<bytes::Bytes, std::convert::Infallible> =
            Ok(bytes::Bytes::from(text));
        located
            .repo
            .put(&file, futures::stream::iter([chunk]))
            .await?;
    }
    Ok(())
}
