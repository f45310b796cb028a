//! A model signature's input schema and the checks the scoring server makes against it
//! before a model sees the data: required columns present, values convertible to the
//! column's type. Messages and error codes follow MLflow's schema enforcement.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::error::ScoringError;
use super::input::Frame;
use crate::domain::validation::py_repr;

/// `MLmodel`'s `signature`.
#[derive(Debug, Clone, Default)]
pub struct Signature {
    pub inputs: Option<Schema>,
    pub outputs: Option<Schema>,
    pub params: Option<Value>,
}

/// A column-based or tensor-based schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    Columns(Vec<ColSpec>),
    Tensors(Vec<TensorSpec>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColSpec {
    pub name: Option<String>,
    /// MLflow's type name: double, float, long, integer, boolean, string, binary, datetime,
    /// or a composite (array, object, map) kept as written.
    pub ty: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: Option<String>,
    /// numpy dtype, such as float32.
    pub dtype: String,
    /// -1 for a free dimension.
    pub shape: Vec<i64>,
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "yes")]
    required: bool,
    #[serde(rename = "tensor-spec", default)]
    tensor_spec: Option<RawTensor>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RawTensor {
    dtype: String,
    #[serde(default)]
    shape: Vec<i64>,
}

impl Signature {
    pub fn parse(
        inputs: Option<&str>,
        outputs: Option<&str>,
        params: Option<&str>,
    ) -> Result<Self, String> {
        let params = match params {
            Some(p) => Some(serde_json::from_str(p).map_err(|e| format!("params: {e}"))?),
            None => None,
        };
        Ok(Signature {
            inputs: inputs.map(Schema::parse).transpose()?,
            outputs: outputs.map(Schema::parse).transpose()?,
            params,
        })
    }
}

impl Schema {
    /// Parses MLflow's JSON form of a schema.
    pub fn parse(json: &str) -> Result<Self, String> {
        let specs: Vec<RawSpec> =
            serde_json::from_str(json).map_err(|e| format!("not a schema ({e})"))?;
        if !specs.is_empty() && specs.iter().all(|s| s.ty == "tensor") {
            let tensors = specs
                .into_iter()
                .map(|s| {
                    let t = s.tensor_spec.ok_or("a tensor input without tensor-spec")?;
                    Ok(TensorSpec {
                        name: s.name,
                        dtype: t.dtype,
                        shape: t.shape,
                    })
                })
                .collect::<Result<_, String>>()?;
            return Ok(Schema::Tensors(tensors));
        }
        if specs.iter().any(|s| s.ty == "tensor") {
            return Err("mixes tensor and column specs".into());
        }
        Ok(Schema::Columns(
            specs
                .into_iter()
                .map(|s| ColSpec {
                    name: s.name,
                    ty: s.ty,
                    required: s.required,
                })
                .collect(),
        ))
    }

    /// Whether columns are named (so requests can be checked by name).
    pub fn named_columns(&self) -> Option<&[ColSpec]> {
        match self {
            Schema::Columns(cols) if cols.iter().all(|c| c.name.is_some()) && !cols.is_empty() => {
                Some(cols)
            }
            _ => None,
        }
    }

    /// MLflow's checks of a data frame against a column schema: every required input
    /// present and each value convertible to its column's type.
    pub fn check_frame(&self, frame: &Frame) -> Result<(), ScoringError> {
        self.check_columns(&frame.columns)?;
        let Some(cols) = self.named_columns() else {
            return Ok(());
        };
        for col in cols {
            let (Some(name), Some(index)) = (
                col.name.as_deref(),
                col.name
                    .as_deref()
                    .and_then(|n| frame.columns.iter().position(|f| f == n)),
            ) else {
                continue;
            };
            for row in &frame.rows {
                if let Some(value) = row.get(index) {
                    check_value(name, &col.ty, value)?;
                }
            }
        }
        Ok(())
    }

    /// The first of [`Schema::check_frame`]'s checks: every required input present. All a
    /// frame of numbers needs, since a number converts to every column type.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), ScoringError> {
        let Some(cols) = self.named_columns() else {
            return Ok(());
        };
        let missing: Vec<&str> = cols
            .iter()
            .filter(|c| c.required)
            .filter_map(|c| c.name.as_deref())
            .filter(|n| !columns.iter().any(|f| f == n))
            .collect();
        if !missing.is_empty() {
            let extra: Vec<&str> = columns
                .iter()
                .map(String::as_str)
                .filter(|f| !cols.iter().any(|c| c.name.as_deref() == Some(*f)))
                .collect();
            let mut message = format!("Model is missing inputs {}.", py_list(&missing));
            if !extra.is_empty() {
                message += &format!(" Note that there were extra inputs: {}.", py_list(&extra));
            }
            return Err(ScoringError::schema(format!(
                "Failed to predict data. \nError: Failed to enforce schema of data with schema \
                 '{self}'. Error: {message}"
            )));
        }
        Ok(())
    }
}

