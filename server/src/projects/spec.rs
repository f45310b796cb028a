//! The `MLproject` file: entry points, typed parameters with defaults, and the shell command an
//! entry point becomes once its `{param}` placeholders are filled, as MLflow computes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::ProjectError;

/// Where a project says its Python environment comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectEnv {
    /// A `python_env.yaml` (named by `python_env:` or found in the directory).
    Python(PathBuf),
    /// A `conda.yaml`; its python pin and pip dependencies build a virtualenv here.
    Conda(PathBuf),
    /// `docker_env:`: the image named there.
    Docker(String),
    /// No environment file at all.
    None,
}

/// A parsed project.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub env: ProjectEnv,
    /// By name.
    entry_points: Vec<EntryPoint>,
}

#[derive(Debug, Clone)]
pub struct EntryPoint {
    pub name: String,
    pub command: String,
    /// By name.
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    /// `string` (the default), `float`, `int`, `path` or `uri`.
    pub kind: String,
    /// The default as MLflow's `str()` prints it; `None` means the value is required.
    pub default: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawProject {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    entry_points: Option<BTreeMap<String, RawEntryPoint>>,
    #[serde(default)]
    python_env: Option<String>,
    #[serde(default)]
    conda_env: Option<String>,
    #[serde(default)]
    docker_env: Option<Value>,
}

#[derive(Deserialize)]
struct RawEntryPoint {
    #[serde(default)]
    parameters: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    command: Option<String>,
}

impl Project {
    /// Reads `dir`'s `MLproject` (any case, as MLflow finds it); a directory without one is a
    /// project with no entry points, whose scripts run by name (`-e train.py`).
    pub fn load(dir: &Path) -> Result<Self, ProjectError> {
        let io = |e| ProjectError::io(dir, e);
        let mut file = None;
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_name().to_string_lossy().to_lowercase() == "mlproject" {
                file = Some(entry.path());
            }
        }
        let raw = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ProjectError::io(path, e))?;
                parse_raw(&text).map_err(|reason| ProjectError::Spec {
                    path: path.display().to_string(),
                    reason,
                })?
            }
            None => RawProject::default(),
        };
        Self::from_raw(dir, raw)
    }

    fn from_raw(dir: &Path, raw: RawProject) -> Result<Self, ProjectError> {
        let declared = [
            raw.python_env.as_ref().map(|_| "python_env"),
            raw.conda_env.as_ref().map(|_| "conda_env"),
            raw.docker_env.as_ref().map(|_| "docker_env"),
        ];
        let declared: Vec<&str> = declared.into_iter().flatten().collect();
        if declared.len() > 1 {
            return Err(ProjectError::invalid(format!(
                "Project cannot contain multiple environment fields: {}",
                declared.join(", ")
            )));
        }
        let existing = |file: &str, what: &str| -> Result<PathBuf, ProjectError> {
            let path = dir.join(file);
            if path.exists() {
                Ok(path)
            } else {
                Err(ProjectError::invalid(format!(
                    "Project specified {what} file {}, but no such file was found.",
                    path.display()
                )))
            }
        };
        let env =
            if let Some(docker) = &raw.docker_env {
                match docker.get("image").and_then(Value::as_str) {
                    Some(image) if !image.is_empty() => ProjectEnv::Docker(image.to_string()),
                    _ => return Err(ProjectError::invalid(
                        "Project configuration (MLproject file) was invalid: Docker environment \
                         specified but no image attribute found.",
                    )),
                }
            } else if let Some(file) = &raw.python_env {
                ProjectEnv::Python(existing(file, "python_env")?)
            } else if let Some(file) = &raw.conda_env {
                ProjectEnv::Conda(existing(file, "conda environment")?)
            } else if dir.join("python_env.yaml").exists() {
                ProjectEnv::Python(dir.join("python_env.yaml"))
            } else if dir.join("conda.yaml").exists() {
                ProjectEnv::Conda(dir.join("conda.yaml"))
            } else {
                ProjectEnv::None
            };
        let mut entry_points = Vec::new();
        for (name, ep) in raw.entry_points.unwrap_or_default() {
            let command = ep.command.ok_or_else(|| {
                ProjectError::invalid(format!("entry point '{name}' has no command"))
            })?;
            let mut parameters = Vec::new();
            for (pname, spec) in ep.parameters.unwrap_or_default() {
                parameters.push(Parameter::from_yaml(pname, &spec)?);
            }
            entry_points.push(EntryPoint {
                name,
                command,
                parameters,
            });
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            name: raw.name.as_ref().map(python_str),
            env,
            entry_points,
        })
    }

    /// The entry point called `name`, else a script of that name (`python x.py`,
    /// `$SHELL x.sh`), as MLflow interprets it.
    pub fn entry_point(&self, name: &str) -> Result<EntryPoint, ProjectError> {
        if let Some(ep) = self.entry_points.iter().find(|e| e.name == name) {
            return Ok(ep.clone());
        }
        let runner = match Path::new(name).extension().and_then(|e| e.to_str()) {
            Some("py") => Some("python".to_string()),
            Some("sh") => Some(
                std::env::var("SHELL")
                    .ok()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "bash".into()),
            ),
            _ => None,
        };
        match runner {
            Some(runner) => Ok(EntryPoint {
                name: name.to_string(),
                command: format!("{runner} {}", shell_quote(name)),
                parameters: Vec::new(),
            }),
            None => {
                let names: Vec<String> = self
                    .entry_points
                    .iter()
                    .map(|e| format!("'{}'", e.name))
                    .collect();
                let hint = if self.entry_points.is_empty() {
                    format!(
                        " ({} has no MLproject file: name a script, such as -e main.py)",
                        self.dir.display()
                    )
                } else {
                    String::new()
                };
                Err(ProjectError::invalid(format!(
                    "Could not find {name} among entry points [{}] or interpret {name} as a \
                     runnable script. Supported script file extensions: ['.py', '.sh']{hint}",
                    names.join(", ")
                )))
            }
        }
    }
}

