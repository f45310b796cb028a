//! The `MLmodel` file: a model's flavors, signature and where its environment is described.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::schema::Signature;
use super::ServingError;

/// What serving needs from `MLmodel`.
#[derive(Debug, Clone)]
pub struct MlModel {
    pub dir: PathBuf,
    /// Flavor name → its configuration (`python_function`, `onnx`, `sklearn`, ...).
    pub flavors: serde_json::Map<String, Value>,
    pub signature: Signature,
    pub mlflow_version: Option<String>,
    pub run_id: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    flavors: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    signature: Option<RawSignature>,
    #[serde(default)]
    mlflow_version: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    inputs: Option<String>,
    #[serde(default)]
    outputs: Option<String>,
    #[serde(default)]
    params: Option<String>,
}

impl MlModel {
    /// Reads `dir/MLmodel`.
    pub fn load(dir: &Path) -> Result<Self, ServingError> {
        let path = dir.join("MLmodel");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ServingError::Model(format!(
                    "{} has no MLmodel file: it is not an MLflow model directory",
                    dir.display()
                ))
            } else {
                ServingError::io(&path, e)
            }
        })?;
        Self::parse(dir, &text)
    }

    pub fn parse(dir: &Path, text: &str) -> Result<Self, ServingError> {
        let raw: Raw = serde_saphyr::from_str(text).map_err(|e| {
            ServingError::Model(format!("{}/MLmodel is not valid YAML: {e}", dir.display()))
        })?;
        let flavors = raw.flavors.unwrap_or_default();
        if flavors.is_empty() {
            return Err(ServingError::Model(format!(
                "{}/MLmodel lists no flavors",
                dir.display()
            )));
        }
        let signature = match raw.signature {
            None => Signature::default(),
            Some(s) => Signature::parse(
                s.inputs.as_deref(),
                s.outputs.as_deref(),
                s.params.as_deref(),
            )
            .map_err(|e| {
                ServingError::Model(format!("{}/MLmodel: signature: {e}", dir.display()))
            })?,
        };
        Ok(MlModel {
            dir: dir.to_path_buf(),
            flavors,
            signature,
            mlflow_version: raw.mlflow_version,
            run_id: raw.run_id,
        })
    }

    pub fn flavor(&self, name: &str) -> Option<&Value> {
        self.flavors.get(name)
    }

    /// The pyfunc loader module, such as `mlflow.sklearn`.
    pub fn loader_module(&self) -> Option<&str> {
        self.flavor("python_function")?
            .get("loader_module")?
            .as_str()
    }

    /// Flavor names, comma-separated, for messages.
    pub fn flavor_names(&self) -> String {
        self.flavors.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKLEARN: &str = r#"
artifact_path: /tmp/x
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.skops
    python_version: 3.11.7
  sklearn:
    pickled_model: model.skops
mlflow_version: 3.17.2
run_id: 69732faaf75040599f02dbe6a18d396c
signature:
  inputs: '[{"type": "double", "name": "a", "required": true}, {"type": "double",
    "name": "b", "required": true}]'
  outputs: '[{"type": "double", "required": true}]'
  params: null
"#;

    #[test]
    fn an_sklearn_mlmodel_parses() {
        let m = MlModel::parse(Path::new("/m"), SKLEARN).expect("parses");
        assert_eq!(m.loader_module(), Some("mlflow.sklearn"));
        assert_eq!(m.mlflow_version.as_deref(), Some("3.17.2"));
        assert_eq!(m.flavor_names(), "python_function, sklearn");
        let inputs = m.signature.inputs.as_ref().expect("inputs");
        assert_eq!(
            inputs.to_string(),
            "['a': double (required), 'b': double (required)]"
        );
    }

    #[test]
    fn broken_mlmodels_are_refused() {
        assert!(MlModel::parse(Path::new("/m"), "flavors: {}\n").is_err());
        assert!(MlModel::parse(Path::new("/m"), "flavors: [\n").is_err());
        assert!(MlModel::parse(
            Path::new("/m"),
            "flavors: {python_function: {}}\nsignature: {inputs: 'nope'}\n"
        )
        .is_err());
    }
}
