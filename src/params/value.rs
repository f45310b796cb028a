//! One parameter value against its declared type: booleans, bounded numbers, lists, maps,
//! objects with declared keys, URLs and URIs with their schemes, paths, checksums, choices.

use serde_json::{Map, Value};

use crate::diag::did_you_mean;
use crate::presets::{ParamSpec, ParamType};
use crate::report::mask_userinfo;

pub type Problem = (String, Option<String>);

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn wrong_type(name: &str, expected: &str, v: &Value) -> Problem {
    let help = match (expected, v) {
        ("a boolean (true or false)", Value::String(s))
            if ["yes", "no", "on", "off", "y", "n", "True", "False"].contains(&s.as_str()) =>
        {
            Some("write `true` or `false`".to_string())
        }
        ("a number", Value::String(s)) if s.parse::<i64>().is_ok() => {
            Some(format!("write {s} without quotes"))
        }
        _ => None,
    };
    (
        format!(
            "parameter `{name}` must be {expected}, found {}",
            type_name(v)
        ),
        help,
    )
}

/// Checks one value against its declared type.
pub fn check_value(name: &str, spec: &ParamSpec, v: Value) -> Result<Value, Problem> {
    match spec.ty {
        ParamType::Bool => match v {
            Value::Bool(_) => Ok(v),
            _ => Err(wrong_type(name, "a boolean (true or false)", &v)),
        },
        ParamType::Int => {
            let n = v.as_i64().ok_or_else(|| wrong_type(name, "a number", &v))?;
            if let Some(min) = spec.min.filter(|m| n < *m) {
                return Err((
                    format!("parameter `{name}` must be at least {min}, got {n}"),
                    None,
                ));
            }
            if let Some(max) = spec.max.filter(|m| n > *m) {
                return Err((
                    format!("parameter `{name}` must be at most {max}, got {n}"),
                    None,
                ));
            }
            Ok(v)
        }
        ParamType::List => match v {
            Value::String(s) if spec.split.is_some() => {
                let sep = spec.split.as_deref().unwrap_or(",");
                split_list(name, sep, &s)
            }
            Value::Array(items) if spec.split.is_some() => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                split_list(name, spec.split.as_deref().unwrap_or(","), &items.join(","))
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for i in items {
                    match i {
                        Value::String(_) => out.push(i),
                        Value::Number(n) => out.push(Value::String(n.to_string())),
                        Value::Bool(b) => out.push(Value::String(b.to_string())),
                        other => {
                            return Err((
                                format!(
                                    "parameter `{name}` must be a list of strings, found {} inside",
                                    type_name(&other)
                                ),
                                None,
                            ))
                        }
                    }
                }
                Ok(Value::Array(out))
            }
            _ => Err(wrong_type(name, "a list", &v)),
        },
        ParamType::Map => match v {
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, x) in o {
                    let s = match x {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err((
                                format!(
                                    "parameter `{name}.{k}` must be a string, found {}",
                                    type_name(&other)
                                ),
                                None,
                            ))
                        }
                    };
                    out.insert(k, Value::String(s));
                }
                Ok(Value::Object(out))
            }
            _ => Err(wrong_type(name, "a mapping", &v)),
        },
        ParamType::Object => {
            let Value::Object(o) = v else {
                return Err(wrong_type(name, "a mapping", &v));
            };
            let props = spec.properties.as_ref().map(|p| &p.0[..]).unwrap_or(&[]);
            let mut out = Map::new();
            for (k, x) in o {
                let Some((_, ps)) = props.iter().find(|(n, _)| *n == k) else {
                    let help = did_you_mean(&k, props.iter().map(|(n, _)| n.as_str()));
                    return Err((format!("unknown key `{k}` in parameter `{name}`"), help));
                };
                out.insert(k.clone(), check_value(&format!("{name}.{k}"), ps, x)?);
            }
            for (k, ps) in props {
                if ps.required == Some(true) && !out.contains_key(k) {
                    return Err((format!("parameter `{name}` needs key `{k}`"), None));
                }
            }
            Ok(Value::Object(out))
        }
        ParamType::String
        | ParamType::Url
        | ParamType::Uri
        | ParamType::Location
        | ParamType::Path
        | ParamType::Sha256 => {
            let s = match &v {
                Value::String(s) => s.clone(),
                _ => return Err(wrong_type(name, "a string", &v)),
            };
            check_string(name, spec, &s)?;
            Ok(Value::String(s))
        }
    }
}

/// A list written as `a,b` (or as a YAML list, joined first): no empty item, none with
/// whitespace.
fn split_list(name: &str, sep: &str, s: &str) -> Result<Value, Problem> {
    let mut out = Vec::new();
    for item in s.split(sep).map(str::trim) {
        if item.is_empty() || item.contains(char::is_whitespace) {
            return Err((
                format!("parameter `{name}` has an empty item or one with spaces: `{item}`"),
                Some(format!(
                    "write a list, or one string with items separated by `{sep}`"
                )),
            ));
        }
        out.push(Value::from(item));
    }
    Ok(Value::Array(out))
}

