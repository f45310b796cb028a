//! Type-checks the `with:` values of a preset invocation against the preset's declared
//! parameters, fills defaults, and reports every problem with its position.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use tera::Context;

use crate::diag::{did_you_mean, Diag, Diags, Loc, Source};
use crate::presets::{ParamSpec, ParamType, PresetDef};
use crate::template::{eval_truthy, render_str};

mod value;

pub use value::check_value;

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

/// Checks `with` against `def.parameters`. Given values are rendered in `playbook` (the
/// calling playbook's variables); defaults in `ctx`, to which each resolved parameter is
/// added so that later defaults can use earlier parameters.
/// `overrides` are the `-e KEY=VALUE` pairs: one named like a parameter wins over `with:` and
/// the default (as extra variables do in Ansible), so a playbook can be pointed elsewhere
/// (another data_dir, port or state) without editing it.
pub fn check(
    def: &PresetDef,
    with: &BTreeMap<String, Spanned<Value>>,
    overrides: &[(String, String)],
    call: &Call<'_>,
    (playbook, ctx): (&Context, &mut Context),
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
    let resolver = Resolver {
        def,
        with,
        overrides,
        call,
        playbook,
    };
    for (name, spec) in &def.parameters.0 {
        let Some(value) = resolver.resolve(name, spec, ctx, diags) else {
            continue;
        };
        if spec.secret == Some(true) {
            collect_secrets(spec, &value, &mut out.secrets);
        }
        if spec.ty == ParamType::Url {
            for (k, v) in url_parts(name, &value) {
                ctx.insert(k.as_str(), &v);
                out.values.insert(k, v);
            }
        }
        ctx.insert(name.as_str(), &value);
        out.values.insert(name.clone(), value);
    }
    for (name, spec) in &def.parameters.0 {
        resolver.check_required_when(name, spec, &out.values, ctx, diags);
    }
    out
}

/// Finds each parameter's value: `-e`, else `with:`, else the default.
struct Resolver<'a> {
    def: &'a PresetDef,
    with: &'a BTreeMap<String, Spanned<Value>>,
    overrides: &'a [(String, String)],
    call: &'a Call<'a>,
    playbook: &'a Context,
}

