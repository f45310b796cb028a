//! Which check each route needs, after MLflow 3.17.2's validator tables
//! (BEFORE_REQUEST_HANDLERS and friends in mlflow/server/auth). A route not listed here is
//! refused to everyone but admins, so a route added to the server later is closed until it
//! gets its rule.

use axum::http::Method;

use super::permissions::Action;

/// What a request must pass. Resource ids that come from the request's parameters are read
/// by the HTTP layer; ids in the path travel here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// No login (health checks, server-info).
    Public,
    /// Any logged-in user.
    Authenticated,
    /// Admins only (also every unknown route).
    AdminOnly,
    /// The user named by the `username` parameter, or an admin.
    SelfOrAdmin,
    /// grant/revoke: MANAGE on the resource named by `resource_type`/`resource_id`.
    ManageResource,
    /// `experiment_id` parameter.
    Experiment(Action),
    /// `experiment_name` parameter.
    ExperimentByName(Action),
    CreateExperiment,
    /// Any logged-in user; the answer keeps only readable experiments.
    FilterExperiments,
    /// `run_id` (or `run_uuid`) parameter: the run's experiment.
    Run(Action),
    /// `run_ids` parameter (or `run_id`), each readable.
    Runs,
    /// `experiment_id` parameter: update there, runs not denied.
    CreateRun,
    /// `experiment_ids` of the body: only the readable ones are searched.
    SearchRuns,
    /// `name` parameter.
    RegisteredModel(Action),
    CreateRegisteredModel,
    /// Any logged-in user; the answer keeps only readable models.
    FilterRegisteredModels,
    /// `name` parameter: a version of that model.
    ModelVersion(Action),
    CreateModelVersion,
    /// Any logged-in user; the answer keeps only versions of readable models.
    FilterModelVersions,
    /// A logged model id from the path.
    LoggedModel(String, Action),
    CreateLoggedModel,
    /// `experiment_ids` of the body, each readable.
    SearchLoggedModels,
    /// A trace id from the path, or the `request_id`/`trace_id` parameter when `None`.
    Trace(Option<String>, Action),
    /// `trace_ids` parameter, each readable.
    Traces,
    /// The trace's experiment from the body (v3 `trace.trace_info.trace_location`, v2
    /// `experiment_id`): update there.
    StartTrace,
    /// `experiment_ids` (or v3 `locations`) parameter, each readable.
    TracesInExperiments,
    /// `experiment_id` parameter: delete there.
    DeleteTraces,
    /// `trace_ids` and `run_id`: update on both.
    LinkTracesToRun,
    /// The `x-mlflow-experiment-id` header: update there.
    Otlp,
    /// `experiment_ids` parameter: at least one, each with the action (evaluation datasets).
    Experiments(Action),
    /// An evaluation dataset id from the path: the action on every experiment it belongs to;
    /// with `true`, also update on the `experiment_ids` parameter (linking more experiments).
    Dataset(String, Action, bool),
    /// `experiment_id` and `name` parameters: a scorer of that experiment (a `scorer` grant on
    /// `<experiment_id>/<quoted name>`, else the experiment's).
    Scorer(Action),
    /// `experiment_id` parameter: update there, the scorer not denied.
    RegisterScorer,
    /// An artifact path (`<experiment_id>/...`) from the URL or the `path` parameter.
    ArtifactProxy(Option<String>, Action),
}