fn parse_raw(text: &str) -> Result<RawProject, String> {
    if text.trim().is_empty() {
        return Ok(RawProject::default());
    }
    serde_saphyr::from_str::<Option<RawProject>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string())
}

impl Parameter {
    /// `name: TYPE` or `name: {type: TYPE, default: VALUE}`.
    fn from_yaml(name: String, spec: &Value) -> Result<Self, ProjectError> {
        let (kind, default) = match spec {
            Value::String(kind) => (kind.clone(), None),
            Value::Object(map) => (
                map.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_string(),
                map.get("default").filter(|d| !d.is_null()).map(python_str),
            ),
            Value::Null => ("string".to_string(), None),
            other => {
                return Err(ProjectError::invalid(format!(
                    "parameter '{name}' must be a type name or a mapping with type and default, \
                     got {other}"
                )))
            }
        };
        Ok(Parameter {
            name,
            kind,
            default,
        })
    }

    /// The value checked against the parameter's type; `path` values that name local files
    /// become absolute when `resolve_paths` (for the command; the logged value stays as given).
    fn value(&self, given: &str, resolve_paths: bool) -> Result<String, ProjectError> {
        let bad = |what: &str| {
            ProjectError::invalid(format!(
                "Expected {what} for parameter {} but got {given}",
                self.name
            ))
        };
        match self.kind.as_str() {
            "float" if given.trim().parse::<f64>().is_err() => Err(bad("a float")),
            "int" if given.trim().parse::<i64>().is_err() => Err(bad("an integer")),
            "uri" if !is_uri(given) => Err(bad("URI")),
            "path" if resolve_paths => resolve_path(&self.name, given),
            _ => Ok(given.to_string()),
        }
    }
}

/// A value with a scheme (`s3://b/k`, `file:///x`, `mlflow-artifacts:/p`).
fn is_uri(value: &str) -> bool {
    value.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

fn resolve_path(name: &str, given: &str) -> Result<String, ProjectError> {
    let local = match given.strip_prefix("file://") {
        Some(rest) => rest,
        None if is_uri(given) => {
            return Err(ProjectError::invalid(format!(
                "parameter {name} of type path is the remote URI {given}: only local paths are \
                 supported here; download it first, or declare the parameter as type uri"
            )))
        }
        None => given,
    };
    let path = Path::new(local);
    if !path.exists() {
        return Err(ProjectError::invalid(format!(
            "Got value {given} for parameter {name}, but no such file or directory was found."
        )));
    }
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .map_err(|e| ProjectError::io(path, e))
}

/// The parameters of one invocation: the entry point's (defaults filled in) and the extra
/// ones the user gave, each value shell-quoted as MLflow substitutes and logs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub params: Vec<(String, String)>,
    pub extra: Vec<(String, String)>,
}

impl EntryPoint {
    /// Fills in defaults and checks types; `resolve_paths` makes local `path` values
    /// absolute (for the command, not for what is logged).
    pub fn resolve(
        &self,
        given: &[(String, String)],
        resolve_paths: bool,
    ) -> Result<Resolved, ProjectError> {
        let lookup = |name: &str| given.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let missing: Vec<String> = self
            .parameters
            .iter()
            .filter(|p| p.default.is_none() && lookup(&p.name).is_none())
            .map(|p| format!("'{}'", p.name))
            .collect();
        if !missing.is_empty() {
            return Err(ProjectError::invalid(format!(
                "No value given for missing parameters: {}",
                missing.join(", ")
            )));
        }
        let mut params = Vec::new();
        for p in &self.parameters {
            let raw = lookup(&p.name).or(p.default.as_ref()).cloned();
            let value = p.value(&raw.unwrap_or_default(), resolve_paths)?;
            params.push((p.name.clone(), shell_quote(&value)));
        }
        let extra = given
            .iter()
            .filter(|(k, _)| !self.parameters.iter().any(|p| &p.name == k))
            .map(|(k, v)| (k.clone(), shell_quote(v)))
            .collect();
        Ok(Resolved { params, extra })
    }

