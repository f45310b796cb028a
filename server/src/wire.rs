//! MLflow's JSON wire format, in one place.
//!
//! MLflow serialises protobuf messages with quirks that the official client depends on:
//! snake_case names, unset fields omitted, int64 as JSON numbers, enums as names, and
//! non-finite doubles as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`. On input the
//! client (and curl users) may send int64 as strings, enums as names or numbers, and GET
//! requests carry everything as query strings. The entity structs and the lenient
//! deserialisers here absorb those differences so handlers and the store never see them.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub mod datasets;
pub mod registry;
pub mod time;
pub mod traces;

/// A `{key, value}` pair: params, run tags, experiment tags, dataset-input tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    #[serde(serialize_with = "serialize_double")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetInput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    pub dataset: Dataset,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInput {
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
}

impl RunOutputs {
    pub fn is_empty(&self) -> bool {
        self.model_outputs.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    #[serde(skip_serializing_if = "RunOutputs::is_empty")]
    pub outputs: RunOutputs,
}

/// `LoggedModelStatus` names by proto number.
pub const LOGGED_MODEL_STATUSES: [&str; 4] = [
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
];

/// The number of a `LoggedModelStatus` given as a name or a number.
pub fn logged_model_status_number(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => LOGGED_MODEL_STATUSES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| i as i64)
            .or_else(|| s.parse().ok().filter(|n| (0..4).contains(n))),
        Value::Number(n) => n.as_i64().filter(|n| (0..4).contains(n)),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub artifact_uri: String,
    pub status: String,
    pub model_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LoggedModelData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

/// Writes a double the way MLflow does: finite numbers as numbers, the rest as strings.
pub fn serialize_double<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        s.serialize_str("NaN")
    } else if value.is_infinite() {
        s.serialize_str(if *value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        s.serialize_f64(*value)
    }
}

fn type_error<E: de::Error>(expected: &str, got: &Value) -> E {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    E::custom(format!("expected {expected}, got {kind}"))
}

/// An optional int64 given as a JSON number or a decimal string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("expected an integer, got {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected an integer, got '{s}'"))),
        Some(other) => Err(type_error("an integer", &other)),
    }
}

/// An optional double given as a number or as `"NaN"`, `"Infinity"`, `"-Infinity"` or a
/// numeric string. Booleans are rejected, as MLflow does.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| de::Error::custom("expected a number")),
        Some(Value::String(s)) => parse_double(&s)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("expected a number, got '{s}'"))),
        Some(other) => Err(type_error("a number", &other)),
    }
}

/// Parses MLflow's textual doubles.
pub fn parse_double(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// An optional boolean given as `true`/`false` or their strings (any case).
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(de::Error::custom(format!(
                "expected true or false, got '{s}'"
            ))),
        },
        Some(other) => Err(type_error("a boolean", &other)),
    }
}

/// An optional string; null counts as absent, any other type is an error.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error("a string", &other)),
    }
}

/// A repeated string field; a single string (one query-string value) counts as a list of one.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(type_error("a list of strings", &other)),
            })
            .collect(),
        Some(other) => Err(type_error("a list of strings", &other)),
    }
}

/// A repeated message field; null counts as empty.
pub fn message_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Enum names and numbers for `ViewType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    /// The lifecycle stages a view includes.
    pub fn stages(self) -> &'static [&'static str] {
        match self {
            Self::ActiveOnly => &["active"],
            Self::DeletedOnly => &["deleted"],
            Self::All => &["active", "deleted"],
        }
    }
}

pub fn opt_view_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ViewType>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    let parsed = match &v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.to_ascii_uppercase().as_str() {
            "ACTIVE_ONLY" | "1" => ViewType::ActiveOnly,
            "DELETED_ONLY" | "2" => ViewType::DeletedOnly,
            "ALL" | "3" => ViewType::All,
            _ => return Err(de::Error::custom(format!("invalid view type '{s}'"))),
        },
        Some(Value::Number(n)) => match n.as_i64() {
            Some(1) => ViewType::ActiveOnly,
            Some(2) => ViewType::DeletedOnly,
            Some(3) => ViewType::All,
            _ => return Err(de::Error::custom(format!("invalid view type {n}"))),
        },
        Some(other) => return Err(type_error("a view type", other)),
    };
    Ok(Some(parsed))
}

/// `RunStatus` names in proto order (value = index + 1).
pub const RUN_STATUSES: [&str; 5] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

/// A run status given as a name or its proto number, normalised to the name.
pub fn opt_run_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match &v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let upper = s.to_ascii_uppercase();
            if let Some(name) = RUN_STATUSES.iter().find(|n| **n == upper) {
                return Ok(Some((*name).to_string()));
            }
            match upper.parse::<usize>() {
                Ok(i) if (1..=5).contains(&i) => Ok(Some(RUN_STATUSES[i - 1].to_string())),
                _ => Err(de::Error::custom(format!("invalid run status '{s}'"))),
            }
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(i) if (1..=5).contains(&i) => Ok(Some(RUN_STATUSES[i as usize - 1].to_string())),
            _ => Err(de::Error::custom(format!("invalid run status {n}"))),
        },
        Some(other) => Err(type_error("a run status", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_are_written_like_mlflow() {
        let m = Metric {
            key: "m".into(),
            value: f64::NAN,
            timestamp: 1,
            step: 0,
            dataset_name: None,
            dataset_digest: None,
            model_id: None,
            run_id: None,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"key":"m","value":"NaN","timestamp":1,"step":0}"#
        );
        let inf = Metric {
            value: f64::NEG_INFINITY,
            ..m.clone()
        };
        assert!(serde_json::to_string(&inf)
            .unwrap()
            .contains(r#""-Infinity""#));
        let one = Metric { value: 1.0, ..m };
        assert!(serde_json::to_string(&one)
            .unwrap()
            .contains(r#""value":1.0"#));
    }

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "opt_f64")]
        x: Option<f64>,
        #[serde(default, deserialize_with = "string_list")]
        l: Vec<String>,
        #[serde(default, deserialize_with = "opt_view_type")]
        v: Option<ViewType>,
        #[serde(default, deserialize_with = "opt_run_status")]
        s: Option<String>,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn lenient_inputs_are_accepted() {
        let p = probe(r#"{"n":"12","x":"NaN","l":"a","v":"all","s":3}"#).unwrap();
        assert_eq!(p.n, Some(12));
        assert!(p.x.unwrap().is_nan());
        assert_eq!(p.l, vec!["a"]);
        assert_eq!(p.v, Some(ViewType::All));
        assert_eq!(p.s.as_deref(), Some("FINISHED"));
        let p = probe(r#"{"n":5,"x":"-Infinity","l":["a","b"],"v":2,"s":"killed"}"#).unwrap();
        assert_eq!(p.x, Some(f64::NEG_INFINITY));
        assert_eq!(p.v, Some(ViewType::DeletedOnly));
        assert_eq!(p.s.as_deref(), Some("KILLED"));
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert!(probe(r#"{"n":"x"}"#).is_err());
        assert!(probe(r#"{"n":1.5}"#).is_err());
        assert!(probe(r#"{"x":true}"#).is_err());
        assert!(probe(r#"{"x":"abc"}"#).is_err());
        assert!(probe(r#"{"l":[1]}"#).is_err());
        assert!(probe(r#"{"v":"SOME"}"#).is_err());
        assert!(probe(r#"{"s":"DONE"}"#).is_err());
    }
}
