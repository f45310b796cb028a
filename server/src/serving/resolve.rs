//! From a model URI to where its files are: a local directory, or a path behind the tracking
//! server's artifact proxy. Registry URIs are resolved with MLflow's REST calls
//! (get-latest-versions, alias, get-download-uri), runs and logged models with theirs.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::uri::{artifacts_path, ModelUri, VersionSelector};
use super::ServingError;
use crate::client::Client;

/// Where a model's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// A path under the tracking server's `mlflow-artifacts:/` root.
    Proxied(String),
}

/// Resolves `uri`; `client` makes the tracking server calls (only called for remote URIs).
pub fn resolve(
    uri: &ModelUri,
    client: impl FnOnce() -> Result<Client, ServingError>,
) -> Result<Location, ServingError> {
    let artifact_uri = match uri {
        ModelUri::Local(path) => return Ok(Location::Local(path.clone())),
        ModelUri::Artifacts { path } => return Ok(Location::Proxied(path.clone())),
        ModelUri::Registered { name, selector } => {
            let client = client()?;
            let version = registered_version(&client, name, selector)?;
            let reply = client.get(
                "model-versions/get-download-uri",
                &[("name", name.clone()), ("version", version.to_string())],
            )?;
            string_at(&reply, "/artifact_uri", "model-versions/get-download-uri")?
        }
        ModelUri::LoggedModel { model_id } => {
            let reply = client()?.get(&format!("logged-models/{model_id}"), &[])?;
            string_at(&reply, "/model/info/artifact_uri", "logged-models/get")?
        }
        ModelUri::Run { run_id, path } => {
            let reply = client()?.get("runs/get", &[("run_id", run_id.clone())])?;
            let root = string_at(&reply, "/run/info/artifact_uri", "runs/get")?;
            if path.is_empty() {
                root
            } else {
                format!("{}/{path}", root.trim_end_matches('/'))
            }
        }
    };
    location_of(&artifact_uri)
}

/// The version a registry selector names.
fn registered_version(
    client: &Client,
    name: &str,
    selector: &VersionSelector,
) -> Result<u64, ServingError> {
    let stages = match selector {
        VersionSelector::Version(v) => return Ok(*v),
        VersionSelector::Alias(alias) => {
            let reply = client.get(
                "registered-models/alias",
                &[("name", name.to_string()), ("alias", alias.clone())],
            )?;
            let v = string_at(&reply, "/model_version/version", "registered-models/alias")?;
            return parse_version(&v);
        }
        VersionSelector::Stage(stage) => json!([stage]),
        VersionSelector::Latest => json!([]),
    };
    let reply = client.post(
        "registered-models/get-latest-versions",
        json!({ "name": name, "stages": stages }),
    )?;
    let mut best = None;
    for v in reply["model_versions"].as_array().into_iter().flatten() {
        let n = parse_version(v["version"].as_str().unwrap_or_default())?;
        best = best.max(Some(n));
    }
    best.ok_or_else(|| ServingError::NoVersion {
        name: name.to_string(),
        stage: match selector {
            VersionSelector::Stage(s) => Some(s.clone()),
            _ => None,
        },
    })
}

fn parse_version(v: &str) -> Result<u64, ServingError> {
    v.parse().map_err(|_| ServingError::Remote {
        what: "a model version".into(),
        reason: format!("the server returned version {v:?}"),
    })
}

fn string_at(reply: &Value, pointer: &str, endpoint: &str) -> Result<String, ServingError> {
    reply
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ServingError::Remote {
            what: endpoint.to_string(),
            reason: format!("the answer has no {pointer}"),
        })
}

/// Where an artifact URI's files can be read from here.
pub fn location_of(artifact_uri: &str) -> Result<Location, ServingError> {
    if let Some(path) = artifacts_path(artifact_uri) {
        return Ok(Location::Proxied(path));
    }
    match ModelUri::parse(artifact_uri)? {
        ModelUri::Local(path) => Ok(Location::Local(path)),
        _ => Err(ServingError::Uri {
            uri: artifact_uri.to_string(),
            reason: "the tracking server stores this model where this command cannot read it \
                     (start it with --serve-artifacts, the default, so that models are \
                     downloaded through it)"
                .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_uris_map_to_locations() {
        assert_eq!(
            location_of("mlflow-artifacts:/1/models/m-1/artifacts").ok(),
            Some(Location::Proxied("1/models/m-1/artifacts".into()))
        );
        assert_eq!(
            location_of("/srv/mlruns/1/abc/artifacts/model").ok(),
            Some(Location::Local("/srv/mlruns/1/abc/artifacts/model".into()))
        );
        assert!(location_of("s3://bucket/1/model").is_err());
    }
}
