//! Domain rules that do not depend on HTTP or SQL: input validation and MLflow's limits,
//! run-name generation, the search grammar, and MLflow 3 tracing (traces, spans, assessments).

pub mod assessments;
pub mod datasets;
pub mod gateway;
pub mod issues;
pub mod model_history;
pub mod paging;
pub mod promptlab;
pub mod registry;
pub mod run_names;
pub mod scorers;
pub mod search;
pub mod source;
pub mod time;
pub mod traces;
pub mod validation;
pub mod webhooks;
