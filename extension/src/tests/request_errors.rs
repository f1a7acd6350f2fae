//! Errors raised inside `sluice.run_request` leave it as they were raised: their own SQLSTATE
//! (also one pgrx has no name for), message, detail, hint and the fields pgrx drops (constraint),
//! through a real client connection as the sidecar sees them.

use postgres::error::DbError;
use postgres::Client;

/// A client of the pgrx test server (started once for the test binary).
pub(super) fn connect() -> Client {
    pgrx_tests::run_test(
        "server_ready",
        None,
        crate::pg_test::postgresql_conf_options(),
    )
    .expect("test server");
    let (client, _) = pgrx_tests::client().expect("connect to the test server");
    client
}

/// `sql` run through `sluice.run_request` as `anon`; the error it fails with.
fn request_error(client: &mut Client, sql: &str) -> DbError {
    let err = client
        .query_one(
            "SELECT sluice.run_request('anon', '{}', 'POST', '/', '{}', false, '', $1, '{}')",
            &[&sql],
        )
        .expect_err("the request fails");
    err.as_db_error().expect("a server error").clone()
}

#[test]
fn a_custom_sqlstate_keeps_its_code_message_detail_and_hint() {
    let mut client = connect();
    for code in ["PT403", "U0001", "SL116", "P0002"] {
        let err = request_error(
            &mut client,
            &format!("SELECT sluice.raise_error('{code}', 'no way', 'the detail', 'a hint')"),
        );
        assert_eq!(err.code().code(), code);
        assert_eq!(err.message(), "no way");
        assert_eq!(err.detail(), Some("the detail"));
        assert_eq!(err.hint(), Some("a hint"));
    }
    let err = request_error(&mut client, "SELECT sluice.raise_error('PT404', 'bare')");
    assert_eq!(
        (err.code().code(), err.detail(), err.hint()),
        ("PT404", None, None)
    );
    // The session is fine afterwards, and a request that succeeds still answers.
    let row = client
        .query_one(
            "SELECT sluice.run_request('anon', '{}', 'GET', '/', '{}', true, '', 'SELECT 7::text', '{}')",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, Vec<Option<String>>>(0),
        vec![Some("7".to_owned())]
    );
}

#[test]
fn errors_postgres_names_keep_their_fields_too() {
    let mut client = connect();
    let err = request_error(&mut client, "SELECT (1 / 0)::text");
    assert_eq!(err.code().code(), "22012");
    client
        .batch_execute(
            "DROP TABLE IF EXISTS rethrown; CREATE TABLE rethrown (id int CONSTRAINT rethrown_key PRIMARY KEY); \
             GRANT ALL ON rethrown TO anon; INSERT INTO rethrown VALUES (1)",
        )
        .unwrap();
    let err = request_error(&mut client, "INSERT INTO rethrown VALUES (1) RETURNING 'x'");
    assert_eq!(err.code().code(), "23505");
    assert_eq!(
        err.constraint(),
        Some("rethrown_key"),
        "pgrx drops this field"
    );
    assert_eq!(err.detail(), Some("Key (id)=(1) already exists."));
}

#[test]
fn an_error_the_statement_handles_itself_is_not_raised() {
    let mut client = connect();
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION public.recovers() RETURNS text LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM sluice.raise_error('PT500', 'inner'); RETURN 'x'; \
             EXCEPTION WHEN OTHERS THEN RETURN 'recovered ' || SQLSTATE; END $$; \
             GRANT EXECUTE ON FUNCTION public.recovers() TO anon",
        )
        .unwrap();
    let row = client
        .query_one(
            "SELECT sluice.run_request('anon', '{}', 'POST', '/', '{}', false, '', 'SELECT public.recovers()', '{}')",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, Vec<Option<String>>>(0),
        vec![Some("recovered PT500".to_owned())]
    );
}

#[test]
fn a_plpgsql_handler_around_the_call_catches_the_original_error() {
    let mut client = connect();
    client
        .batch_execute(
            "DO $$ DECLARE code text; msg text; BEGIN \
               PERFORM sluice.run_request('anon', '{}', 'POST', '/', '{}', false, '', \
                 'SELECT sluice.raise_error(''PT418'', ''teapot'')', '{}'); \
             EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT; \
               PERFORM set_config('sluice_test.caught', code || ' ' || msg, false); END $$",
        )
        .unwrap();
    let caught: String = client
        .query_one("SELECT current_setting('sluice_test.caught')", &[])
        .unwrap()
        .get(0);
    assert_eq!(caught, "PT418 teapot");
}
