//! Registered scorers (`mlflow.genai.scorers`): versions of a serialized scorer per
//! experiment and name, and MLflow's checks of what a server accepts to keep.

use crate::domain::traces::pyjson::PyValue;
use crate::error::{MlflowError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct ScorerVersion {
    pub experiment_id: i64,
    pub scorer_name: String,
    pub scorer_version: i64,
    pub serialized_scorer: String,
    pub creation_time: i64,
    pub scorer_id: String,
}

/// An online scoring configuration (`online_scoring_configs`), read for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineScoringConfig {
    pub online_scoring_config_id: String,
    pub scorer_id: String,
    pub sample_rate: f64,
    pub experiment_id: String,
    pub filter_string: Option<String>,
}

const CUSTOM_SCORER_REFUSED: &str = "Custom scorer registration (using @scorer decorator) is \
     disabled on this server: custom scorers carry code that would run when they are \
     deserialized. Set MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS=true on the server to allow them.";

/// Options of third-party scorers that choose where their LLM client connects.
const DESTINATION_KEYS: [&str; 5] = [
    "api_base",
    "base_url",
    "model_list",
    "fallbacks",
    "custom_llm_provider",
];

pub fn validate_scorer_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(MlflowError::invalid(
            "Scorer name cannot be empty or contain only whitespace.",
        ));
    }
    Ok(())
}

/// Whether any dict in the value has a non-null `call_source` (a `@scorer` function).
fn has_call_source(v: &PyValue) -> bool {
    match v {
        PyValue::Dict(entries) => entries.iter().any(|(k, v)| {
            (k == "call_source" && !matches!(v, PyValue::Null)) || has_call_source(v)
        }),
        PyValue::List(items) => items.iter().any(has_call_source),
        _ => false,
    }
}

fn destination_keys(v: &PyValue, found: &mut Vec<String>) {
    match v {
        PyValue::Dict(entries) => {
            for (k, v) in entries {
                if DESTINATION_KEYS.contains(&k.as_str()) && !found.contains(k) {
                    found.push(k.clone());
                }
                destination_keys(v, found);
            }
        }
        PyValue::List(items) => {
            for item in items {
                // A list of two-item pairs is a mapping too.
                if let PyValue::List(pair) = item {
                    if let [PyValue::Str(k), _] = pair.as_slice() {
                        if DESTINATION_KEYS.contains(&k.as_str()) && !found.contains(k) {
                            found.push(k.clone());
                        }
                    }
                }
                destination_keys(item, found);
            }
        }
        _ => {}
    }
}

fn check_third_party(v: &PyValue) -> Result<()> {
    match v {
        PyValue::Dict(entries) => {
            if let Some(data @ PyValue::Dict(_)) = v.get("third_party_scorer_data") {
                match data.get("kwargs") {
                    None | Some(PyValue::Null) | Some(PyValue::Dict(_)) => {}
                    Some(_) => {
                        return Err(MlflowError::invalid(
                            "third_party_scorer_data.kwargs must be a JSON object.",
                        ))
                    }
                }
                let mut found = Vec::new();
                if let Some(kwargs) = data.get("kwargs") {
                    destination_keys(kwargs, &mut found);
                }
                if !found.is_empty() {
                    found.sort();
                    let keys: Vec<String> = found.iter().map(|k| format!("'{k}'")).collect();
                    return Err(MlflowError::invalid(format!(
                        "third_party_scorer_data.kwargs must not contain {}: these options \
                         choose where the scorer's LLM client sends requests. Configure the \
                         judge endpoint on the server instead.",
                        keys.join(", ")
                    )));
                }
            }
            entries.iter().try_for_each(|(_, v)| check_third_party(v))
        }
        PyValue::List(items) => items.iter().try_for_each(check_third_party),
        _ => Ok(()),
    }
}

/// The model a serialized scorer names (judges, built-in scorers, wrapped judges).
fn scorer_model(v: &PyValue) -> Option<&PyValue> {
    for key in [
        "instructions_judge_pydantic_data",
        "builtin_scorer_pydantic_data",
        "third_party_scorer_data",
    ] {
        if let Some(data) = v.get(key).filter(|d| d.truthy()) {
            return data.get("model");
        }
    }
    v.get("memory_augmented_judge_data")
        .filter(|d| d.truthy())
        .and_then(|d| d.get("base_judge"))
        .and_then(scorer_model)
}

