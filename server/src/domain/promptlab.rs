//! Prompt-engineering ("promptlab") runs, which MLflow's UI creates in one call
//! (`runs/create-promptlab-run`): the request's rules, the parameters and tags the run gets,
//! and the files its artifacts hold: `eval_results_table.json` (one evaluation row) and a
//! `model/` directory with an `MLmodel` whose pyfunc flavor names MLflow's promptlab loader,
//! so that the official client can load it as MLflow's own server writes it.
//!
//! The YAML files are written with JSON scalars and flow collections, which YAML reads as
//! the same values.

use serde_json::{json, Map, Value};

use crate::error::{MlflowError, Result};
use crate::wire::KeyValue;

/// The request, checked.
#[derive(Debug, Clone)]
pub struct PromptlabRequest {
    pub experiment_id: String,
    pub run_name: Option<String>,
    pub tags: Vec<KeyValue>,
    pub prompt_template: String,
    pub prompt_parameters: Vec<KeyValue>,
    pub model_route: String,
    pub model_parameters: Vec<KeyValue>,
    pub model_input: String,
    pub model_output: Option<String>,
    pub model_output_parameters: Vec<KeyValue>,
    pub user_id: String,
    pub start_time: Option<i64>,
}

/// A value as Python's `str()` shows it (the run's parameters are strings).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// Python's truthiness, which MLflow's "must specify" checks use.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Bool(true)) => true,
    }
}

fn pairs(value: Option<&Value>, field: &str) -> Result<Vec<KeyValue>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(MlflowError::invalid_value(field, other)),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(o) => Ok(KeyValue {
                key: o.get("key").map(text).unwrap_or_default(),
                value: o.get("value").map(text).unwrap_or_default(),
            }),
            other => Err(MlflowError::invalid_value(field, other)),
        })
        .collect()
}