/// The rule for a request, `path` without the static prefix.
pub fn rule(method: &Method, path: &str) -> Rule {
    use Action::*;
    use Rule::*;
    match path {
        "/health" | "/favicon.ico" => return Public,
        "/" | "/version" => return Authenticated,
        "/v1/traces" => return Otlp,
        "/api/2.0/experiments" => return FilterExperiments,
        // The UI's artifact downloads: READ on the run's experiment, or on the version's
        // registered model, as MLflow's validators for them.
        "/get-artifact" => return Run(Read),
        "/model-versions/get-artifact" => return ModelVersion(Read),
        // Any logged-in user; each protected root field is then checked on its own resource
        // (http/graphql/guard.rs), as MLflow's GraphQLAuthorizationMiddleware does.
        "/graphql" => return Authenticated,
        _ if path.starts_with("/static") => return Public,
        _ => {}
    }
    let Some(rest) = ["/api/2.0", "/ajax-api/2.0", "/api/3.0", "/ajax-api/3.0"]
        .iter()
        .find_map(|p| path.strip_prefix(p))
    else {
        return AdminOnly;
    };
    if let Some(artifact) = rest.strip_prefix("/mlflow-artifacts/artifacts") {
        let artifact = artifact.strip_prefix('/').filter(|a| !a.is_empty());
        return ArtifactProxy(
            artifact.map(str::to_string),
            match *method {
                Method::GET => Read,
                Method::PUT | Method::POST => Update,
                _ => Manage,
            },
        );
    }
    let Some(m) = rest.strip_prefix("/mlflow/") else {
        return AdminOnly;
    };
    let get = *method == Method::GET;
    let by_method = |read, write| if get { read } else { write };
    match m {
        "server-info" => Public,
        "users/current" | "users/current/permissions" => Authenticated,
        "users/list" => Authenticated,
        "users/get" | "users/update-password" | "users/permissions/list" => SelfOrAdmin,
        "users/permissions/get" => SelfOrAdmin,
        "users/permissions/grant" | "users/permissions/revoke" => ManageResource,
        "users/create" | "users/update-admin" | "users/delete" => AdminOnly,
        "experiments/create" => CreateExperiment,
        "experiments/get" => Experiment(Read),
        "experiments/get-by-name" => ExperimentByName(Read),
        "experiments/search" => FilterExperiments,
        "experiments/update"
        | "experiments/set-experiment-tag"
        | "experiments/delete-experiment-tag" => Experiment(Update),
        "experiments/delete" | "experiments/restore" => Experiment(Delete),
        "runs/create" | "runs/create-promptlab-run" => CreateRun,
        "upload-artifact" => Run(Update),
        "runs/get" | "metrics/get-history" | "artifacts/list" => Run(Read),
        "runs/delete" | "runs/restore" => Run(Delete),
        "runs/update" | "runs/log-metric" | "runs/log-parameter" | "runs/log-batch"
        | "runs/log-inputs" | "runs/log-model" | "runs/outputs" | "runs/set-tag"
        | "runs/delete-tag" => Run(Update),
        "runs/search" => SearchRuns,
        "metrics/get-history-bulk" | "metrics/get-history-bulk-interval" => Runs,
        "registered-models/create" => CreateRegisteredModel,
        "registered-models/get" => RegisteredModel(Read),
        "registered-models/search" => FilterRegisteredModels,
        "registered-models/rename"
        | "registered-models/update"
        | "registered-models/set-tag"
        | "registered-models/delete-tag" => RegisteredModel(Update),
        "registered-models/delete" => RegisteredModel(Delete),
        "registered-models/get-latest-versions" => ModelVersion(Read),
        "registered-models/alias" => match *method {
            Method::GET => ModelVersion(Read),
            Method::DELETE => ModelVersion(Delete),
            _ => ModelVersion(Update),
        },
        "model-versions/create" => CreateModelVersion,
        "model-versions/search" => FilterModelVersions,
        "model-versions/get" | "model-versions/get-download-uri" => ModelVersion(Read),
        "model-versions/update" | "model-versions/transition-stage" | "model-versions/set-tag" => {
            ModelVersion(Update)
        }
        "model-versions/delete" | "model-versions/delete-tag" => ModelVersion(Delete),
        "logged-models" => CreateLoggedModel,
        "logged-models/search" => SearchLoggedModels,
        "traces" => by_method(TracesInExperiments, StartTrace),
        "traces/search" | "traces/metrics" | "traces/calculate-filter-correlation" => {
            TracesInExperiments
        }
        // Issues by id are not resolved to their experiment yet: admins only (the default).
        "issues" => Experiment(Update),
        "issues/search" => Experiment(Read),
        "traces/get" => Trace(None, Read),
        "traces/batchGet" | "traces/batchGetInfos" => Traces,
        "traces/delete-traces" => DeleteTraces,
        "traces/link-to-run" => LinkTracesToRun,
        "get-trace-artifact" => Trace(None, Read),
        "datasets/create" => Experiments(Update),
        "scorers/register" => RegisterScorer,
        "scorers/list" => Experiment(Read),
        "scorers/get" | "scorers/versions" => Scorer(Read),
        "scorers/delete" => Scorer(Delete),
        "datasets/search" | "experiments/search-datasets" => Experiments(Read),
        _ => parameterized(method, m),
    }
}

