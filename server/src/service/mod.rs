//! MLflow's rules between the HTTP layer and the store: validation, limits, truncation,
//! defaults and run-name generation. Handlers call these; these call the store.

mod tracking;

pub use tracking::{LogBatch, Paged, Tracking};
