//! The GraphQL types of MLflow's schema that the web UI queries, with MLflow's type names
//! (the UI's queries name the input types). Output objects are read from the REST
//! handlers' JSON, so every field has exactly the REST value.

use async_graphql::{
    ComplexObject, Context, Enum, InputObject, InputValueError, InputValueResult, Scalar,
    ScalarType, SimpleObject, Value as GqlValue,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// MLflow's `LongString`: an int64 sent as a string so JavaScript keeps every digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongString(pub i64);

#[Scalar(name = "LongString")]
impl ScalarType for LongString {
    fn parse(value: GqlValue) -> InputValueResult<Self> {
        match &value {
            GqlValue::Number(n) => n
                .as_i64()
                .map(LongString)
                .ok_or_else(|| InputValueError::custom(format!("{n} is not a 64-bit integer"))),
            GqlValue::String(s) => s
                .parse()
                .map(LongString)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not an integer"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> GqlValue {
        GqlValue::String(self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for LongString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .map(LongString)
                .ok_or_else(|| serde::de::Error::custom("not an int64")),
            Value::String(s) => s.parse().map(LongString).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!("not an int64: {other}"))),
        }
    }
}

/// A metric value: NaN and infinities are not GraphQL floats, so they are null (as MLflow
/// answers NaN).
fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[graphql(name = "MlflowRunStatus")]
pub enum RunStatus {
    #[graphql(name = "RUNNING")]
    #[serde(rename = "RUNNING")]
    Running,
    #[graphql(name = "SCHEDULED")]
    #[serde(rename = "SCHEDULED")]
    Scheduled,
    #[graphql(name = "FINISHED")]
    #[serde(rename = "FINISHED")]
    Finished,
    #[graphql(name = "FAILED")]
    #[serde(rename = "FAILED")]
    Failed,
    #[graphql(name = "KILLED")]
    #[serde(rename = "KILLED")]
    Killed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[graphql(name = "MlflowModelVersionStatus")]
pub enum ModelVersionStatus {
    #[graphql(name = "PENDING_REGISTRATION")]
    #[serde(rename = "PENDING_REGISTRATION")]
    PendingRegistration,
    #[graphql(name = "FAILED_REGISTRATION")]
    #[serde(rename = "FAILED_REGISTRATION")]
    FailedRegistration,
    #[graphql(name = "READY")]
    #[serde(rename = "READY")]
    Ready,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[graphql(name = "MlflowViewType")]
pub enum ViewType {
    #[graphql(name = "ACTIVE_ONLY")]
    #[serde(rename = "ACTIVE_ONLY")]
    ActiveOnly,
    #[graphql(name = "DELETED_ONLY")]
    #[serde(rename = "DELETED_ONLY")]
    DeletedOnly,
    #[graphql(name = "ALL")]
    #[serde(rename = "ALL")]
    All,
}

/// MLflow's `ApiError` field of every response; OSS MLflow reports errors in the
/// response's `errors` list instead, so it stays null.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ApiError")]
pub struct ApiError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub help_url: Option<String>,
    pub trace_id: Option<String>,
}

macro_rules! key_value {
    ($rust:ident, $name:literal) => {
        #[derive(Debug, Clone, SimpleObject, Deserialize)]
        #[graphql(name = $name)]
        pub struct $rust {
            pub key: Option<String>,
            pub value: Option<String>,
        }
    };
}

key_value!(ExperimentTag, "MlflowExperimentTag");
key_value!(RunTag, "MlflowRunTag");
key_value!(Param, "MlflowParam");
key_value!(InputTag, "MlflowInputTag");
key_value!(ModelVersionTag, "MlflowModelVersionTag");

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowExperiment")]
pub struct Experiment {
    pub experiment_id: Option<String>,
    pub name: Option<String>,
    pub artifact_location: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub last_update_time: Option<LongString>,
    pub creation_time: Option<LongString>,
    #[serde(default)]
    pub tags: Vec<ExperimentTag>,
    #[serde(default)]
    pub effective_trace_archival_retention: String,
    pub workspace: Option<String>,
}

#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "MlflowGetExperimentResponse")]
pub struct GetExperimentResponse {
    pub experiment: Option<Experiment>,
    #[graphql(name = "apiError")]
    pub api_error: Option<ApiError>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowRunInfo")]
pub struct RunInfo {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub run_name: Option<String>,
    pub experiment_id: Option<String>,
    pub user_id: Option<String>,
    pub status: Option<RunStatus>,
    pub start_time: Option<LongString>,
    pub end_time: Option<LongString>,
    pub artifact_uri: Option<String>,
    pub lifecycle_stage: Option<String>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowMetricExtension")]
pub struct Metric {
    pub key: Option<String>,
    #[serde(default, deserialize_with = "finite")]
    pub value: Option<f64>,
    pub timestamp: Option<LongString>,
    pub step: Option<LongString>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
    pub model_id: Option<String>,
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowRunData")]
pub struct RunData {
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub params: Vec<Param>,
    #[serde(default)]
    pub tags: Vec<RunTag>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowDataset")]
pub struct Dataset {
    pub name: Option<String>,
    pub digest: Option<String>,
    pub source_type: Option<String>,
    pub source: Option<String>,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowDatasetInput")]
pub struct DatasetInput {
    #[serde(default)]
    pub tags: Vec<InputTag>,
    pub dataset: Option<Dataset>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowModelInput")]
pub struct ModelInput {
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, Default, SimpleObject, Deserialize)]
#[graphql(name = "MlflowRunInputs")]
pub struct RunInputs {
    #[serde(default)]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(default)]
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowModelOutput")]
pub struct ModelOutput {
    pub model_id: Option<String>,
    pub step: Option<LongString>,
}

#[derive(Debug, Clone, Default, SimpleObject, Deserialize)]
#[graphql(name = "MlflowRunOutputs")]
pub struct RunOutputs {
    #[serde(default)]
    pub model_outputs: Vec<ModelOutput>,
}

/// A run, with the experiment and model versions the UI reads alongside it.
#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowRunExtension", complex)]
pub struct Run {
    pub info: Option<RunInfo>,
    pub data: Option<RunData>,
    #[serde(default)]
    pub inputs: RunInputs,
    #[serde(default)]
    pub outputs: RunOutputs,
}

#[ComplexObject]
impl Run {
    async fn experiment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Experiment>> {
        let Some(id) = self.info.as_ref().and_then(|i| i.experiment_id.clone()) else {
            return Ok(None);
        };
        super::resolve::experiment(ctx, &id).await
    }

