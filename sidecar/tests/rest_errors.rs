//! A request runs exactly once and its error keeps its SQLSTATE, message, detail and hint, with
//! PostgREST's status; the guards of single-object and max-affected writes fail by code, whatever
//! language Postgres speaks; an abandoned request's query is cancelled; oversized heads get JSON.
//! Through the real router (and, for sockets, the real binary) against real Postgres.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::app::{AppOptions, Reply, TestApp};
use support::realtime::{authenticator_url, sign};
use support::rest::token;
use support::sidecar::Sidecar;

const ALICE: &str = "0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d";
const SECRET: &str = "sluice-rest-errors-test-secret-0123456789";

/// Each function counts its runs in a sequence of its own: sequences are not transactional, so a
/// request that ran twice shows as 2 even though both runs were rolled back.
const SCHEMA: &str = r#"
    CREATE SEQUENCE refuse_runs;
    CREATE FUNCTION refuse() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM nextval('refuse_runs');
            RAISE EXCEPTION 'not today' USING ERRCODE = 'PT403', DETAIL = 'come back', HINT = 'tomorrow';
        END $$;

    CREATE SEQUENCE flaky_runs;
    CREATE TABLE effects (run bigint);
    CREATE FUNCTION flaky() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
        DECLARE run bigint := nextval('flaky_runs');
        BEGIN
            INSERT INTO effects VALUES (run);
            IF run = 1 THEN
                RAISE EXCEPTION 'the first call fails' USING ERRCODE = 'U0002';
            END IF;
            RETURN run;
        END $$;

    CREATE FUNCTION custom() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
        BEGIN RAISE EXCEPTION 'a code of our own' USING ERRCODE = 'U0001', DETAIL = 'the detail', HINT = 'the hint'; END $$;
    CREATE FUNCTION strict_lookup() RETURNS integer LANGUAGE plpgsql STABLE AS $$
        DECLARE found integer;
        BEGIN SELECT 1 INTO STRICT found WHERE false; RETURN found; END $$;

    CREATE SEQUENCE nap_runs;
    CREATE FUNCTION nap() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
        BEGIN PERFORM nextval('nap_runs'); PERFORM pg_sleep(1); RETURN 1; END $$;
    CREATE FUNCTION long_nap() RETURNS integer LANGUAGE sql VOLATILE AS $$ SELECT 1 FROM pg_sleep(30) $$;

    CREATE TABLE grid (id integer PRIMARY KEY, cells integer[]);
    CREATE TABLE items (id integer PRIMARY KEY, label text);
    INSERT INTO items VALUES (1, 'one'), (2, 'two');

    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated;
    GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO anon, authenticated;
"#;

fn app(extra_sql: &str) -> TestApp {
    TestApp::start(AppOptions::new(&[SCHEMA, extra_sql], SECRET))
}

fn post(t: &TestApp, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let bearer = format!("Bearer {}", token(Some(ALICE), SECRET));
    let mut all = vec![
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    t.send(Method::POST, path, &all, body)
}

fn runs(t: &TestApp, sequence: &str) -> i64 {
    let rows = t.db.rows(&format!(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM {sequence}"
    ));
    rows[0]["n"].as_i64().unwrap()
}

fn error_body(reply: &Reply) -> serde_json::Value {
    let body = reply.json();
    for field in ["code", "message", "details", "hint"] {
        assert!(body.get(field).is_some(), "{field} missing from {body}");
    }
    body
}

#[test]
fn a_custom_sqlstate_reaches_the_client_and_the_request_runs_once() {
    let t = app("");
    let refused = post(&t, "/rest/v1/rpc/refuse", &[], "{}");
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
    assert_eq!(
        error_body(&refused),
        json!({"code": "PT403", "message": "not today", "details": "come back", "hint": "tomorrow"})
    );
    assert_eq!(runs(&t, "refuse_runs"), 1, "the function ran exactly once");
}

#[test]
fn a_function_that_fails_once_answers_its_error_and_commits_nothing() {
    let t = app("");
    let first = post(&t, "/rest/v1/rpc/flaky", &[], "{}");
    assert_eq!(first.status, StatusCode::BAD_REQUEST, "{}", first.body);
    assert_eq!(error_body(&first)["code"], "U0002");
    assert_eq!(first.json()["message"], "the first call fails");
    assert_eq!(
        runs(&t, "flaky_runs"),
        1,
        "no second run behind the client's back"
    );
    assert_eq!(t.db.rows("SELECT * FROM effects"), json!([]));
    // Asked again, it succeeds: the second call is the client's own.
    let second = post(&t, "/rest/v1/rpc/flaky", &[], "{}");
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.json(), json!(2));
}

#[test]
fn codes_without_a_rule_are_400_and_postgres_errors_keep_their_words_at_500() {
    let t = app("");
    let custom = post(&t, "/rest/v1/rpc/custom", &[], "{}");
    assert_eq!(custom.status, StatusCode::BAD_REQUEST, "{}", custom.body);
    assert_eq!(
        error_body(&custom),
        json!({"code": "U0001", "message": "a code of our own", "details": "the detail", "hint": "the hint"})
    );
    let lookup = post(&t, "/rest/v1/rpc/strict_lookup", &[], "{}");
    assert_eq!(
        lookup.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        lookup.body
    );
    assert_eq!(error_body(&lookup)["code"], "P0002");
    assert_eq!(lookup.json()["message"], "query returned no rows");
}

