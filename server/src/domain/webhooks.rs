//! Webhooks of the model registry: the events one may subscribe to (MLflow's entity/action
//! pairs), the checks on names and URLs, the example payloads that a test delivery sends,
//! and the HMAC signature of a delivery.
//!
//! The URL check here is the syntactic part (scheme, host); whether the host resolves to a
//! public address is asked of DNS by the service, at creation and again before each delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use super::validation::py_repr;
use crate::error::{MlflowError, Result};

/// What kind of object an event is about; the wire uses the upper-case name, the database
/// the lower-case one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    RegisteredModel,
    ModelVersion,
    ModelVersionTag,
    ModelVersionAlias,
    Prompt,
    PromptVersion,
    PromptTag,
    PromptVersionTag,
    PromptAlias,
    BudgetPolicy,
}

/// Entities in proto order (number = index + 1).
const ENTITIES: [(Entity, &str); 10] = [
    (Entity::RegisteredModel, "registered_model"),
    (Entity::ModelVersion, "model_version"),
    (Entity::ModelVersionTag, "model_version_tag"),
    (Entity::ModelVersionAlias, "model_version_alias"),
    (Entity::Prompt, "prompt"),
    (Entity::PromptVersion, "prompt_version"),
    (Entity::PromptTag, "prompt_tag"),
    (Entity::PromptVersionTag, "prompt_version_tag"),
    (Entity::PromptAlias, "prompt_alias"),
    (Entity::BudgetPolicy, "budget_policy"),
];

/// What happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Set,
    Exceeded,
}

const ACTIONS: [(Action, &str); 5] = [
    (Action::Created, "created"),
    (Action::Updated, "updated"),
    (Action::Deleted, "deleted"),
    (Action::Set, "set"),
    (Action::Exceeded, "exceeded"),
];

impl Entity {
    pub fn as_str(self) -> &'static str {
        ENTITIES
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("", |p| p.1)
    }

    /// From the database's lower-case name, or the wire's upper-case name or number.
    pub fn parse(value: &Value) -> Option<Self> {
        enum_from(value, &ENTITIES)
    }

    /// The actions MLflow allows with this entity.
    fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Entity::RegisteredModel
            | Entity::ModelVersion
            | Entity::Prompt
            | Entity::PromptVersion => &[Created],
            Entity::ModelVersionTag | Entity::PromptTag | Entity::PromptVersionTag => {
                &[Deleted, Set]
            }
            Entity::ModelVersionAlias | Entity::PromptAlias => &[Created, Deleted],
            Entity::BudgetPolicy => &[Exceeded],
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        ACTIONS.iter().find(|(a, _)| *a == self).map_or("", |p| p.1)
    }

    pub fn parse(value: &Value) -> Option<Self> {
        enum_from(value, &ACTIONS)
    }
}

/// A proto enum value: its name in either case, or its number (1-based; 0 is "unspecified").
fn enum_from<T: Copy>(value: &Value, table: &[(T, &str)]) -> Option<T> {
    match value {
        Value::String(s) => table
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s))
            .map(|p| p.0),
        Value::Number(n) => {
            let i = usize::try_from(n.as_u64()?).ok()?;
            table.get(i.checked_sub(1)?).map(|p| p.0)
        }
        _ => None,
    }
}

/// An entity/action pair that MLflow allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    pub entity: Entity,
    pub action: Action,
}

impl Event {
    pub fn new(entity: Entity, action: Action) -> Result<Self> {
        let allowed = entity.actions();
        if !allowed.contains(&action) {
            let mut names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            names.sort_unstable();
            let list: Vec<String> = names.iter().map(|n| py_repr(n)).collect();
            return Err(MlflowError::invalid(format!(
                "Invalid action '{}' for entity '{}'. Valid actions are: [{}]",
                action.as_str(),
                entity.as_str(),
                list.join(", ")
            )));
        }
        Ok(Self { entity, action })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("entity", &self.entity.as_str().to_ascii_uppercase())?;
        map.serialize_entry("action", &self.action.as_str().to_ascii_uppercase())?;
        map.end()
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.entity.as_str(), self.action.as_str())
    }
}

/// Whether deliveries are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Disabled => "DISABLED",
        }
    }

    /// From the name (any case) or the proto number (1 active, 2 disabled).
    pub fn parse(value: &Value) -> Option<Self> {
        enum_from(
            value,
            &[(Status::Active, "active"), (Status::Disabled, "disabled")],
        )
    }
}

