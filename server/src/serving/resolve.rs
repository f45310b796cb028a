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
        ModelUri::Run { run_id, path } => run_model_uri(&client()?, run_id, path)?,
    };
    location_of(&artifact_uri)
}

/// `runs:/RUN_ID/NAME[/REST]`: in MLflow 3 a model logged in a run is a logged model named
/// NAME whose source run is RUN_ID, stored outside the run's artifacts; older models are
/// the run's artifacts at the path. As MLflow does, the logged model wins.
fn run_model_uri(client: &Client, run_id: &str, path: &str) -> Result<String, ServingError> {
    let reply = client.get("runs/get", &[("run_id", run_id.to_string())])?;
    let root = string_at(&reply, "/run/info/artifact_uri", "runs/get")?;
    let experiment_id = string_at(&reply, "/run/info/experiment_id", "runs/get")?;
    let (name, rest) = path.split_once('/').unwrap_or((path, ""));
    if !name.is_empty() && !name.contains('\'') {
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({
                "experiment_ids": [experiment_id],
                "filter": format!("name = '{name}'"),
                "max_results": 100,
            });
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let page = client.post("logged-models/search", body)?;
            for m in page["models"].as_array().into_iter().flatten() {
                if m.pointer("/info/source_run_id").and_then(Value::as_str) == Some(run_id) {
                    let uri = string_at(m, "/info/artifact_uri", "logged-models/search")?;
                    return Ok(if rest.is_empty() {
                        uri
                    } else {
                        format!("{}/{rest}", uri.trim_end_matches('/'))
                    });
                }
            }
            match page["next_page_token"].as_str().filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() != Some(t) => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(if path.is_empty() {
        root
    } else {
        format!("{}/{path}", root.trim_end_matches('/'))
    })
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