    /// The shell command: `{name}` replaced by the quoted values (`{{`/`}}` are literal
    /// braces), then `--key value` for each extra parameter.
    pub fn command(&self, resolved: &Resolved) -> Result<String, ProjectError> {
        let mut out = String::new();
        let mut chars = self.command.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    out.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    out.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let value = resolved
                        .params
                        .iter()
                        .find(|(k, _)| *k == name)
                        .ok_or_else(|| {
                            ProjectError::invalid(format!(
                                "the command of entry point '{}' uses {{{name}}}, which is not \
                                 one of its parameters",
                                self.name
                            ))
                        })?;
                    out.push_str(&value.1);
                }
                c => out.push(c),
            }
        }
        for (k, v) in &resolved.extra {
            out.push_str(&format!(" --{k} {v}"));
        }
        Ok(out)
    }
}

/// POSIX shell quoting as Python's `shlex.quote`: safe words unchanged, anything else in
/// single quotes.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// A YAML scalar as Python's `str()` prints it (MLflow formats defaults that way): `1.0`,
/// `1e-05`, `True`.
pub fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) if n.is_f64() => python_float(n.as_f64().unwrap_or_default()),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if f != 0.0 && !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        let raw = parse_raw(yaml).expect("yaml");
        Project::from_raw(Path::new("/nonexistent"), raw).expect("project")
    }

    #[test]
    fn quoting_matches_shlex() {
        assert_eq!(shell_quote("linear_regression"), "linear_regression");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_quote("/tmp/x.csv"), "/tmp/x.csv");
    }

    #[test]
    fn defaults_print_as_python_does() {
        let cases = [
            ("0.1", "0.1"),
            ("1.0", "1.0"),
            ("0.00001", "1e-05"),
            ("1e16", "1e+16"),
            ("5", "5"),
            ("true", "True"),
            ("abc", "abc"),
        ];
        for (yaml, want) in cases {
            let v: Value = serde_saphyr::from_str(yaml).expect("yaml");
            assert_eq!(python_str(&v), want, "{yaml}");
        }
    }

    #[test]
    fn command_substitutes_quoted_values_and_appends_extras() {
        let p = project(
            "name: demo\nentry_points:\n  main:\n    parameters:\n      model_type: {type: string, default: linear_regression}\n      alpha: {type: float, default: 0.5}\n      n: int\n    command: \"python train.py --model {model_type} --alpha {alpha} -n {n} {{x}}\"\n",
        );
        let ep = p.entry_point("main").expect("main");
        let given = vec![
            ("n".to_string(), "3".to_string()),
            ("model_type".to_string(), "random forest".to_string()),
            ("extra".to_string(), "x y".to_string()),
        ];
        let r = ep.resolve(&given, true).expect("resolve");
        assert_eq!(
            ep.command(&r).expect("command"),
            "python train.py --model 'random forest' --alpha 0.5 -n 3 {x} --extra 'x y'"
        );
        assert_eq!(r.extra, vec![("extra".to_string(), "'x y'".to_string())]);
    }

    #[test]
    fn types_and_missing_values_are_checked() {
        let p = project(
            "entry_points:\n  main:\n    parameters:\n      a: float\n      b: {type: int, default: 2}\n      u: {type: uri, default: s3://b/k}\n    command: echo {a} {b} {u}\n",
        );
        let ep = p.entry_point("main").expect("main");
        let err = ep.resolve(&[], true).expect_err("missing a");
        assert!(err.to_string().contains("missing parameters: 'a'"), "{err}");
        let bad = [("a", "x"), ("b", "2.5"), ("u", "not a uri")];
        for (k, v) in bad {
            let mut given = vec![(k.to_string(), v.to_string())];
            if k != "a" {
                given.push(("a".to_string(), "1".to_string()));
            }
            assert!(ep.resolve(&given, true).is_err(), "{k}={v}");
        }
        let ok = ep
            .resolve(&[("a".into(), "1e-3".into())], true)
            .expect("ok");
        assert_eq!(ep.command(&ok).expect("cmd"), "echo 1e-3 2 s3://b/k");
    }

    #[test]
    fn scripts_run_by_name_and_unknown_entry_points_fail() {
        let p = project("");
        let ep = p.entry_point("train.py").expect("script");
        let r = ep
            .resolve(&[("alpha".into(), "0.1".into())], true)
            .expect("r");
        assert_eq!(ep.command(&r).expect("cmd"), "python train.py --alpha 0.1");
        let err = p.entry_point("main").expect_err("no main");
        assert!(err.to_string().contains("Could not find main"), "{err}");
    }
}
