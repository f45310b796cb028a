//! Type-checks the `with:` values of a preset invocation against the preset's declared
//! parameters, fills defaults, and reports every problem with its position.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use tera::Context;

use crate::diag::{did_you_mean, Diag, Diags, Loc, Source};
use crate::presets::{ParamSpec, ParamType, PresetDef};
use crate::report::mask_userinfo;
use crate::template::render_str;

/// Parameters after checking: values by name, plus the values marked secret.
#[derive(Debug, Default)]
pub struct Checked {
    pub values: Map<String, Value>,
    pub secrets: Vec<String>,
}

/// Where the invocation is, for errors that concern it as a whole.
pub struct Call<'a> {
    pub source: &'a Arc<Source>,
    pub loc: Loc,
}

/// Checks `with` against `def.parameters`. `ctx` renders string values and defaults; each
/// resolved parameter is added to it so later defaults can use earlier parameters.
/// `overrides` are the `-e KEY=VALUE` pairs: one named like a parameter wins over `with:` and
/// the default (as extra variables do in Ansible), so a playbook can be pointed elsewhere
/// (another data_dir, port or state) without editing it.
pub fn check(
    def: &PresetDef,
    with: &BTreeMap<String, Spanned<Value>>,
    overrides: &[(String, String)],
    call: &Call<'_>,
    ctx: &mut Context,
    diags: &mut Diags,
) -> Checked {
    let mut out = Checked::default();
    let names: Vec<&str> = def.parameters.0.iter().map(|(n, _)| n.as_str()).collect();
    for (key, value) in with {
        if !names.contains(&key.as_str()) {
            let mut d = Diag::at(
                call.source,
                key_loc(call.source, key, Loc::from_saphyr(&value.referenced)),
                format!("unknown parameter `{key}` for preset `{}`", def.name),
            );
            d.help = did_you_mean(key, names.iter().copied())
                .or_else(|| Some(format!("parameters: {}", names.join(", "))));
            diags.push(d);
        }
    }
    for (name, spec) in &def.parameters.0 {
        let given = with.get(name).filter(|v| !v.value.is_null());
        let overridden = overrides.iter().rev().find(|(k, _)| k == name);
        let value = if let Some((_, raw)) = overridden {
            match check_value(name, spec, extra_value(raw)) {
                Ok(v) => v,
                Err((msg, help)) => {
                    let mut d = Diag::plain(format!("-e {name}={raw}: {msg}"));
                    d.help = help;
                    diags.push(d);
                    continue;
                }
            }
        } else {
            match given {
                Some(v) => {
                    let loc = Loc::from_saphyr(&v.referenced);
                    let rendered = match render_value(&v.value, ctx) {
                        Ok(r) => r,
                        Err(e) => {
                            diags.push(Diag::at(call.source, loc, e));
                            continue;
                        }
                    };
                    match check_value(name, spec, rendered) {
                        Ok(v) => v,
                        Err((msg, help)) => {
                            let mut d = Diag::at(call.source, loc, msg);
                            d.help = help;
                            diags.push(d);
                            continue;
                        }
                    }
                }
                None => match &spec.default {
                    Some(Value::String(s)) => match render_str(s, ctx) {
                        Ok(r) => Value::String(r),
                        Err(e) => {
                            diags.push(Diag::plain(format!(
                                "preset `{}`: default of `{name}`: {e}",
                                def.name
                            )));
                            continue;
                        }
                    },
                    Some(v) => v.clone(),
                    None if spec.required == Some(true) => {
                        diags.push(
                            Diag::at(
                                call.source,
                                call.loc,
                                format!("preset `{}` needs parameter `{name}`", def.name),
                            )
                            .with_help(format!("add `{name}:` under `with:`")),
                        );
                        continue;
                    }
                    None => Value::Null,
                },
            }
        };
        if spec.secret == Some(true) {
            match (spec.ty, value.as_str().map(url::Url::parse)) {
                // A store URI is secret through its password and query (tokens), not its
                // location: `sqlite:////var/lib/mlflow/mlflow.db` stays readable in messages.
                (ParamType::Uri | ParamType::Location, Some(Ok(u))) => {
                    out.secrets.extend(u.password().map(str::to_string));
                    out.secrets.extend(u.query().map(str::to_string));
                }
                _ => collect_strings(&value, &mut out.secrets),
            }
        }
        if spec.ty == ParamType::Url {
            if let Some(s) = value.as_str() {
                if let Ok(u) = url::Url::parse(s) {
                    let host = u.host_str().unwrap_or_default().trim_matches(['[', ']']);
                    let port = u.port_or_known_default().unwrap_or(80);
                    for (k, v) in [
                        (format!("{name}_host"), Value::from(host)),
                        (format!("{name}_port"), Value::from(port)),
                        (format!("{name}_scheme"), Value::from(u.scheme())),
                    ] {
                        ctx.insert(k.as_str(), &v);
                        out.values.insert(k, v);
                    }
                }
            }
        }
        ctx.insert(name.as_str(), &value);
        out.values.insert(name.clone(), value);
    }
    out
}

/// Where `key:` is written, when it sits on the line of its value (the block style every
/// playbook uses); the value's position otherwise.
fn key_loc(source: &Source, key: &str, value: Loc) -> Loc {
    let Some(line) = source
        .text
        .lines()
        .nth((value.line as usize).saturating_sub(1))
    else {
        return value;
    };
    let before: String = line
        .chars()
        .take((value.col as usize).saturating_sub(1))
        .collect();
    let found = before
        .find(&format!("{key}:"))
        .or_else(|| before.find(&format!("\"{key}\":")))
        .or_else(|| before.find(&format!("'{key}':")));
    match found {
        Some(byte) => {
            // The byte offset is recomputed from line and column when the error is shown.
            Loc {
                line: value.line,
                col: before[..byte].chars().count() as u64 + 1,
                offset: None,
                len: key.len(),
            }
        }
        None => value,
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Renders templates inside string values (recursively).
fn render_value(v: &Value, ctx: &Context) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(render_str(s, ctx)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_value(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, x) in o {
                m.insert(k.clone(), render_value(x, ctx)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

type Problem = (String, Option<String>);

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

fn check_string(name: &str, spec: &ParamSpec, s: &str) -> Result<(), Problem> {
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

/// Parses a `-e` value: true/false and integers are typed, a JSON list or mapping is parsed,
/// anything else is a string.
pub fn extra_value(v: &str) -> Value {
    if v.starts_with('[') || v.starts_with('{') {
        if let Ok(j) = serde_json::from_str::<Value>(v) {
            return j;
        }
    }
    match v {
        "true" => true.into(),
        "false" => false.into(),
        _ => v
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| v.into()),
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
    fn unknown_parameter_points_at_its_key() {
        let src = Source::new("p.yml", "- preset: mlflow\n  with:\n    sérvic: true\n");
        let value = Loc {
            line: 3,
            col: 13,
            offset: None,
            len: 4,
        };
        let at = key_loc(&src, "sérvic", value);
        assert_eq!((at.line, at.col), (3, 5));
        // Not on that line (flow style on another line): the value's position.
        assert_eq!(key_loc(&src, "other", value), value);
    }
}
