//! The AI gateway's configuration: encryption of secret values before they reach the
//! store, and the experiment MLflow creates for an endpoint's usage tracking.

use std::collections::BTreeMap;

use super::tracking::Tracking;
use crate::domain::gateway::crypto::{self, Kek};
use crate::domain::gateway::{
    mask_values, secret_plaintext, Endpoint, SecretInfo, EXPERIMENT_IS_GATEWAY_TAG,
    EXPERIMENT_SOURCE_ID_TAG, EXPERIMENT_SOURCE_TYPE_TAG,
};
use crate::error::{ErrorCode, MlflowError, Result};
use crate::store::{EndpointFields, NewSecret};
use crate::wire::KeyValue;

/// The server's KEK; derived off the async threads (PBKDF2 is deliberately slow).
async fn server_kek() -> Result<Kek> {
    tokio::task::spawn_blocking(Kek::from_env)
        .await
        .map_err(|_| MlflowError::internal("key derivation failed"))?
}

fn seal(
    kek: &Kek,
    values: &[(String, String)],
    secret_id: &str,
    secret_name: &str,
) -> Result<(crypto::Sealed, BTreeMap<String, String>)> {
    let sealed = crypto::encrypt(kek, &secret_plaintext(values), secret_id, secret_name)?;
    let plain: BTreeMap<String, String> = values.iter().cloned().collect();
    Ok((sealed, mask_values(&plain)))
}

impl Tracking {
    pub async fn create_gateway_secret(
        &self,
        secret_name: &str,
        values: &[(String, String)],
        provider: Option<String>,
        auth_config: Option<BTreeMap<String, String>>,
        created_by: Option<String>,
    ) -> Result<SecretInfo> {
        let kek = server_kek().await?;
        let secret_id = crate::store::new_secret_id();
        let (sealed, masked) = seal(&kek, values, &secret_id, secret_name)?;
        self.store()
            .create_gateway_secret(NewSecret {
                secret_id,
                secret_name: secret_name.to_string(),
                sealed,
                masked,
                provider,
                auth_config,
                created_by,
            })
            .await
    }

    pub async fn update_gateway_secret(
        &self,
        secret_id: &str,
        values: Option<&[(String, String)]>,
        auth_config: Option<BTreeMap<String, String>>,
        updated_by: Option<String>,
    ) -> Result<SecretInfo> {
        let current = self.store().get_gateway_secret(secret_id).await?;
        let sealed = match values {
            Some(v) => {
                let kek = server_kek().await?;
                Some(seal(&kek, v, secret_id, &current.secret_name)?)
            }
            None => None,
        };
        self.store()
            .update_gateway_secret(secret_id, sealed, auth_config.map(Some), updated_by)
            .await
    }

    /// Re-wraps the key of every secret sealed under `old` with `new` (`mlflow crypto
    /// rotate-kek`), in one transaction; each value must open under `old` first. Returns how
    /// many were rotated.
    pub async fn rotate_gateway_kek(&self, old: &Kek, new: &Kek) -> Result<usize> {
        let ids = self.store().gateway_secret_ids(old.version).await?;
        let mut rewrapped = Vec::new();
        for id in ids {
            let (name, sealed) = self.store().gateway_secret_sealed(&id).await?;
            let sealed = crypto::rewrap(old, new, &sealed, &id, &name)?;
            rewrapped.push((id, sealed));
        }
        let count = rewrapped.len();
        self.store().rewrap_gateway_secrets(rewrapped).await?;
        Ok(count)
    }

    /// The experiment that records an endpoint's usage: `gateway/<name>`, created with
    /// MLflow's gateway tags unless it exists.
    async fn usage_experiment(&self, endpoint_name: &str, endpoint_id: &str) -> Result<i64> {
        let name = format!("gateway/{endpoint_name}");
        let tags = vec![
            KeyValue {
                key: EXPERIMENT_SOURCE_TYPE_TAG.to_string(),
                value: "GATEWAY".to_string(),
            },
            KeyValue {
                key: EXPERIMENT_SOURCE_ID_TAG.to_string(),
                value: endpoint_id.to_string(),
            },
            KeyValue {
                key: EXPERIMENT_IS_GATEWAY_TAG.to_string(),
                value: "true".to_string(),
            },
        ];
        let id = match self.create_experiment(&name, None, tags).await {
            Ok(id) => id,
            Err(e) if e.code == ErrorCode::ResourceAlreadyExists => {
                self.get_experiment_by_name(&name).await?.experiment_id
            }
            Err(e) => return Err(e),
        };
        parse_experiment(&id)
    }

    pub async fn create_gateway_endpoint(
        &self,
        mut fields: EndpointFields,
        configs: &[crate::domain::gateway::ModelConfig],
    ) -> Result<Endpoint> {
        if configs.is_empty() {
            return Err(MlflowError::invalid(
                "Endpoint must have at least one model configuration",
            ));
        }
        let endpoint_id = crate::store::new_gateway_id("e");
        let tracking = fields.usage_tracking.unwrap_or(true);
        fields.usage_tracking = Some(tracking);
        if tracking && fields.experiment_id.is_none() {
            let name = fields.name.clone().unwrap_or_default();
            // Model definitions are checked first, so a bad request leaves no experiment.
            for c in configs {
                self.store()
                    .get_gateway_model(&c.model_definition_id)
                    .await
                    .map_err(|_| {
                        MlflowError::not_found(format!(
                            "Model definitions not found: {}",
                            c.model_definition_id
                        ))
                    })?;
            }
            fields.experiment_id = Some(self.usage_experiment(&name, &endpoint_id).await?);
        }
        self.store()
            .create_gateway_endpoint(&endpoint_id, fields, configs)
            .await
    }

    pub async fn update_gateway_endpoint(
        &self,
        endpoint_id: &str,
        mut fields: EndpointFields,
        configs: Option<&[crate::domain::gateway::ModelConfig]>,
    ) -> Result<Endpoint> {
        let current = self
            .store()
            .get_gateway_endpoint(Some(endpoint_id), None)
            .await?;
        if fields.usage_tracking == Some(true)
            && fields.experiment_id.is_none()
            && current.experiment_id.is_none()
        {
            let name = fields.name.clone().or(current.name).unwrap_or_default();
            fields.experiment_id = Some(self.usage_experiment(&name, endpoint_id).await?);
        }
        self.store()
            .update_gateway_endpoint(endpoint_id, fields, configs)
            .await
    }
}

/// An experiment id as the endpoints table keeps it (an integer).
pub fn parse_experiment(id: &str) -> Result<i64> {
    id.parse::<i64>().map_err(|_| {
        MlflowError::invalid(format!(
            "Invalid value {id} for parameter 'experiment_id' supplied"
        ))
    })
}
