//! `sluice.run_reads`: several reads in one call, each as its own role with its own settings, in
//! a subtransaction rolled back after it, a failing read answered with its error in its row.
//! Through a real client connection, as the sidecar calls it.

use std::time::{Duration, Instant};

use postgres::Client;

use super::request_errors::connect;

/// One read for `run_reads`.
struct Read<'a> {
    role: &'a str,
    claims: &'a str,
    method: &'a str,
    timeout: &'a str,
    sql: &'a str,
    params: &'a [Option<&'a str>],
}

impl<'a> Read<'a> {
    fn anon(sql: &'a str) -> Read<'a> {
        Read {
            role: "anon",
            claims: "{}",
            method: "GET",
            timeout: "",
            sql,
            params: &[],
        }
    }
}

type Row = (Option<Vec<Option<String>>>, Option<Vec<Option<String>>>);

fn run_reads<'a>(client: &mut Client, reads: &[Read<'a>]) -> Result<Vec<Row>, postgres::Error> {
    let column = |f: fn(&Read<'a>) -> &'a str| reads.iter().map(f).collect::<Vec<&str>>();
    let paths: Vec<String> = (0..reads.len()).map(|i| format!("/rest/v1/r{i}")).collect();
    let headers: Vec<String> = (0..reads.len())
        .map(|i| format!(r#"{{"x-read": "{i}"}}"#))
        .collect();
    let counts: Vec<i32> = reads.iter().map(|r| r.params.len() as i32).collect();
    let params: Vec<Option<&str>> = reads
        .iter()
        .flat_map(|r| r.params.iter().copied())
        .collect();
    let rows = client.query(
        "SELECT result, error FROM sluice.run_reads($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &column(|r| r.role),
            &column(|r| r.claims),
            &column(|r| r.method),
            &paths,
            &headers,
            &column(|r| r.timeout),
            &column(|r| r.sql),
            &counts,
            &params,
        ],
    )?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

fn texts(values: &[Option<&str>]) -> Option<Vec<Option<String>>> {
    Some(values.iter().map(|v| v.map(str::to_owned)).collect())
}

#[test]
fn each_read_runs_as_its_own_role_with_its_own_settings_in_a_read_only_transaction() {
    let mut client = connect();
    let sql = "SELECT current_user::text, current_setting('request.jwt.claims', true), \
               current_setting('request.method'), current_setting('request.path'), \
               current_setting('request.headers'), current_setting('transaction_read_only'), \
               current_setting('jit'), $1::text || '!'";
    let reads = [
        Read {
            params: &[Some("a")],
            claims: r#"{"sub": "a"}"#,
            ..Read::anon(sql)
        },
        Read {
            role: "authenticated",
            claims: r#"{"sub": "b"}"#,
            method: "HEAD",
            params: &[Some("b")],
            ..Read::anon(sql)
        },
        Read {
            params: &[None],
            ..Read::anon(sql)
        },
    ];
    let rows = run_reads(&mut client, &reads).unwrap();
    assert_eq!(
        rows,
        vec![
            (
                texts(&[
                    Some("anon"),
                    Some(r#"{"sub": "a"}"#),
                    Some("GET"),
                    Some("/rest/v1/r0"),
                    Some(r#"{"x-read": "0"}"#),
                    Some("on"),
                    Some("off"),
                    Some("a!"),
                ]),
                None
            ),
            (
                texts(&[
                    Some("authenticated"),
                    Some(r#"{"sub": "b"}"#),
                    Some("HEAD"),
                    Some("/rest/v1/r1"),
                    Some(r#"{"x-read": "1"}"#),
                    Some("on"),
                    Some("off"),
                    Some("b!"),
                ]),
                None
            ),
            (
                texts(&[
                    Some("anon"),
                    Some("{}"),
                    Some("GET"),
                    Some("/rest/v1/r2"),
                    Some(r#"{"x-read": "2"}"#),
                    Some("on"),
                    Some("off"),
                    None,
                ]),
                None
            ),
        ]
    );
    // Nothing outlives the call: the session is the login's again, with no request settings.
    let row = client
        .query_one(
            "SELECT current_user::text, coalesce(current_setting('request.jwt.claims', true), '')",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(1), "");
    assert_ne!(row.get::<_, String>(0), "anon");
}

#[test]
fn a_failing_read_answers_its_error_and_the_others_answer_theirs() {
    let mut client = connect();
    client
        .batch_execute(
            "DROP TABLE IF EXISTS reads_private; CREATE TABLE reads_private (id int); \
             REVOKE ALL ON reads_private FROM anon; \
             DROP TABLE IF EXISTS reads_public; CREATE TABLE reads_public (id int); \
             GRANT SELECT, INSERT ON reads_public TO anon; INSERT INTO reads_public VALUES (1), (2); \
             CREATE OR REPLACE FUNCTION public.reads_sets_session() RETURNS text LANGUAGE sql AS \
               $$ SELECT set_config('request.jwt.claims', '{\"leaked\": true}', false) $$; \
             GRANT EXECUTE ON FUNCTION public.reads_sets_session() TO anon",
        )
        .unwrap();
    let reads = [
        Read::anon("SELECT count(*)::text FROM reads_public"),
        Read::anon("SELECT sluice.raise_error('PT402', 'pay up', 'the detail', 'a hint')"),
        Read::anon("SELECT id::text FROM reads_private"),
        Read::anon("SELECT public.reads_sets_session()"),
        Read::anon("SELECT current_setting('request.jwt.claims')"),
        Read::anon("INSERT INTO reads_public VALUES (3) RETURNING id::text"),
        Read::anon("SELECT (1 / 0)::text"),
        Read::anon("SELECT id::text FROM reads_public WHERE id = 99"),
        Read::anon("SELECT string_agg(id::text, ',' ORDER BY id) FROM reads_public"),
    ];
    let rows = run_reads(&mut client, &reads).unwrap();
    let code = |row: &Row| {
        row.1
            .as_ref()
            .and_then(|error| error[0].clone())
            .unwrap_or_default()
    };
    assert_eq!(rows.len(), reads.len());
    assert_eq!(rows[0], (texts(&[Some("2")]), None));
    assert_eq!(
        rows[1],
        (
            None,
            texts(&[
                Some("PT402"),
                Some("pay up"),
                Some("the detail"),
                Some("a hint")
            ])
        )
    );
    assert_eq!(code(&rows[2]), "42501", "{:?}", rows[2]);
    assert_eq!(
        rows[2].1.as_ref().unwrap()[1].as_deref(),
        Some("permission denied for table reads_private")
    );
    assert_eq!(rows[3], (texts(&[Some(r#"{"leaked": true}"#)]), None));
    // A session-wide setting made by a read is rolled back with it.
    assert_eq!(rows[4], (texts(&[Some("{}")]), None));
    assert_eq!(
        code(&rows[5]),
        "25006",
        "a read cannot write: {:?}",
        rows[5]
    );
    assert_eq!(code(&rows[6]), "22012");
    assert_eq!(
        rows[7],
        (None, None),
        "no row: neither a result nor an error"
    );
    assert_eq!(rows[8], (texts(&[Some("1,2")]), None));
    let count: i64 = client
        .query_one("SELECT count(*) FROM reads_public", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

#[test]
fn each_read_has_its_own_statement_timeout_counted_from_its_own_start() {
    let mut client = connect();
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION public.reads_sleep(seconds float8) RETURNS text \
               LANGUAGE sql AS $$ SELECT pg_sleep(seconds)::text || 'slept' $$; \
             GRANT EXECUTE ON FUNCTION public.reads_sleep(float8) TO anon",
        )
        .unwrap();
    let started = Instant::now();
    let reads = [
        Read {
            timeout: "150ms",
            ..Read::anon("SELECT public.reads_sleep(5)")
        },
        // No timeout of its own: the first one's timer does not reach it.
        Read::anon("SELECT public.reads_sleep(0.3)"),
        // 400 ms from its own start, not from the call's (by now more than 450 ms ago).
        Read {
            timeout: "400ms",
            ..Read::anon("SELECT public.reads_sleep(0.2)")
        },
    ];
    let rows = run_reads(&mut client, &reads).unwrap();
    let elapsed = started.elapsed();
    let error = rows[0].1.as_ref().expect("the first read timed out");
    assert_eq!(error[0].as_deref(), Some("57014"));
    assert_eq!(
        error[1].as_deref(),
        Some("canceling statement due to statement timeout")
    );
    assert_eq!(rows[1], (texts(&[Some("slept")]), None));
    assert_eq!(rows[2], (texts(&[Some("slept")]), None));
    assert!(
        elapsed < Duration::from_secs(3),
        "the first read was stopped at its timeout: {elapsed:?}"
    );
}

#[test]
fn arguments_that_do_not_describe_reads_are_refused() {
    let mut client = connect();
    let call = "SELECT * FROM sluice.run_reads($1, $1, $1, $1, $1, $1, $1, $2, $3)";
    let one = vec!["anon"];
    for (counts, params, why) in [
        (vec![1, 1], vec![Some("x")], "two counts for one read"),
        (vec![2], vec![Some("x")], "fewer parameters than counted"),
        (vec![0], vec![Some("x")], "more parameters than counted"),
        (vec![-1], vec![], "a negative count"),
    ] {
        let err = client
            .query(call, &[&one, &counts, &params])
            .expect_err(why);
        let err = err.as_db_error().expect("a server error");
        assert_eq!(err.code().code(), "22023", "{why}: {}", err.message());
    }
    let err = client
        .query(call, &[&vec![None::<&str>], &vec![0], &Vec::<&str>::new()])
        .expect_err("a NULL role");
    assert_eq!(err.as_db_error().unwrap().code().code(), "22023");
    // An empty batch is no reads.
    let rows = client
        .query(
            call,
            &[&Vec::<&str>::new(), &Vec::<i32>::new(), &Vec::<&str>::new()],
        )
        .unwrap();
    assert!(rows.is_empty());
}

#[test]
fn only_authenticator_may_call_run_reads() {
    let mut client = connect();
    let signature =
        "sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[])";
    for (role, allowed) in [
        ("authenticator", true),
        ("anon", false),
        ("authenticated", false),
        ("service_role", false),
    ] {
        let may: bool = client
            .query_one(
                "SELECT has_function_privilege($1, $2, 'EXECUTE')",
                &[&role, &signature],
            )
            .unwrap()
            .get(0);
        assert_eq!(may, allowed, "{role}");
    }
}
