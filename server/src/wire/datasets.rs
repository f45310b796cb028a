//! The JSON of evaluation datasets (the `Dataset` message of MLflow's datasets.proto) and of
//! their records, which travel as one JSON string of record dicts (`DatasetRecord.to_dict`).

use serde_json::{json, Map, Value};

use crate::domain::datasets::{Dataset, DatasetRecord};
use crate::domain::traces::pyjson::PyValue;

/// A dataset as the v3 dataset endpoints answer it; `tags` is a JSON object in a string.
pub fn dataset_json(d: &Dataset) -> Value {
    let mut m = Map::new();
    m.insert("dataset_id".into(), json!(d.dataset_id));
    m.insert("name".into(), json!(d.name));
    let tags = PyValue::Dict(
        d.tags
            .iter()
            .map(|(k, v)| (k.clone(), PyValue::Str(v.clone())))
            .collect(),
    );
    m.insert("tags".into(), json!(tags.dumps(true)));
    if let Some(s) = &d.schema {
        m.insert("schema".into(), json!(s));
    }
    if let Some(p) = &d.profile {
        m.insert("profile".into(), json!(p));
    }
    m.insert("digest".into(), json!(d.digest));
    m.insert("created_time".into(), json!(d.created_time));
    m.insert("last_update_time".into(), json!(d.last_update_time));
    if let Some(u) = &d.created_by {
        m.insert("created_by".into(), json!(u));
    }
    if let Some(u) = &d.last_updated_by {
        m.insert("last_updated_by".into(), json!(u));
    }
    if let Some(ids) = d.experiment_ids.as_ref().filter(|ids| !ids.is_empty()) {
        m.insert("experiment_ids".into(), json!(ids));
    }
    Value::Object(m)
}

fn record_dict(r: &DatasetRecord) -> PyValue {
    let mut m: Vec<(String, PyValue)> = vec![
        (
            "dataset_record_id".into(),
            PyValue::Str(r.dataset_record_id.clone()),
        ),
        ("dataset_id".into(), PyValue::Str(r.dataset_id.clone())),
        ("inputs".into(), r.inputs.clone()),
    ];
    let mut put = |key: &str, v: Option<PyValue>| {
        if let Some(v) = v {
            m.push((key.to_string(), v));
        }
    };
    put("expectations", r.expectations.clone());
    // A record without tags reads back with empty ones.
    put(
        "tags",
        Some(r.tags.clone().unwrap_or(PyValue::Dict(Vec::new()))),
    );
    let source = r.source.as_ref().map(|s| {
        let kind = s.get("source_type").cloned().unwrap_or(PyValue::Null);
        let data = match s.get("source_data") {
            None | Some(PyValue::Null) => PyValue::Dict(Vec::new()),
            Some(d) => d.clone(),
        };
        PyValue::Dict(vec![
            ("source_type".into(), kind),
            ("source_data".into(), data),
        ])
    });
    let source_type = r.source_type.clone().or_else(|| {
        source
            .as_ref()
            .and_then(|s| s.get("source_type"))
            .and_then(PyValue::as_str)
            .map(str::to_string)
    });
    let source_id = r.source_id.clone().or_else(|| {
        let s = source.as_ref()?;
        let key = if s.get("source_type").and_then(PyValue::as_str) == Some("TRACE") {
            "trace_id"
        } else {
            "source_id"
        };
        s.get("source_data")?.get(key)?.as_str().map(str::to_string)
    });
    put("source", source);
    put("source_id", source_id.map(PyValue::Str));
    put(
        "source_type",
        source_type.map(|t| {
            PyValue::Str(if t == "SOURCE_TYPE_UNSPECIFIED" {
                "UNSPECIFIED".into()
            } else {
                t
            })
        }),
    );
    put("created_time", Some(PyValue::Int(r.created_time.into())));
    put(
        "last_update_time",
        Some(PyValue::Int(r.last_update_time.into())),
    );
    put("created_by", r.created_by.clone().map(PyValue::Str));
    put(
        "last_updated_by",
        r.last_updated_by.clone().map(PyValue::Str),
    );
    put("outputs", r.outputs.clone());
    PyValue::Dict(m)
}

/// The `records` field of get-dataset-records: the records' dicts as one JSON string.
pub fn records_text(records: &[DatasetRecord]) -> String {
    PyValue::List(records.iter().map(record_dict).collect()).dumps(true)
}
