//! `secrets`: encrypted provider credentials with their masked form and plain auth config.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, no_duplicate, not_found};
use crate::domain::gateway::crypto::Sealed;
use crate::domain::gateway::SecretInfo;
use crate::error::{MlflowError, Result};
use crate::store::sql::{get_i64, get_str};
use crate::store::{now_ms, Store};

const SELECT: &str = "SELECT secret_id, secret_name, masked_value, created_at, last_updated_at, \
     provider, created_by, last_updated_by, auth_config FROM secrets";

/// What creating a secret writes (the value already sealed for `secret_id`).
pub struct NewSecret {
    pub secret_id: String,
    pub secret_name: String,
    pub sealed: Sealed,
    pub masked: BTreeMap<String, String>,
    pub provider: Option<String>,
    pub auth_config: Option<BTreeMap<String, String>>,
    pub created_by: Option<String>,
}

/// A JSON object of strings; other values (numbers, booleans) are shown as their JSON text.
fn string_map(text: Option<String>) -> Option<BTreeMap<String, String>> {
    let value: serde_json::Value = serde_json::from_str(&text?).ok()?;
    let obj = value.as_object()?;
    Some(
        obj.iter()
            .map(|(k, v)| {
                let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k.clone(), s)
            })
            .collect(),
    )
}

fn secret_from_row(row: &AnyRow) -> SecretInfo {
    SecretInfo {
        secret_id: get_str(row, "secret_id").unwrap_or_default(),
        secret_name: get_str(row, "secret_name").unwrap_or_default(),
        // MLflow shows `{"value": "***"}` for a masked value it cannot parse.
        masked_values: string_map(get_str(row, "masked_value"))
            .unwrap_or_else(|| BTreeMap::from([("value".to_string(), "***".to_string())])),
        created_at: get_i64(row, "created_at").unwrap_or_default(),
        last_updated_at: get_i64(row, "last_updated_at").unwrap_or_default(),
        provider: get_str(row, "provider"),
        created_by: get_str(row, "created_by"),
        last_updated_by: get_str(row, "last_updated_by"),
        auth_config: string_map(get_str(row, "auth_config")).filter(|m| !m.is_empty()),
    }
}

fn json_text(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".to_string())
}

impl Store {
    pub async fn create_gateway_secret(&self, s: NewSecret) -> Result<SecretInfo> {
        let now = now_ms();
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO secrets (secret_id, secret_name, encrypted_value, wrapped_dek, \
             kek_version, masked_value, provider, auth_config, created_by, created_at, \
             last_updated_by, last_updated_at) VALUES (",
        )
        .bind(s.secret_id.as_str())
        .push(", ")
        .bind(s.secret_name.as_str())
        .push(", ")
        .bind(s.sealed.encrypted_value)
        .push(", ")
        .bind(s.sealed.wrapped_dek)
        .push(", ")
        .bind(s.sealed.kek_version)
        .push(", ")
        .bind(json_text(&s.masked))
        .push(", ")
        .bind(s.provider)
        .push(", ")
        .bind(s.auth_config.as_ref().map(json_text))
        .push(", ")
        .bind(s.created_by.clone())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(s.created_by)
        .push(", ")
        .bind(now)
        .push(")");
        let name = s.secret_name.clone();
        self.gateway_write(&[sql], || {
            MlflowError::already_exists(format!("Secret with name '{name}' already exists"))
        })
        .await?;
        self.get_gateway_secret(&s.secret_id).await
    }

    pub async fn get_gateway_secret(&self, secret_id: &str) -> Result<SecretInfo> {
        let mut sql = self.sql();
        sql.push(SELECT).push(" WHERE secret_id = ").bind(secret_id);
        self.fetch_optional(&sql)
            .await?
            .map(|r| secret_from_row(&r))
            .ok_or_else(|| not_found("GatewaySecret", "secret_id", secret_id))
    }