    async fn model_versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ModelVersion>> {
        let Some(id) = self.info.as_ref().and_then(|i| i.run_id.clone()) else {
            return Ok(Vec::new());
        };
        super::resolve::model_versions_of_run(ctx, &id).await
    }
}

#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "MlflowGetRunResponse")]
pub struct GetRunResponse {
    pub run: Option<Run>,
    #[graphql(name = "apiError")]
    pub api_error: Option<ApiError>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowSearchRunsResponse")]
pub struct SearchRunsResponse {
    #[serde(default)]
    pub runs: Vec<Run>,
    pub next_page_token: Option<String>,
    #[graphql(name = "apiError")]
    #[serde(skip)]
    pub api_error: Option<ApiError>,
}

/// A point of a sampled history, built from the store's metric (never read from JSON).
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "MlflowMetricWithRunId")]
pub struct MetricWithRunId {
    pub key: Option<String>,
    pub value: Option<f64>,
    pub timestamp: Option<LongString>,
    pub step: Option<LongString>,
    pub run_id: Option<String>,
}

impl From<crate::wire::Metric> for MetricWithRunId {
    /// The REST answer's values: NaN and infinities are null here too.
    fn from(m: crate::wire::Metric) -> Self {
        MetricWithRunId {
            key: Some(m.key),
            value: Some(m.value).filter(|v| v.is_finite()),
            timestamp: Some(LongString(m.timestamp)),
            step: Some(LongString(m.step)),
            run_id: m.run_id,
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "MlflowGetMetricHistoryBulkIntervalResponse")]
pub struct MetricHistoryResponse {
    pub metrics: super::points::MetricPoints,
    #[graphql(name = "apiError")]
    pub api_error: Option<ApiError>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowModelVersion")]
pub struct ModelVersion {
    pub name: Option<String>,
    pub version: Option<String>,
    pub creation_timestamp: Option<LongString>,
    pub last_updated_timestamp: Option<LongString>,
    pub user_id: Option<String>,
    pub current_stage: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub run_id: Option<String>,
    pub status: Option<ModelVersionStatus>,
    pub status_message: Option<String>,
    #[serde(default)]
    pub tags: Vec<ModelVersionTag>,
    pub run_link: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowSearchModelVersionsResponse")]
pub struct SearchModelVersionsResponse {
    #[serde(default)]
    pub model_versions: Vec<ModelVersion>,
    pub next_page_token: Option<String>,
    #[graphql(name = "apiError")]
    #[serde(skip)]
    pub api_error: Option<ApiError>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowFileInfo")]
pub struct FileInfo {
    pub path: Option<String>,
    pub is_dir: Option<bool>,
    /// Unset for directories in the REST answer; GraphQL shows the proto default, 0.
    #[serde(default = "zero")]
    pub file_size: Option<LongString>,
}

fn zero() -> Option<LongString> {
    Some(LongString(0))
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowDatasetSummary")]
pub struct DatasetSummary {
    pub experiment_id: Option<String>,
    pub name: Option<String>,
    pub digest: Option<String>,
    /// Unset without a context tag in the REST answer; GraphQL shows the proto default.
    #[serde(default = "empty")]
    pub context: Option<String>,
}

fn empty() -> Option<String> {
    Some(String::new())
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowSearchDatasetsResponse")]
pub struct SearchDatasetsResponse {
    #[serde(default)]
    pub dataset_summaries: Vec<DatasetSummary>,
    #[graphql(name = "apiError")]
    #[serde(skip)]
    pub api_error: Option<ApiError>,
}

#[derive(Debug, Clone, SimpleObject, Deserialize)]
#[graphql(name = "MlflowListArtifactsResponse")]
pub struct ListArtifactsResponse {
    pub root_uri: Option<String>,
    #[serde(default)]
    pub files: Vec<FileInfo>,
    pub next_page_token: Option<String>,
    #[graphql(name = "apiError")]
    #[serde(skip)]
    pub api_error: Option<ApiError>,
}

// ---- inputs: serialized back into the REST handlers' request JSON ----

#[derive(Debug, InputObject, Serialize)]
#[graphql(name = "MlflowGetExperimentInput")]
pub struct GetExperimentInput {
    pub experiment_id: Option<String>,
}

#[derive(Debug, InputObject, Serialize)]
#[graphql(name = "MlflowGetRunInput")]
pub struct GetRunInput {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
}

#[derive(Debug, InputObject, Serialize)]
#[graphql(name = "MlflowSearchRunsInput")]
pub struct SearchRunsInput {
    pub experiment_ids: Option<Vec<Option<String>>>,
    pub filter: Option<String>,
    pub run_view_type: Option<ViewType>,
    pub max_results: Option<i32>,
    pub order_by: Option<Vec<Option<String>>>,
    pub page_token: Option<String>,
}

#[derive(Debug, Default, InputObject, Serialize)]
#[graphql(name = "MlflowGetMetricHistoryBulkIntervalInput")]
pub struct MetricHistoryInput {
    pub run_ids: Option<Vec<Option<String>>>,
    pub metric_key: Option<String>,
    pub start_step: Option<i32>,
    pub end_step: Option<i32>,
    pub max_results: Option<i32>,
}

#[derive(Debug, InputObject, Serialize)]
#[graphql(name = "MlflowSearchModelVersionsInput")]
pub struct SearchModelVersionsInput {
    pub filter: Option<String>,
    #[serde(serialize_with = "long_as_number")]
    pub max_results: Option<LongString>,
    pub order_by: Option<Vec<Option<String>>>,
    pub page_token: Option<String>,
}

#[derive(Debug, InputObject, Serialize)]
#[graphql(name = "MlflowSearchDatasetsInput")]
pub struct SearchDatasetsInput {
    pub experiment_ids: Option<Vec<Option<String>>>,
}

#[derive(Debug, InputObject, Serialize)]
#[graphql(name = "MlflowListArtifactsInput")]
pub struct ListArtifactsInput {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub path: Option<String>,
    pub page_token: Option<String>,
}

fn long_as_number<S: serde::Serializer>(v: &Option<LongString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(LongString(n)) => s.serialize_i64(*n),
        None => s.serialize_none(),
    }
}
