//! The model registry: MLflow's rules in front of the store. A new version's `source` is
//! resolved in [`super::sources`].

use serde_json::Value;

use super::sources::SourcePolicy;
use super::tracking::{Paged, Tracking};
use crate::domain::paging;
use crate::domain::registry as r;
use crate::domain::search::{parse_filter, parse_order_by, OrderKey, SearchTarget};
use crate::error::{MlflowError, Result};
use crate::store::NewModelVersion;
use crate::wire::registry::{ModelVersion, RegisteredModel};
use crate::wire::KeyValue;

/// Largest page of search-registered-models.
pub const SEARCH_REGISTERED_MODELS_MAX: i64 = 1000;
/// Largest page of search-model-versions (also its default over REST).
pub const SEARCH_MODEL_VERSIONS_MAX: i64 = 200_000;

/// The logged-model tag listing the versions registered from a logged model.
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

/// A create-model-version request after decoding.
#[derive(Debug, Default, Clone)]
pub struct NewVersionRequest {
    pub name: String,
    pub source: String,
    /// `Some` when the field was sent (even empty), as protobuf's `HasField`.
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<KeyValue>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn check_tags(tags: &[KeyValue]) -> Result<()> {
    tags.iter()
        .try_for_each(|t| r::validate_tag(&t.key, &t.value))
}

fn check_max_results(value: i64, limit: i64) -> Result<()> {
    if value < 1 || value > limit {
        return Err(MlflowError::invalid(format!(
            "Invalid value for request parameter max_results. It must be at least 1 and at \
             most {limit}, but got value {value}"
        )));
    }
    Ok(())
}

fn parse_registry_order(target: SearchTarget, items: &[String]) -> Result<Vec<OrderKey>> {
    let order = parse_order_by(target, items)?;
    for (i, o) in order.iter().enumerate() {
        if order[..i].iter().any(|p| p.key == o.key) {
            return Err(MlflowError::invalid(format!(
                "`order_by` contains duplicate fields: {items:?}"
            )));
        }
    }
    Ok(order)
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`, non-ASCII escaped), so the
/// `mlflow.modelVersions` tag reads the same whichever server wrote it.
pub(crate) fn python_json(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_json(&Value::String(k.clone())),
                    python_json(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        other => other.to_string(),
    }
}

impl Tracking {
    /// Checks a value against its column width where the database enforces it (PostgreSQL,
    /// MySQL), so an oversize value is a 400 rather than a database error.
    fn check_column(&self, what: &str, value: Option<&str>, limit: usize) -> Result<()> {
        if !self.store().enforces_column_widths() {
            return Ok(());
        }
        r::validate_text(what, value, limit)
    }

    // ---- registered models ----

    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[KeyValue],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        r::validate_model_name(name, "name")?;
        check_tags(tags)?;
        self.check_column(
            "Registered model name",
            Some(name),
            r::MAX_MODEL_NAME_LENGTH,
        )?;
        self.check_column("Description", description, r::MAX_DESCRIPTION_LENGTH)?;
        for tag in tags {
            self.check_column("value", Some(&tag.value), r::MAX_MODEL_TAG_COLUMN_LENGTH)?;
        }
        self.store()
            .create_registered_model(name, tags, description.unwrap_or(""))
            .await
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        r::validate_model_name(name, "name")?;
        self.store().get_registered_model(name).await
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        r::validate_model_name(name, "name")?;
        self.check_column("Description", description, r::MAX_DESCRIPTION_LENGTH)?;
        self.store()
            .update_registered_model(name, description.unwrap_or(""))
            .await
    }

    pub async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel> {
        r::validate_model_name(name, "name")?;
        r::validate_model_name(new_name, "new_name")?;
        self.check_column(
            "Registered model name",
            Some(new_name),
            r::MAX_MODEL_NAME_LENGTH,
        )?;
        self.store().rename_registered_model(name, new_name).await
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        r::validate_model_name(name, "name")?;
        self.store().delete_registered_model(name).await
    }

    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        r::validate_model_name(name, "name")?;
        r::validate_tag(key, value)?;
        self.check_column("value", Some(value), r::MAX_MODEL_TAG_COLUMN_LENGTH)?;
        let tag = KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        self.store().set_registered_model_tag(name, &tag).await
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        r::validate_model_name(name, "name")?;
        r::validate_tag(key, "")?;
        self.store().delete_registered_model_tag(name, key).await
    }

    pub async fn search_registered_models(
        &self,
        filter: Option<&str>,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Paged<RegisteredModel>> {
        check_max_results(max_results, SEARCH_REGISTERED_MODELS_MAX)?;
        let clauses = parse_filter(SearchTarget::RegisteredModels, filter.unwrap_or(""))?;
        let order = parse_registry_order(SearchTarget::RegisteredModels, order_by)?;
        let offset = paging::decode(page_token)?;
        let page = self
            .store()
            .search_registered_models(&clauses, &order, max_results, offset)
            .await?;
        let next = page.has_more.then(|| paging::encode(offset + max_results));
        Ok(Paged {
            items: page.items,
            next_page_token: next,
        })
    }

    pub async fn get_latest_versions(
        &self,
        name: &str,
        stages: &[String],
    ) -> Result<Vec<ModelVersion>> {
        r::validate_model_name(name, "name")?;
        let stages = if stages.is_empty() {
            r::ALL_STAGES.to_vec()
        } else {
            stages
                .iter()
                .map(|s| r::canonical_stage(s))
                .collect::<Result<Vec<_>>>()?
        };
        self.store().get_latest_versions(name, &stages).await
    }

    // ---- aliases ----

    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        r::validate_model_name(name, "name")?;
        r::validate_alias(alias, true)?;
        let version = r::parse_version(version)?;
        self.store()
            .set_registered_model_alias(name, alias, version)
            .await
    }

    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        r::validate_model_name(name, "name")?;
        r::validate_alias(alias, false)?;
        self.store()
            .delete_registered_model_alias(name, alias)
            .await
    }

    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        r::validate_model_name(name, "name")?;
        r::validate_alias(alias, false)?;
        let version = if alias.eq_ignore_ascii_case("latest") {
            self.store().max_live_version(name).await?.ok_or_else(|| {
                MlflowError::not_found(format!("Latest version not found for model {name}."))
            })?
        } else {
            self.store()
                .alias_version(name, alias)
                .await?
                .ok_or_else(|| {
                    MlflowError::invalid(format!("Registered model alias {alias} not found."))
                })?
        };
        self.store().get_model_version(name, version).await
    }

    // ---- model versions ----

    pub async fn create_model_version(
        &self,
        req: NewVersionRequest,
        policy: &SourcePolicy,
    ) -> Result<ModelVersion> {
        r::validate_model_name(&req.name, "name")?;
        check_tags(&req.tags)?;
        self.check_column(
            "Description",
            req.description.as_deref(),
            r::MAX_DESCRIPTION_LENGTH,
        )?;
        self.check_column("run_link", req.run_link.as_deref(), r::MAX_RUN_LINK_LENGTH)?;
        let model_id = non_empty(&req.model_id).map(str::to_string);
        self.check_column("source", Some(&req.source), r::MAX_SOURCE_LENGTH)?;
        let resolved = self.resolve_source(&req, policy).await?;
        self.check_column(
            "storage_location",
            Some(&resolved.storage_location),
            r::MAX_SOURCE_LENGTH,
        )?;
        let version = self
            .store()
            .create_model_version(&NewModelVersion {
                name: req.name.clone(),
                source: resolved.source,
                storage_location: resolved.storage_location,
                run_id: resolved.run_id,
                run_link: req.run_link.clone().unwrap_or_default(),
                description: req.description.clone().unwrap_or_default(),
                tags: req.tags,
            })
            .await?;
        if let Some(model_id) = model_id {
            self.record_model_version_on_logged_model(&model_id, &req.name, &version.version)
                .await?;
        }
        Ok(version)
    }

    /// Adds `{name, version}` to the logged model's `mlflow.modelVersions` tag, as MLflow's
    /// server does after registering a logged model.
    async fn record_model_version_on_logged_model(
        &self,
        model_id: &str,
        name: &str,
        version: &str,
    ) -> Result<()> {
        let model = self.store().get_logged_model(model_id, false).await?;
        let number: i64 = version.parse().unwrap_or(0);
        let mut entries: Vec<Value> = model
            .info
            .tags
            .iter()
            .find(|t| t.key == MODEL_VERSIONS_TAG)
            .and_then(|t| serde_json::from_str::<Vec<Value>>(&t.value).ok())
            .unwrap_or_default();
        let present = entries.iter().any(|e| {
            e.get("name").and_then(Value::as_str) == Some(name)
                && match e.get("version") {
                    Some(Value::Number(n)) => n.as_i64() == Some(number),
                    Some(Value::String(s)) => s == version,
                    _ => false,
                }
        });
        if !present {
            entries.push(serde_json::json!({ "name": name, "version": number }));
        }
        let tag = KeyValue {
            key: MODEL_VERSIONS_TAG.to_string(),
            value: python_json(&Value::Array(entries)),
        };
        self.store()
            .set_logged_model_entries(model_id, &[tag], true)
            .await
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        self.store().get_model_version(name, version).await
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        self.check_column("Description", description, r::MAX_DESCRIPTION_LENGTH)?;
        self.store()
            .update_model_version(name, version, description)
            .await
    }

    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        let canonical = r::canonical_stage(stage)?;
        if archive_existing && !r::is_active_stage(canonical) {
            return Err(MlflowError::invalid(format!(
                "Model version transition cannot archive existing model versions because \
                 '{stage}' is not an Active stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        self.store()
            .transition_model_version_stage(name, version, canonical, archive_existing)
            .await
    }

    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        self.store().delete_model_version(name, version).await
    }

    pub async fn get_model_version_download_uri(
        &self,
        name: &str,
        version: &str,
    ) -> Result<String> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        self.store()
            .get_model_version_download_uri(name, version)
            .await
    }

    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        r::validate_tag(key, value)?;
        let tag = KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        self.store()
            .set_model_version_tag(name, version, &tag)
            .await
    }

    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<()> {
        r::validate_model_name(name, "name")?;
        let version = r::parse_version(version)?;
        r::validate_tag(key, "")?;
        self.store()
            .delete_model_version_tag(name, version, key)
            .await
    }

    pub async fn search_model_versions(
        &self,
        filter: Option<&str>,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Paged<ModelVersion>> {
        check_max_results(max_results, SEARCH_MODEL_VERSIONS_MAX)?;
        let clauses = parse_filter(SearchTarget::ModelVersions, filter.unwrap_or(""))?;
        let mut order = parse_registry_order(SearchTarget::ModelVersions, order_by)?;
        if order_by.is_empty() {
            order = parse_order_by(
                SearchTarget::ModelVersions,
                &[
                    "last_updated_timestamp DESC".to_string(),
                    "name ASC".to_string(),
                    "version_number DESC".to_string(),
                ],
            )?;
        }
        let offset = paging::decode(page_token)?;
        let page = self
            .store()
            .search_model_versions(&clauses, &order, max_results, offset)
            .await?;
        let next = page.has_more.then(|| paging::encode(offset + max_results));
        Ok(Paged {
            items: page.items,
            next_page_token: next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_json_matches_python() {
        let v = serde_json::json!([{"name": "m é", "version": 1}]);
        assert_eq!(python_json(&v), r#"[{"name": "m \u00e9", "version": 1}]"#);
    }

    #[test]
    fn duplicate_order_keys_are_refused() {
        assert!(parse_registry_order(
            SearchTarget::RegisteredModels,
            &["timestamp".into(), "last_updated_timestamp DESC".into()]
        )
        .is_err());
        assert!(parse_registry_order(SearchTarget::ModelVersions, &["name".into()]).is_ok());
    }
}