/// Checks a serialized scorer as MLflow's server does before keeping it: valid JSON, no
/// custom code unless allowed, no third-party options that redirect the judge, a model
/// given as a non-empty string. Models behind the AI gateway (`gateway:/<endpoint>`) are
/// resolved by the service.
pub fn check_serialized_scorer(text: &str, allow_custom: bool) -> Result<()> {
    let value = PyValue::loads(text)
        .ok_or_else(|| MlflowError::invalid("serialized_scorer must be valid JSON"))?;
    if !allow_custom && has_call_source(&value) {
        return Err(MlflowError::invalid(CUSTOM_SCORER_REFUSED));
    }
    check_third_party(&value)?;
    match scorer_model(&value) {
        None | Some(PyValue::Null) => Ok(()),
        Some(PyValue::Str(m)) if m.trim().is_empty() => Err(MlflowError::invalid(
            "Scorer model cannot be empty or contain only whitespace.",
        )),
        Some(PyValue::Str(_)) => Ok(()),
        Some(_) => Err(MlflowError::invalid("Scorer model must be a string.")),
    }
}

/// MLflow's model URI of a gateway endpoint.
const GATEWAY_PREFIX: &str = "gateway:/";

/// The endpoint reference (a name when registered, an id as stored) of a scorer whose model
/// is behind the AI gateway.
pub fn gateway_endpoint_ref(serialized: &str) -> Option<String> {
    let value = PyValue::loads(serialized)?;
    let model = scorer_model(&value)?.as_str()?;
    model
        .strip_prefix(GATEWAY_PREFIX)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

fn set_model(v: &mut PyValue, model: &PyValue) -> bool {
    let PyValue::Dict(entries) = v else {
        return false;
    };
    for key in [
        "instructions_judge_pydantic_data",
        "builtin_scorer_pydantic_data",
        "third_party_scorer_data",
    ] {
        if let Some((_, PyValue::Dict(fields))) = entries.iter_mut().find(|(k, _)| k == key) {
            match fields.iter_mut().find(|(k, _)| k == "model") {
                Some((_, m)) => *m = model.clone(),
                None => fields.push(("model".to_string(), model.clone())),
            }
            return true;
        }
    }
    if let Some((_, PyValue::Dict(fields))) = entries
        .iter_mut()
        .find(|(k, _)| k == "memory_augmented_judge_data")
    {
        if let Some((_, base)) = fields.iter_mut().find(|(k, _)| k == "base_judge") {
            return set_model(base, model);
        }
    }
    false
}

/// The serialized scorer with its gateway model pointing at `endpoint_ref` (`None`: no
/// model, MLflow's answer for a deleted endpoint), as Python's `json.dumps` writes it.
pub fn with_gateway_model(serialized: &str, endpoint_ref: Option<&str>) -> String {
    let Some(mut value) = PyValue::loads(serialized) else {
        return serialized.to_string();
    };
    let model = endpoint_ref.map_or(PyValue::Null, |r| {
        PyValue::Str(format!("{GATEWAY_PREFIX}{r}"))
    });
    if set_model(&mut value, &model) {
        value.dumps(true)
    } else {
        serialized.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_models_are_found_and_rewritten() {
        let judge = r#"{"name": "j", "instructions_judge_pydantic_data": {"model": "gateway:/chat", "x": 1}}"#;
        assert_eq!(gateway_endpoint_ref(judge).as_deref(), Some("chat"));
        assert_eq!(
            with_gateway_model(judge, Some("e-1")),
            r#"{"name": "j", "instructions_judge_pydantic_data": {"model": "gateway:/e-1", "x": 1}}"#
        );
        assert!(with_gateway_model(judge, None).contains(r#""model": null"#));
        let nested = r#"{"memory_augmented_judge_data": {"base_judge": {"builtin_scorer_pydantic_data": {"model": "gateway:/a"}}}}"#;
        assert_eq!(gateway_endpoint_ref(nested).as_deref(), Some("a"));
        assert!(with_gateway_model(nested, Some("e-2")).contains("gateway:/e-2"));
        assert_eq!(
            gateway_endpoint_ref(r#"{"builtin_scorer_pydantic_data": {"model": "openai:/x"}}"#),
            None
        );
    }

    #[test]
    fn serialized_scorer_checks() {
        let builtin = r#"{"name": "c", "builtin_scorer_class": "Correctness", "builtin_scorer_pydantic_data": {"model": "openai:/gpt-4o"}, "call_source": null}"#;
        assert!(check_serialized_scorer(builtin, false).is_ok());
        let custom = r#"{"name": "f", "call_source": "return 1"}"#;
        assert!(check_serialized_scorer(custom, false).is_err());
        assert!(check_serialized_scorer(custom, true).is_ok());
        let nested = r#"{"ensemble_scorer_data": {"scorers": [{"call_source": "x"}]}}"#;
        assert!(check_serialized_scorer(nested, false).is_err());
        let redirect =
            r#"{"third_party_scorer_data": {"kwargs": {"opts": [["api_base", "http://x"]]}}}"#;
        let err = check_serialized_scorer(redirect, true).unwrap_err();
        assert!(err.message.contains("'api_base'"), "{}", err.message);
        assert!(check_serialized_scorer("{", false).is_err());
        let blank = r#"{"instructions_judge_pydantic_data": {"model": " "}}"#;
        assert!(check_serialized_scorer(blank, false).is_err());
    }
}
