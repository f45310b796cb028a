//! The model registry in MLflow's own tables: `registered_models`, `model_versions`,
//! `registered_model_tags`, `model_version_tags` and `registered_model_aliases`.
//!
//! Column values are written exactly as MLflow's SQL store writes them (milliseconds,
//! stage names, `READY`, empty strings for absent descriptions and run links, the
//! `Deleted_Internal` soft delete with its redacted fields) so a database moves both ways
//! between this server and the Python one. Rows are in the `default` workspace, the only
//! one a single-tenant server has.
//!
//! One file per aggregate: [`models`] (registered models and their tags), [`versions`]
//! (model versions, their stages and tags), [`aliases`], and [`locks`], the row locks every
//! registry write takes in one order.

mod aliases;
mod locks;
mod models;
mod versions;

use sqlx::any::AnyRow;

use super::sql::{get_i64, get_str};
use crate::error::MlflowError;
use crate::wire::registry::{ModelVersion, RegisteredModel};
use crate::wire::KeyValue;

pub(super) const MV_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, \
     mv.description, mv.user_id, mv.current_stage, mv.source, mv.run_id, mv.status, \
     mv.status_message, mv.run_link, mv.storage_location";

pub(super) const RM_COLUMNS: &str =
    "rm.name, rm.creation_time, rm.last_updated_time, rm.description";

/// Model names per tag lookup of a page of versions.
pub(super) const TAG_LOOKUP_CHUNK: usize = 500;

/// How many times a version insert is retried after losing a race for its number.
pub(super) const CREATE_VERSION_ATTEMPTS: usize = 3;

/// A model version to create; the source has been checked and resolved by the service.
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: String,
    pub description: String,
    pub tags: Vec<KeyValue>,
}

pub(super) fn rm_not_found(name: &str) -> MlflowError {
    MlflowError::not_found(format!("Registered Model with name={name} not found"))
}

pub(super) fn mv_not_found(name: &str, version: i64) -> MlflowError {
    MlflowError::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

pub(super) fn rm_exists(name: &str) -> MlflowError {
    MlflowError::already_exists(format!("Registered Model (name={name}) already exists."))
}

pub(super) fn mv_from_row(row: &AnyRow) -> (ModelVersion, Option<String>) {
    let mv = ModelVersion {
        name: get_str(row, "name").unwrap_or_default(),
        version: get_i64(row, "version").unwrap_or(0).to_string(),
        creation_timestamp: get_i64(row, "creation_time").unwrap_or(0),
        last_updated_timestamp: get_i64(row, "last_updated_time"),
        description: get_str(row, "description"),
        user_id: get_str(row, "user_id"),
        current_stage: get_str(row, "current_stage"),
        source: get_str(row, "source"),
        run_id: get_str(row, "run_id"),
        status: get_str(row, "status"),
        status_message: get_str(row, "status_message").filter(|s| !s.is_empty()),
        tags: Vec::new(),
        run_link: get_str(row, "run_link"),
        aliases: Vec::new(),
    };
    (mv, get_str(row, "storage_location"))
}

pub(super) fn rm_from_row(row: &AnyRow) -> RegisteredModel {
    RegisteredModel {
        name: get_str(row, "name").unwrap_or_default(),
        creation_timestamp: get_i64(row, "creation_time"),
        last_updated_timestamp: get_i64(row, "last_updated_time").filter(|t| *t != 0),
        description: get_str(row, "description").filter(|d| !d.is_empty()),
        latest_versions: Vec::new(),
        tags: Vec::new(),
        aliases: Vec::new(),
    }
}

pub(super) fn version_number(mv: &ModelVersion) -> i64 {
    mv.version.parse().unwrap_or(0)
}
