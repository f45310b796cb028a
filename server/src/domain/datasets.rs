//! MLflow 3 evaluation datasets (`mlflow.genai.datasets`): a named set of records (inputs,
//! expectations, outputs, tags, source), deduplicated by their inputs, with a schema and a
//! profile that follow the records, and a digest that changes with every update.

use sha2::{Digest, Sha256};

use crate::domain::traces::pyjson::PyValue;
use crate::error::{MlflowError, Result};

/// Records come back in pages of at most this many.
pub const RECORDS_PAGE_MAX: i64 = 1000;
/// Records' `outputs` are kept wrapped under this key (so a scalar output stays JSON).
pub const WRAPPED_OUTPUT_KEY: &str = "mlflow_wrapped";
/// The `mlflow.user` tag names who created or last updated a dataset or record.
pub const USER_TAG: &str = "mlflow.user";

/// Source types of a record (`DatasetRecordSource.SourceType`).
pub const RECORD_SOURCE_TYPES: [&str; 5] = [
    "SOURCE_TYPE_UNSPECIFIED",
    "TRACE",
    "HUMAN",
    "DOCUMENT",
    "CODE",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub dataset_id: String,
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub schema: Option<String>,
    pub profile: Option<String>,
    pub digest: String,
    pub created_time: i64,
    pub last_update_time: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    /// `Some` when the caller asked for them (create, add/remove experiments).
    pub experiment_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRecord {
    pub dataset_record_id: String,
    pub dataset_id: String,
    pub inputs: PyValue,
    pub outputs: Option<PyValue>,
    pub expectations: Option<PyValue>,
    pub tags: Option<PyValue>,
    /// `{"source_type": ..., "source_data": {...}}`.
    pub source: Option<PyValue>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    pub created_time: i64,
    pub last_update_time: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
}

/// A new dataset id, `d-` and 32 hex digits.
pub fn new_dataset_id() -> String {
    format!("d-{}", uuid::Uuid::new_v4().simple())
}

/// A new record id, `dr-` and 32 hex digits.
pub fn new_record_id() -> String {
    format!("dr-{}", uuid::Uuid::new_v4().simple())
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of a dataset's state: its name and last update time.
pub fn digest(name: &str, last_update_time: i64) -> String {
    sha256_hex(&format!("{name}:{last_update_time}"))[..8].to_string()
}

/// Keys of every dict sorted, as `json.dumps(..., sort_keys=True)` writes them.
fn sorted(v: &PyValue) -> PyValue {
    match v {
        PyValue::Dict(entries) => {
            let mut e: Vec<(String, PyValue)> = entries
                .iter()
                .map(|(k, v)| (k.clone(), sorted(v)))
                .collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            PyValue::Dict(e)
        }
        PyValue::List(items) => PyValue::List(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The deduplication key of a record: SHA-256 of its inputs as sorted-key JSON.
pub fn input_hash(inputs: &PyValue) -> String {
    sha256_hex(&sorted(inputs).dumps(true))
}

fn field_type(v: &PyValue) -> &'static str {
    match v {
        PyValue::Null => "null",
        PyValue::Bool(_) => "boolean",
        PyValue::Int(_) => "integer",
        PyValue::Float(_) => "float",
        PyValue::Str(_) => "string",
        PyValue::List(_) => "array",
        PyValue::Dict(_) => "object",
    }
}

fn dict_mut<'a>(schema: &'a mut Vec<(String, PyValue)>, key: &str) -> &'a mut PyValue {
    if !schema.iter().any(|(k, _)| k == key) {
        schema.push((key.to_string(), PyValue::Dict(Vec::new())));
    }
    &mut schema
        .iter_mut()
        .find(|(k, _)| k == key)
        .expect("inserted above")
        .1
}

fn add_fields(target: &mut PyValue, values: &PyValue) {
    if let (PyValue::Dict(schema), PyValue::Dict(vals)) = (target, values) {
        for (k, v) in vals {
            if !schema.iter().any(|(key, _)| key == k) {
                schema.push((k.clone(), PyValue::Str(field_type(v).into())));
            }
        }
    }
}

/// The dataset schema after new records: each new input, output and expectation field gets
/// the type of its first value (MLflow's `_update_dataset_schema`).
pub fn update_schema(existing: Option<&str>, records: &[PyValue]) -> Option<String> {
    if records.is_empty() && existing.is_none() {
        return None;
    }
    let mut schema = match existing.and_then(PyValue::loads) {
        Some(PyValue::Dict(d)) => d,
        _ => vec![
            ("inputs".into(), PyValue::Dict(Vec::new())),
            ("outputs".into(), PyValue::Dict(Vec::new())),
            ("expectations".into(), PyValue::Dict(Vec::new())),
            ("version".into(), PyValue::Str("1.0".into())),
        ],
    };
    for r in records {
        if let Some(inputs) = r.get("inputs").filter(|v| v.truthy()) {
            add_fields(dict_mut(&mut schema, "inputs"), inputs);
        }
        match r.get("outputs") {
            None | Some(PyValue::Null) => {}
            Some(outputs @ PyValue::Dict(_)) => {
                add_fields(dict_mut(&mut schema, "outputs"), outputs)
            }
            Some(other) => {
                let slot = dict_mut(&mut schema, "outputs");
                if !slot.truthy() {
                    *slot = PyValue::Str(field_type(other).into());
                }
            }
        }
        if let Some(exp) = r.get("expectations").filter(|v| v.truthy()) {
            add_fields(dict_mut(&mut schema, "expectations"), exp);
        }
    }
    Some(PyValue::Dict(schema).dumps(true))
}

/// The profile after a change: the record count, or nothing for an empty dataset.
pub fn profile(num_records: i64) -> Option<String> {
    (num_records > 0).then(|| format!("{{\"num_records\": {num_records}}}"))
}

/// Merges `new` into `old` as MLflow merges dicts (`dict.update`).
pub fn merge_dicts(old: Option<&PyValue>, new: &PyValue) -> PyValue {
    let mut out = match old {
        Some(PyValue::Dict(d)) => d.clone(),
        _ => Vec::new(),
    };
    if let PyValue::Dict(entries) = new {
        for (k, v) in entries {
            match out.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
    }
    PyValue::Dict(out)
}

/// A record to upsert as the client sends it (`{"inputs": {...}, ...}`).
pub fn check_record(record: &PyValue) -> Result<()> {
    if !matches!(record, PyValue::Dict(_)) {
        return Err(MlflowError::invalid(
            "Each dataset record must be a JSON object",
        ));
    }
    match record.get("inputs") {
        None | Some(PyValue::Dict(_)) => Ok(()),
        Some(_) => Err(MlflowError::invalid(
            "A dataset record's 'inputs' must be an object",
        )),
    }
}

/// A tag value as MLflow keeps it: `str(value)`; `None` (JSON null) means "skip this tag".
pub fn tag_text(value: &PyValue) -> Option<String> {
    match value {
        PyValue::Null => None,
        PyValue::Str(s) => Some(s.clone()),
        PyValue::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        PyValue::Int(i) => Some(i.to_string()),
        PyValue::Float(f) => Some(crate::domain::traces::pyjson::py_float(*f)),
        other => Some(other.dumps(false)),
    }
}

/// A dataset's tags from the JSON object the client sends (`{"k": "v"}`), nulls skipped.
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>> {
    match PyValue::loads(text) {
        Some(PyValue::Dict(entries)) => Ok(entries
            .iter()
            .filter_map(|(k, v)| tag_text(v).map(|t| (k.clone(), t)))
            .collect()),
        _ => Err(MlflowError::invalid(format!(
            "Invalid dataset tags '{text}': expected a JSON object"
        ))),
    }
}

/// The records of an upsert from the JSON array the client sends, each checked.
pub fn parse_records(text: &str) -> Result<Vec<PyValue>> {
    match PyValue::loads(text) {
        Some(PyValue::List(items)) => {
            items.iter().try_for_each(check_record)?;
            Ok(items)
        }
        _ => Err(MlflowError::invalid(
            "Invalid dataset records: expected a JSON array of objects",
        )),
    }
}

/// The stored source of a record (`{"source_type": ..., "source_data": {...}}`) with its
/// type and id (the trace id for traces, `source_id` of the data otherwise).
pub fn parse_source(raw: &PyValue) -> Result<(PyValue, String, Option<String>)> {
    let PyValue::Dict(entries) = raw else {
        return Err(MlflowError::invalid(
            "A dataset record's 'source' must be an object",
        ));
    };
    if let Some((k, _)) = entries
        .iter()
        .find(|(k, _)| k != "source_type" && k != "source_data")
    {
        return Err(MlflowError::invalid(format!(
            "Invalid key '{k}' in a dataset record's source: expected source_type and source_data"
        )));
    }
    let given = raw
        .get("source_type")
        .and_then(PyValue::as_str)
        .ok_or_else(|| MlflowError::invalid("A dataset record's source needs a 'source_type'"))?;
    let upper = given.to_ascii_uppercase();
    let valid = ["UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE"];
    if !valid.contains(&upper.as_str()) {
        return Err(MlflowError::invalid(format!(
            "Invalid dataset record source type: {upper}. Valid source types: {valid:?}"
        )));
    }
    let data = match raw.get("source_data") {
        None | Some(PyValue::Null) => PyValue::Dict(Vec::new()),
        Some(d @ PyValue::Dict(_)) => d.clone(),
        Some(_) => {
            return Err(MlflowError::invalid(
                "A dataset record's 'source_data' must be an object",
            ))
        }
    };
    let id_key = if upper == "TRACE" {
        "trace_id"
    } else {
        "source_id"
    };
    let id = match data.get(id_key) {
        None | Some(PyValue::Null) => None,
        Some(PyValue::Str(s)) => Some(s.clone()),
        Some(other) => Some(other.dumps(true)),
    };
    let stored = PyValue::Dict(vec![
        ("source_type".into(), PyValue::Str(upper.clone())),
        ("source_data".into(), data),
    ]);
    Ok((stored, upper, id))
}

/// The `mlflow.user` tag of a record's tags, if any.
pub fn record_user(tags: Option<&PyValue>) -> Option<String> {
    tags.and_then(|t| t.get(USER_TAG))
        .and_then(PyValue::as_str)
        .map(str::to_string)
}

/// A new record from what the client sent (MLflow's defaults: outputs `{}` when absent).
pub fn new_record(dataset_id: &str, raw: &PyValue, now: i64) -> Result<DatasetRecord> {
    let tags = raw
        .get("tags")
        .filter(|t| !matches!(t, PyValue::Null))
        .cloned();
    let user = tags
        .as_ref()
        .filter(|t| t.truthy())
        .and_then(|t| record_user(Some(t)));
    let (source, source_type, source_id) = match raw.get("source").filter(|s| s.truthy()) {
        Some(s) => {
            let (stored, kind, id) = parse_source(s)?;
            (Some(stored), Some(kind), id)
        }
        None => (None, None, None),
    };
    let outputs = match raw.get("outputs") {
        None => Some(PyValue::Dict(Vec::new())),
        Some(PyValue::Null) => None,
        Some(v) => Some(v.clone()),
    };
    Ok(DatasetRecord {
        dataset_record_id: new_record_id(),
        dataset_id: dataset_id.to_string(),
        inputs: raw
            .get("inputs")
            .cloned()
            .unwrap_or(PyValue::Dict(Vec::new())),
        outputs,
        expectations: raw
            .get("expectations")
            .filter(|e| !matches!(e, PyValue::Null))
            .cloned(),
        tags,
        source,
        source_id,
        source_type,
        created_time: now,
        last_update_time: now,
        created_by: user.clone(),
        last_updated_by: user,
    })
}

/// Merges a re-sent record into the stored one: outputs replaced when given, expectations
/// and tags updated key by key, the creator kept.
pub fn merge_record(existing: &mut DatasetRecord, raw: &PyValue, now: i64) {
    if let Some(outputs) = raw.get("outputs") {
        existing.outputs = (!matches!(outputs, PyValue::Null)).then(|| outputs.clone());
    }
    if let Some(exp) = raw.get("expectations").filter(|e| e.truthy()) {
        existing.expectations = Some(merge_dicts(existing.expectations.as_ref(), exp));
    }
    let new_tags = raw.get("tags").filter(|t| t.truthy());
    if let Some(tags) = new_tags {
        existing.tags = Some(merge_dicts(existing.tags.as_ref(), tags));
    }
    existing.last_update_time = now;
    if let Some(user) = record_user(new_tags) {
        existing.last_updated_by = Some(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_hashes() {
        assert_eq!(digest("ds", 1700000000000).len(), 8);
        let a = PyValue::loads(r#"{"b": 1, "a": {"y": 2, "x": 1}}"#).unwrap();
        let b = PyValue::loads(r#"{"a": {"x": 1, "y": 2}, "b": 1}"#).unwrap();
        assert_eq!(input_hash(&a), input_hash(&b));
        // sha256 of '{"a": 1}'
        assert_eq!(
            input_hash(&PyValue::loads(r#"{"a": 1}"#).unwrap()),
            "f9d86028c6e0d64e225186f96acb69338b2c59764df79162107f5c4bb34d1310"
        );
    }

    #[test]
    fn schema_follows_records() {
        let r = PyValue::loads(
            r#"{"inputs": {"q": "x", "n": 1}, "expectations": {"ok": true}, "outputs": "y"}"#,
        )
        .unwrap();
        let s = update_schema(None, &[r]).unwrap();
        assert_eq!(
            s,
            r#"{"inputs": {"q": "string", "n": "integer"}, "outputs": "string", "expectations": {"ok": "boolean"}, "version": "1.0"}"#
        );
        assert_eq!(profile(3).as_deref(), Some(r#"{"num_records": 3}"#));
        assert!(profile(0).is_none());
    }
}
