//! Decoding an `/invocations` body: MLflow's JSON formats (`dataframe_split`,
//! `dataframe_records`, `instances`, `inputs`, with optional `params`) and CSV. Tabular
//! input becomes a [`Frame`], which is checked against the signature here and batched with
//! other requests; anything else (tensors, nested inputs) goes to the model as it came.

use serde_json::{Map, Value};

use super::error::ScoringError;
use super::schema::Schema;

/// A data frame in row-major form, as `dataframe_split` carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// A decoded request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Tabular input, with the request's `params`.
    Frame { frame: Frame, params: Option<Value> },
    /// A JSON request to hand to the model as it is (tensors, nested data), with its
    /// parsed form for native runtimes.
    Json { body: String, parsed: Value },
    /// A CSV body.
    Csv { body: String },
}

const FORMATS: [&str; 4] = [
    "dataframe_split",
    "instances",
    "inputs",
    "dataframe_records",
];

const REQUIRED_INPUT_FORMAT: &str = "The input must be a JSON dictionary with exactly one of \
    the input fields {'dataframe_split', 'instances', 'inputs', 'dataframe_records'}";

pub const SCORING_PROTOCOL_CHANGE_INFO: &str = "IMPORTANT: The MLflow Model scoring protocol has \
    changed in MLflow version 2.0. If you are seeing this error, you are likely using an \
    outdated scoring request format. To resolve the error, either update your request format \
    or adjust your MLflow Model's requirements file to specify an older version of MLflow (for \
    example, change the 'mlflow' requirement specifier to 'mlflow==1.30.0'). If you are making \
    a request using the MLflow client (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your \
    MLflow client to a version >= 2.0 in order to use the new request format. For more \
    information about the updated MLflow Model scoring protocol in MLflow 2.0, see \
    https://mlflow.org/docs/latest/models.html#deploy-mlflow-models.";

/// Decodes a JSON body; `schema` is the signature's input schema, which decides whether
/// `instances`/`inputs` are tabular.
pub fn decode_json(body: &str, schema: Option<&Schema>) -> Result<Payload, ScoringError> {
    let parsed: Value = serde_json::from_str(body).map_err(|e| {
        ScoringError::invalid_input(format!(
            "Ensure that input is a valid JSON formatted string. Error: 'JSONDecodeError('{e}')'\n\
             Input: \n{body}\n"
        ))
    })?;
    let object = match &parsed {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(ScoringError::invalid_input(format!(
                "{REQUIRED_INPUT_FORMAT}. Received a list."
            )))
        }
        other => {
            return Err(ScoringError::invalid_input(format!(
                "{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{}.",
                py_type(other)
            )))
        }
    };
    let keys: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|k| FORMATS.contains(k))
        .collect();
    if keys.len() != 1 {
        let listed = keys
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ScoringError::bad_request(format!(
            "{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: [{listed}]. \
             {SCORING_PROTOCOL_CHANGE_INFO}"
        )));
    }
    let params = object.get("params").filter(|p| !p.is_null()).cloned();
    let data = &object[keys[0]];
    let frame = match keys[0] {
        "dataframe_split" => split_frame(data)?,
        "dataframe_records" => {
            let Value::Array(records) = data else {
                let got = if data.is_object() {
                    "dictionary".to_string()
                } else {
                    format!("type {}", py_type(data))
                };
                return Err(ScoringError::invalid_input(format!(
                    "Dataframe records format must be a list of records. Got {got}."
                )));
            };
            records_frame(records)
        }
        // Tensor-style formats are tabular only for a model with named columns.
        _ if schema.and_then(Schema::named_columns).is_some() => match data {
            Value::Array(records) => records_frame(records),
            Value::Object(columns) => columns_frame(columns),
            _ => None,
        },
        _ => None,
    };
    Ok(match frame {
        Some(frame) => Payload::Frame { frame, params },
        None => Payload::Json {
            body: body.to_string(),
            parsed,
        },
    })
}

