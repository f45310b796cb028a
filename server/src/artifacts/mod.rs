//! Artifact storage: one interface over local disk, S3, GCS and Azure (the `object_store`
//! crate; GCS writes through `gcs`), with path containment (`path`) checked before any call
//! reaches a backend.

mod gcs;
mod mime;
pub mod path;
mod repo;
pub mod roots;

pub use mime::mime_type;
pub use path::RelPath;
pub use repo::{ArtifactRepo, Download, FileEntry};
pub use roots::{Located, ServedRoots};
