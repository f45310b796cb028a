//! The fast path of natively scored models: a `dataframe_split` body of numbers only, read
//! straight into a row-major f64 matrix without a `serde_json::Value` tree. Cells go through
//! serde_json's own number parser, so they are the f64 values the generic path
//! ([`super::input::decode_json`]) would give. Any other body (other keys, strings, nulls,
//! ragged rows, no rows, malformed JSON) gives `None` and takes the generic path, which keeps
//! its answers and error messages.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// An all-numeric data frame.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericFrame {
    pub columns: Vec<String>,
    pub rows: usize,
    /// Row-major: row `i` is `values[i * columns.len()..(i + 1) * columns.len()]`.
    pub values: Vec<f64>,
}

/// `body` as a numeric frame when it is `{"dataframe_split": {"columns": [...], "data":
/// [[numbers...], ...], "index": ...}, "params": ...}` with at least one row and one column
/// and every row as long as `columns`; `None` otherwise.
pub fn parse_split(body: &str) -> Option<NumericFrame> {
    let mut de = serde_json::Deserializer::from_str(body);
    let frame = de.deserialize_map(Body).ok()?;
    de.end().ok()?;
    Some(frame)
}

/// The error that sends a body to the generic path; its text is never shown.
fn generic<E: Error>() -> E {
    E::custom("not an all-numeric dataframe_split")
}

struct Body;

impl<'de> Visitor<'de> for Body {
    type Value = NumericFrame;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dataframe_split request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumericFrame, A::Error> {
        let mut frame = None;
        // Borrowed keys: a key with escapes fails here and takes the generic path.
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "dataframe_split" if frame.is_none() => frame = Some(map.next_value_seed(Split)?),
                // The native scorer takes no params; the generic path ignores them too.
                "params" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => return Err(generic()),
            }
        }
        frame.ok_or_else(generic)
    }
}

struct Split;

impl<'de> DeserializeSeed<'de> for Split {
    type Value = NumericFrame;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NumericFrame, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Split {
    type Value = NumericFrame;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dataframe_split object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumericFrame, A::Error> {
        let mut columns: Option<Vec<String>> = None;
        let mut data: Option<Matrix> = None;
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "columns" if columns.is_none() => columns = Some(map.next_value()?),
                "data" if data.is_none() => data = Some(map.next_value_seed(Rows)?),
                "index" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => return Err(generic()),
            }
        }
        match (columns, data) {
            (Some(columns), Some(m)) if m.rows > 0 && m.width == columns.len() && m.width > 0 => {
                Ok(NumericFrame {
                    columns,
                    rows: m.rows,
                    values: m.values,
                })
            }
            _ => Err(generic()),
        }
    }
}

/// Rows of equal length, row-major.
struct Matrix {
    rows: usize,
    width: usize,
    values: Vec<f64>,
}

struct Rows;

impl<'de> DeserializeSeed<'de> for Rows {
    type Value = Matrix;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Matrix, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows {
    type Value = Matrix;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Matrix, A::Error> {
        let mut m = Matrix {
            rows: 0,
            width: 0,
            values: Vec::new(),
        };
        while let Some(width) = seq.next_element_seed(Row(&mut m.values))? {
            if m.rows == 0 {
                m.width = width;
                m.values.reserve(width * seq.size_hint().unwrap_or(0));
            } else if width != m.width {
                return Err(generic());
            }
            m.rows += 1;
        }
        Ok(m)
    }
}

/// One row, appended to the matrix; its value is the row's length.
struct Row<'a>(&'a mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        // f64 takes JSON numbers only: a string, bool or null cell is an error here.
        while let Some(x) = seq.next_element::<f64>()? {
            self.0.push(x);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serving::input::{decode_json, Frame, Payload};
    use serde_json::{json, Value};

    /// What the generic path makes of `body`, as numbers.
    fn generic_frame(body: &str) -> Option<NumericFrame> {
        let Ok(Payload::Frame { frame, .. }) = decode_json(body, None) else {
            return None;
        };
        let Frame { columns, rows } = frame;
        let values = rows
            .iter()
            .flatten()
            .map(Value::as_f64)
            .collect::<Option<Vec<_>>>()?;
        Some(NumericFrame {
            columns,
            rows: rows.len(),
            values,
        })
    }

    #[test]
    fn numbers_parse_as_the_generic_path_parses_them() {
        let body = r#"{"dataframe_split": {"columns": ["a", "b", "c"], "index": [0, 1],
            "data": [[1, -0, 0.1], [1.7976931348623157e308, 123456789012345678901234567890,
            -9223372036854775809], [4.9e-324, 2.2250738585072014e-308, 18446744073709551615]]},
            "params": {"k": [1, {"x": null}]}}"#;
        let fast = parse_split(body).expect("fast path");
        assert_eq!(fast.rows, 3);
        assert_eq!(fast.columns, ["a", "b", "c"]);
        let want = generic_frame(body).expect("generic frame");
        let bits = |f: &NumericFrame| f.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&want));
        // Key order inside the split does not matter.
        let body = json!({"dataframe_split": {"data": [[1.5, 2], [3, 4]], "columns": ["x", "y"]}});
        let fast = parse_split(&body.to_string()).expect("data before columns");
        assert_eq!(fast.values, [1.5, 2.0, 3.0, 4.0]);
        assert_eq!(Some(fast), generic_frame(&body.to_string()));
    }

    #[test]
    fn anything_else_takes_the_generic_path() {
        for body in [
            "",
            "nope",
            "[1, 2]",
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1]]}} x"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1]]}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "inputs": [1]}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "dataframe_split": {}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1]], "extra": 1}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [["1"]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[null]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[true]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[[1]]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1e400]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[NaN]]}}"#,
            r#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": [[1], [1, 2]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"], "data": []}}"#,
            r#"{"dataframe_split": {"columns": [], "data": [[]]}}"#,
            r#"{"dataframe_split": {"columns": [1], "data": [[1]]}}"#,
            r#"{"dataframe_split": {"data": [[1]]}}"#,
            r#"{"dataframe_split": {"columns": ["a"]}}"#,
            r#"{"dataframe_split": [[1]]}"#,
            r#"{"\u0064ataframe_split": {"columns": ["a"], "data": [[1]]}}"#,
        ] {
            assert_eq!(parse_split(body), None, "{body}");
        }
    }

    #[test]
    fn fallback_bodies_keep_the_generic_answers() {
        // A ragged or non-numeric split is still the generic path's: a frame pandas decides
        // on, or MLflow's error message.
        let ragged = r#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}"#;
        assert!(matches!(
            decode_json(ragged, None),
            Ok(Payload::Json { .. })
        ));
        let strings = r#"{"dataframe_split": {"columns": ["a"], "data": [["x"]]}}"#;
        assert!(matches!(
            decode_json(strings, None),
            Ok(Payload::Frame { .. })
        ));
        let bad = r#"{"dataframe_split": [[1]]}"#;
        assert_eq!(
            decode_json(bad, None).expect_err("a list").message,
            "Invalid input. Dataframe split format must be a dictionary. Got list."
        );
    }
}
