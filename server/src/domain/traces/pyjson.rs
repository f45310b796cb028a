//! JSON exactly as Python's `json.dumps` writes it.
//!
//! MLflow stores span content, span attribute values, assessment values and dataset records
//! as text made by `json.dumps` (`", "` and `": "` separators, `NaN`/`Infinity`, floats in
//! Python's `repr`, dict keys in insertion order). Search filters compare against that text
//! (`span.content LIKE`, `feedback.x = 'yes'`), and the Python server reads it back, so this
//! server writes the same bytes. [`PyValue`] is a JSON value that keeps key order and the
//! int/float distinction Python has.

use std::fmt::{self, Write};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value as Python's `json` module sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    /// Keys in insertion order, as a Python dict keeps them.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// `json.dumps(value, ensure_ascii=...)`.
    pub fn dumps(&self, ensure_ascii: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, ensure_ascii);
        out
    }

    fn write(&self, out: &mut String, ascii: bool) {
        match self {
            PyValue::Null => out.push_str("null"),
            PyValue::Bool(true) => out.push_str("true"),
            PyValue::Bool(false) => out.push_str("false"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(f) => out.push_str(&py_float(*f)),
            PyValue::Str(s) => write_str(out, s, ascii),
            PyValue::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, ascii);
                }
                out.push(']');
            }
            PyValue::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str(out, k, ascii);
                    out.push_str(": ");
                    v.write(out, ascii);
                }
                out.push('}');
            }
        }
    }

    /// `json.loads(text)`, accepting Python's `NaN`, `Infinity` and `-Infinity` at the top.
    pub fn loads(text: &str) -> Option<PyValue> {
        match serde_json::from_str::<PyValue>(text) {
            Ok(v) => Some(v),
            Err(_) => match text.trim() {
                "NaN" => Some(PyValue::Float(f64::NAN)),
                "Infinity" => Some(PyValue::Float(f64::INFINITY)),
                "-Infinity" => Some(PyValue::Float(f64::NEG_INFINITY)),
                _ => None,
            },
        }
    }

    /// The value under `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python truthiness (`if value:`).
    pub fn truthy(&self) -> bool {
        match self {
            PyValue::Null => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(l) => !l.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
        }
    }

    /// Converts from `serde_json` (key order of the source object is not known there).
    pub fn from_json(value: &serde_json::Value) -> PyValue {
        match value {
            serde_json::Value::Null => PyValue::Null,
            serde_json::Value::Bool(b) => PyValue::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PyValue::Int(i as i128)
                } else if let Some(u) = n.as_u64() {
                    PyValue::Int(u as i128)
                } else {
                    PyValue::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => PyValue::Str(s.clone()),
            serde_json::Value::Array(a) => PyValue::List(a.iter().map(Self::from_json).collect()),
            serde_json::Value::Object(m) => PyValue::Dict(
                m.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to `serde_json` for responses; non-finite floats become Python's spellings
    /// as strings, which is what MLflow's protobuf JSON writes for them.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            PyValue::Null => Value::Null,
            PyValue::Bool(b) => Value::Bool(*b),
            PyValue::Int(i) => match i64::try_from(*i) {
                Ok(v) => Value::from(v),
                Err(_) => u64::try_from(*i).map_or(Value::from(*i as f64), Value::from),
            },
            PyValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(py_float(*f))),
            PyValue::Str(s) => Value::String(s.clone()),
            PyValue::List(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            PyValue::Dict(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A string in Python's JSON escaping; with `ascii`, everything outside printable ASCII is
/// escaped as `\uXXXX` (surrogate pairs above the BMP), as `ensure_ascii=True` does.
pub fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of characters that need no escape are copied whole (span payloads are mostly
    // such runs); a character that does is escaped on its own.
    let plain = |c: char| c >= ' ' && c != '"' && c != '\\' && (!ascii || c <= '~');
    let mut rest = s;
    while let Some(at) = rest.find(|c: char| !plain(c)) {
        out.push_str(&rest[..at]);
        let mut chars = rest[at..].chars();
        if let Some(c) = chars.next() {
            push_escaped(out, c);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        c => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}

/// `repr(float)`: the shortest digits that round-trip, positional between 1e-4 and 1e16,
/// else scientific with a signed two-digit exponent (`1e-05`, `1.5e+16`).
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

/// Python's `str(b"...")`, which MLflow's span encoder falls back to for bytes values.
pub fn py_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from("b");
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if b as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b as char),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(quote);
    out
}

impl<'de> Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PyValueVisitor)
    }
}

struct PyValueVisitor;

impl<'de> Visitor<'de> for PyValueVisitor {
    type Value = PyValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }
    fn visit_none<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<PyValue, E> {
        Ok(PyValue::Int(v as i128))
    }
    fn visit_u64<E>(self, v: u64) -> Result<PyValue, E> {
        Ok(PyValue::Int(v as i128))
    }
    fn visit_f64<E>(self, v: f64) -> Result<PyValue, E> {
        Ok(PyValue::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PyValue, E> {
        Ok(PyValue::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<PyValue, E> {
        Ok(PyValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(PyValue::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
        let mut entries: Vec<(String, PyValue)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, PyValue>()? {
            // A repeated key keeps its first position and takes the last value, as a dict does.
            match entries.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => entries.push((k, v)),
            }
        }
        Ok(PyValue::Dict(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_python_repr() {
        for (f, want) in [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (100.0, "100.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(py_float(f), want, "{f}");
        }
    }

    #[test]
    fn dumps_like_python() {
        let v = PyValue::loads(r#"{"b": [1, 2.0, "x"], "a": {"n": null, "t": true}}"#).unwrap();
        assert_eq!(
            v.dumps(true),
            r#"{"b": [1, 2.0, "x"], "a": {"n": null, "t": true}}"#
        );
        let s = PyValue::Str("é\u{1F600}\n\"\u{7f}".into());
        assert_eq!(s.dumps(true), r#""\u00e9\ud83d\ude00\n\"\u007f""#);
        assert_eq!(s.dumps(false), "\"é\u{1F600}\\n\\\"\u{7f}\"");
        // Escapes between and after runs of plain text, as `json.dumps` writes them.
        let s = PyValue::Str("plain a\\b\tc\u{1}d\u{8}\u{c}é end".into());
        assert_eq!(s.dumps(true), r#""plain a\\b\tc\u0001d\b\f\u00e9 end""#);
        assert_eq!(s.dumps(false), "\"plain a\\\\b\\tc\\u0001d\\b\\fé end\"");
        assert_eq!(PyValue::Str(String::new()).dumps(true), r#""""#);
        assert_eq!(PyValue::Float(f64::NAN).dumps(true), "NaN");
        assert_eq!(
            PyValue::loads("Infinity"),
            Some(PyValue::Float(f64::INFINITY))
        );
        assert!(PyValue::loads("{oops").is_none());
    }

    #[test]
    fn bytes_repr() {
        assert_eq!(py_bytes_repr(b"ab\x00'"), "b\"ab\\x00'\"");
        assert_eq!(py_bytes_repr(b"a\n"), "b'a\\n'");
    }
}
