//! Helpers shared by the REST and request-transaction tests: tokens, the `authenticator` login the
//! sidecar connects with, and percent-encoding as a client does it.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use tokio_postgres::config::Host;

use super::postgres::{execute, TestDb};

pub const AUTHENTICATOR_PASSWORD: &str = "sluice-test-authenticator";

/// `path` with the characters a URI may not hold as they are percent-encoded, as a client sends them.
pub fn encode(path: &str) -> String {
    let mut encoded = String::new();
    for ch in path.chars() {
        if "{}\"^<>|\\[]` ".contains(ch) || !ch.is_ascii() {
            let mut buf = [0; 4];
            for byte in ch.encode_utf8(&mut buf).bytes() {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        } else {
            encoded.push(ch);
        }
    }
    encoded
}

/// An HS256 token for `authenticated` (with `sub`) signed with `secret`.
pub fn token(sub: Option<&str>, secret: &str) -> String {
    let mut claims = json!({"role": "authenticated", "aud": "authenticated"});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The extension creates `authenticator` without LOGIN; tests give it a password, one at a time
/// (roles are cluster-wide), retrying when another process alters the role at the same moment.
pub fn allow_authenticator_login(db: &TestDb) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let sql = format!("ALTER ROLE authenticator WITH LOGIN PASSWORD '{AUTHENTICATOR_PASSWORD}'");
    for attempt in 1.. {
        match execute(&db.url(), &sql) {
            Ok(()) => return,
            Err(err) if attempt < 5 && err.contains("concurrently") => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(err) => panic!("{sql}: {err}"),
        }
    }
}

pub fn authenticator_config(db: &TestDb) -> tokio_postgres::Config {
    let admin = tokio_postgres::Config::from_str(&db.url()).unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .user("authenticator")
        .password(AUTHENTICATOR_PASSWORD)
        .dbname(admin.get_dbname().unwrap());
    for host in admin.get_hosts() {
        match host {
            Host::Tcp(name) => config.host(name),
            Host::Unix(path) => config.host_path(path),
        };
    }
    config.port(admin.get_ports().first().copied().unwrap_or(5432));
    config
}
