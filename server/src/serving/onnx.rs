//! Models with an `onnx` flavor, scored in this process with tract (feature `onnx`), the way
//! MLflow's onnx pyfunc feeds them: a data frame goes to a single-input model as one
//! `[rows, columns]` matrix (float64 narrowed to the input's float32) or column by column to
//! a model with several inputs, and comes back as one column per output; tensor requests
//! (`inputs`/`instances` as arrays or as `{input name: array}`) come back as
//! `{output name: array}`.

use std::path::Path;

use serde_json::{Map, Value};
use tract_onnx::prelude::*;

use super::input::{Frame, Payload};
use super::mlmodel::MlModel;
use super::pool::Answer;
use super::schema::Schema;
use super::{ScoringError, ServingError};

type Plan = TypedSimplePlan<TypedModel>;

/// A loaded, optimized ONNX graph.
pub struct OnnxModel {
    plan: Plan,
    inputs: Vec<(String, DatumType)>,
    outputs: Vec<String>,
    /// Column order for frames: the signature's, else the request's.
    columns: Option<Vec<String>>,
}

impl OnnxModel {
    /// Loads `data` (default `model.onnx`) named by the model's onnx flavor.
    pub fn load(model: &MlModel) -> Result<Self, ServingError> {
        let file = model
            .flavor("onnx")
            .and_then(|f| f.get("data"))
            .and_then(Value::as_str)
            .unwrap_or("model.onnx");
        let path = model.dir.join(file);
        Self::from_path(&path, model.signature.inputs.as_ref()).map_err(|e| {
            ServingError::Model(format!(
                "cannot load the ONNX model {}: {e}",
                path.display()
            ))
        })
    }