/// A webhook; `secret` is the decrypted secret, never serialised.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<Event>,
    pub status: Status,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip)]
    pub secret: Option<String>,
}

/// The result of a test delivery.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestResult {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// MLflow's rule: 1 to 63 letters, digits, `.`, `_`, `-`, starting and ending with a letter
/// or digit.
pub fn validate_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let len = name.chars().count();
    let ends_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if (1..=63).contains(&len) && ends_ok && name.chars().all(ok_char) {
        return Ok(());
    }
    Err(MlflowError::invalid(format!(
        "Webhook name {} is invalid. It must start and end with a letter or digit, be less \
         than 63 characters long, and contain only letters, digits, dots (.), underscores (_), \
         and hyphens (-).",
        py_repr(name)
    )))
}

/// Checks scheme and host of a webhook URL as Python's `urlparse` reads it; returns the
/// host (lower case, without brackets) for the address check.
pub fn validate_url(url: &str, allowed_schemes: &[String]) -> Result<String> {
    if url.trim().is_empty() {
        return Err(MlflowError::invalid(format!(
            "Webhook URL cannot be empty or just whitespace: {}",
            py_repr(url)
        )));
    }
    let (scheme, rest) = split_scheme(url);
    // `urlparse` refuses a network location with one IPv6 bracket but not the other.
    let netloc = rest.strip_prefix("//").unwrap_or("");
    let netloc = netloc.split(['/', '?', '#']).next().unwrap_or("");
    if netloc.contains('[') != netloc.contains(']') {
        return Err(MlflowError::invalid(format!(
            "Invalid webhook URL {}: ValueError('Invalid IPv6 URL')",
            py_repr(url)
        )));
    }
    if !allowed_schemes.contains(&scheme) {
        return Err(MlflowError::invalid(format!(
            "Invalid webhook URL scheme: {}. Allowed schemes are: {}.",
            py_repr(&scheme),
            allowed_schemes.join(", ")
        )));
    }
    host_of(rest).ok_or_else(|| {
        MlflowError::invalid(format!(
            "Webhook URL must include a hostname: {}",
            py_repr(url)
        ))
    })
}

/// `urlparse`'s scheme: letters, digits, `+-.` starting with a letter, before the first `:`;
/// lower-cased. No valid scheme means an empty one and the whole URL as the rest.
fn split_scheme(url: &str) -> (String, &str) {
    if let Some((scheme, rest)) = url.split_once(':') {
        let valid = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            return (scheme.to_ascii_lowercase(), rest);
        }
    }
    (String::new(), url)
}

