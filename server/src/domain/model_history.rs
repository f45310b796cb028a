//! `runs/log-model`: the run tag `mlflow.log-model.history`, a JSON list with one entry per
//! logged model (`run_id`, `artifact_path`, `utc_time_created`, `model_uuid`, `flavors`
//! without their `config`), written byte for byte as MLflow's SQL store writes it
//! (`json.dumps` of `Model.get_tags_dict()`), so that either server reads the other's tag.
//!
//! The client sends the model as Python's `json.dumps` text; values are copied from it
//! verbatim and only the keys this module adds are written here, so the key order and
//! spacing of the client's text survive, as they do through Python.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{MlflowError, Result};

/// The run tag that lists a run's logged models.
pub const HISTORY_TAG: &str = "mlflow.log-model.history";

/// A JSON object read with its keys in order and its values as raw text.
struct Ordered<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Ordered<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Ordered<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Self::Value, M::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'a RawValue>()? {
                    entries.push((key, value));
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Ordered<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// A JSON list read as the raw text of its items.
struct RawList<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for RawList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawList<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON list")
            }
            fn visit_seq<S: SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> std::result::Result<Self::Value, S::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<&'a RawValue>()? {
                    items.push(item);
                }
                Ok(RawList(items))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A string as Python's `json.dumps` writes it (`ensure_ascii`: non-ASCII as `\uXXXX`).
fn py_string(out: &mut String, s: &str) {
    super::traces::pyjson::write_str(out, s, true);
}

fn push_entry(out: &mut String, first: &mut bool, key: &str, raw: &str) {
    if !*first {
        out.push_str(", ");
    }
    *first = false;
    py_string(out, key);
    out.push_str(": ");
    out.push_str(raw);
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The history entry for the `model_json` of a log-model request, or MLflow's error for
/// text that is not JSON or lacks a mandatory field.
pub fn history_entry(model_json: &str) -> Result<String> {
    let malformed = || {
        MlflowError::invalid(format!(
            "Malformed model info. \n {model_json} \n is not a valid JSON."
        ))
    };
    let model: Ordered = serde_json::from_str(model_json).map_err(|_| malformed())?;
    let mut missing: Vec<&str> = ["artifact_path", "flavors", "utc_time_created", "run_id"]
        .into_iter()
        .filter(|k| model.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        let set = missing
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(MlflowError::invalid(format!(
            "Model json is missing mandatory fields: {{{set}}}"
        )));
    }
    let mut out = String::from("{");
    let mut first = true;
    for key in ["run_id", "artifact_path"] {
        // MLflow leaves these out of the entry when they are null.
        if let Some(raw) = model.get(key).filter(|raw| !is_null(raw)) {
            push_entry(&mut out, &mut first, key, raw.get());
        }
    }
    // `str(utc_time_created or now())`: a string stays as it is.
    let time = model.get("utc_time_created").map(RawValue::get);
    match time.and_then(|raw| serde_json::from_str::<serde_json::Value>(raw).ok()) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => {
            push_entry(
                &mut out,
                &mut first,
                "utc_time_created",
                time.unwrap_or("\"\""),
            );
        }
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(true))) => {
            let mut text = String::new();
            py_string(&mut text, &python_str(&v));
            push_entry(&mut out, &mut first, "utc_time_created", &text);
        }
        _ => {
            let mut text = String::new();
            py_string(&mut text, &super::time::python_now());
            push_entry(&mut out, &mut first, "utc_time_created", &text);
        }
    }
    let uuid = model.get("model_uuid").map_or("null", RawValue::get);
    push_entry(&mut out, &mut first, "model_uuid", uuid);
    let flavors_raw = model.get("flavors").map_or("null", RawValue::get);
    let flavors: Ordered = serde_json::from_str(flavors_raw).map_err(|_| {
        MlflowError::invalid(format!(
            "Invalid value {flavors_raw} for parameter 'model_json.flavors' supplied: it must be \
             a JSON object"
        ))
    })?;
    let mut flavors_out = String::from("{");
    let mut first_flavor = true;
    for (name, config) in &flavors.0 {
        let text = match serde_json::from_str::<Ordered>(config.get()) {
            Ok(fields) => {
                let mut obj = String::from("{");
                let mut first_field = true;
                for (k, v) in fields.0.iter().filter(|(k, _)| k != "config") {
                    push_entry(&mut obj, &mut first_field, k, v.get());
                }
                obj.push('}');
                obj
            }
            Err(_) => config.get().to_string(),
        };
        push_entry(&mut flavors_out, &mut first_flavor, name, &text);
    }
    flavors_out.push('}');
    push_entry(&mut out, &mut first, "flavors", &flavors_out);
    out.push('}');
    Ok(out)
}

