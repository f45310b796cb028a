//! An MLflow-compatible tracking server.
//!
//! Data flows one way: [`http`] (routes, request decoding, error mapping) calls
//! [`service`] (MLflow's rules: validation, limits, run names), which calls [`store`]
//! (MLflow's SQL schema through sqlx). [`domain`] holds the rules that need neither HTTP
//! nor SQL, [`wire`] the JSON format, [`cli`] the command line, and [`client`] the
//! commands that talk to a running server over HTTP. [`serving`] serves and predicts with
//! models (`mlflow models serve|predict`), and [`ui`] installs MLflow's web UI bundle
//! (`mlflow ui install`) that [`http`] serves; [`auth`] is MLflow's basic-auth app.

pub mod artifacts;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod projects;
pub mod service;
pub mod serving;
pub mod store;
pub mod ui;
pub mod wire;

/// The MLflow version whose API and schema this server speaks.
pub const MLFLOW_COMPAT_VERSION: &str = "3.17.2";
