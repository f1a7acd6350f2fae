//! Test support: real Postgres clusters and databases, the real `sluice` binary, and a tiny HTTP client.
//! Nothing here mocks Postgres; every test talks to a real server.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by all.

pub mod app;
pub mod auth;
pub mod http;
pub mod moto;
pub mod postgres;
pub mod realtime;
pub mod receiver;
pub mod rest;
pub mod sidecar;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::PathBuf;

/// A secret long enough for `sluice serve`.
pub const JWT_SECRET: &str = "sluice-integration-test-secret-0123456789";

/// A short random lowercase suffix for database and directory names, unique across concurrent tests
/// and test runs (std's hasher keys are seeded randomly per process and advanced per instance).
pub fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// A TCP port that was free a moment ago. Another process could take it before we use it; on a test
/// machine that is rare enough, and a clash fails loudly rather than silently.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// The repository root (the workspace that holds `sidecar/` and `scripts/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sidecar/ has a parent")
        .to_path_buf()
}
