//! Plan media types (postgrest-js `explain()`) are answered only when the server allows them,
//! as PostgREST's `db-plan-enabled`: off (the default) they are 406 PGRST107 naming the media type,
//! for reads, writes and calls alike, before anything runs; on, the statement's EXPLAIN, and an
//! `analyze` of a write changes nothing. (The formats and options through postgrest-js are in
//! `js/rest_media.test.mjs`.)

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_sidecar::http::app;
use support::app::{app_state, AppOptions, TestApp};
use support::rest::token;

const SCHEMA: &str = r#"
    CREATE TABLE notes (id integer PRIMARY KEY, body text);
    INSERT INTO notes VALUES (1, 'one');
    GRANT SELECT, INSERT ON notes TO anon, authenticated;
    CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM notes';
"#;

const SECRET: &str = "sluice-rest-media-test-secret-0123456789";

const PLAN_JSON: &str = "application/vnd.pgrst.plan+json; for=\"application/json\"";

fn send(t: &TestApp, method: Method, path: &str, accept: &str, body: &str) -> support::app::Reply {
    let bearer = format!("Bearer {}", token(None, SECRET));
    let headers = [
        ("authorization", bearer.as_str()),
        ("accept", accept),
        ("content-type", "application/json"),
    ];
    t.send(method, path, &headers, body)
}

#[test]
fn plans_are_refused_unless_enabled_then_explained_and_rolled_back() {
    let options = AppOptions::new(&[SCHEMA], SECRET);
    let mut t = TestApp::start(AppOptions::new(&[SCHEMA], SECRET));
    let requests = [
        (Method::GET, "/rest/v1/notes?select=id", ""),
        (
            Method::POST,
            "/rest/v1/notes",
            r#"{"id": 2, "body": "two"}"#,
        ),
        (Method::POST, "/rest/v1/rpc/note_count", ""),
    ];
    for (method, path, body) in &requests {
        let off = send(&t, method.clone(), path, PLAN_JSON, body);
        assert_eq!(
            off.status,
            StatusCode::NOT_ACCEPTABLE,
            "{path}: {}",
            off.body
        );
        assert_eq!(
            off.json(),
            json!({
                "code": "PGRST107",
                "message": format!("None of these media types are available: {PLAN_JSON}"),
                "details": null,
                "hint": null,
            })
        );
    }
    assert_eq!(
        t.db.rows("SELECT id FROM notes ORDER BY id"),
        json!([{"id": 1}])
    );

    let mut state = app_state(&t.db, &t.runtime, &options);
    state.plan_enabled = true;
    t.app = app(state);
    for (method, path, body) in &requests {
        let on = send(&t, method.clone(), path, PLAN_JSON, body);
        assert_eq!(on.status, StatusCode::OK, "{path}: {}", on.body);
        assert_eq!(
            on.header("content-type"),
            format!("{PLAN_JSON}; charset=utf-8")
        );
        let plan: Value = on.json();
        assert!(plan[0]["Plan"]["Node Type"].is_string(), "{plan}");
    }
    let analyzed = send(
        &t,
        Method::POST,
        "/rest/v1/notes",
        "application/vnd.pgrst.plan+text; options=analyze",
        r#"{"id": 3, "body": "three"}"#,
    );
    assert_eq!(analyzed.status, StatusCode::OK, "{}", analyzed.body);
    assert_eq!(
        analyzed.header("content-type"),
        "application/vnd.pgrst.plan+text; for=\"application/json\"; options=analyze; charset=utf-8"
    );
    assert!(
        analyzed.body.contains("Insert on notes"),
        "{}",
        analyzed.body
    );
    assert!(analyzed.body.contains("actual time="), "{}", analyzed.body);
    // Neither the plain plan nor the analysed insert wrote a row.
    assert_eq!(
        t.db.rows("SELECT id FROM notes ORDER BY id"),
        json!([{"id": 1}])
    );
}
