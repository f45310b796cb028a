//! A frame's predictions as MLflow's JSON, written straight from the output tensors:
//! `{"predictions":[{"<output>":value,...},...]}`, one record per row, each output flattened
//! (`np.asarray(p).reshape(-1)`). Byte for byte what serde_json prints for the same records
//! built as `serde_json::Value`: compact, keys in `serde_json::Map` order, floats widened to
//! f64 and printed shortest (non-finite as null), other numbers as i64.

use std::borrow::Cow;

use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::{Map, Value};
use tract_onnx::prelude::*;

use super::ScoringError;

/// The record layout of a model's outputs.
pub struct Records {
    outputs: usize,
    /// (name, index of the output it shows) in `serde_json::Map`'s order; a name given twice
    /// shows the last output of that name, as `Map::insert` keeps it.
    keys: Vec<(String, usize)>,
}

impl Records {
    pub fn new(outputs: &[String]) -> Self {
        let map: Map<String, Value> = outputs
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), Value::from(i)))
            .collect();
        let keys = map
            .into_iter()
            .filter_map(|(name, i)| Some((name, usize::try_from(i.as_u64()?).ok()?)))
            .collect();
        Records {
            outputs: outputs.len(),
            keys,
        }
    }

    /// The answer body for the model's `results`.
    pub fn write(&self, results: &[TValue]) -> Result<String, ScoringError> {
        let wide = results
            .iter()
            .take(self.outputs)
            .map(|t| json_ready(t))
            .collect::<Result<Vec<_>, _>>()?;
        let columns = wide
            .iter()
            .map(|t| Column::of(t))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = columns.first().map_or(0, Column::len);
        if columns.iter().any(|c| c.len() != rows) {
            return Err(ScoringError::internal(
                "the model's outputs have different lengths and do not form a table",
            ));
        }
        let keys: Vec<(&String, &Column)> = self
            .keys
            .iter()
            .filter_map(|(name, i)| Some((name, columns.get(*i)?)))
            .collect();
        let mut out = Vec::with_capacity(20 + rows * keys.len() * 32);
        out.extend_from_slice(br#"{"predictions":["#);
        for i in 0..rows {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (k, (name, column)) in keys.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, name.as_str()).map_err(internal)?;
                out.push(b':');
                column.write(&mut out, i).map_err(internal)?;
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        String::from_utf8(out).map_err(internal)
    }
}

fn internal(e: impl std::fmt::Display) -> ScoringError {
    ScoringError::internal(format!("the ONNX model failed: {e}"))
}

/// An output in the element type its JSON shows: f64, String, bool or i64.
fn json_ready(t: &Tensor) -> Result<Cow<'_, Tensor>, ScoringError> {
    let dt = t.datum_type();
    if dt.is_float() {
        t.cast_to::<f64>().map_err(internal)
    } else if dt == String::datum_type() || dt == bool::datum_type() {
        Ok(Cow::Borrowed(t))
    } else {
        t.cast_to::<i64>().map_err(internal)
    }
}

enum Column<'a> {
    Float(&'a [f64]),
    Text(&'a [String]),
    Bool(&'a [bool]),
    Int(&'a [i64]),
}

impl<'a> Column<'a> {
    fn of(t: &'a Tensor) -> Result<Self, ScoringError> {
        let dt = t.datum_type();
        Ok(if dt == f64::datum_type() {
            Column::Float(t.as_slice().map_err(internal)?)
        } else if dt == String::datum_type() {
            Column::Text(t.as_slice().map_err(internal)?)
        } else if dt == bool::datum_type() {
            Column::Bool(t.as_slice().map_err(internal)?)
        } else {
            Column::Int(t.as_slice().map_err(internal)?)
        })
    }

    fn len(&self) -> usize {
        match self {
            Column::Float(s) => s.len(),
            Column::Text(s) => s.len(),
            Column::Bool(s) => s.len(),
            Column::Int(s) => s.len(),
        }
    }

    /// Element `i` as serde_json writes it.
    fn write(&self, out: &mut Vec<u8>, i: usize) -> Result<(), String> {
        let mut f = CompactFormatter;
        let written = match self {
            Column::Float(s) => match s.get(i) {
                Some(x) if x.is_finite() => f.write_f64(out, *x),
                _ => f.write_null(out),
            },
            Column::Text(s) => {
                return serde_json::to_writer(out, s.get(i).map_or("", String::as_str))
                    .map_err(|e| e.to_string())
            }
            Column::Bool(s) => f.write_bool(out, s.get(i).copied().unwrap_or_default()),
            Column::Int(s) => f.write_i64(out, s.get(i).copied().unwrap_or_default()),
        };
        written.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serving::onnx::to_json;

    /// The records as they were built before: `serde_json::Value`s, printed by serde_json.
    fn as_values(names: &[&str], results: &[TValue]) -> String {
        fn flatten(v: &Value) -> Vec<Value> {
            match v {
                Value::Array(items) => items.iter().flat_map(flatten).collect(),
                other => vec![other.clone()],
            }
        }
        let flat: Vec<Vec<Value>> = results
            .iter()
            .map(|t| flatten(&to_json(t).expect("json")))
            .collect();
        let records: Vec<Value> = (0..flat[0].len())
            .map(|i| {
                let mut rec = Map::new();
                for (name, col) in names.iter().zip(&flat) {
                    rec.insert(name.to_string(), col[i].clone());
                }
                Value::Object(rec)
            })
            .collect();
        serde_json::json!({ "predictions": records }).to_string()
    }

    fn check(names: &[&str], results: Vec<Tensor>) {
        let results: Vec<TValue> = results.into_iter().map(Tensor::into_tvalue).collect();
        let owned: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let got = Records::new(&owned).write(&results).expect("records");
        assert_eq!(got, as_values(names, &results));
    }

    #[test]
    fn records_are_what_serde_json_prints() {
        let floats = tensor2(&[[0.1f32, -0.0], [f32::NAN, f32::INFINITY], [1e-7, 3.4e38]]);
        check(&["prediction"], vec![floats.clone()]);
        check(
            &["z", "a\"\\é\n", "m", "z"],
            vec![
                tensor1(&[1.5f64, 2.0, -1e300, 7.0, 8.0, 9.0]),
                tensor1(&[1i64, -2, i64::MAX, 0, 5, 6]),
                tensor1(&[true, false, true, false, true, false]),
                floats,
            ],
        );
        check(
            &["label", "n"],
            vec![
                tensor1(&["x".to_string(), "\u{1}\"".to_string()]),
                tensor1(&[3u8, 255]),
            ],
        );
        check(&["s"], vec![tensor0(2.5f32)]);
    }

    #[test]
    fn outputs_of_different_lengths_are_no_table() {
        let results = vec![
            tensor1(&[1.0f32, 2.0]).into_tvalue(),
            tensor1(&[1.0f32]).into_tvalue(),
        ];
        let err = Records::new(&["a".into(), "b".into()])
            .write(&results)
            .expect_err("ragged");
        assert_eq!(err.status, 500);
    }
}