/// The host of `//netloc/...`, as `urlparse(...).hostname`: after the user info, without the
/// port or IPv6 brackets, lower-cased; `None` when empty.
fn host_of(rest: &str) -> Option<String> {
    let netloc = rest.strip_prefix("//")?;
    let netloc = netloc.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        inner.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Python's `ipaddress.ip_address(...).is_global`: not in any of the private, reserved,
/// loopback, link-local, documentation or shared ranges.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    const NON_GLOBAL: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 29),
        ([192, 0, 0, 170], 31),
        ([192, 0, 2, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([240, 0, 0, 0], 4),
        ([255, 255, 255, 255], 32),
    ];
    !NON_GLOBAL.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let within = |net: u128, len: u32| (bits >> (128 - len)) == (net >> (128 - len));
    !(ip.is_loopback()
        || ip.is_unspecified()
        || within(0x0064_ff9b_0001 << 80, 48) // local-use NAT64
        || within(0x0100 << 112, 64) // discard-only
        || within(0x2001 << 112, 23) // IETF protocol assignments
        || within(0x2001_0db8 << 96, 32) // documentation
        || within(0x2002 << 112, 16) // 6to4
        || within(0xfc00 << 112, 7) // unique local
        || within(0xfe80 << 112, 10)) // link-local
}

/// The example payload that a test delivery of `event` sends, as MLflow's.
pub fn example_payload(event: Event) -> Value {
    let tags = json!({"example_key": "example_value"});
    match (event.entity, event.action) {
        (Entity::RegisteredModel, _) => json!({"name": "example_model", "tags": tags,
            "description": "An example registered model"}),
        (Entity::ModelVersion, _) => json!({"name": "example_model", "version": "1",
            "source": "models:/123", "run_id": "abcd1234abcd5678", "tags": tags,
            "description": "An example model version"}),
        (Entity::ModelVersionTag, Action::Set) => json!({"name": "example_model",
            "version": "1", "key": "example_key", "value": "example_value"}),
        (Entity::ModelVersionTag, _) => json!({"name": "example_model", "version": "1",
            "key": "example_key"}),
        (Entity::ModelVersionAlias, Action::Created) => json!({"name": "example_model",
            "alias": "example_alias", "version": "1"}),
        (Entity::ModelVersionAlias, _) => json!({"name": "example_model",
            "alias": "example_alias"}),
        (Entity::Prompt, _) => json!({"name": "example_prompt", "tags": tags,
            "description": "An example prompt"}),
        (Entity::PromptVersion, _) => json!({"name": "example_prompt", "version": "1",
            "template": "Hello {{name}}!", "tags": tags,
            "description": "An example prompt version"}),
        (Entity::PromptTag, Action::Set) => json!({"name": "example_prompt",
            "key": "example_key", "value": "example_value"}),
        (Entity::PromptTag, _) => json!({"name": "example_prompt", "key": "example_key"}),
        (Entity::PromptVersionTag, Action::Set) => json!({"name": "example_prompt",
            "version": "1", "key": "example_key", "value": "example_value"}),
        (Entity::PromptVersionTag, _) => json!({"name": "example_prompt", "version": "1",
            "key": "example_key"}),
        (Entity::PromptAlias, Action::Created) => json!({"name": "example_prompt",
            "alias": "example_alias", "version": "1"}),
        (Entity::PromptAlias, _) => json!({"name": "example_prompt",
            "alias": "example_alias"}),
        (Entity::BudgetPolicy, _) => json!({"budget_policy_id": "bp-abc123",
            "budget_unit": "USD", "budget_amount": 100.0, "current_spend": 105.5,
            "duration_unit": "MONTHS", "duration_value": 1, "target_scope": "WORKSPACE",
            "workspace": "default", "window_start": 1704067200000_i64}),
    }
}

/// The `X-MLflow-Signature` header: `v1,` and the base64 HMAC-SHA256 of
/// `<delivery id>.<unix seconds>.<body>` under the webhook's secret.
pub fn signature(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let signed = format!("{delivery_id}.{timestamp}.{body}");
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_mlflow_pairs() {
        assert!(Event::new(Entity::ModelVersionTag, Action::Set).is_ok());
        let err = Event::new(Entity::RegisteredModel, Action::Deleted).unwrap_err();
        assert_eq!(
            err.message,
            "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: \
             ['created']"
        );
        assert_eq!(
            Entity::parse(&json!("MODEL_VERSION")),
            Some(Entity::ModelVersion)
        );
        assert_eq!(Entity::parse(&json!(2)), Some(Entity::ModelVersion));
        assert_eq!(Entity::parse(&json!(0)), None);
        assert_eq!(Action::parse(&json!("bogus")), None);
    }

    #[test]
    fn names_and_urls() {
        assert!(validate_name("hook-1.a_b").is_ok());
        assert!(validate_name("-bad").is_err());
        assert!(validate_name(&"a".repeat(64)).is_err());
        let https = vec!["https".to_string()];
        assert_eq!(
            validate_url("https://User@Example.com:8443/x", &https).unwrap(),
            "example.com"
        );
        assert_eq!(
            validate_url("ftp://example.com", &https)
                .unwrap_err()
                .message,
            "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: https."
        );
        assert_eq!(
            validate_url("not a url", &https).unwrap_err().message,
            "Invalid webhook URL scheme: ''. Allowed schemes are: https."
        );
        assert!(validate_url("https://", &https).is_err());
        assert!(validate_url("http://[invalid", &https)
            .unwrap_err()
            .message
            .starts_with("Invalid webhook URL 'http://[invalid': "));
        assert_eq!(validate_url("https://[::1]:80/", &https).unwrap(), "::1");
    }

    #[test]
    fn global_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111"] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn signature_is_standard_webhooks_v1() {
        // HMAC-SHA256("secret", "id.1.{}"), base64.
        let sig = signature("secret", "id", "1", "{}");
        assert!(sig.starts_with("v1,"));
        assert_eq!(sig, signature("secret", "id", "1", "{}"));
        assert_ne!(sig, signature("other", "id", "1", "{}"));
    }
}