/// Whether pandas can convert `value` to the column type, as MLflow's cast does.
fn check_value(column: &str, ty: &str, value: &Value) -> Result<(), ScoringError> {
    let fail = |dtype: &str, error: String| {
        Err(ScoringError::invalid_input(format!(
            "Data is not compatible with model signature. Failed to convert column {column} to \
             type '{dtype}'. Error: '{error}'"
        )))
    };
    match (ty, value) {
        (_, Value::Null) => Ok(()),
        ("double" | "float", Value::Number(_) | Value::Bool(_)) => Ok(()),
        ("double" | "float", Value::String(s)) => {
            if parse_python_float(s) {
                Ok(())
            } else {
                let dtype = if ty == "double" { "float64" } else { "float32" };
                fail(
                    dtype,
                    format!(
                        "ValueError(\"could not convert string to float: {}\")",
                        py_repr(s)
                    ),
                )
            }
        }
        ("long" | "integer", Value::Number(_) | Value::Bool(_)) => Ok(()),
        ("long" | "integer", Value::String(s)) => {
            if s.trim().parse::<i64>().is_ok() {
                Ok(())
            } else {
                let dtype = if ty == "long" { "int64" } else { "int32" };
                fail(
                    dtype,
                    format!(
                        "ValueError(\"invalid literal for int() with base 10: {}\")",
                        py_repr(s)
                    ),
                )
            }
        }
        ("double" | "float" | "long" | "integer", Value::Array(_) | Value::Object(_)) => {
            let dtype = match ty {
                "double" => "float64",
                "float" => "float32",
                "long" => "int64",
                _ => "int32",
            };
            fail(
                dtype,
                "TypeError('float() argument must be a string or a real number')".into(),
            )
        }
        _ => Ok(()),
    }
}

/// What Python's `float()` accepts.
fn parse_python_float(s: &str) -> bool {
    let t = s.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let bare = lower.trim_start_matches(['+', '-']);
    matches!(bare, "nan" | "inf" | "infinity") || t.parse::<f64>().is_ok()
}

/// Python's repr of a list of str.
fn py_list(items: &[&str]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| py_repr(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

impl fmt::Display for Schema {
    /// MLflow's `repr` of a schema, as its messages show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = match self {
            Schema::Columns(cols) => cols
                .iter()
                .map(|c| {
                    let req = if c.required { "required" } else { "optional" };
                    match &c.name {
                        Some(n) => format!("{}: {} ({req})", py_repr(n), c.ty),
                        None => format!("{} ({req})", c.ty),
                    }
                })
                .collect(),
            Schema::Tensors(ts) => ts
                .iter()
                .map(|t| {
                    let shape = t
                        .shape
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let shape = if t.shape.len() == 1 {
                        format!("({shape},)")
                    } else {
                        format!("({shape})")
                    };
                    match &t.name {
                        Some(n) => format!("{}: Tensor('{}', {shape})", py_repr(n), t.dtype),
                        None => format!("Tensor('{}', {shape})", t.dtype),
                    }
                })
                .collect(),
        };
        write!(f, "[{}]", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(
            r#"[{"type": "double", "name": "a", "required": true},
                {"type": "long", "name": "b", "required": true},
                {"type": "string", "name": "c", "required": false}]"#,
        )
        .expect("schema")
    }

    fn frame(columns: &[&str], rows: Value) -> Frame {
        Frame {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: serde_json::from_value(rows).expect("rows"),
        }
    }

    #[test]
    fn missing_required_columns_are_named() {
        let err = schema()
            .check_frame(&frame(&["a", "x"], json!([[1.0, 2]])))
            .expect_err("b is missing");
        assert_eq!(err.error_code, "INVALID_PARAMETER_VALUE");
        assert!(
            err.message.ends_with(
                "Error: Model is missing inputs ['b']. Note that there were extra inputs: ['x']."
            ),
            "{}",
            err.message
        );
        assert!(schema()
            .check_frame(&frame(&["b", "a"], json!([[1, 2.5]])))
            .is_ok());
    }

    #[test]
    fn values_must_convert_to_the_column_type() {
        let err = schema()
            .check_frame(&frame(&["a", "b"], json!([["x", 1]])))
            .expect_err("x is no float");
        assert_eq!(err.error_code, "BAD_REQUEST");
        assert_eq!(
            err.message,
            "Invalid input. Data is not compatible with model signature. Failed to convert \
             column a to type 'float64'. Error: 'ValueError(\"could not convert string to float: 'x'\")'"
        );
        assert!(schema()
            .check_frame(&frame(
                &["a", "b"],
                json!([["1e3", "7"], [null, 2], [" nan", 1]])
            ))
            .is_ok());
        assert!(schema()
            .check_frame(&frame(&["a", "b"], json!([[1, "1.5"]])))
            .is_err());
    }

    #[test]
    fn tensor_schemas_print_like_mlflow() {
        let s = Schema::parse(
            r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]"#,
        )
        .expect("tensor schema");
        assert_eq!(s.to_string(), "[Tensor('float32', (-1, 4))]");
        assert!(s.named_columns().is_none());
    }
}
