//! `preset`: a YAML playbook executor that installs and runs the Rust MLflow tracking server.
//!
//! Flow: [`plan::load`] parses the playbook with positions → [`plan::build`] validates it,
//! expands presets ([`presets`], [`params`]) and renders templates ([`template`]) into
//! [`actions`] → [`engine::run`] checks and applies them → [`report`] prints each step and the
//! recap. Facts about the machine come from [`facts`]; system effects go through [`system`].

pub mod actions;
pub mod app;
pub mod cli;
pub mod diag;
pub mod engine;
pub mod envfile;
pub mod facts;
pub mod package_manager;
pub mod params;
pub mod plan;
pub mod presets;
pub mod report;
pub mod spec;
pub mod system;
pub mod template;
pub mod yaml;

pub use app::run;
