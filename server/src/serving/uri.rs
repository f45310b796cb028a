//! Model URIs as MLflow spells them: `models:/NAME/STAGE|VERSION|latest`, `models:/NAME@ALIAS`,
//! `models:/MODEL_ID`, `runs:/RUN_ID/PATH`, `mlflow-artifacts:/PATH`, `file://PATH` and plain
//! paths.

use std::path::PathBuf;

use super::ServingError;

/// Which version of a registered model a `models:/` URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    Version(u64),
    /// A stage (None, Staging, Production, Archived), matched case-insensitively.
    Stage(String),
    /// The highest version in any stage.
    Latest,
    Alias(String),
}

/// A parsed model URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    Registered {
        name: String,
        selector: VersionSelector,
    },
    /// MLflow 3's logged models: `models:/m-...`.
    LoggedModel {
        model_id: String,
    },
    Run {
        run_id: String,
        path: String,
    },
    /// An artifact URI the tracking server proxies (`mlflow-artifacts:/...`).
    Artifacts {
        path: String,
    },
    Local(PathBuf),
}

const STAGES: [&str; 4] = ["none", "staging", "production", "archived"];

impl ModelUri {
    pub fn parse(uri: &str) -> Result<Self, ServingError> {
        let bad = |why: &str| ServingError::Uri {
            uri: uri.to_string(),
            reason: why.to_string(),
        };
        if let Some(rest) = uri.strip_prefix("models:") {
            let rest = rest.strip_prefix('/').ok_or_else(|| {
                bad("expected models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS")
            })?;
            let rest = rest.trim_end_matches('/');
            if let Some((name, alias)) = rest.split_once('@') {
                if name.is_empty() || alias.is_empty() || alias.contains('/') {
                    return Err(bad("expected models:/NAME@ALIAS"));
                }
                return Ok(ModelUri::Registered {
                    name: name.to_string(),
                    selector: VersionSelector::Alias(alias.to_string()),
                });
            }
            return match rest.rsplit_once('/') {
                Some((name, suffix)) if !name.is_empty() && !suffix.is_empty() => {
                    let selector = if let Ok(v) = suffix.parse::<u64>() {
                        VersionSelector::Version(v)
                    } else if suffix.eq_ignore_ascii_case("latest") {
                        VersionSelector::Latest
                    } else if STAGES.contains(&suffix.to_ascii_lowercase().as_str()) {
                        VersionSelector::Stage(canonical_stage(suffix))
                    } else {
                        return Err(bad(&format!(
                            "{suffix:?} is neither a version number, a stage (None, Staging, \
                             Production, Archived) nor `latest`"
                        )));
                    };
                    Ok(ModelUri::Registered {
                        name: name.to_string(),
                        selector,
                    })
                }
                None if rest.starts_with("m-") => Ok(ModelUri::LoggedModel {
                    model_id: rest.to_string(),
                }),
                _ => Err(bad(
                    "expected models:/NAME/VERSION, models:/NAME/STAGE, models:/NAME@ALIAS or \
                     models:/MODEL_ID",
                )),
            };
        }
        if let Some(rest) = uri.strip_prefix("runs:") {
            let rest = rest.trim_start_matches('/');
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad("expected runs:/RUN_ID/PATH"));
            }
            return Ok(ModelUri::Run {
                run_id: run_id.to_string(),
                path: path.trim_matches('/').to_string(),
            });
        }
        if uri.starts_with("mlflow-artifacts:") {
            return Ok(ModelUri::Artifacts {
                path: artifacts_path(uri).ok_or_else(|| bad("expected mlflow-artifacts:/PATH"))?,
            });
        }
        if let Some(path) = uri.strip_prefix("file://") {
            return Ok(ModelUri::Local(PathBuf::from(percent_decode(path))));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(bad(&format!(
                "{scheme}:// is not supported here; use the tracking server's models:/, runs:/ \
                 or mlflow-artifacts:/ URIs, or a local directory"
            )));
        }
        Ok(ModelUri::Local(PathBuf::from(uri)))
    }
}

/// The path inside the artifact root of `mlflow-artifacts:/p` or `mlflow-artifacts://host/p`
/// (the host is the tracking server's own, which we already talk to).
pub fn artifacts_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Some(percent_decode(rest.trim_matches('/')))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn canonical_stage(stage: &str) -> String {
    let lower = stage.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uri: &str) -> (String, VersionSelector) {
        match ModelUri::parse(uri) {
            Ok(ModelUri::Registered { name, selector }) => (name, selector),
            other => panic!("{uri}: {other:?}"),
        }
    }

    #[test]
    fn registry_uris() {
        assert_eq!(
            reg("models:/my-model/production"),
            (
                "my-model".into(),
                VersionSelector::Stage("Production".into())
            )
        );
        assert_eq!(
            reg("models:/my-model/3"),
            ("my-model".into(), VersionSelector::Version(3))
        );
        assert_eq!(
            reg("models:/a/b/Latest"),
            ("a/b".into(), VersionSelector::Latest)
        );
        assert_eq!(
            reg("models:/m@champion"),
            ("m".into(), VersionSelector::Alias("champion".into()))
        );
        assert_eq!(
            ModelUri::parse("models:/m-0123abc").ok(),
            Some(ModelUri::LoggedModel {
                model_id: "m-0123abc".into()
            })
        );
        for bad in [
            "models:/x/prod",
            "models:x/1",
            "models:/@a",
            "models:/plain",
        ] {
            assert!(ModelUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_uris() {
        assert_eq!(
            ModelUri::parse("runs:/abc123/model").ok(),
            Some(ModelUri::Run {
                run_id: "abc123".into(),
                path: "model".into()
            })
        );
        assert_eq!(
            ModelUri::parse("mlflow-artifacts://h:5000/1/models/m-1/artifacts").ok(),
            Some(ModelUri::Artifacts {
                path: "1/models/m-1/artifacts".into()
            })
        );
        assert_eq!(
            ModelUri::parse("file:///tmp/a%20b").ok(),
            Some(ModelUri::Local("/tmp/a b".into()))
        );
        assert_eq!(
            ModelUri::parse("./model").ok(),
            Some(ModelUri::Local("./model".into()))
        );
        assert!(ModelUri::parse("s3://bucket/model").is_err());
        assert!(ModelUri::parse("runs:/../x").is_err());
    }
}
