//! Bounded query complexity end to end: the issue's hostile request (an anonymous GET repeating a
//! filter 5,000 times, which held a backend for 33 s on a 50,000-row table) is refused before it
//! reaches Postgres (by the URL bound; 1,000 filters in a shorter URL by the filter bound), while a request at the limits is answered; reads, writes and RPC alike.

mod support;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use sluice_sidecar::rest::parse::QueryLimits;
use support::app::{AppOptions, Reply, TestApp};

const SCHEMA: &str = r#"
    CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, score integer NOT NULL);
    INSERT INTO events SELECT n, 'kind' || (n % 7), n % 1000 FROM generate_series(1, 50000) AS n;
    ANALYZE events;
    GRANT SELECT, UPDATE ON events TO anon;
    CREATE FUNCTION scores() RETURNS SETOF events LANGUAGE sql STABLE AS 'SELECT * FROM events';
"#;

const SECRET: &str = "sluice-rest-limits-test-secret-0123456789";

/// A refusal is parsing only; generous for a debug build on a busy machine.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

fn start(limits: QueryLimits) -> TestApp {
    let mut options = AppOptions::new(&[SCHEMA], SECRET);
    options.query_limits = limits;
    TestApp::start(options)
}

fn get(t: &TestApp, path: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = t.send(Method::GET, path, &[], "");
    (reply, started.elapsed())
}

fn filters(n: usize) -> String {
    vec!["score=gte.0"; n].join("&")
}

#[test]
fn the_hostile_request_is_refused_fast_and_one_at_the_limit_is_answered() {
    let t = start(QueryLimits::default());
    let hostile = format!("/rest/v1/events?{}", filters(5_000));
    assert!(hostile.len() > 35_000, "a 35 kB URL, as in the issue");
    // The issue's request is cut by the URL bound first (414, before the query is even parsed);
    // one that fits in a URL but has too many filters is cut by the filter bound.
    let (reply, took) = get(&t, &hostile);
    assert_eq!(reply.error(StatusCode::URI_TOO_LONG), "SLUICE102");
    eprintln!("hostile 5,000-filter GET refused in {took:?}");
    assert!(took < REFUSED_WITHIN, "refused in {took:?}");

    let many = format!("/rest/v1/events?{}", filters(1_000));
    assert!(many.len() < 16 * 1024, "a URL the URL bound lets through");
    let (reply, took) = get(&t, &many);
    assert_eq!(reply.error(StatusCode::BAD_REQUEST), "SLUICE115");
    assert_eq!(
        reply.json(),
        json!({
            "code": "SLUICE115",
            "message": "the request has 1000 filters, more than the 100 allowed",
            "details": null,
            "hint": "split the request, or raise the server's limit with \
                     SLUICE_MAX_QUERY_FILTERS (--max-query-filters)",
        })
    );
    eprintln!("1,000-filter GET refused in {took:?}");
    assert!(took < REFUSED_WITHIN, "refused in {took:?}");

    let at_limit = format!(
        "/rest/v1/events?select=id&{}&order=id&limit=1",
        filters(100)
    );
    let (reply, took) = get(&t, &at_limit);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!([{"id": 1}]));
    eprintln!("100-filter GET answered in {took:?}");
}

#[test]
fn the_limits_apply_to_reads_writes_and_calls() {
    let t = start(QueryLimits {
        filters: 2,
        logic_branches: 3,
        logic_depth: 1,
        select_items: 2,
        embed_depth: 1,
        order_terms: 1,
    });
    for (method, path, counted) in [
        (
            Method::GET,
            "/rest/v1/events?id=gt.1&id=lt.5&id=neq.3",
            "3 filters",
        ),
        (
            Method::GET,
            "/rest/v1/events?or=(id.eq.1,id.eq.2,id.eq.3,id.eq.4)",
            "4 conditions",
        ),
        (
            Method::GET,
            "/rest/v1/events?or=(and(id.eq.2))",
            "2 levels of or/and",
        ),
        (
            Method::GET,
            "/rest/v1/events?select=id,kind,score",
            "3 select items",
        ),
        (
            Method::GET,
            "/rest/v1/events?order=id,kind",
            "2 order terms",
        ),
        (
            Method::GET,
            "/rest/v1/rpc/scores?id=gt.1&id=lt.5&id=neq.3",
            "3 filters",
        ),
        (
            Method::PATCH,
            "/rest/v1/events?id=gt.1&id=lt.5&id=neq.3",
            "3 filters",
        ),
        (
            Method::DELETE,
            "/rest/v1/events?order=id,kind&id=eq.1",
            "2 order terms",
        ),
    ] {
        let reply = t.send(method.clone(), path, &[], r#"{"score": 0}"#);
        assert_eq!(
            reply.error(StatusCode::BAD_REQUEST),
            "SLUICE115",
            "{method} {path}"
        );
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(counted), "{path}: {message}");
    }
    // Within the limits the same table answers.
    let (reply, _) = get(
        &t,
        "/rest/v1/events?select=id&or=(id.eq.1,id.eq.2)&order=id",
    );
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!([{"id": 1}, {"id": 2}]));
    // Nothing was written by the refused PATCH.
    assert_eq!(
        t.db.rows("SELECT count(*) AS n FROM events WHERE score = 0 AND id < 5"),
        json!([{"n": 0}])
    );
}
