//! `sluice.restore` of a version the row does not have is the caller's mistake: 400 with
//! SQLSTATE 22023, its message and a hint naming the versions there are (it used to be P0002,
//! which PostgREST and the sidecar answer with 500).

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::app::{AppOptions, TestApp};

const SECRET: &str = "history-restore-test-secret-0123456789abc";

const SCHEMA: &str = r#"
    CREATE TABLE notes (id int PRIMARY KEY, body text);
    GRANT SELECT, INSERT, UPDATE ON notes TO anon;
    SELECT sluice.enable_history('notes');
    INSERT INTO notes VALUES (1, 'first');
    UPDATE notes SET body = 'second';
    CREATE FUNCTION restore_note(version int) RETURNS jsonb LANGUAGE sql VOLATILE
        AS $$ SELECT sluice.restore('notes', '{"id": 1}', version) $$;
"#;

#[test]
fn restoring_a_missing_version_is_a_400_with_its_code() {
    let app = TestApp::start(AppOptions::new(&[SCHEMA], SECRET));
    let post = |body: &str| {
        app.send(
            Method::POST,
            "/rest/v1/rpc/restore_note",
            &[("content-type", "application/json")],
            body,
        )
    };
    let restored = post(r#"{"version": 1}"#);
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(restored.json(), json!({"id": 1, "body": "first"}));

    let missing = post(r#"{"version": 9}"#);
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    let error = missing.json();
    assert_eq!(error["code"], "22023");
    assert_eq!(
        error["message"],
        r#"sluice: notes has no version 9 of the row {"id":1}"#
    );
    assert_eq!(
        error["hint"],
        "Versions you can restore: 1, 2, 3 (sluice.history lists them)."
    );
}
