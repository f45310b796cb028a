//! Preset definitions: typed parameters, derived variables and steps, loaded from the copy
//! embedded in the binary or from `--presets-dir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{did_you_mean, Diag, Source};
use crate::spec::{Ordered, StepSpec, Tpl};

/// Presets compiled into the binary: (name, preset.yml).
const EMBEDDED_PRESETS: &[(&str, &str)] =
    &[("mlflow", include_str!("../presets/mlflow/preset.yml"))];

/// Templates compiled into the binary: (file name, text).
const EMBEDDED_TEMPLATES: &[(&str, &str)] = &[
    (
        "mlflow.service.tera",
        include_str!("../templates/mlflow.service.tera"),
    ),
    (
        "mlflow.env.tera",
        include_str!("../templates/mlflow.env.tera"),
    ),
    (
        "mlflow.plist.tera",
        include_str!("../templates/mlflow.plist.tera"),
    ),
    (
        "basic_auth.ini.tera",
        include_str!("../templates/basic_auth.ini.tera"),
    ),
];

/// A preset file (`presets/NAME/preset.yml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetDef {
    pub name: String,
    pub description: String,
    pub version: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub parameters: Ordered<ParamSpec>,
    pub vars: Option<Ordered<Tpl>>,
    pub steps: Vec<Spanned<StepSpec>>,
}

/// Parameter types a preset may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Bool,
    Int,
    /// An http(s) URL with a host; exposes `NAME_host`, `NAME_port`, `NAME_scheme`.
    Url,
    /// Any URI with a scheme (`sqlite:///x`, `postgresql://u:p@h/db`).
    Uri,
    /// A URI or an absolute path.
    Location,
    /// An absolute path.
    Path,
    List,
    Map,
    Object,
    Sha256,
}

impl ParamType {
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Url => "url",
            Self::Uri => "uri",
            Self::Location => "location",
            Self::Path => "path",
            Self::List => "list",
            Self::Map => "map",
            Self::Object => "object",
            Self::Sha256 => "sha256",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub ty: ParamType,
    pub default: Option<serde_json::Value>,
    pub required: Option<bool>,
    #[serde(rename = "enum")]
    pub choices: Option<Vec<String>>,
    pub description: Option<String>,
    pub secret: Option<bool>,
    /// How `preset show` words a templated default (e.g. "/var/lib/mlflow as root").
    pub default_doc: Option<String>,
    /// For `int`, the smallest value; for a string, the fewest characters.
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub schemes: Option<Vec<String>>,
    pub properties: Option<Ordered<ParamSpec>>,
    /// A condition on the other parameters (as in `when:`) under which this one is required.
    pub required_when: Option<String>,
    /// A secret that must come from the environment (`"{{ env.NAME }}"`): a value written in
    /// the playbook or given with `-e` is refused, an empty one counts as not given.
    pub from_env: Option<bool>,
    /// For `list`: a string is accepted too, split at this separator (`a,b` → `[a, b]`).
    pub split: Option<String>,
}

/// Where presets and templates come from.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub dir: Option<PathBuf>,
}

/// A loaded preset with its source (for diagnostics).
pub struct Loaded {
    pub source: Arc<Source>,
    pub def: PresetDef,
}

impl Library {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Names of the available presets.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = EMBEDDED_PRESETS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        if let Some(dir) = &self.dir {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.path().join("preset.yml").is_file() {
                        names.push(e.file_name().to_string_lossy().into_owned());
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Reads the text of preset `name`, preferring `--presets-dir`.
    fn text(&self, name: &str) -> Option<(String, String)> {
        let on_disk = self.dir.iter().map(|d| d.join(name).join("preset.yml"));
        first_readable(on_disk).or_else(|| {
            embedded(EMBEDDED_PRESETS, name).map(|t| (format!("presets/{name}/preset.yml"), t))
        })
    }

    /// Loads and parses preset `name`.
    pub fn load(&self, name: &str) -> Result<Loaded, Diag> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let found = if valid { self.text(name) } else { None };
        let Some((path, text)) = found else {
            let mut d = Diag::plain(format!("unknown preset `{name}`"));
            let names = self.names();
            d.help = did_you_mean(name, names.iter().map(String::as_str))
                .or_else(|| Some(format!("available presets: {}", names.join(", "))));
            return Err(d);
        };
        let source = Source::new(path, text);
        let def: PresetDef = crate::yaml::parse(&source)?;
        if def.name != name {
            return Err(Diag::plain(format!(
                "{}: preset declares name `{}`, expected `{name}`",
                source.name, def.name
            )));
        }
        Ok(Loaded { source, def })
    }

