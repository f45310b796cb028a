//! Models with an `onnx` flavor, scored in this process with tract (feature `onnx`), the way
//! MLflow's onnx pyfunc feeds them: a data frame goes to a single-input model as one
//! `[rows, columns]` matrix (float64 narrowed to the input's float32) or column by column to
//! a model with several inputs, and comes back as one column per output; tensor requests
//! (`inputs`/`instances` as arrays or as `{input name: array}`) come back as
//! `{output name: array}`.

use std::path::Path;

use serde_json::Value;
use tract_onnx::prelude::*;

use super::input::{Frame, Payload};
use super::mlmodel::MlModel;
use super::numeric::NumericFrame;
use super::plans::Plans;
use super::pool::Answer;
use super::predictions::Records;
use super::schema::Schema;
use super::{ScoringError, ServingError};

/// A loaded, optimized ONNX graph.
pub struct OnnxModel {
    plans: Plans,
    inputs: Vec<(String, DatumType)>,
    outputs: Vec<String>,
    /// How a frame's predictions are written: one key per output name.
    records: Records,
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
        let typed = tract_onnx::onnx()
            .model_for_path(path)?
            .into_typed()?
            .into_decluttered()?;
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
        let outputs: Vec<String> = typed
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
            plans: Plans::new(typed)?,
            inputs,
            records: Records::new(&outputs),
            outputs,
            columns,
        })
    }

    /// Scores one request (CPU-bound: call it off the async runtime).
    pub fn score(&self, payload: &Payload) -> Answer {
        let body = match payload {
            Payload::Frame { frame, .. } => self.score_frame(frame),
            Payload::Csv { body } => parse_csv(body).and_then(|f| self.score_frame(&f)),
            Payload::Json { parsed, .. } => self
                .score_tensors(parsed)
                .map(|p| serde_json::json!({ "predictions": p }).to_string()),
        };
        answer(body)
    }

    /// Scores a frame of numbers (the fast path): the same feeds and answer as
    /// [`OnnxModel::score`] gives the frame's generic form.
    pub fn score_numeric(&self, frame: &NumericFrame) -> Answer {
        answer(
            self.numeric_feeds(frame)
                .and_then(|f| self.predict_records(f)),
        )
    }

    fn score_frame(&self, frame: &Frame) -> Result<String, ScoringError> {
        let n = frame.rows.len();
        let order = self.order(&frame.columns)?;
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
            vec![self.tensor(0, &[n, order.len()], &values)?]
        } else {
            let mut feeds = Vec::new();
            for (k, (name, _)) in self.inputs.iter().enumerate() {
                let j = position(&frame.columns, name)?;
                feeds.push(self.tensor(k, &[n], &column(j)?)?);
            }
            feeds
        };
        self.predict_records(feeds)
    }

    fn numeric_feeds(&self, frame: &NumericFrame) -> Result<Vec<TValue>, ScoringError> {
        let (n, width) = (frame.rows, frame.columns.len());
        let order = self.order(&frame.columns)?;
        let column =
            |j: usize| -> Vec<f64> { (0..n).map(|i| frame.values[i * width + j]).collect() };
        if self.inputs.len() == 1 {
            let shape = [n, order.len()];
            // The request's own order is the model's: its matrix goes in as it is.
            if order.iter().copied().eq(0..width) {
                return Ok(vec![self.tensor(0, &shape, &frame.values)?]);
            }
            let values: Vec<f64> = (0..n)
                .flat_map(|i| order.iter().map(move |&j| frame.values[i * width + j]))
                .collect();
            return Ok(vec![self.tensor(0, &shape, &values)?]);
        }
        self.inputs
            .iter()
            .enumerate()
            .map(|(k, (name, _))| self.tensor(k, &[n], &column(position(&frame.columns, name)?)))
            .collect()
    }

    /// Where each model column is in the request's columns.
    fn order(&self, columns: &[String]) -> Result<Vec<usize>, ScoringError> {
        match &self.columns {
            Some(cols) => cols.iter().map(|c| position(columns, c)).collect(),
            None => Ok((0..columns.len()).collect()),
        }
    }

    /// Runs the model and writes one record per row, one key per output (flattened).
    fn predict_records(&self, feeds: Vec<TValue>) -> Result<String, ScoringError> {
        let results = self.run(feeds)?;
        self.records.write(&results)
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
        let outputs = self.run_named(feeds)?;
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
        self.tensor(k, &shape, &values)
    }

    /// Values as input `k`'s element type.
    fn tensor(&self, k: usize, shape: &[usize], values: &[f64]) -> Result<TValue, ScoringError> {
        let dt = self.inputs[k].1;
        if dt == f32::datum_type() && values.len() == shape.iter().product::<usize>() {
            // Narrowed in one pass, as tract's cast narrows (`as f32`).
            let mut t = Tensor::zero::<f32>(shape).map_err(internal)?;
            let narrow = t.as_slice_mut::<f32>().map_err(internal)?;
            for (d, &s) in narrow.iter_mut().zip(values) {
                *d = s as f32;
            }
            return Ok(t.into_tvalue());
        }
        let wide = Tensor::from_shape(shape, values).map_err(internal)?;
        let t = if dt == f64::datum_type() {
            wide
        } else {
            wide.cast_to_dt(dt).map_err(internal)?.into_owned()
        };
        Ok(t.into_tvalue())
    }

    fn run(&self, feeds: Vec<TValue>) -> Result<TVec<TValue>, ScoringError> {
        self.plans
            .run(feeds.into_iter().collect())
            .map_err(internal)
    }

    fn run_named(&self, feeds: Vec<TValue>) -> Result<Vec<(String, Value)>, ScoringError> {
        let results = self.run(feeds)?;
        self.outputs
            .iter()
            .zip(results.iter())
            .map(|(name, t)| Ok((name.clone(), to_json(t)?)))
            .collect()
    }
}

fn answer(body: Result<String, ScoringError>) -> Answer {
    match body {
        Ok(body) => Answer {
            status: 200,
            content_type: "application/json".into(),
            body,
        },
        Err(e) => e.into(),
    }
}

fn position(columns: &[String], name: &str) -> Result<usize, ScoringError> {
    columns
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| ScoringError::schema(format!("Model is missing inputs ['{name}'].")))
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
pub(super) fn to_json(t: &Tensor) -> Result<Value, ScoringError> {
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
    }
}
