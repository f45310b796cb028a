//! Which webhook event each registry write raises, with MLflow's payload: a registered model
//! or version carrying `mlflow.prompt.is_prompt` raises the prompt events, anything else the
//! model ones; tags on a registered model raise events only for prompts. The writes call these
//! after they succeed; deliveries then run on their own (see [`super::webhook_delivery`]).

use serde_json::{json, Map, Value};

use super::registry::NewVersionRequest;
use super::tracking::Tracking;
use super::webhooks::Webhooks;
use crate::domain::registry::IS_PROMPT_TAG_KEY;
use crate::domain::webhooks::{Action, Entity, Event};
use crate::wire::KeyValue;

const PROMPT_TEXT_TAG_KEY: &str = "mlflow.prompt.text";
const PROMPT_TYPE_TAG_KEY: &str = "_mlflow_prompt_type";

/// Tags as MLflow's `{t.key: t.value}`: the last value of a key wins.
fn tag_map<'a>(tags: impl Iterator<Item = &'a KeyValue>) -> Map<String, Value> {
    tags.map(|t| (t.key.clone(), Value::String(t.value.clone())))
        .collect()
}

fn is_prompt_request(tags: &[KeyValue]) -> bool {
    tags.iter().any(|t| t.key == IS_PROMPT_TAG_KEY)
}

fn event(entity: Entity, action: Action) -> Event {
    Event { entity, action }
}

impl Tracking {
    /// Whether the registered model `name` is a prompt; false when it cannot be read.
    pub async fn is_prompt(&self, name: &str) -> bool {
        self.get_registered_model(name).await.is_ok_and(|m| {
            m.tags
                .iter()
                .any(|t| t.key == IS_PROMPT_TAG_KEY && t.value.eq_ignore_ascii_case("true"))
        })
    }
}

impl Webhooks {
    pub fn registered_model_created(&self, name: &str, tags: &[KeyValue], description: &str) {
        if is_prompt_request(tags) {
            let kept = tags
                .iter()
                .filter(|t| t.key != IS_PROMPT_TAG_KEY && t.key != PROMPT_TYPE_TAG_KEY);
            self.deliver(
                event(Entity::Prompt, Action::Created),
                json!({"name": name, "tags": tag_map(kept), "description": description}),
            );
        } else {
            self.deliver(
                event(Entity::RegisteredModel, Action::Created),
                json!({"name": name, "tags": tag_map(tags.iter()), "description": description}),
            );
        }
    }

    pub fn model_version_created(&self, req: &NewVersionRequest, version: &str) {
        let description = req.description.as_deref().filter(|d| !d.is_empty());
        let mut tags = tag_map(req.tags.iter());
        if is_prompt_request(&req.tags) {
            let template = tags.remove(PROMPT_TEXT_TAG_KEY).unwrap_or(Value::Null);
            tags.remove(IS_PROMPT_TAG_KEY);
            tags.remove(PROMPT_TYPE_TAG_KEY);
            self.deliver(
                event(Entity::PromptVersion, Action::Created),
                json!({"name": req.name, "version": version, "template": template,
                    "tags": tags, "description": description}),
            );
        } else {
            let run_id = req.run_id.as_deref().filter(|r| !r.is_empty());
            self.deliver(
                event(Entity::ModelVersion, Action::Created),
                json!({"name": req.name, "version": version, "source": req.source,
                    "run_id": run_id, "tags": tags, "description": description}),
            );
        }
    }

    /// A tag set (`value` `Some`) or deleted on a registered model: an event for prompts only.
    pub fn registered_model_tag(&self, prompt: bool, name: &str, key: &str, value: Option<&str>) {
        if !prompt {
            return;
        }
        match value {
            Some(value) => self.deliver(
                event(Entity::PromptTag, Action::Set),
                json!({"name": name, "key": key, "value": value}),
            ),
            None => self.deliver(
                event(Entity::PromptTag, Action::Deleted),
                json!({"name": name, "key": key}),
            ),
        }
    }

    /// A tag set (`value` `Some`) or deleted on a version.
    pub fn model_version_tag(
        &self,
        prompt: bool,
        name: &str,
        version: &str,
        key: &str,
        value: Option<&str>,
    ) {
        let entity = if prompt {
            Entity::PromptVersionTag
        } else {
            Entity::ModelVersionTag
        };
        match value {
            Some(value) => self.deliver(
                event(entity, Action::Set),
                json!({"name": name, "version": version, "key": key, "value": value}),
            ),
            None => self.deliver(
                event(entity, Action::Deleted),
                json!({"name": name, "version": version, "key": key}),
            ),
        }
    }

    /// An alias set (`version` `Some`) or deleted.
    pub fn alias(&self, prompt: bool, name: &str, alias: &str, version: Option<&str>) {
        let entity = if prompt {
            Entity::PromptAlias
        } else {
            Entity::ModelVersionAlias
        };
        match version {
            Some(version) => self.deliver(
                event(entity, Action::Created),
                json!({"name": name, "alias": alias, "version": version}),
            ),
            None => self.deliver(
                event(entity, Action::Deleted),
                json!({"name": name, "alias": alias}),
            ),
        }
    }
}