    fn from_path(path: &Path, schema: Option<&Schema>) -> TractResult<Self> {
        let typed = tract_onnx::onnx().model_for_path(path)?.into_optimized()?;
        let inputs = typed
            .input_outlets()?
            .iter()
            .map(|o| -> TractResult<(String, DatumType)> {
                Ok((
                    typed.node(o.node).name.clone(),
                    typed.outlet_fact(*o)?.datum_type,
                ))
            })
            .collect::<TractResult<Vec<_>>>()?;
        let outputs = typed
            .output_outlets()?
            .iter()
            .map(|o| {
                typed
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| typed.node(o.node).name.clone())
            })
            .collect();
        let columns = schema
            .and_then(Schema::named_columns)
            .map(|cols| cols.iter().filter_map(|c| c.name.clone()).collect());
        Ok(OnnxModel {
            plan: typed.into_runnable()?,
            inputs,
            outputs,
            columns,
        })
    }

    /// Scores one request (CPU-bound: call it off the async runtime).
    pub fn score(&self, payload: &Payload) -> Answer {
        let result = match payload {
            Payload::Frame { frame, .. } => self.score_frame(frame),
            Payload::Csv { body } => parse_csv(body).and_then(|f| self.score_frame(&f)),
            Payload::Json { parsed, .. } => self.score_tensors(parsed),
        };
        match result {
            Ok(predictions) => Answer {
                status: 200,
                content_type: "application/json".into(),
                body: serde_json::json!({ "predictions": predictions }).to_string(),
            },
            Err(e) => e.into(),
        }
    }

    fn score_frame(&self, frame: &Frame) -> Result<Value, ScoringError> {
        let n = frame.rows.len();
        let order: Vec<usize> = match &self.columns {
            Some(cols) => cols
                .iter()
                .map(|c| {
                    frame.columns.iter().position(|f| f == c).ok_or_else(|| {
                        ScoringError::schema(format!("Model is missing inputs ['{c}']."))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => (0..frame.columns.len()).collect(),
        };
        let column = |j: usize| -> Result<Vec<f64>, ScoringError> {
            frame
                .rows
                .iter()
                .map(|row| number(row.get(j).unwrap_or(&Value::Null), &frame.columns[j]))
                .collect()
        };
        let feeds = if self.inputs.len() == 1 {
            let mut values = Vec::with_capacity(n * order.len());
            let cols: Vec<Vec<f64>> = order.iter().map(|&j| column(j)).collect::<Result<_, _>>()?;
            for i in 0..n {
                values.extend(cols.iter().map(|c| c[i]));
            }
            vec![self.tensor(0, &[n, order.len()], values)?]
        } else {
            let mut feeds = Vec::new();
            for (k, (name, _)) in self.inputs.iter().enumerate() {
                let j = frame
                    .columns
                    .iter()
                    .position(|c| c == name)
                    .ok_or_else(|| {
                        ScoringError::schema(format!("Model is missing inputs ['{name}']."))
                    })?;
                feeds.push(self.tensor(k, &[n], column(j)?)?);
            }
            feeds
        };
        let outputs = self.run(feeds)?;
        // One column per output, flattened; one record per row.
        let flat: Vec<Vec<Value>> = outputs.iter().map(|(_, v)| flatten(v)).collect();
        let rows = flat.first().map_or(0, Vec::len);
        if flat.iter().any(|c| c.len() != rows) {
            return Err(ScoringError::internal(
                "the model's outputs have different lengths and do not form a table",
            ));
        }
        Ok(Value::Array(
            (0..rows)
                .map(|i| {
                    let mut rec = Map::new();
                    for ((name, _), col) in outputs.iter().zip(&flat) {
                        rec.insert(name.clone(), col[i].clone());
                    }
                    Value::Object(rec)
                })
                .collect(),
        ))
    }

    fn score_tensors(&self, parsed: &Value) -> Result<Value, ScoringError> {
        let data = parsed
            .get("inputs")
            .or_else(|| parsed.get("instances"))
            .ok_or_else(|| ScoringError::invalid_input("expected inputs or instances"))?;
        let feeds = match data {
            Value::Object(named) => self
                .inputs
                .iter()
                .enumerate()
                .map(|(k, (name, _))| {
                    let v = named.get(name).ok_or_else(|| {
                        ScoringError::schema(format!("Model is missing inputs ['{name}']."))
                    })?;
                    self.nested_tensor(k, v)
                })
                .collect::<Result<Vec<_>, _>>()?,
            other if self.inputs.len() == 1 => vec![self.nested_tensor(0, other)?],
            _ => {
                return Err(ScoringError::invalid_input(format!(
                    "This model has {} inputs: pass them by name, {{\"inputs\": {{{}}}}}",
                    self.inputs.len(),
                    self.inputs
                        .iter()
                        .map(|(n, _)| format!("\"{n}\": [...]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let outputs = self.run(feeds)?;
        Ok(Value::Object(outputs.into_iter().collect()))
    }

    /// A nested JSON array as the input tensor `k`.
    fn nested_tensor(&self, k: usize, v: &Value) -> Result<TValue, ScoringError> {
        let mut shape = Vec::new();
        let mut probe = v;
        while let Value::Array(items) = probe {
            shape.push(items.len());
            match items.first() {
                Some(first) => probe = first,
                None => break,
            }
        }
        let mut values = Vec::new();
        collect_numbers(v, &mut values)?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(ScoringError::invalid_input(
                "the tensor's nested lists are ragged (rows of different lengths)",
            ));
        }
        self.tensor(k, &shape, values)
    }

    /// Values as input `k`'s element type.
    fn tensor(&self, k: usize, shape: &[usize], values: Vec<f64>) -> Result<TValue, ScoringError> {
        let wide = Tensor::from_shape(shape, &values).map_err(internal)?;
        let dt = self.inputs[k].1;
        let t = if dt == f64::datum_type() {
            wide
        } else {
            wide.cast_to_dt(dt).map_err(internal)?.into_owned()
        };
        Ok(t.into_tvalue())
    }

    fn run(&self, feeds: Vec<TValue>) -> Result<Vec<(String, Value)>, ScoringError> {
        let results = self
            .plan
            .run(feeds.into_iter().collect())
            .map_err(|e| ScoringError::internal(format!("the ONNX model failed: {e}")))?;
        self.outputs
            .iter()
            .zip(results.iter())
            .map(|(name, t)| Ok((name.clone(), to_json(t)?)))
            .collect()
    }
}

fn internal(e: impl std::fmt::Display) -> ScoringError {
    ScoringError::internal(format!("the ONNX model failed: {e}"))
}

fn number(v: &Value, column: &str) -> Result<f64, ScoringError> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ScoringError::schema(format!(
            "Failed to convert column {column}: {v} is not a number"
        ))
    })
}

fn collect_numbers(v: &Value, out: &mut Vec<f64>) -> Result<(), ScoringError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| collect_numbers(i, out)),
        other => {
            out.push(number(other, "input")?);
            Ok(())
        }
    }
}

/// A tensor as nested JSON arrays: integers as integers, floats widened to f64 (as numpy's
/// float32 becomes a Python float), strings as strings.
fn to_json(t: &Tensor) -> Result<Value, ScoringError> {
    let flat: Vec<Value> = if t.datum_type().is_float() {
        let t = t.cast_to::<f64>().map_err(internal)?;
        let s = t.as_slice::<f64>().map_err(internal)?;
        s.iter().map(|&x| float(x)).collect()
    } else if t.datum_type() == String::datum_type() {
        let s = t.as_slice::<String>().map_err(internal)?;
        s.iter().map(|x| Value::String(x.clone())).collect()
    } else if t.datum_type() == bool::datum_type() {
        let s = t.as_slice::<bool>().map_err(internal)?;
        s.iter().map(|&x| Value::Bool(x)).collect()
    } else {
        let t = t.cast_to::<i64>().map_err(internal)?;
        let s = t.as_slice::<i64>().map_err(internal)?;
        s.iter().map(|&x| Value::from(x)).collect()
    };
    Ok(nest(&flat, t.shape()))
}

fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn nest(flat: &[Value], shape: &[usize]) -> Value {
    match shape {
        [] => flat.first().cloned().unwrap_or(Value::Null),
        [_] => Value::Array(flat.to_vec()),
        [_, rest @ ..] => {
            let stride: usize = rest.iter().product::<usize>().max(1);
            Value::Array(flat.chunks(stride).map(|c| nest(c, rest)).collect())
        }
    }
}

/// Flattens an output as MLflow's `np.asarray(p).reshape(-1)`.
fn flatten(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other.clone()],
    }
}

/// A CSV body (a header row, then values; double quotes for fields with commas) as a frame.
fn parse_csv(body: &str) -> Result<Frame, ScoringError> {
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .ok_or_else(|| ScoringError::invalid_input("the CSV body is empty"))?;
    let columns = split_csv_line(header);
    let rows = lines
        .map(|l| {
            split_csv_line(l)
                .into_iter()
                .map(Value::String)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    if rows.iter().any(|r| r.len() != columns.len()) {
        return Err(ScoringError::invalid_input(
            "every CSV row must have as many fields as the header",
        ));
    }
    Ok(Frame { columns, rows })
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(f) = fields.last_mut() {
                    f.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_nesting() {
        let f = parse_csv("a,\"b,c\"\n1,2\n3,4\n").expect("csv");
        assert_eq!(f.columns, vec!["a", "b,c"]);
        assert_eq!(f.rows.len(), 2);
        let flat: Vec<Value> = (0..6).map(Value::from).collect();
        assert_eq!(
            nest(&flat, &[2, 3]),
            serde_json::json!([[0, 1, 2], [3, 4, 5]])
        );
        assert_eq!(
            flatten(&serde_json::json!([[1], [2]])),
            vec![Value::from(1), Value::from(2)]
        );
    }
}
