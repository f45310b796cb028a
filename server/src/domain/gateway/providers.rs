//! The provider catalogue the UI offers when a secret or model definition is set up: the
//! provider names, and per provider how it authenticates (which credentials go into the
//! encrypted secret, which settings into its plain `auth_config`).
//!
//! The list covers the providers MLflow's gateway most commonly serves; any other name gets
//! the generic API-key form, as in MLflow.

use serde_json::{json, Value};

/// Provider names, sorted.
pub const PROVIDERS: &[&str] = &[
    "ai21",
    "anthropic",
    "azure",
    "bedrock",
    "cerebras",
    "cohere",
    "databricks",
    "deepseek",
    "fireworks_ai",
    "gemini",
    "groq",
    "huggingface",
    "mistral",
    "ollama",
    "openai",
    "openrouter",
    "perplexity",
    "together_ai",
    "vertex_ai",
    "xai",
];

fn field(name: &str, description: &str, required: bool) -> Value {
    json!({ "name": name, "type": "string", "description": description, "required": required })
}

fn mode(
    mode: &str,
    display: &str,
    description: &str,
    secret: Vec<Value>,
    config: Vec<Value>,
) -> Value {
    json!({
        "mode": mode,
        "display_name": display,
        "description": description,
        "secret_fields": secret,
        "config_fields": config,
    })
}

/// A display form of a provider name: `together_ai` becomes `Together_Ai`.
fn title(provider: &str) -> String {
    provider
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("_")
}

fn api_key_mode(label: &str) -> Value {
    mode(
        "api_key",
        "API Key",
        &format!("Authenticate with an {label} API key"),
        vec![field("api_key", &format!("{label} API key"), true)],
        vec![field("api_base", &format!("{label} API base URL"), false)],
    )
}

/// The authentication modes of `provider` and the default one.
pub fn provider_config(provider: &str) -> Value {
    let region = |required| field("aws_region_name", "AWS region, e.g. us-east-1", required);
    let (modes, default) = match provider {
        "bedrock" => (
            vec![
                mode(
                    "api_key",
                    "API Key",
                    "Authenticate with an Amazon Bedrock API key (bearer token)",
                    vec![field("api_key", "Amazon Bedrock API key", true)],
                    vec![region(true)],
                ),
                mode(
                    "access_keys",
                    "Access Keys",
                    "Authenticate with an AWS access key ID and secret access key",
                    vec![
                        field("aws_access_key_id", "AWS access key ID", true),
                        field("aws_secret_access_key", "AWS secret access key", true),
                    ],
                    vec![region(false)],
                ),
                mode(
                    "iam_role",
                    "IAM Role Assumption",
                    "Assume an IAM role with the server's own AWS credentials",
                    vec![],
                    vec![
                        field("aws_role_name", "ARN of the IAM role", true),
                        region(false),
                    ],
                ),
                mode(
                    "default_chain",
                    "Default Credential Chain",
                    "Use the server's default AWS credential chain",
                    vec![],
                    vec![
                        field("aws_role_name", "ARN of a role to assume (optional)", false),
                        field(
                            "aws_session_name",
                            "Session name of the assumed role",
                            false,
                        ),
                        region(false),
                    ],
                ),
            ],
            "api_key",
        ),
        "azure" => (
            vec![mode(
                "api_key",
                "API Key",
                "Authenticate with an Azure OpenAI API key",
                vec![field("api_key", "Azure OpenAI API key", true)],
                vec![
                    field("api_base", "Azure OpenAI endpoint URL", true),
                    field("api_version", "API version, e.g. 2024-02-01", true),
                ],
            )],
            "api_key",
        ),
        "vertex_ai" => {
            let config = || {
                vec![
                    field("vertex_project", "GCP project ID", true),
                    field("vertex_location", "GCP region, e.g. us-central1", false),
                ]
            };
            (
                vec![
                    mode(
                        "service_account_json",
                        "Service Account JSON",
                        "Authenticate with a GCP service account key (JSON)",
                        vec![field(
                            "vertex_credentials",
                            "Service account key JSON",
                            true,
                        )],
                        config(),
                    ),
                    mode(
                        "default_chain",
                        "Application Default Credentials",
                        "Use the server's Application Default Credentials",
                        vec![],
                        config(),
                    ),
                ],
                "service_account_json",
            )
        }
        "databricks" => (
            vec![
                mode(
                    "pat_token",
                    "Personal Access Token",
                    "Authenticate with a Databricks personal access token",
                    vec![field("api_key", "Databricks personal access token", true)],
                    vec![field("api_base", "Databricks workspace URL", true)],
                ),
                mode(
                    "oauth_m2m",
                    "OAuth M2M (Service Principal)",
                    "Authenticate as a service principal with OAuth",
                    vec![field("client_secret", "OAuth client secret", true)],
                    vec![
                        field("api_base", "Databricks workspace URL", true),
                        field("client_id", "OAuth client ID", true),
                    ],
                ),
            ],
            "pat_token",
        ),
        "openai" => (vec![api_key_mode("OpenAI")], "api_key"),
        other => (vec![api_key_mode(&title(other))], "api_key"),
    };
    json!({ "auth_modes": modes, "default_mode": default })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_sorted_and_configs_have_modes() {
        assert!(PROVIDERS.windows(2).all(|w| w[0] < w[1]));
        let bedrock = provider_config("bedrock");
        assert_eq!(bedrock["default_mode"], "api_key");
        assert_eq!(bedrock["auth_modes"].as_array().unwrap().len(), 4);
        let other = provider_config("unknown_provider");
        assert_eq!(
            other["auth_modes"][0]["config_fields"][0]["name"],
            "api_base"
        );
    }
}