    /// Finds a file template: `--presets-dir/PRESET/templates/NAME`,
    /// `--presets-dir/../templates/NAME`, then the embedded copy. Playbook-level templates are
    /// paths relative to the playbook.
    pub fn template(
        &self,
        preset: Option<&str>,
        base: &Path,
        name: &str,
    ) -> Option<(String, String)> {
        match preset {
            None => first_readable([base.join(name)]),
            Some(preset) => {
                let on_disk = self.dir.iter().flat_map(|d| {
                    [
                        d.join(preset).join("templates").join(name),
                        d.join("..").join("templates").join(name),
                    ]
                });
                first_readable(on_disk).or_else(|| {
                    embedded(EMBEDDED_TEMPLATES, name).map(|t| (format!("templates/{name}"), t))
                })
            }
        }
    }
}

/// The first of `paths` that can be read: (path as shown, text).
fn first_readable(paths: impl IntoIterator<Item = PathBuf>) -> Option<(String, String)> {
    paths.into_iter().find_map(|p| {
        std::fs::read_to_string(&p)
            .ok()
            .map(|t| (p.display().to_string(), t))
    })
}

/// The text compiled into the binary under `name`.
fn embedded(files: &[(&str, &str)], name: &str) -> Option<String> {
    files
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
}

/// Human-readable description of a preset (`preset show NAME`).
pub fn describe(def: &PresetDef) -> String {
    let mut s = format!("{}: {}\n", def.name, def.description.trim());
    if let Some(p) = &def.platforms {
        s.push_str(&format!("platforms: {}\n", p.join(", ")));
    }
    s.push_str("\nparameters:\n");
    for (name, p) in &def.parameters.0 {
        let mut ty = p.ty.name().to_string();
        if let Some(c) = &p.choices {
            ty = c.join("|");
        }
        let default = match &p.default {
            _ if p.default_doc.is_some() => p.default_doc.clone().unwrap_or_default(),
            Some(serde_json::Value::String(v)) => v.clone(),
            Some(v) => v.to_string(),
            None if p.required == Some(true) => "(required)".into(),
            None if p.required_when.is_some() => format!(
                "(required when {})",
                p.required_when.as_deref().unwrap_or_default()
            ),
            None => "-".into(),
        };
        s.push_str(&format!("  {name:<22} {ty:<16} default: {default}\n"));
        if let Some(d) = &p.description {
            s.push_str(&format!("  {:<22} {}\n", "", d.trim()));
        }
        if let Some(props) = &p.properties {
            for (pn, pp) in &props.0 {
                s.push_str(&format!("    .{pn:<19} {}\n", pp.ty.name()));
            }
        }
    }
    s.push_str(&format!(
        "\nSet parameters under `with:` (- preset: {}), or override one for a run with -e NAME=VALUE.\n",
        def.name
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_mlflow_preset_parses() {
        let lib = Library::default();
        let loaded = lib
            .load("mlflow")
            .unwrap_or_else(|d| panic!("{}", d.render()));
        assert_eq!(loaded.def.name, "mlflow");
        assert!(loaded
            .def
            .parameters
            .0
            .iter()
            .any(|(n, _)| n == "tracking_uri"));
        assert!(describe(&loaded.def).contains("backend_store_uri"));
    }

    /// The unit's hardening, checked on the text so it holds where `systemd-analyze` is
    /// missing (tests/preset_cli.rs runs `systemd-analyze verify` where it exists).
    #[test]
    fn systemd_unit_is_hardened_and_keeps_secrets_out() {
        let (_, text) = Library::default()
            .template(Some("mlflow"), Path::new("."), "mlflow.service.tera")
            .unwrap();
        let mut ctx = tera::Context::new();
        for (k, v) in [
            ("service_name", "mlflow"),
            ("run_as", "mlflow"),
            ("env_file", "/etc/mlflow/mlflow.env"),
            ("data_dir", "/var/lib/mlflow"),
            ("binary", "/usr/local/bin/mlflow"),
            ("artifacts", "/srv/artifacts"),
            ("default_artifact_root", "s3://bucket/x"),
        ] {
            ctx.insert(k, v);
        }
        ctx.insert("extra_args", &["--static-prefix", "/mlflow"]);
        let unit = crate::template::render_file("mlflow.service.tera", &text, &ctx).unwrap();
        for directive in [
            "User=mlflow",
            "Restart=on-failure",
            "NoNewPrivileges=true",
            "ProtectSystem=strict",
            "ProtectHome=true",
            "PrivateTmp=true",
            "ReadWritePaths=/var/lib/mlflow /srv/artifacts\n",
            "EnvironmentFile=/etc/mlflow/mlflow.env",
            "ExecStart=/usr/local/bin/mlflow server --static-prefix /mlflow\n",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                unit.contains(directive),
                "missing `{directive}` in:\n{unit}"
            );
        }
        // Store URIs (and their passwords) come from the environment file only.
        assert!(!unit.contains("--backend-store-uri") && !unit.contains("s3://"));
        // Running as root: no User= line at all.
        ctx.insert("run_as", "");
        let unit = crate::template::render_file("mlflow.service.tera", &text, &ctx).unwrap();
        assert!(!unit.contains("User="), "{unit}");
    }

    #[test]
    fn unknown_preset_suggests() {
        let d = Library::default().load("mlflw").err().unwrap();
        assert_eq!(d.help.as_deref(), Some("did you mean `mlflow`?"));
        assert!(Library::default().load("../etc").is_err());
    }
}
