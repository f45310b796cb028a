//! Domain rules that do not depend on HTTP or SQL: input validation and MLflow's limits,
//! run-name generation, and the search grammar.

pub mod paging;
pub mod registry;
pub mod run_names;
pub mod search;
pub mod source;
pub mod validation;
