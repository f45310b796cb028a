//! Basic auth inside `/graphql`, as MLflow's GraphQLAuthorizationMiddleware: any logged-in
//! user may query, and each protected root field is answered only for what the caller may
//! read. A denied field is `null` without an error (MLflow's answer); a search keeps only
//! the readable experiments, and model versions (searched, or a run's) only the readable
//! models' ones.
//! Admins, and servers without `--app-name basic-auth`, are never checked.

use std::collections::HashMap;

use async_graphql::Context;
use serde_json::{json, Value};

use super::types::ModelVersion;
use crate::auth::permissions::Action;
use crate::auth::rules::Rule;
use crate::auth::store::User;
use crate::http::auth_resolve::{requirements, Params};
use crate::http::AppState;

/// The logged-in caller of this request (`None` without basic auth).
pub struct Caller(pub Option<User>);

/// The non-admin caller to check, if any.
fn checked_user<'a>(ctx: &'a Context<'_>) -> Option<&'a User> {
    let app = ctx.data::<AppState>().ok()?;
    app.auth.as_ref()?;
    ctx.data::<Caller>()
        .ok()?
        .0
        .as_ref()
        .filter(|user| !user.is_admin)
}

/// Whether the caller passes `rule` with these parameters; an unknown resource or a failing
/// lookup denies (MLflow answers null then too).
async fn passes(ctx: &Context<'_>, user: &User, rule: Rule, params: Value) -> bool {
    let Ok(app) = ctx.data::<AppState>() else {
        return false;
    };
    let Some(auth) = app.auth.as_ref() else {
        return true;
    };
    match requirements(app, &rule, &Params(params), None).await {
        Ok(Some(needed)) => auth.allows(user, &needed).await.unwrap_or(false),
        _ => false,
    }
}

/// READ on one experiment (`mlflowGetExperiment`).
pub async fn may_read_experiment(ctx: &Context<'_>, experiment_id: Option<&str>) -> bool {
    match (checked_user(ctx), experiment_id) {
        (None, _) | (_, None) => true,
        (Some(user), Some(id)) => {
            passes(
                ctx,
                user,
                Rule::Experiment(Action::Read),
                json!({ "experiment_id": id }),
            )
            .await
        }
    }
}

/// READ on every run (`mlflowGetRun`, `mlflowListArtifacts`,
/// `mlflowGetMetricHistoryBulkInterval`).
pub async fn may_read_runs(ctx: &Context<'_>, run_ids: &[&str]) -> bool {
    let Some(user) = checked_user(ctx) else {
        return true;
    };
    for id in run_ids {
        if !passes(ctx, user, Rule::Run(Action::Read), json!({ "run_id": id })).await {
            return false;
        }
    }
    true
}

/// Narrows a search's `experiment_ids` to those the caller may read; false when none of
/// those asked for is (the field is then null). An empty list is left to the search's own
/// validation.
pub async fn restrict_to_readable(
    ctx: &Context<'_>,
    ids: &mut Option<Vec<Option<String>>>,
) -> bool {
    let Some(user) = checked_user(ctx) else {
        return true;
    };
    let asked: Vec<String> = ids.iter().flatten().flatten().cloned().collect();
    if asked.is_empty() {
        return true;
    }
    let mut readable = Vec::new();
    for id in asked {
        let params = json!({ "experiment_id": id });
        if passes(ctx, user, Rule::Experiment(Action::Read), params).await {
            readable.push(Some(id));
        }
    }
    let any = !readable.is_empty();
    *ids = Some(readable);
    any
}

/// The versions whose registered model (or prompt) the caller may read.
pub async fn readable_versions(
    ctx: &Context<'_>,
    versions: Vec<ModelVersion>,
) -> Vec<ModelVersion> {
    let Some(user) = checked_user(ctx) else {
        return versions;
    };
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    let mut kept = Vec::with_capacity(versions.len());
    for version in versions {
        let name = version.name.clone().unwrap_or_default();
        let readable = match verdicts.get(&name) {
            Some(known) => *known,
            None => {
                let rule = Rule::RegisteredModel(Action::Read);
                let verdict = passes(ctx, user, rule, json!({ "name": name })).await;
                verdicts.insert(name, verdict);
                verdict
            }
        };
        if readable {
            kept.push(version);
        }
    }
    kept
}