fn check_string(name: &str, spec: &ParamSpec, s: &str) -> Result<(), Problem> {
    if let Some(min) = spec.min.filter(|m| (s.chars().count() as i64) < *m) {
        return Err((
            format!("parameter `{name}` must have at least {min} characters"),
            None,
        ));
    }
    if let Some(choices) = &spec.choices {
        if !choices.iter().any(|c| c == s) {
            let help = did_you_mean(s, choices.iter().map(String::as_str))
                .or_else(|| Some(format!("one of: {}", choices.join(", "))));
            return Err((
                format!(
                    "parameter `{name}` must be one of {}, got `{s}`",
                    choices.join(", ")
                ),
                help,
            ));
        }
    }
    let bad_uri = |why: String| -> Problem {
        (
            format!("parameter `{name}` is not a valid {}: {why}", spec.ty.name()),
            Some(match spec.ty {
                ParamType::Url => "example: http://127.0.0.1:5000".to_string(),
                ParamType::Location => "examples: /var/lib/mlflow/artifacts, s3://bucket/path".to_string(),
                _ => "examples: sqlite:////var/lib/mlflow/mlflow.db, postgresql://user:pass@host:5432/db".to_string(),
            }),
        )
    };
    match spec.ty {
        ParamType::Path if !s.starts_with('/') => Err((
            format!("parameter `{name}` must be an absolute path, got `{s}`"),
            None,
        )),
        ParamType::Sha256 if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) => Err((
            format!("parameter `{name}` must be a sha256 checksum (64 hex digits)"),
            None,
        )),
        ParamType::Url | ParamType::Uri => {
            let u =
                url::Url::parse(s).map_err(|e| bad_uri(format!("`{}`: {e}", mask_userinfo(s))))?;
            if let Some(schemes) = &spec.schemes {
                if !schemes.iter().any(|x| x == u.scheme()) {
                    return Err(bad_uri(format!(
                        "scheme `{}` is not one of {}",
                        u.scheme(),
                        schemes.join(", ")
                    )));
                }
            }
            if spec.ty == ParamType::Url && u.host_str().is_none_or(str::is_empty) {
                return Err(bad_uri("no host".into()));
            }
            Ok(())
        }
        ParamType::Location if s.starts_with('/') => Ok(()),
        ParamType::Location => match url::Url::parse(s) {
            Ok(u) if u.scheme().len() > 1 => Ok(()),
            Ok(_) | Err(_) => Err(bad_uri(format!(
                "`{s}` is neither an absolute path nor a URI"
            ))),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: ParamType) -> ParamSpec {
        ParamSpec {
            ty,
            default: None,
            required: None,
            choices: None,
            description: None,
            secret: None,
            default_doc: None,
            min: None,
            max: None,
            schemes: None,
            properties: None,
            required_when: None,
            from_env: None,
            split: None,
        }
    }

    #[test]
    fn types() {
        assert!(check_value("s", &spec(ParamType::Bool), Value::Bool(true)).is_ok());
        let e = check_value("s", &spec(ParamType::Bool), Value::from("yes")).unwrap_err();
        assert_eq!(e.1.as_deref(), Some("write `true` or `false`"));
        assert!(check_value("u", &spec(ParamType::Uri), Value::from("sqlite:///x.db")).is_ok());
        assert!(check_value("u", &spec(ParamType::Uri), Value::from("not a uri")).is_err());
        assert!(check_value(
            "u",
            &spec(ParamType::Url),
            Value::from("http://0.0.0.0:5000")
        )
        .is_ok());
        assert!(check_value("l", &spec(ParamType::Location), Value::from("s3://b/x")).is_ok());
        assert!(check_value("l", &spec(ParamType::Location), Value::from("/srv/a")).is_ok());
        assert!(check_value("l", &spec(ParamType::Location), Value::from("rel/a")).is_err());
        assert!(check_value("p", &spec(ParamType::Path), Value::from("rel")).is_err());
        let mut e = spec(ParamType::String);
        e.choices = Some(vec!["present".into(), "absent".into()]);
        let err = check_value("state", &e, Value::from("absnt")).unwrap_err();
        assert_eq!(err.1.as_deref(), Some("did you mean `absent`?"));
    }

    #[test]
    fn split_lists_and_string_lengths() {
        let mut hosts = spec(ParamType::List);
        hosts.split = Some(",".into());
        let list = |v| check_value("h", &hosts, v);
        assert_eq!(
            list(Value::from("a.example.com, b:5000")),
            Ok(serde_json::json!(["a.example.com", "b:5000"]))
        );
        assert_eq!(
            list(serde_json::json!(["a", "b,c"])),
            Ok(serde_json::json!(["a", "b", "c"]))
        );
        assert!(list(Value::from("a,,b")).is_err());
        assert!(list(serde_json::json!(["a b"])).is_err());
        let mut password = spec(ParamType::String);
        password.min = Some(8);
        assert!(check_value("p", &password, Value::from("12345678")).is_ok());
        let (msg, _) = check_value("p", &password, Value::from("1234567")).unwrap_err();
        assert!(!msg.contains("1234567"), "{msg}");
    }
}