impl PromptlabRequest {
    /// Checks the fields in MLflow's order, each with its "must specify" message.
    pub fn parse(body: &Value) -> Result<Self> {
        let field = |name: &str| body.get(name);
        for name in [
            "experiment_id",
            "prompt_template",
            "prompt_parameters",
            "model_route",
            "model_input",
            "mlflow_version",
        ] {
            if !truthy(field(name)) {
                return Err(MlflowError::invalid(format!(
                    "CreatePromptlabRun request must specify {name}."
                )));
            }
        }
        let string = |name: &str| field(name).map(text).unwrap_or_default();
        let optional = |name: &str| match field(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(text(v)),
        };
        let start_time = match field("start_time") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| MlflowError::invalid_value("start_time", v))?,
            ),
        };
        Ok(PromptlabRequest {
            experiment_id: string("experiment_id"),
            run_name: optional("run_name"),
            tags: pairs(field("tags"), "tags")?,
            prompt_template: string("prompt_template"),
            prompt_parameters: pairs(field("prompt_parameters"), "prompt_parameters")?,
            model_route: string("model_route"),
            model_parameters: pairs(field("model_parameters"), "model_parameters")?,
            model_input: string("model_input"),
            model_output: optional("model_output"),
            model_output_parameters: pairs(
                field("model_output_parameters"),
                "model_output_parameters",
            )?,
            user_id: optional("user_id").unwrap_or_else(|| "unknown".into()),
            start_time,
        })
    }

    /// The run's parameters: the model's, then its route and the prompt template.
    pub fn params(&self) -> Vec<KeyValue> {
        let mut params = self.model_parameters.clone();
        params.push(kv("model_route", &self.model_route));
        params.push(kv("prompt_template", &self.prompt_template));
        params
    }

    /// The evaluation table of the run's one prompt: parameters, prompt, output, then the
    /// output's parameters.
    pub fn eval_results(&self) -> String {
        let mut columns: Vec<&str> = self
            .prompt_parameters
            .iter()
            .map(|p| p.key.as_str())
            .collect();
        columns.extend(["prompt", "output"]);
        let mut row: Vec<Value> = self
            .prompt_parameters
            .iter()
            .map(|p| Value::from(p.value.clone()))
            .collect();
        row.push(Value::from(self.model_input.clone()));
        row.push(self.model_output.clone().map_or(Value::Null, Value::from));
        for p in &self.model_output_parameters {
            columns.push(&p.key);
            row.push(Value::from(p.value.clone()));
        }
        json!({ "columns": columns, "data": [row] }).to_string()
    }

    /// The `model/` directory's files, by name.
    pub fn model_files(
        &self,
        run_id: &str,
        created: &str,
        mlflow_version: &str,
    ) -> Vec<(String, String)> {
        let params = |list: &[KeyValue]| {
            Value::Object(
                list.iter()
                    .map(|p| (p.key.clone(), Value::from(p.value.clone())))
                    .collect::<Map<_, _>>(),
            )
        };
        let parameters = format!(
            "model_parameters: {}\nmodel_route: {}\nprompt_parameters: {}\nprompt_template: {}\n",
            params(&self.model_parameters),
            Value::from(self.model_route.clone()),
            params(&self.prompt_parameters),
            Value::from(self.prompt_template.clone()),
        );
        let column = |name: &str| json!({"type": "string", "name": name, "required": true});
        let inputs: Vec<Value> = self
            .prompt_parameters
            .iter()
            .map(|p| column(&p.key))
            .collect();
        let outputs = vec![column("output")];
        let example = json!({
            "inputs": self.prompt_parameters.iter().map(|p| p.value.clone()).collect::<Vec<_>>()
        });
        let requirement = format!("mlflow[gateway]=={mlflow_version}");
        let mlmodel = format!(
            "artifact_path: model\n\
             flavors:\n  python_function:\n    env:\n      conda: conda.yaml\n      \
             virtualenv: python_env.yaml\n    loader_module: mlflow.prompt.promptlab_model\n    \
             parameters_path: parameters.yaml\n\
             mlflow_version: {version}\n\
             run_id: {run_id}\n\
             saved_input_example_info: {{\"artifact_path\": \"input_example.json\", \"type\": \"json_object\"}}\n\
             signature:\n  inputs: {inputs}\n  outputs: {outputs}\n  params: null\n\
             utc_time_created: {created}\n",
            version = Value::from(mlflow_version),
            run_id = Value::from(run_id),
            inputs = Value::from(Value::Array(inputs).to_string()),
            outputs = Value::from(Value::Array(outputs).to_string()),
            created = Value::from(created),
        );
        let conda = format!(
            "channels: [\"conda-forge\"]\ndependencies: [\"python\", \"pip\", {{\"pip\": [{}]}}]\nname: mlflow-env\n",
            Value::from(requirement.clone())
        );
        vec![
            ("MLmodel".into(), mlmodel),
            ("parameters.yaml".into(), parameters),
            ("input_example.json".into(), example.to_string()),
            ("conda.yaml".into(), conda),
            (
                "python_env.yaml".into(),
                "build_dependencies: [\"pip\"]\ndependencies: [\"-r requirements.txt\"]\n".into(),
            ),
            ("requirements.txt".into(), requirement),
        ]
    }

    /// The model as `runs/log-model` records it in the run's `mlflow.log-model.history`.
    pub fn model_json(&self, run_id: &str, created: &str) -> String {
        json!({
            "run_id": run_id,
            "artifact_path": "model",
            "utc_time_created": created,
            "flavors": {},
        })
        .to_string()
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
    }
}

/// The tags that make the UI show the run as a prompt-engineering run with its table.
pub fn run_tags() -> Vec<KeyValue> {
    vec![
        kv(
            "mlflow.loggedArtifacts",
            r#"[{"path": "eval_results_table.json", "type": "table"}]"#,
        ),
        kv("mlflow.runSourceType", "PROMPT_ENGINEERING"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_fields_in_order() {
        let mut body = json!({});
        for (name, value) in [
            ("experiment_id", json!("1")),
            ("prompt_template", json!("t")),
            ("prompt_parameters", json!([{"key": "k", "value": 1}])),
            ("model_route", json!("r")),
            ("model_input", json!("i")),
            ("mlflow_version", json!("3")),
        ] {
            let err = PromptlabRequest::parse(&body).unwrap_err();
            assert_eq!(
                err.message,
                format!("CreatePromptlabRun request must specify {name}.")
            );
            body[name] = value;
        }
        let r = PromptlabRequest::parse(&body).unwrap();
        assert_eq!(r.prompt_parameters[0].value, "1");
        assert_eq!(r.user_id, "unknown");
        assert_eq!(
            r.eval_results(),
            r#"{"columns":["k","prompt","output"],"data":[["1","i",null]]}"#
        );
    }
}
