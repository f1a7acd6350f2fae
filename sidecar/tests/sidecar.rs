//! End-to-end tests of the `sluice` binary against real Postgres.
//!
//! Postgres comes from `SLUICE_TEST_DATABASE_URL` (a superuser URL, as `make test` provides) or,
//! when that is unset, from throwaway clusters started with `scripts/pg-cluster.sh`. Each test works
//! in a database of its own.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use support::postgres::{Cluster, Server, TestDb};
use support::sidecar::{self, serve_command, Sidecar};

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn health_is_ok_with_the_extension_installed() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let sidecar = Sidecar::serve(&db.url());

    let health = sidecar.get("/health").unwrap();
    assert_eq!(health.status, 200, "{:?}\n{}", health.body, sidecar.log());
    assert_eq!(
        health.body,
        json!({"status": "ok", "database": "up", "extension_version": VERSION})
    );

    let missing = sidecar.get("/no/such/route").unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({
            "code": "SLUICE100",
            "message": "no route for GET /no/such/route",
            "details": null,
            "hint": null,
        })
    );
}

#[test]
fn start_up_is_refused_without_the_extension() {
    let db = TestDb::create(&Server::shared());
    let (status, log) = sidecar::run(serve_command(&db.url()), Duration::from_secs(30));
    assert!(
        !status.success(),
        "sluice started without the extension:\n{log}"
    );
    assert!(log.contains("is not installed"), "{log}");
    assert!(log.contains("CREATE EXTENSION sluice"), "{log}");
}

#[test]
fn start_up_is_refused_when_the_extension_version_differs() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    // Pretend an older release is installed; the catalog row is all the check reads.
    db.execute("UPDATE pg_catalog.pg_extension SET extversion = '0.0.1' WHERE extname = 'sluice'");

    let (status, log) = sidecar::run(serve_command(&db.url()), Duration::from_secs(30));
    assert!(
        !status.success(),
        "sluice started with a mismatched extension:\n{log}"
    );
    assert!(log.contains("version 0.0.1"), "{log}");
    assert!(
        log.contains(&format!("ALTER EXTENSION sluice UPDATE TO '{VERSION}'")),
        "{log}"
    );
}

#[test]
fn start_up_is_refused_with_a_short_jwt_secret() {
    // The secret is checked before any connection is tried, so no database is needed.
    let mut command = serve_command("postgres://nobody@127.0.0.1:1/nothing");
    command.env("SLUICE_JWT_SECRET", "too-short");
    let (status, log) = sidecar::run(command, Duration::from_secs(10));
    assert!(
        !status.success(),
        "sluice started with a short secret:\n{log}"
    );
    assert!(log.contains("at least 32"), "{log}");
    assert!(log.contains("SLUICE_JWT_SECRET"), "{log}");
}

#[test]
fn start_up_gives_up_on_an_unreachable_database_naming_database_url() {
    let port = support::free_port(); // nothing listens there
    let mut command = serve_command(&format!("postgres://postgres:pw@127.0.0.1:{port}/postgres"));
    command.env("SLUICE_STARTUP_TIMEOUT", "2");
    let started = Instant::now();
    let (status, log) = sidecar::run(command, Duration::from_secs(30));
    assert!(!status.success(), "{log}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "gave up without retrying:\n{log}"
    );
    assert!(
        log.contains("is not reachable yet"),
        "no retry was logged:\n{log}"
    );
    assert!(log.contains("DATABASE_URL"), "{log}");
    assert!(
        !log.contains(":pw@"),
        "the password leaked into the log:\n{log}"
    );
}

#[test]
fn start_up_fails_at_once_when_the_database_does_not_exist() {
    // The server is up and says no (3D000): waiting would not help, so there is no retry.
    let server = Server::shared();
    let mut command = serve_command(&server.url_for("sluice_no_such_database"));
    command.env("SLUICE_STARTUP_TIMEOUT", "30");
    let started = Instant::now();
    let (status, log) = sidecar::run(command, Duration::from_secs(20));
    assert!(!status.success(), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it retried:\n{log}"
    );
    assert!(log.contains("refused the connection"), "{log}");
    assert!(log.contains("sluice_no_such_database"), "{log}");
    assert!(log.contains("DATABASE_URL"), "{log}");
}

#[test]
fn sigterm_stops_gracefully_with_exit_code_0() {
    stops_gracefully_on(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_stops_gracefully_with_exit_code_0() {
    stops_gracefully_on(libc::SIGINT, "SIGINT");
}

fn stops_gracefully_on(signal: libc::c_int, name: &str) {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let mut sidecar = Sidecar::serve(&db.url());
    assert_eq!(sidecar.get("/health").unwrap().status, 200);

    sidecar.signal(signal);
    let status = sidecar.wait_exit(Duration::from_secs(15));
    let log = sidecar.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains(&format!("received {name}")), "{log}");
    assert!(log.contains("sluice stopped"), "{log}");
}

/// The sidecar must ride out a Postgres restart by itself: 503 while the database is down, 200 again
/// once it is back, with no restart of the sidecar. Uses a cluster of its own, since it stops it.
#[test]
fn recovers_after_postgres_restarts() {
    let cluster = std::sync::Arc::new(Cluster::start());
    let db = TestDb::create(&Server::Cluster(cluster.clone()));
    db.install_extension();
    let sidecar = Sidecar::serve(&db.url());
    let up = |r: &support::http::Response| r.status == 200;
    let down = |r: &support::http::Response| r.status == 503;
    sidecar.get_until("/health", Duration::from_secs(5), up);

    cluster.stop();
    let health = sidecar.get_until("/health", Duration::from_secs(10), down);
    assert_eq!(health.body["status"], "unavailable");
    assert_eq!(health.body["database"], "down");
    assert_eq!(health.body["code"], "SLUICE000");
    assert!(health.body["message"].is_string());

    cluster.start_again();
    let back = Instant::now();
    let health = sidecar.get_until("/health", Duration::from_secs(10), up);
    assert_eq!(health.body["status"], "ok");
    eprintln!(
        "healthy again {:?} after Postgres was ready",
        back.elapsed()
    );
    drop(sidecar);
    drop(db);
}

#[test]
fn keys_prints_two_verifiable_keys() {
    let output = Command::new(sidecar::BINARY)
        .arg("keys")
        .env("SLUICE_JWT_SECRET", support::JWT_SECRET)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");

    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["sluice"]);
    let key = DecodingKey::from_secret(support::JWT_SECRET.as_bytes());
    for (line, role) in lines.iter().zip(["anon", "service_role"]) {
        let token = line
            .strip_prefix(&format!("{role} key: "))
            .unwrap_or_else(|| panic!("expected `{role} key: <jwt>`, got {line:?}"));
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .unwrap_or_else(|err| panic!("{role} key does not verify: {err}"))
            .claims;
        assert_eq!(claims["role"], role);
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert!(lifetime >= 10 * 365 * 24 * 60 * 60, "{claims}");
    }

    // A key signed with another secret must not verify: the keys really depend on the secret.
    let other = DecodingKey::from_secret(b"some-other-secret-of-sufficient-length!!");
    let anon = lines[0].trim_start_matches("anon key: ");
    assert!(jsonwebtoken::decode::<serde_json::Value>(anon, &other, &validation).is_err());
}
