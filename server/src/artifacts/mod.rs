//! Artifact storage: one interface over local disk, S3, GCS and Azure (the `object_store`
//! crate), with path containment (`path`) checked before any call reaches a backend.

pub mod path;
mod repo;

pub use path::RelPath;
pub use repo::{ArtifactRepo, Download, FileEntry};