/// `dataframe_split` as MLflow validates it; `None` when pandas should decide (no columns,
/// ragged rows).
fn split_frame(data: &Value) -> Result<Option<Frame>, ScoringError> {
    let Value::Object(split) = data else {
        let got = if data.is_array() {
            "list".to_string()
        } else {
            format!("type {}", py_type(data))
        };
        return Err(ScoringError::invalid_input(format!(
            "Dataframe split format must be a dictionary. Got {got}."
        )));
    };
    let extra = split
        .keys()
        .any(|k| !matches!(k.as_str(), "columns" | "data" | "index"));
    if !split.contains_key("data") || extra {
        let keys = split
            .keys()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ScoringError::invalid_input(format!(
            "Dataframe split format must have 'data' field and optionally 'columns' and \
             'index' fields. Got {{{keys}}}.'"
        )));
    }
    let (Some(Value::Array(columns)), Value::Array(rows)) = (split.get("columns"), &split["data"])
    else {
        return Ok(None);
    };
    let Some(columns) = columns
        .iter()
        .map(|c| c.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match row {
            Value::Array(cells) if cells.len() == columns.len() => out.push(cells.clone()),
            _ => return Ok(None),
        }
    }
    Ok(Some(Frame { columns, rows: out }))
}

/// Records (a list of objects) as a frame: columns in order of first appearance, absent
/// cells null, as pandas builds it.
fn records_frame(records: &[Value]) -> Option<Frame> {
    let mut columns: Vec<String> = Vec::new();
    for r in records {
        for k in r.as_object()?.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let rows = records
        .iter()
        .map(|r| {
            let r = r.as_object()?;
            Some(
                columns
                    .iter()
                    .map(|c| r.get(c).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect::<Option<Vec<_>>>()?;
    (!records.is_empty()).then_some(Frame { columns, rows })
}

/// `{"col": [values...]}` with equally long lists of scalars.
fn columns_frame(columns: &Map<String, Value>) -> Option<Frame> {
    let lists: Vec<&Vec<Value>> = columns
        .values()
        .map(Value::as_array)
        .collect::<Option<_>>()?;
    let n = lists.first()?.len();
    if lists
        .iter()
        .any(|l| l.len() != n || l.iter().any(|v| v.is_array() || v.is_object()))
    {
        return None;
    }
    Some(Frame {
        columns: columns.keys().cloned().collect(),
        rows: (0..n)
            .map(|i| lists.iter().map(|l| l[i].clone()).collect())
            .collect(),
    })
}

fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cols() -> Schema {
        Schema::parse(r#"[{"type": "double", "name": "a"}, {"type": "double", "name": "b"}]"#)
            .expect("schema")
    }

    fn frame_of(body: Value, schema: Option<&Schema>) -> Frame {
        match decode_json(&body.to_string(), schema) {
            Ok(Payload::Frame { frame, .. }) => frame,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn every_tabular_format_gives_the_same_frame() {
        let want = Frame {
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec![json!(1), json!(2)], vec![json!(3), json!(4)]],
        };
        let s = cols();
        for body in [
            json!({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}),
            json!({"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}),
            json!({"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}),
            json!({"inputs": {"a": [1, 3], "b": [2, 4]}}),
        ] {
            assert_eq!(frame_of(body, Some(&s)), want);
        }
        let ragged = frame_of(json!({"dataframe_records": [{"a": 1}, {"b": 2}]}), None);
        assert_eq!(
            ragged.rows,
            vec![vec![json!(1), json!(null)], vec![json!(null), json!(2)]]
        );
    }

    #[test]
    fn tensors_and_params_pass_through() {
        let body = json!({"inputs": [[1.0, 2.0]], "params": {"k": 1}}).to_string();
        assert!(matches!(decode_json(&body, None), Ok(Payload::Json { .. })));
        let body = json!({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}, "params": {"k": 1}});
        match decode_json(&body.to_string(), None) {
            Ok(Payload::Frame { params, .. }) => assert_eq!(params, Some(json!({"k": 1}))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_requests_get_mlflows_messages() {
        let msg = |b: &str| decode_json(b, None).expect_err(b).message;
        assert!(msg("nope").starts_with("Invalid input. Ensure that input is a valid JSON"));
        assert!(msg("[1, 2]").ends_with("Received a list."));
        assert!(msg(r#"{"foo": 1}"#).contains("Received dictionary with input fields: []."));
        assert!(msg(r#"{"inputs": 1, "instances": 2}"#)
            .contains("Received dictionary with input fields: ['inputs', 'instances']"));
        assert_eq!(
            msg(r#"{"dataframe_split": [1]}"#),
            "Invalid input. Dataframe split format must be a dictionary. Got list."
        );
        assert_eq!(
            msg(r#"{"dataframe_records": {"a": 1}}"#),
            "Invalid input. Dataframe records format must be a list of records. Got dictionary."
        );
        assert_eq!(decode_json("[]", None).expect_err("list").status, 400);
    }
}
