//! The AI gateway's configuration in MLflow's tables: `secrets` (encrypted credentials),
//! `model_definitions`, `endpoints` with `endpoint_model_mappings` and `endpoint_tags`, and
//! `endpoint_bindings`. Ids and encodings are MLflow's (`s-`, `d-`, `e-`, `m-` plus 32 hex
//! digits; JSON text for masked values, auth config and fallback config), so the Python
//! server reads these rows and we read its.
//!
//! SQLite is opened without foreign-key enforcement, so the cascades MLflow's schema
//! declares (an endpoint's mappings, tags and bindings go with it; a deleted secret leaves
//! its model definitions without one) are written out here for every dialect.

mod bindings;
mod endpoints;
mod models;
mod secrets;

pub use endpoints::EndpointFields;
pub use new_id as new_gateway_id;
pub use secrets::{new_secret_id, NewSecret};

use super::sql::{is_unique_violation, Sql};
use super::Store;
use crate::error::{MlflowError, Result};

/// A new gateway id: MLflow's prefix and a UUID's hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

impl Store {
    /// Runs `stmts` in one write transaction; a duplicate key answers `duplicate()`.
    async fn gateway_write(
        &self,
        stmts: &[Sql],
        duplicate: impl Fn() -> MlflowError + Sync,
    ) -> Result<()> {
        let duplicate = &duplicate;
        self.write(|tx, _| {
            Box::pin(async move {
                for sql in stmts {
                    if let Err(e) = sql.query().execute(&mut *tx).await {
                        if is_unique_violation(&e) {
                            tracing::debug!(error = %e, "gateway write hit a unique key");
                            return Err(duplicate());
                        }
                        return Err(e.into());
                    }
                }
                Ok(())
            })
        })
        .await
    }
}

/// MLflow's not-found message: `GatewaySecret not found (secret_id='s-1')`.
pub(crate) fn not_found(entity: &str, key: &str, value: &str) -> MlflowError {
    MlflowError::not_found(format!("{entity} not found ({key}='{value}')"))
}

/// The `duplicate` answer of writes that cannot meet a unique key.
pub(crate) fn no_duplicate() -> MlflowError {
    MlflowError::internal("unexpected duplicate key")
}
