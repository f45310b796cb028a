//! Assessments of traces (MLflow 3): feedback (a judged value, or an error), expectations
//! (ground truth) and issue references, and how their values are kept in the `assessments`
//! table (`json.dumps` text, with a numeric copy for range filters).

use crate::domain::traces::pyjson::PyValue;
use crate::error::{MlflowError, Result};

/// Source types the API knows (`AssessmentSource.SourceType`).
pub const SOURCE_TYPES: [&str; 4] = ["SOURCE_TYPE_UNSPECIFIED", "HUMAN", "LLM_JUDGE", "CODE"];

#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentError {
    pub error_code: String,
    pub error_message: Option<String>,
    pub stack_trace: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AssessmentValue {
    Feedback {
        value: PyValue,
        error: Option<AssessmentError>,
    },
    Expectation {
        value: PyValue,
    },
    /// A reference to an issue; the assessment's name is the issue id.
    Issue {
        issue_name: String,
    },
}

impl AssessmentValue {
    /// The `assessment_type` column.
    pub fn kind(&self) -> &'static str {
        match self {
            AssessmentValue::Feedback { .. } => "feedback",
            AssessmentValue::Expectation { .. } => "expectation",
            AssessmentValue::Issue { .. } => "issue",
        }
    }

    /// The `value` column: `json.dumps` of the value (of `{"issue_name": ...}` for issues).
    pub fn value_column(&self) -> String {
        match self {
            AssessmentValue::Feedback { value, .. } | AssessmentValue::Expectation { value } => {
                value.dumps(true)
            }
            AssessmentValue::Issue { issue_name } => PyValue::Dict(vec![(
                "issue_name".into(),
                PyValue::Str(issue_name.clone()),
            )])
            .dumps(true),
        }
    }

    /// The `error` column of feedback with an error.
    pub fn error_column(&self) -> Option<String> {
        match self {
            AssessmentValue::Feedback { error: Some(e), .. } => {
                let opt = |v: &Option<String>| v.clone().map_or(PyValue::Null, PyValue::Str);
                Some(
                    PyValue::Dict(vec![
                        ("error_code".into(), PyValue::Str(e.error_code.clone())),
                        ("error_message".into(), opt(&e.error_message)),
                        ("stack_trace".into(), opt(&e.stack_trace)),
                    ])
                    .dumps(true),
                )
            }
            _ => None,
        }
    }

    /// `(aggregate_value, is_numeric_value)`: numbers count as themselves, booleans and
    /// "yes"/"no" as 1 and 0 (but only real numbers are "numeric").
    pub fn aggregate(&self) -> (Option<f64>, bool) {
        let value = match self {
            AssessmentValue::Feedback { value, .. } | AssessmentValue::Expectation { value } => {
                value
            }
            AssessmentValue::Issue { .. } => return (None, false),
        };
        match value {
            PyValue::Bool(b) => (Some(if *b { 1.0 } else { 0.0 }), false),
            PyValue::Int(i) => (Some(*i as f64), true),
            PyValue::Float(f) if f.is_finite() => (Some(*f), true),
            PyValue::Str(s) => match s.trim().to_lowercase().as_str() {
                "yes" => (Some(1.0), false),
                "no" => (Some(0.0), false),
                _ => (None, false),
            },
            _ => (None, false),
        }
    }

    /// Reads the stored columns back.
    pub fn from_columns(kind: &str, value: &str, error: Option<&str>) -> Result<AssessmentValue> {
        let parsed = PyValue::loads(value).ok_or_else(|| {
            MlflowError::internal(format!("Stored assessment value is not JSON: {value}"))
        })?;
        Ok(match kind {
            "feedback" => AssessmentValue::Feedback {
                value: parsed,
                error: error.and_then(PyValue::loads).map(|e| AssessmentError {
                    error_code: text(e.get("error_code")).unwrap_or_default(),
                    error_message: text(e.get("error_message")),
                    stack_trace: text(e.get("stack_trace")),
                }),
            },
            "expectation" => AssessmentValue::Expectation { value: parsed },
            "issue" => AssessmentValue::Issue {
                issue_name: text(parsed.get("issue_name")).unwrap_or_default(),
            },
            other => {
                return Err(MlflowError::internal(format!(
                    "Unknown assessment type: {other}"
                )))
            }
        })
    }
}

fn text(v: Option<&PyValue>) -> Option<String> {
    v.and_then(PyValue::as_str).map(str::to_string)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub assessment_id: String,
    pub trace_id: String,
    pub name: String,
    pub value: AssessmentValue,
    pub source_type: String,
    pub source_id: Option<String>,
    pub run_id: Option<String>,
    pub span_id: Option<String>,
    pub rationale: Option<String>,
    /// `map<string, string>` on the wire; kept as `json.dumps` of the dict.
    pub metadata: Option<Vec<(String, String)>>,
    pub create_time_ms: i64,
    pub last_update_time_ms: i64,
    pub overrides: Option<String>,
    pub valid: bool,
}

impl Assessment {
    pub fn metadata_column(&self) -> Option<String> {
        self.metadata
            .as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| metadata_json(m).dumps(true))
    }
}

pub fn metadata_json(m: &[(String, String)]) -> PyValue {
    PyValue::Dict(
        m.iter()
            .map(|(k, v)| (k.clone(), PyValue::Str(v.clone())))
            .collect(),
    )
}

/// Reads the `assessment_metadata` column (values that are not strings become their JSON).
pub fn metadata_from_column(text: Option<&str>) -> Option<Vec<(String, String)>> {
    match PyValue::loads(text?)? {
        PyValue::Dict(entries) => Some(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        PyValue::Str(s) => s,
                        other => other.dumps(true),
                    };
                    (k, v)
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A new assessment id, `a-` and 32 hex digits.
pub fn new_id() -> String {
    format!("a-{}", uuid::Uuid::new_v4().simple())
}

/// Upper-cases a source type and maps the legacy `AI_JUDGE` to `LLM_JUDGE`.
pub fn standard_source_type(raw: &str) -> Result<String> {
    let upper = raw.to_uppercase();
    let upper = if upper == "AI_JUDGE" {
        "LLM_JUDGE".to_string()
    } else {
        upper
    };
    if SOURCE_TYPES.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(MlflowError::invalid(format!(
            "Invalid assessment source type: {raw}. Valid source types: {SOURCE_TYPES:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_as_python_writes_them() {
        let v = AssessmentValue::Expectation {
            value: PyValue::loads(r#"{"a": 1, "b": "é"}"#).unwrap(),
        };
        assert_eq!(v.value_column(), r#"{"a": 1, "b": "\u00e9"}"#);
        assert_eq!(v.aggregate(), (None, false));
        let f = AssessmentValue::Feedback {
            value: PyValue::Float(0.9),
            error: None,
        };
        assert_eq!(f.value_column(), "0.9");
        assert_eq!(f.aggregate(), (Some(0.9), true));
        let yes = AssessmentValue::Feedback {
            value: PyValue::Str("Yes".into()),
            error: None,
        };
        assert_eq!(yes.aggregate(), (Some(1.0), false));
        let back = AssessmentValue::from_columns(
            "feedback",
            "\"x\"",
            Some(r#"{"error_code": "E", "error_message": null, "stack_trace": null}"#),
        )
        .unwrap();
        assert!(
            matches!(back, AssessmentValue::Feedback { error: Some(AssessmentError { ref error_code, .. }), .. } if error_code == "E")
        );
        assert_eq!(standard_source_type("ai_judge").unwrap(), "LLM_JUDGE");
        assert!(standard_source_type("ROBOT").is_err());
    }
}