impl Resolver<'_> {
    /// The checked value of `name` (Null when not given and without default); `None` after
    /// reporting a problem.
    fn resolve(
        &self,
        name: &str,
        spec: &ParamSpec,
        ctx: &Context,
        diags: &mut Diags,
    ) -> Option<Value> {
        let source = self.call.source;
        if let Some((_, raw)) = self.overrides.iter().rev().find(|(k, _)| k == name) {
            if spec.from_env == Some(true) {
                diags.secrets([raw.clone()]);
                diags.push(
                    Diag::plain(format!(
                        "-e {name}=...: `{name}` is a secret and is not taken from the command line (other users see command lines)"
                    ))
                    .with_help(env_help(name)),
                );
                return None;
            }
            return match check_value(name, spec, extra_value(raw)) {
                Ok(v) => Some(v),
                Err((msg, help)) => {
                    let mut d = Diag::plain(format!("-e {name}={raw}: {msg}"));
                    d.help = help;
                    diags.push(d);
                    None
                }
            };
        }
        if let Some(given) = self.with.get(name).filter(|v| !v.value.is_null()) {
            let loc = Loc::from_saphyr(&given.referenced);
            let literal = given.value.as_str().is_some_and(|s| !s.contains("{{"));
            if spec.from_env == Some(true) && literal {
                let mut shown = Vec::new();
                collect_strings(&given.value, &mut shown);
                diags.secrets(shown);
                diags.push(
                    Diag::at(
                        source,
                        loc,
                        format!("`{name}` is a secret: it is not written in the playbook"),
                    )
                    .with_help(env_help(name)),
                );
                return None;
            }
            let rendered = match render_value(&given.value, self.playbook) {
                Ok(r) => r,
                Err(e) => {
                    diags.push(Diag::at(source, loc, e));
                    return None;
                }
            };
            // A secret from an empty environment variable counts as not given.
            if spec.from_env == Some(true) && rendered.as_str() == Some("") {
                return Some(Value::Null);
            }
            return match check_value(name, spec, rendered) {
                Ok(v) => Some(v),
                Err((msg, help)) => {
                    let mut d = Diag::at(source, loc, msg);
                    d.help = help;
                    diags.push(d);
                    None
                }
            };
        }
        match &spec.default {
            Some(Value::String(s)) => match render_str(s, ctx) {
                Ok(r) => Some(Value::String(r)),
                Err(e) => {
                    diags.push(Diag::plain(format!(
                        "preset `{}`: default of `{name}`: {e}",
                        self.def.name
                    )));
                    None
                }
            },
            Some(v) => Some(v.clone()),
            None if spec.required == Some(true) => {
                diags.push(
                    Diag::at(
                        source,
                        self.call.loc,
                        format!("preset `{}` needs parameter `{name}`", self.def.name),
                    )
                    .with_help(format!("add `{name}:` under `with:`")),
                );
                None
            }
            None => Some(Value::Null),
        }
    }

    /// Reports `name` missing when its `required_when` condition holds, at the `with:` entry
    /// the condition names (else at the preset call).
    fn check_required_when(
        &self,
        name: &str,
        spec: &ParamSpec,
        values: &Map<String, Value>,
        ctx: &Context,
        diags: &mut Diags,
    ) {
        let Some(cond) = &spec.required_when else {
            return;
        };
        if values.get(name).is_some_and(|v| !v.is_null()) || !values.contains_key(name) {
            return;
        }
        let holds = match eval_truthy(cond, ctx) {
            Ok(b) => b,
            Err(e) => {
                diags.push(Diag::plain(format!(
                    "preset `{}`: required_when of `{name}`: {e}",
                    self.def.name
                )));
                return;
            }
        };
        if !holds {
            return;
        }
        let cause = cond
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find_map(|word| {
                self.with
                    .iter()
                    .find(|(k, _)| word == k.as_str() || word.starts_with(&format!("{k}_")))
            });
        let loc = match cause {
            Some((k, v)) => key_loc(self.call.source, k, Loc::from_saphyr(&v.referenced)),
            None => self.call.loc,
        };
        let help = match spec.from_env {
            Some(true) => env_help(name),
            _ => format!("add `{name}:` under `with:`"),
        };
        diags.push(
            Diag::at(
                self.call.source,
                loc,
                format!(
                    "preset `{}` needs parameter `{name}` when `{cond}`",
                    self.def.name
                ),
            )
            .with_help(help),
        );
    }
}

fn env_help(name: &str) -> String {
    let var = format!("MLFLOW_{}", name.to_ascii_uppercase());
    format!("write `{name}: \"{{{{ env.{var} }}}}\"` under `with:` and export {var} before running preset")
}

/// The secret parts of a value marked `secret`.
fn collect_secrets(spec: &ParamSpec, value: &Value, out: &mut Vec<String>) {
    match (spec.ty, value.as_str().map(url::Url::parse)) {
        // A store URI is secret through its password and query (tokens), not its
        // location: `sqlite:////var/lib/mlflow/mlflow.db` stays readable in messages.
        (ParamType::Uri | ParamType::Location, Some(Ok(u))) => {
            out.extend(u.password().map(str::to_string));
            out.extend(u.query().map(str::to_string));
        }
        _ => collect_strings(value, out),
    }
}

/// `NAME_host`, `NAME_port` and `NAME_scheme` of a URL parameter.
fn url_parts(name: &str, value: &Value) -> Vec<(String, Value)> {
    let Some(u) = value.as_str().and_then(|s| url::Url::parse(s).ok()) else {
        return Vec::new();
    };
    let host = u.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = u.port_or_known_default().unwrap_or(80);
    vec![
        (format!("{name}_host"), Value::from(host)),
        (format!("{name}_port"), Value::from(port)),
        (format!("{name}_scheme"), Value::from(u.scheme())),
    ]
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
