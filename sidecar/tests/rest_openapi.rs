//! `GET /rest/v1/` follows the requesting role's privileges (PostgREST's `openapi-mode =
//! follow-privileges`): tables, columns, operations and functions the role cannot use are not
//! described, a column's default only to a role that may insert it, and a bad token is refused.

mod support;

use axum::http::{Method, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use support::app::{AppOptions, Reply, TestApp};
use support::rest::token;

const SCHEMA: &str = r#"
    CREATE TABLE posts (id integer PRIMARY KEY, title text);
    COMMENT ON TABLE posts IS 'Public posts';
    GRANT SELECT ON posts TO anon;

    -- No grant to anon at all.
    CREATE TABLE payroll (id integer PRIMARY KEY, salary integer);
    COMMENT ON TABLE payroll IS 'Who earns what';
    GRANT SELECT, INSERT ON payroll TO authenticated;
    -- A foreign key note would name payroll.
    CREATE TABLE posts_payroll (post_id integer REFERENCES posts, payroll_id integer REFERENCES payroll);
    GRANT SELECT ON posts_payroll TO anon;

    -- anon reads two columns; the key, with a literal secret as its default, is revoked from it.
    CREATE TABLE accounts (
        id integer PRIMARY KEY,
        name text NOT NULL DEFAULT 'nobody',
        api_key text NOT NULL DEFAULT 'sk_live_0123456789'
    );
    COMMENT ON COLUMN accounts.api_key IS 'The live key';
    GRANT SELECT (id, name) ON accounts TO anon;
    GRANT SELECT, INSERT, UPDATE ON accounts TO authenticated;

    CREATE FUNCTION open_count() RETURNS integer LANGUAGE sql STABLE AS 'SELECT 1';
    CREATE FUNCTION closed_count() RETURNS integer LANGUAGE sql STABLE AS 'SELECT 2';
    REVOKE EXECUTE ON FUNCTION closed_count() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION closed_count() TO authenticated;

    -- As Supabase's default privileges do.
    GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO service_role;
"#;

const SECRET: &str = "sluice-rest-openapi-test-secret-0123456789";

fn document(t: &TestApp, bearer: Option<&str>) -> Reply {
    let header = bearer.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = header
        .as_deref()
        .map(|value| vec![("authorization", value)])
        .unwrap_or_default();
    t.send(Method::GET, "/rest/v1/", &headers, "")
}

fn signed(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The keys of a JSON object, sorted.
fn keys(object: &Value, what: &str) -> Vec<String> {
    let mut keys: Vec<String> = object
        .as_object()
        .unwrap_or_else(|| panic!("no {what}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn paths(doc: &Value) -> Vec<String> {
    keys(&doc["paths"], "paths")
}

fn operations(doc: &Value, path: &str) -> Vec<String> {
    keys(&doc["paths"][path], path)
}

fn columns(doc: &Value, table: &str) -> Vec<String> {
    keys(&doc["components"]["schemas"][table]["properties"], table)
}

#[test]
fn anon_sees_only_what_it_may_use() {
    let t = TestApp::start(AppOptions::new(&[SCHEMA], SECRET));
    let reply = document(&t, None);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(
        paths(&doc),
        [
            "/",
            "/accounts",
            "/posts",
            "/posts_payroll",
            "/rpc/open_count"
        ],
        "no payroll, no closed_count"
    );
    // Of the foreign keys of a visible table, only those to tables anon sees are described.
    let links = &doc["components"]["schemas"]["posts_payroll"]["properties"];
    assert!(links["post_id"]["description"]
        .as_str()
        .unwrap()
        .contains("<fk table='posts' column='id'/>"));
    assert_eq!(links["payroll_id"].get("description"), None);
    for leaked in [
        "\"/payroll\"",
        "Who earns what",
        "table='payroll'",
        "salary",
    ] {
        assert!(!reply.body.contains(leaked), "{leaked} is shown to anon");
    }
    assert!(!reply.body.contains("closed_count"));

    // The revoked column is gone with its comment and its secret default.
    assert_eq!(columns(&doc, "accounts"), ["id", "name"]);
    for leaked in ["api_key", "sk_live_0123456789", "The live key"] {
        assert!(!reply.body.contains(leaked), "{leaked} is shown to anon");
    }
    // Read-only access: only `get`, row filters only on readable columns, and no default shown
    // to a role that cannot insert.
    assert_eq!(operations(&doc, "/accounts"), ["get"]);
    assert_eq!(operations(&doc, "/posts"), ["get"]);
    let filters = doc["components"]["parameters"].as_object().unwrap();
    assert!(filters.contains_key("rowFilter.accounts.name"));
    assert!(!filters.keys().any(|key| key.contains("api_key")));
    assert_eq!(
        doc["components"]["schemas"]["accounts"]["properties"]["name"].get("default"),
        None
    );
}

#[test]
fn authenticated_and_service_role_see_their_grants() {
    let t = TestApp::start(AppOptions::new(&[SCHEMA], SECRET));
    let user = document(&t, Some(&token(Some("u1"), SECRET))).json();
    assert_eq!(
        paths(&user),
        [
            "/",
            "/accounts",
            "/payroll",
            "/rpc/closed_count",
            "/rpc/open_count"
        ],
        "no posts: authenticated has no grant on it"
    );
    assert_eq!(operations(&user, "/accounts"), ["get", "patch", "post"]);
    assert_eq!(operations(&user, "/payroll"), ["get", "post"]);
    assert_eq!(columns(&user, "accounts"), ["api_key", "id", "name"]);
    // A role that may insert the column sees its default, as PostgREST shows it.
    assert_eq!(
        user["components"]["schemas"]["accounts"]["properties"]["api_key"]["default"],
        json!("sk_live_0123456789")
    );

    let service = signed(json!({"role": "service_role"}), SECRET);
    let all = document(&t, Some(&service)).json();
    assert_eq!(
        paths(&all),
        [
            "/",
            "/accounts",
            "/payroll",
            "/posts",
            "/posts_payroll",
            "/rpc/closed_count",
            "/rpc/open_count"
        ]
    );
    for path in ["/accounts", "/payroll", "/posts"] {
        assert_eq!(
            operations(&all, path),
            ["delete", "get", "patch", "post"],
            "{path}"
        );
    }
    assert_eq!(columns(&all, "accounts"), ["api_key", "id", "name"]);

    // A GRANT is followed at once: privileges are asked of Postgres per document.
    t.db.execute("GRANT SELECT ON payroll TO anon");
    let anon = document(&t, None).json();
    assert!(paths(&anon).contains(&"/payroll".to_owned()));
}

#[test]
fn bad_tokens_are_refused_as_on_every_endpoint() {
    let t = TestApp::start(AppOptions::new(&[SCHEMA], SECRET));
    let forged = signed(
        json!({"role": "service_role"}),
        "not-the-secret-not-the-secret-0123456789",
    );
    let reply = document(&t, Some(&forged));
    assert_eq!(reply.error(StatusCode::UNAUTHORIZED), "PGRST301");
    assert!(!reply.body.contains("payroll"));

    let expired = signed(json!({"role": "service_role", "exp": 1_000_000}), SECRET);
    let reply = document(&t, Some(&expired));
    assert_eq!(reply.error(StatusCode::UNAUTHORIZED), "PGRST303");
}
