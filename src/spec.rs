//! The step format shared by playbooks and presets, as it is written in YAML.
//!
//! String fields are [`Tpl`]s: they keep their position and are rendered with tera at plan
//! time. Every struct rejects unknown keys so a typo is reported where it was written.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::Loc;

/// A scalar written in YAML (string, number or boolean), kept as text with its position.
/// `raw` is what was written; `value` is the rendered text once [`crate::template`] ran.
#[derive(Debug, Clone, Default)]
pub struct Tpl {
    pub raw: String,
    pub value: String,
    pub loc: Loc,
}

impl Tpl {
    pub fn literal(s: impl Into<String>) -> Self {
        let s = s.into();
        Self {
            raw: s.clone(),
            value: s,
            loc: Loc::default(),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.value
    }
    /// Whether the raw text contains template syntax.
    pub fn is_template(&self) -> bool {
        self.raw.contains("{{") || self.raw.contains("{%")
    }
}

struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Tpl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Scalar>::deserialize(d)?;
        Ok(Tpl {
            raw: s.value.0.clone(),
            value: s.value.0,
            loc: Loc::from_saphyr(&s.referenced),
        })
    }
}

/// A string-keyed map that keeps the order in which keys were written.
#[derive(Debug, Clone, Default)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One step: common fields plus exactly one action key (checked by the validator).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: Option<Tpl>,
    pub when: Option<Tpl>,
    pub tags: Option<Vec<String>>,
    #[serde(rename = "become")]
    pub r#become: Option<Spanned<bool>>,
    pub preset: Option<Tpl>,
    pub with: Option<BTreeMap<String, Spanned<serde_json::Value>>>,
    pub vars: Option<Ordered<Tpl>>,
    pub package: Option<PackageSpec>,
    pub file: Option<FileSpec>,
    pub template: Option<TemplateSpec>,
    pub copy: Option<CopySpec>,
    pub user: Option<UserSpec>,
    pub service: Option<ServiceSpec>,
    pub command: Option<CommandSpec>,
    pub assert: Option<AssertSpec>,
    pub print: Option<Tpl>,
}

/// The action keys a step may carry (for messages).
pub const ACTION_KEYS: &[&str] = &[
    "preset", "vars", "package", "file", "template", "copy", "user", "service", "command",
    "assert", "print",
];

impl StepSpec {
    /// The action keys present in this step.
    pub fn action_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let present = [
            self.preset.is_some(),
            self.vars.is_some(),
            self.package.is_some(),
            self.file.is_some(),
            self.template.is_some(),
            self.copy.is_some(),
            self.user.is_some(),
            self.service.is_some(),
            self.command.is_some(),
            self.assert.is_some(),
            self.print.is_some(),
        ];
        for (k, p) in ACTION_KEYS.iter().zip(present) {
            if p {
                keys.push(*k);
            }
        }
        keys
    }
}

/// `package: {name | names, state: present|absent}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    pub name: Option<Tpl>,
    pub names: Option<Vec<Tpl>>,
    pub state: Option<Tpl>,
}

/// `file: {path, state: file|directory|absent, mode, owner, group, content}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: Tpl,
    pub state: Option<Tpl>,
    pub mode: Option<Tpl>,
    pub owner: Option<Tpl>,
    pub group: Option<Tpl>,
    pub content: Option<Tpl>,
}

/// `template: {src, dest, mode, owner, group}`: renders a tera file template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub src: Tpl,
    pub dest: Tpl,
    pub mode: Option<Tpl>,
    pub owner: Option<Tpl>,
    pub group: Option<Tpl>,
}

/// `copy: {src | url + sha256, dest, mode, force, state, version_check}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopySpec {
    pub src: Option<Tpl>,
    pub url: Option<Tpl>,
    pub sha256: Option<Tpl>,
    pub dest: Tpl,
    pub mode: Option<Tpl>,
    pub owner: Option<Tpl>,
    pub group: Option<Tpl>,
    pub force: Option<Tpl>,
    pub state: Option<Tpl>,
    pub version_check: Option<VersionCheckSpec>,
}

/// How to recognise "our" binary: run it with `args`, its first output line must start with
/// `prefix` (and equal `expect` when given).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionCheckSpec {
    pub args: Vec<Tpl>,
    pub prefix: Tpl,
    pub expect: Option<Tpl>,
}

/// `user: {name, state, system, home, shell}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: Tpl,
    pub state: Option<Tpl>,
    pub system: Option<Tpl>,
    pub home: Option<Tpl>,
    pub shell: Option<Tpl>,
}

/// `service:` a long-running process managed by systemd, launchd or the built-in supervisor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: Tpl,
    pub state: Option<Tpl>,
    pub enabled: Option<Tpl>,
    pub manager: Option<Tpl>,
    pub unit: Option<Tpl>,
    pub exec: Option<Vec<Tpl>>,
    pub exec_args_json: Option<Tpl>,
    pub env_file: Option<Tpl>,
    pub user: Option<Tpl>,
    pub workdir: Option<Tpl>,
    pub pid_file: Option<Tpl>,
    pub log_file: Option<Tpl>,
    pub watch: Option<Vec<Tpl>>,
    pub health_url: Option<Tpl>,
    pub health_timeout: Option<Tpl>,
}

/// `command: {argv, creates, removes, unless, changed_when, cwd, env}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    pub argv: Vec<Tpl>,
    pub creates: Option<Tpl>,
    pub removes: Option<Tpl>,
    pub unless: Option<Vec<Tpl>>,
    pub changed_when: Option<Tpl>,
    pub cwd: Option<Tpl>,
    pub env: Option<BTreeMap<String, Tpl>>,
}

/// `assert:` exactly one of `http`, `command`, `file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertSpec {
    pub http: Option<HttpAssertSpec>,
    pub command: Option<CommandAssertSpec>,
    pub file: Option<FileAssertSpec>,
}

/// An HTTP status: one code or a list of accepted codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAssertSpec {
    pub url: Tpl,
    pub method: Option<Tpl>,
    pub headers: Option<BTreeMap<String, Tpl>>,
    pub body: Option<Tpl>,
    pub status: Option<Spanned<StatusSpec>>,
    pub contains: Option<Tpl>,
    pub json: Option<JsonCheckSpec>,
    /// Per-request timeout.
    pub timeout: Option<Tpl>,
    /// Keep retrying until this much time has passed (default 30s).
    pub within: Option<Tpl>,
}

/// `json: {path: "/a/0/name", equals: VALUE}` (RFC 6901 JSON pointer).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCheckSpec {
    pub path: Tpl,
    pub equals: Option<serde_json::Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAssertSpec {
    pub argv: Vec<Tpl>,
    pub exit_code: Option<i32>,
    pub contains: Option<Tpl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAssertSpec {
    pub path: Tpl,
    pub exists: Option<bool>,
    pub mode: Option<Tpl>,
    pub contains: Option<Tpl>,
}
