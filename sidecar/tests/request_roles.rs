//! The request roles as Supabase sets them: `anon` stops at 3 s and `authenticated` at 8 s unless
//! the operator sets their own `statement_timeout`, and requests run with JIT off.

mod support;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::app::{AppOptions, TestApp};
use support::rest::token;

const SECRET: &str = "request-roles-test-secret-0123456789abcdef";

const SCHEMA: &str = "
    CREATE FUNCTION nap(seconds float8) RETURNS integer LANGUAGE sql VOLATILE
        AS $$ SELECT 1 FROM pg_sleep(seconds) $$;
    CREATE FUNCTION jit_now() RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT current_setting('jit') $$;
    DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET jit = on', current_database()); END $$;";

fn app() -> TestApp {
    TestApp::start(AppOptions::new(&[SCHEMA], SECRET))
}

#[test]
fn the_request_roles_get_supabases_default_timeouts() {
    let app = app();
    let settings = app.db.rows(
        "SELECT r.rolname AS role, s.setconfig AS settings FROM pg_db_role_setting s \
         JOIN pg_roles r ON r.oid = s.setrole \
         WHERE s.setdatabase = 0 AND r.rolname IN ('anon', 'authenticated') ORDER BY 1",
    );
    assert_eq!(
        settings,
        json!([
            {"role": "anon", "settings": ["statement_timeout=3s"]},
            {"role": "authenticated", "settings": ["statement_timeout=8s"]}
        ])
    );
}

#[test]
fn an_anonymous_request_is_cancelled_after_three_seconds() {
    let app = app();
    let started = Instant::now();
    let slow = app.send(
        Method::POST,
        "/rest/v1/rpc/nap",
        &[("content-type", "application/json")],
        r#"{"seconds": 5}"#,
    );
    let took = started.elapsed();
    assert_eq!(slow.json()["code"], "57014", "{}", slow.body);
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_millis(4500),
        "cancelled after {took:?}"
    );
}

#[test]
fn requests_run_with_jit_off() {
    let app = app();
    let anon = app.send(Method::GET, "/rest/v1/rpc/jit_now", &[], "");
    assert_eq!(anon.status, StatusCode::OK, "{}", anon.body);
    assert_eq!(anon.json(), json!("off"));
    let bearer = format!("Bearer {}", token(None, SECRET));
    let user = app.send(
        Method::GET,
        "/rest/v1/rpc/jit_now",
        &[("authorization", &bearer)],
        "",
    );
    assert_eq!(user.json(), json!("off"), "{}", user.body);
    // Outside a request the database's own setting holds.
    assert_eq!(
        app.db.rows("SELECT current_setting('jit') AS jit"),
        json!([{"jit": "on"}])
    );
}