/// Python's `str()` of a JSON number or `true`.
fn python_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Bool(true) => "True".into(),
        other => other.to_string(),
    }
}

/// The tag value after appending `entry` to the stored history (`None` when the run has no
/// such tag yet). A stored value that is not a JSON list is replaced, as MLflow would fail on it.
pub fn append(previous: Option<&str>, entry: &str) -> String {
    let items = previous
        .and_then(|p| serde_json::from_str::<RawList>(p).ok())
        .map(|list| {
            list.0
                .iter()
                .map(|r| r.get().to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut out = String::from("[");
    for item in items {
        out.push_str(&item);
        out.push_str(", ");
    }
    out.push_str(entry);
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"{"run_id": "abc", "artifact_path": "model", "utc_time_created": "2026-12-04 16:00:00.123456", "flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model", "config": {"x": 1}, "env": {"conda": "conda.yaml"}}, "sklearn": {"pickled_model": "model.pkl", "sklearn_version": "1.5"}}, "model_uuid": "u1", "mlflow_version": "3.17.2", "model_id": "m-1"}"#;

    #[test]
    fn entry_is_what_python_writes() {
        assert_eq!(
            history_entry(MODEL).unwrap(),
            r#"{"run_id": "abc", "artifact_path": "model", "utc_time_created": "2026-12-04 16:00:00.123456", "model_uuid": "u1", "flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model", "env": {"conda": "conda.yaml"}}, "sklearn": {"pickled_model": "model.pkl", "sklearn_version": "1.5"}}}"#
        );
    }

    #[test]
    fn nulls_and_missing_uuid() {
        let entry = history_entry(
            r#"{"run_id": null, "artifact_path": "m", "utc_time_created": "t", "flavors": {"f": "x"}}"#,
        )
        .unwrap();
        assert_eq!(
            entry,
            r#"{"artifact_path": "m", "utc_time_created": "t", "model_uuid": null, "flavors": {"f": "x"}}"#
        );
    }

    #[test]
    fn refusals() {
        let err = history_entry("{not json").unwrap_err();
        assert!(
            err.message.starts_with("Malformed model info."),
            "{}",
            err.message
        );
        let err = history_entry(r#"{"run_id": "a", "artifact_path": "m"}"#).unwrap_err();
        assert_eq!(
            err.message,
            "Model json is missing mandatory fields: {'flavors', 'utc_time_created'}"
        );
        assert!(history_entry(
            r#"{"run_id": "a", "artifact_path": "m", "utc_time_created": "t", "flavors": 3}"#
        )
        .is_err());
    }

    #[test]
    fn history_appends() {
        assert_eq!(append(None, "{\"a\": 1}"), "[{\"a\": 1}]");
        assert_eq!(
            append(Some("[{\"a\": 1}]"), "{\"b\": 2}"),
            "[{\"a\": 1}, {\"b\": 2}]"
        );
        assert_eq!(append(Some("garbage"), "{}"), "[{}]");
    }

    #[test]
    fn python_escapes() {
        let mut s = String::new();
        py_string(&mut s, "é\"\n😀");
        assert_eq!(s, "\"\\u00e9\\\"\\n\\ud83d\\ude00\"");
    }
}