#[test]
fn a_request_over_a_postgres_limit_is_413_with_its_message() {
    let t = app("");
    let deep = "{{{{{{{1}}}}}}}";
    let bearer = format!("Bearer {}", token(Some(ALICE), SECRET));
    let reply = t.send(
        Method::GET,
        &format!("/rest/v1/grid?cells=eq.{deep}"),
        &[("authorization", bearer.as_str())],
        "",
    );
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    let body = error_body(&reply);
    assert_eq!(body["code"], "54000");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the maximum allowed (6)"),
        "{body}"
    );
}

#[test]
fn a_roles_statement_timeout_cancels_the_request_once_and_on_time() {
    let t = app("DO $$ BEGIN
             EXECUTE format('ALTER ROLE authenticated IN DATABASE %I SET statement_timeout = %L',
                            current_database(), '100ms');
         END $$;");
    let started = Instant::now();
    let slow = post(&t, "/rest/v1/rpc/nap", &[], "{}");
    let took = started.elapsed();
    assert_eq!(
        slow.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        slow.body
    );
    assert_eq!(error_body(&slow)["code"], "57014");
    assert!(
        took < Duration::from_millis(800),
        "answered after {took:?}, not after about 100 ms"
    );
    assert_eq!(runs(&t, "nap_runs"), 1, "the request ran once");
}

/// The guards raise codes of their own, so a server whose messages are German (and whose cast
/// errors quote with »«) still answers PostgREST's codes, and the refused write is undone.
#[test]
fn write_guards_keep_their_codes_whatever_the_server_language() {
    let t = app("DO $$ BEGIN
             EXECUTE format('ALTER ROLE authenticator IN DATABASE %I SET lc_messages = %L',
                            current_database(), 'de_DE.UTF-8');
         END $$;");
    // The server does speak German to the sidecar.
    let duplicate = post(&t, "/rest/v1/items", &[], r#"{"id": 1, "label": "again"}"#);
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    let message = duplicate.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("doppelter Schlüsselwert"), "{message}");

    let single = [
        ("accept", "application/vnd.pgrst.object+json"),
        ("prefer", "return=representation"),
    ];
    let two = post(
        &t,
        "/rest/v1/items",
        &single,
        r#"[{"id": 3, "label": "three"}, {"id": 4, "label": "four"}]"#,
    );
    assert_eq!(two.status, StatusCode::NOT_ACCEPTABLE, "{}", two.body);
    assert_eq!(
        error_body(&two),
        json!({
            "code": "PGRST116",
            "message": "Cannot coerce the result to a single JSON object",
            "details": "The result contains 2 rows",
            "hint": null,
        })
    );
    assert_eq!(t.db.rows("SELECT id FROM items WHERE id > 2"), json!([]));

    let bearer = format!("Bearer {}", token(Some(ALICE), SECRET));
    let strict = t.send(
        Method::PATCH,
        "/rest/v1/items?id=gt.0",
        &[
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
            ("prefer", "handling=strict, max-affected=1"),
        ],
        r#"{"label": "changed"}"#,
    );
    assert_eq!(strict.status, StatusCode::BAD_REQUEST, "{}", strict.body);
    assert_eq!(error_body(&strict)["code"], "PGRST124");
    assert_eq!(strict.json()["details"], "The query affects 2 rows");
    assert_eq!(
        t.db.rows("SELECT label FROM items ORDER BY id"),
        json!([{"label": "one"}, {"label": "two"}])
    );
}

/// Whether a backend of the sidecar is sleeping in `long_nap` (its query text is the call of
/// `sluice.run_request`, the function's name a parameter).
fn napping(t: &TestApp) -> bool {
    let rows = t.db.rows(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND usename = 'authenticator' \
           AND state = 'active' AND wait_event = 'PgSleep'",
    );
    !rows.as_array().unwrap().is_empty()
}

#[test]
fn a_client_that_goes_away_cancels_its_query() {
    let t = app("");
    let sidecar = Sidecar::serve(&authenticator_url(&t.db));
    let anon = sign(json!({"role": "anon"}));
    let mut stream = TcpStream::connect(sidecar.addr()).unwrap();
    let request = format!(
        "POST /rest/v1/rpc/long_nap HTTP/1.1\r\nHost: x\r\napikey: {anon}\r\n\
         content-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !napping(&t) {
        assert!(Instant::now() < deadline, "the query never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dropped = Instant::now();
    drop(stream);
    while napping(&t) {
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "the query still runs {:?} after its client left (it sleeps 30 s)",
            dropped.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The sidecar goes on serving.
    let health = sidecar.get("/health").unwrap();
    assert_eq!(health.status, 200);
}

/// A raw request with a long target or many headers, to the real server: status and JSON body.
fn raw_exchange(addr: std::net::SocketAddr, head: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw:?}"));
    (status, body)
}

#[test]
fn oversized_urls_and_headers_answer_414_and_431_with_a_json_body() {
    let t = app("");
    let sidecar = Sidecar::serve(&authenticator_url(&t.db));
    let filters = "id=gt.0&".repeat(3_000);
    let (status, body) = raw_exchange(
        sidecar.addr(),
        &format!("GET /rest/v1/items?{filters} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 414, "{body}");
    assert_eq!(body["code"], "SLUICE102");

    let many: String = (0..80).map(|i| format!("x-header-{i}: {i}\r\n")).collect();
    let (status, body) = raw_exchange(
        sidecar.addr(),
        &format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["code"], "SLUICE103");

    let big = "v".repeat(40 * 1024);
    let (status, body) = raw_exchange(
        sidecar.addr(),
        &format!("GET /health HTTP/1.1\r\nHost: x\r\nx-big: {big}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 431, "{body}");
    assert!(body["message"].is_string(), "{body}");
}