/// Routes with an id in the path.
fn parameterized(method: &Method, m: &str) -> Rule {
    use Action::*;
    let segments: Vec<&str> = m.split('/').collect();
    let write = |delete: bool| if delete { Delete } else { Update };
    let is_delete = *method == Method::DELETE;
    match segments.as_slice() {
        ["logged-models", id] => Rule::LoggedModel(
            id.to_string(),
            match *method {
                Method::GET => Read,
                Method::DELETE => Delete,
                _ => Update,
            },
        ),
        ["logged-models", id, "tags"] | ["logged-models", id, "params"] => {
            Rule::LoggedModel(id.to_string(), Update)
        }
        ["logged-models", id, "tags", _] => Rule::LoggedModel(id.to_string(), Delete),
        ["logged-models", id, "artifacts", ..] => Rule::LoggedModel(id.to_string(), Read),
        ["traces", "link-prompts"] => Rule::Trace(None, Update),
        ["datasets", id] => {
            Rule::Dataset(id.to_string(), if is_delete { Delete } else { Read }, false)
        }
        ["datasets", id, "experiment-ids"] => Rule::Dataset(id.to_string(), Read, false),
        ["datasets", id, "records"] if *method == Method::GET => {
            Rule::Dataset(id.to_string(), Read, false)
        }
        ["datasets", id, "records"] | ["datasets", id, "tags", ..] => {
            Rule::Dataset(id.to_string(), Update, false)
        }
        ["datasets", id, "add-experiments"] => Rule::Dataset(id.to_string(), Update, true),
        ["datasets", id, "remove-experiments"] => Rule::Dataset(id.to_string(), Update, false),
        ["traces", id] | ["traces", id, "info"] => Rule::Trace(
            Some(id.to_string()),
            if *method == Method::GET { Read } else { Update },
        ),
        ["traces", id, "tags"] => Rule::Trace(Some(id.to_string()), Update),
        ["traces", id, "assessments"] => Rule::Trace(Some(id.to_string()), Update),
        ["traces", id, "assessments", _] => Rule::Trace(
            Some(id.to_string()),
            if *method == Method::GET {
                Read
            } else {
                write(is_delete)
            },
        ),
        _ => Rule::AdminOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_mlflows_checks() {
        let r = |m: Method, p: &str| rule(&m, p);
        assert_eq!(r(Method::GET, "/health"), Rule::Public);
        assert_eq!(r(Method::GET, "/api/3.0/mlflow/server-info"), Rule::Public);
        assert_eq!(
            r(Method::POST, "/ajax-api/2.0/mlflow/experiments/update"),
            Rule::Experiment(Action::Update)
        );
        assert_eq!(
            r(Method::POST, "/api/2.0/mlflow/runs/log-batch"),
            Rule::Run(Action::Update)
        );
        assert_eq!(
            r(Method::DELETE, "/api/2.0/mlflow/logged-models/m-1/tags/k"),
            Rule::LoggedModel("m-1".into(), Action::Delete)
        );
        assert_eq!(
            r(Method::GET, "/api/3.0/mlflow/traces/tr-1"),
            Rule::Trace(Some("tr-1".into()), Action::Read)
        );
        assert_eq!(
            r(
                Method::PUT,
                "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/x"
            ),
            Rule::ArtifactProxy(Some("1/abc/artifacts/x".into()), Action::Update)
        );
        assert_eq!(
            r(Method::GET, "/api/2.0/mlflow-artifacts/artifacts"),
            Rule::ArtifactProxy(None, Action::Read)
        );
        assert_eq!(
            r(Method::POST, "/ajax-api/2.0/mlflow/upload-artifact"),
            Rule::Run(Action::Update)
        );
        assert_eq!(r(Method::POST, "/graphql"), Rule::Authenticated);
        // Unknown routes are for admins only.
        assert_eq!(r(Method::GET, "/get-artifact"), Rule::Run(Action::Read));
        assert_eq!(
            r(Method::GET, "/model-versions/get-artifact"),
            Rule::ModelVersion(Action::Read)
        );
        assert_eq!(
            r(
                Method::POST,
                "/ajax-api/2.0/mlflow/experiments/search-datasets"
            ),
            Rule::Experiments(Action::Read)
        );
        assert_eq!(r(Method::GET, "/api/2.0/mlflow/new-thing"), Rule::AdminOnly);
        assert_eq!(r(Method::GET, "/static-files/x.js"), Rule::Public);
        assert_eq!(r(Method::GET, "/ui-extra"), Rule::AdminOnly);
    }
}
