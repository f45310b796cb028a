//! Model-registry entities on the wire (`model_registry.proto`): registered models, model
//! versions and aliases, with MLflow's omission rules (unset fields left out, versions as
//! strings, stages and statuses as names).

use serde::Serialize;

use super::KeyValue;

/// A version of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    /// MLflow stores an empty string when no description was given and sends it back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `READY` for every version this server creates (the client polls otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// An alias and the version it points to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: String,
}

/// A registered model with its latest version per stage, tags and aliases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Left out when empty, as MLflow does for registered models (unlike versions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<RegisteredModelAlias>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_left_out() {
        let rm = RegisteredModel {
            name: "m".into(),
            creation_timestamp: Some(1),
            last_updated_timestamp: Some(2),
            description: None,
            latest_versions: Vec::new(),
            tags: Vec::new(),
            aliases: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&rm).unwrap(),
            r#"{"name":"m","creation_timestamp":1,"last_updated_timestamp":2}"#
        );
        let mv = ModelVersion {
            name: "m".into(),
            version: "1".into(),
            creation_timestamp: 1,
            last_updated_timestamp: Some(1),
            user_id: None,
            current_stage: Some("None".into()),
            description: Some(String::new()),
            source: Some("runs:/r/model".into()),
            run_id: Some("r".into()),
            status: Some("READY".into()),
            status_message: None,
            tags: Vec::new(),
            run_link: Some(String::new()),
            aliases: vec!["champion".into()],
        };
        let json = serde_json::to_value(&mv).unwrap();
        assert_eq!(json["version"], "1");
        assert_eq!(json["description"], "");
        assert_eq!(json["aliases"][0], "champion");
        assert!(json.get("tags").is_none() && json.get("user_id").is_none());
    }
}