    /// The stored ciphertexts of a secret (for re-encryption and rotation only).
    pub async fn gateway_secret_sealed(&self, secret_id: &str) -> Result<(String, Sealed)> {
        let mut sql = self.sql();
        sql.push("SELECT secret_name, encrypted_value, wrapped_dek, kek_version FROM secrets")
            .push(" WHERE secret_id = ")
            .bind(secret_id);
        let row = self
            .fetch_optional(&sql)
            .await?
            .ok_or_else(|| not_found("GatewaySecret", "secret_id", secret_id))?;
        let bytes = |column| row.try_get::<Vec<u8>, _>(column).unwrap_or_default();
        Ok((
            get_str(&row, "secret_name").unwrap_or_default(),
            Sealed {
                encrypted_value: bytes("encrypted_value"),
                wrapped_dek: bytes("wrapped_dek"),
                kek_version: get_i64(&row, "kek_version").unwrap_or(1),
            },
        ))
    }

    /// The ids of the secrets sealed under KEK version `kek_version` (rotation walks them).
    pub async fn gateway_secret_ids(&self, kek_version: i64) -> Result<Vec<String>> {
        let mut sql = self.sql();
        sql.push("SELECT secret_id FROM secrets WHERE kek_version = ")
            .bind(kek_version)
            .push(" ORDER BY secret_id");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .filter_map(|r| get_str(r, "secret_id"))
            .collect())
    }

    pub async fn list_gateway_secrets(&self, provider: Option<&str>) -> Result<Vec<SecretInfo>> {
        let mut sql = self.sql();
        sql.push(SELECT);
        if let Some(p) = provider {
            sql.push(" WHERE provider = ").bind(p);
        }
        sql.push(" ORDER BY created_at, secret_id");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(secret_from_row)
            .collect())
    }

    /// Replaces the value (when `sealed` is given) and/or the auth config (`Some(None)`
    /// clears it) of a secret.
    pub async fn update_gateway_secret(
        &self,
        secret_id: &str,
        sealed: Option<(Sealed, BTreeMap<String, String>)>,
        auth_config: Option<Option<BTreeMap<String, String>>>,
        updated_by: Option<String>,
    ) -> Result<SecretInfo> {
        self.get_gateway_secret(secret_id).await?;
        let mut sql = self.sql();
        sql.push("UPDATE secrets SET last_updated_by = ")
            .bind(updated_by)
            .push(", last_updated_at = ")
            .bind(now_ms());
        if let Some((sealed, masked)) = sealed {
            sql.push(", encrypted_value = ")
                .bind(sealed.encrypted_value)
                .push(", wrapped_dek = ")
                .bind(sealed.wrapped_dek)
                .push(", kek_version = ")
                .bind(sealed.kek_version)
                .push(", masked_value = ")
                .bind(json_text(&masked));
        }
        if let Some(config) = auth_config {
            sql.push(", auth_config = ")
                .bind(config.filter(|c| !c.is_empty()).as_ref().map(json_text));
        }
        sql.push(" WHERE secret_id = ").bind(secret_id);
        self.gateway_write(&[sql], no_duplicate).await?;
        self.get_gateway_secret(secret_id).await
    }

    /// Stores re-wrapped keys (KEK rotation) in one transaction: all or none.
    pub async fn rewrap_gateway_secrets(&self, rows: Vec<(String, Sealed)>) -> Result<()> {
        let stmts: Vec<_> = rows
            .into_iter()
            .map(|(id, sealed)| {
                let mut sql = self.sql();
                sql.push("UPDATE secrets SET wrapped_dek = ")
                    .bind(sealed.wrapped_dek)
                    .push(", kek_version = ")
                    .bind(sealed.kek_version)
                    .push(" WHERE secret_id = ")
                    .bind(id);
                sql
            })
            .collect();
        self.gateway_write(&stmts, no_duplicate).await
    }

    /// Deletes a secret; its model definitions stay, without a secret.
    pub async fn delete_gateway_secret(&self, secret_id: &str) -> Result<()> {
        self.get_gateway_secret(secret_id).await?;
        let mut detach = self.sql();
        detach
            .push("UPDATE model_definitions SET secret_id = NULL WHERE secret_id = ")
            .bind(secret_id);
        let mut delete = self.sql();
        delete
            .push("DELETE FROM secrets WHERE secret_id = ")
            .bind(secret_id);
        self.gateway_write(&[detach, delete], no_duplicate).await
    }
}

/// A fresh secret id.
pub fn new_secret_id() -> String {
    new_id("s")
}
