//! The Sluice sidecar: a stateless HTTP front for a Postgres database that has the `sluice` extension.
//!
//! Work flows one way: `config` (flags) → `serve` (start-up, lifecycle) → `http` (routes) → `db` (pool,
//! the per-request transaction, the LISTEN connection). `auth` has two parts: `auth::jwt` verifies the
//! token of every request into an `Identity`, and `auth::accounts` is the GoTrue accounts domain behind
//! `/auth/v1/`; `changelog` reads the change log for its consumers (realtime, and `webhooks`, which also signs and delivers);
//! `jobs` runs the scheduled jobs;
//! `http::error` maps every failure to an HTTP response (`http::auth_api::error` for `/auth/v1/`), and
//! `error::describe` only formats an error chain for the log, for every layer.

//! Visibility: a module or item is `pub` only where the binary (`main.rs`) or the integration tests
//! reach it, and `pub(crate)` otherwise. `unreachable_pub` (an error under `clippy -D warnings`)
//! keeps it so, which lets `dead_code` see every item nothing uses.
#![warn(unreachable_pub)]

pub mod auth;
pub mod changelog;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub(crate) mod jobs;
pub mod logging;
pub mod realtime;
pub mod rest;
pub mod schema;
pub mod serve;
pub(crate) mod shutdown;
pub mod storage;
pub(crate) mod webhooks;

/// The version of this sidecar. The extension installed in the database must have the same version:
/// the two are released together and the sidecar relies on the extension's SQL API of that release.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
