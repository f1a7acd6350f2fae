//! RPC end to end: `POST`/`GET`/`HEAD /rest/v1/rpc/{function}` through the real router, with the
//! real pool (as `authenticator`), the real schema cache and real Postgres with the extension and
//! RLS.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{AppOptions, Reply, TestApp};
use support::rest::token;

const ALICE: &str = "0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d";
const BOB: &str = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b";

const SCHEMA: &str = r#"
    CREATE TABLE todos (
        id bigint PRIMARY KEY,
        owner uuid NOT NULL,
        title text NOT NULL,
        done boolean NOT NULL DEFAULT false
    );
    ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_todos ON todos USING (owner = auth.uid());
    CREATE POLICY add_own_todos ON todos FOR INSERT WITH CHECK (owner = auth.uid());
    GRANT SELECT, INSERT ON todos TO anon, authenticated;
    INSERT INTO todos VALUES
        (1, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'buy milk', false),
        (2, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'walk the dog', true),
        (3, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'write report', false),
        (4, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'buy bread', true),
        (6, 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b', 'bob secret', false);

    CREATE FUNCTION add(a integer, b integer DEFAULT 10) RETURNS integer
        LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
    CREATE FUNCTION greet(name text) RETURNS text
        LANGUAGE sql STABLE AS $$ SELECT 'hello ' || name $$;
    CREATE FUNCTION numbers(up_to integer) RETURNS SETOF integer
        LANGUAGE sql STABLE AS $$ SELECT generate_series(1, up_to) $$;
    -- SECURITY INVOKER (the default): RLS sees the caller through auth.uid().
    CREATE FUNCTION my_todos() RETURNS SETOF todos
        LANGUAGE sql STABLE AS $$ SELECT * FROM todos $$;
    CREATE FUNCTION first_todo() RETURNS todos
        LANGUAGE sql STABLE AS $$ SELECT * FROM todos ORDER BY id LIMIT 1 $$;
    CREATE FUNCTION todo_titles(min_id bigint) RETURNS TABLE (todo_id bigint, label text)
        LANGUAGE sql STABLE AS $$ SELECT id, upper(title) FROM todos WHERE id >= min_id $$;
    CREATE TYPE pair AS (k text, v integer);
    CREATE FUNCTION pairs() RETURNS SETOF pair
        LANGUAGE sql IMMUTABLE AS $$ VALUES ('a', 1), ('b', 2), ('c', 3) $$;
    CREATE FUNCTION one_pair() RETURNS pair
        LANGUAGE sql IMMUTABLE AS $$ VALUES ('z', 26) $$;
    CREATE FUNCTION shout(text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$ SELECT upper($1) $$;
    CREATE FUNCTION echo(json) RETURNS json
        LANGUAGE sql IMMUTABLE AS $$ SELECT json_build_object('got', $1) $$;
    CREATE FUNCTION add_todo(id bigint, title text) RETURNS todos
        LANGUAGE sql VOLATILE AS $$
            INSERT INTO todos (id, owner, title) VALUES (id, auth.uid(), title) RETURNING *
        $$;
    CREATE FUNCTION touch() RETURNS void
        LANGUAGE plpgsql VOLATILE AS $$ BEGIN PERFORM 1; END $$;
    CREATE FUNCTION fail(message text) RETURNS integer
        LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION '%', message; END $$;
    CREATE FUNCTION pay() RETURNS integer
        LANGUAGE plpgsql IMMUTABLE AS $$
            BEGIN RAISE EXCEPTION 'no money' USING ERRCODE = 'PT402', HINT = 'top up'; END
        $$;
    CREATE FUNCTION sum_all(VARIADIC xs integer[]) RETURNS integer
        LANGUAGE sql IMMUTABLE AS $$ SELECT sum(x)::integer FROM unnest(xs) x $$;
    CREATE FUNCTION sorted(xs integer[], flag boolean DEFAULT false) RETURNS integer[]
        LANGUAGE sql IMMUTABLE AS $$ SELECT array_agg(x ORDER BY x) FROM unnest(xs) x $$;
    CREATE FUNCTION pick(x integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'int' $$;
    CREATE FUNCTION pick(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'text' $$;
"#;

const SECRET: &str = "sluice-rest-rpc-test-secret-0123456789";

struct Fixture {
    t: TestApp,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_max_rows(None)
    }

    fn with_max_rows(max_rows: Option<u64>) -> Fixture {
        Fixture::build(max_rows, "")
    }

    /// A fixture whose database also ran `extra_sql` before the sidecar loaded its schema.
    fn build(max_rows: Option<u64>, extra_sql: &str) -> Fixture {
        let setup = [SCHEMA, extra_sql];
        let mut options = AppOptions::new(&setup, SECRET);
        options.max_rows = max_rows;
        Fixture {
            t: TestApp::start(options),
        }
    }

    fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(method, path, headers, "")
    }

    fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.t.send(method, path, headers, body)
    }

    /// `GET path` as alice.
    fn get(&self, path: &str) -> Reply {
        self.get_as(&token(Some(ALICE), SECRET), path, &[])
    }

    fn get_as(&self, token: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let bearer = format!("Bearer {token}");
        let mut all = vec![("authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        self.request(Method::GET, path, &all)
    }

    /// `POST path` with `body` as alice.
    fn post(&self, path: &str, body: &str) -> Reply {
        self.post_with(path, &[], body)
    }

    fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let bearer = format!("Bearer {}", token(Some(ALICE), SECRET));
        let mut all = vec![
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
        ];
        all.extend_from_slice(headers);
        self.send(Method::POST, path, &all, body)
    }
}

#[test]
fn a_scalar_function_answers_its_value() {
    let f = Fixture::new();
    let sum = f.post("/rest/v1/rpc/add", r#"{"a": 1, "b": 2}"#);
    assert_eq!(sum.status, StatusCode::OK, "{}", sum.body);
    assert_eq!(
        sum.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(sum.json(), json!(3));
    // A left-out argument with a default takes it.
    assert_eq!(f.post("/rest/v1/rpc/add", r#"{"a": 1}"#).json(), json!(11));
    assert_eq!(
        f.post("/rest/v1/rpc/greet", r#"{"name": "ann"}"#).json(),
        json!("hello ann")
    );
    // Arrays and VARIADIC take JSON arrays.
    let sorted = f.post("/rest/v1/rpc/sorted", r#"{"xs": [3, 1, 2]}"#);
    assert_eq!(sorted.json(), json!([1, 2, 3]), "{}", sorted.body);
    assert_eq!(
        f.post("/rest/v1/rpc/sum_all", r#"{"xs": [1, 2, 3]}"#)
            .json(),
        json!(6)
    );
    // NULL is an argument like any other.
    assert_eq!(
        f.post("/rest/v1/rpc/add", r#"{"a": null, "b": 2}"#).json(),
        Value::Null
    );
    // A scalar SETOF is an array of values.
    assert_eq!(
        f.post("/rest/v1/rpc/numbers", r#"{"up_to": 3}"#).json(),
        json!([1, 2, 3])
    );
    let page = f.get("/rest/v1/rpc/numbers?up_to=5&limit=2&offset=1");
    assert_eq!(page.json(), json!([2, 3]), "{}", page.body);
    // A composite type that is no table: objects, without filters.
    let pairs = f.post("/rest/v1/rpc/pairs?limit=2", "");
    assert_eq!(
        pairs.json(),
        json!([{"k": "a", "v": 1}, {"k": "b", "v": 2}]),
        "{}",
        pairs.body
    );
    assert_eq!(
        f.post("/rest/v1/rpc/one_pair", "").json(),
        json!({"k": "z", "v": 26})
    );
}

#[test]
fn a_set_of_rows_takes_select_filters_order_and_paging() {
    let f = Fixture::new();
    let rows = f.post(
        "/rest/v1/rpc/my_todos?select=id,title&done=is.false&order=id.desc",
        "{}",
    );
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.body);
    assert_eq!(
        rows.json(),
        json!([{"id": 3, "title": "write report"}, {"id": 1, "title": "buy milk"}])
    );
    let page = f.post_with(
        "/rest/v1/rpc/my_todos?select=id&order=id&limit=2&offset=1",
        &[("prefer", "count=exact")],
        "",
    );
    assert_eq!(page.status, StatusCode::PARTIAL_CONTENT, "{}", page.body);
    assert_eq!(page.ids(), [2, 3]);
    assert_eq!(page.header("content-range"), "1-2/4");
    let one = f.post_with(
        "/rest/v1/rpc/my_todos?id=eq.2",
        &[("accept", "application/vnd.pgrst.object+json")],
        "",
    );
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.json()["title"], "walk the dog");
    let csv = f.post_with(
        "/rest/v1/rpc/my_todos?select=id,title&id=lt.3&order=id",
        &[("accept", "text/csv")],
        "",
    );
    assert_eq!(csv.body, "id,title\n1,\"buy milk\"\n2,\"walk the dog\"");
    // Without SETOF, the row is an object.
    let first = f.post("/rest/v1/rpc/first_todo?select=id,title", "");
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.json(), json!({"id": 1, "title": "buy milk"}));
    let unknown = f.post("/rest/v1/rpc/my_todos?nope=eq.1", "");
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["code"], "42703");
}

#[test]
fn returns_table_columns_are_filterable() {
    let f = Fixture::new();
    let rows = f.post(
        "/rest/v1/rpc/todo_titles?label=like.BUY*&order=todo_id.desc",
        r#"{"min_id": 1}"#,
    );
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.body);
    assert_eq!(
        rows.json(),
        json!([{"todo_id": 4, "label": "BUY BREAD"}, {"todo_id": 1, "label": "BUY MILK"}])
    );
    let get = f.get("/rest/v1/rpc/todo_titles?min_id=3&select=label&limit=1&order=todo_id");
    assert_eq!(get.status, StatusCode::OK, "{}", get.body);
    assert_eq!(get.json(), json!([{"label": "WRITE REPORT"}]));
}

#[test]
fn a_single_unnamed_json_argument_receives_the_whole_body() {
    let f = Fixture::new();
    let echo = f.post("/rest/v1/rpc/echo", r#"{"any": ["thing", 1]}"#);
    assert_eq!(echo.status, StatusCode::OK, "{}", echo.body);
    assert_eq!(echo.json(), json!({"got": {"any": ["thing", 1]}}));
    let array = f.post("/rest/v1/rpc/echo", "[1, 2]");
    assert_eq!(array.json(), json!({"got": [1, 2]}));
    let not_json = f.post("/rest/v1/rpc/echo", "{not json");
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.json()["code"], "PGRST102");
    // A single unnamed text argument takes a body that is not JSON as it is.
    let text = f.post_with(
        "/rest/v1/rpc/shout",
        &[("content-type", "text/plain")],
        "plain words",
    );
    assert_eq!(text.status, StatusCode::OK, "{}", text.body);
    assert_eq!(text.json(), json!("PLAIN WORDS"));
}

#[test]
fn get_runs_read_only_so_a_volatile_write_is_405() {
    let f = Fixture::new();
    let stable = f.get("/rest/v1/rpc/add?a=4&b=5");
    assert_eq!(stable.status, StatusCode::OK, "{}", stable.body);
    assert_eq!(stable.json(), json!(9));
    let head = f.request(Method::HEAD, "/rest/v1/rpc/greet?name=x", &[]);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.body, "");

    let volatile = f.get("/rest/v1/rpc/add_todo?id=10&title=nope");
    assert_eq!(
        volatile.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        volatile.body
    );
    assert_eq!(volatile.json()["code"], "25006");
    // POST runs it read-write; RLS applies inside (auth.uid() is the caller).
    let added = f.post("/rest/v1/rpc/add_todo", r#"{"id": 10, "title": "new"}"#);
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.json()["owner"], ALICE);
    assert_eq!(
        f.post("/rest/v1/rpc/my_todos?select=id&id=eq.10", "").ids(),
        [10]
    );
    // A void function answers 204 without a body.
    let void = f.post("/rest/v1/rpc/touch", "");
    assert_eq!(void.status, StatusCode::NO_CONTENT, "{}", void.body);
    assert_eq!(void.body, "");
}

#[test]
fn prefer_tx_rollback_undoes_the_call() {
    let f = Fixture::new();
    let dry = f.post_with(
        "/rest/v1/rpc/add_todo",
        &[("prefer", "tx=rollback")],
        r#"{"id": 11, "title": "dry run"}"#,
    );
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.json()["title"], "dry run");
    assert_eq!(dry.header("preference-applied"), "tx=rollback");
    assert!(f
        .post("/rest/v1/rpc/my_todos?id=eq.11", "")
        .ids()
        .is_empty());
}

#[test]
fn rls_applies_inside_a_security_invoker_function() {
    let f = Fixture::new();
    assert_eq!(
        f.post("/rest/v1/rpc/my_todos?select=id&order=id", "").ids(),
        [1, 2, 3, 4]
    );
    let bearer = format!("Bearer {}", token(Some(BOB), SECRET));
    let bob = f.send(
        Method::POST,
        "/rest/v1/rpc/my_todos?select=id",
        &[("authorization", bearer.as_str())],
        "",
    );
    assert_eq!(bob.ids(), [6]);
    let anon = f.send(Method::POST, "/rest/v1/rpc/my_todos", &[], "");
    assert_eq!(anon.status, StatusCode::OK, "{}", anon.body);
    assert_eq!(anon.json(), json!([]));
}

#[test]
fn unknown_functions_and_argument_sets_are_404_pgrst202() {
    let f = Fixture::new();
    let missing = f.post("/rest/v1/rpc/nope", r#"{"x": 1}"#);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json(),
        json!({
            "code": "PGRST202",
            "message": "Could not find the function public.nope(x) in the schema cache",
            "details": "Searched for the function public.nope with parameter x or with a single \
                        unnamed json/jsonb parameter, but no matches were found in the schema cache.",
            // No function of the schema is alike (PostgREST's fuzzy match finds none either).
            "hint": null,
        })
    );
    let wrong = f.post("/rest/v1/rpc/add", r#"{"a": 1, "c": 2}"#);
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert_eq!(
        wrong.json()["message"],
        "Could not find the function public.add(a, c) in the schema cache"
    );
    assert_eq!(
        wrong.json()["hint"],
        "Perhaps you meant to call the function public.add(a, b)"
    );
    let none = f.post("/rest/v1/rpc/add", "");
    assert_eq!(
        none.json()["message"],
        "Could not find the function public.add without parameters in the schema cache"
    );
    let ambiguous = f.post("/rest/v1/rpc/pick", r#"{"x": 1}"#);
    assert_eq!(ambiguous.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(ambiguous.json()["code"], "PGRST203");
    let bad_json = f.post("/rest/v1/rpc/add", "{");
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.json()["code"], "PGRST102");
    let huge = format!(r#"{{"a": 1, "b": 2, "pad": "{}"}}"#, "x".repeat(2 << 20));
    let too_large = f.post("/rest/v1/rpc/add", &huge);
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.json()["code"], "SLUICE122");
    let put = f.send(Method::PUT, "/rest/v1/rpc/add", &[], "{}");
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn errors_keep_their_sqlstate() {
    let f = Fixture::new();
    let wrong_type = f.post("/rest/v1/rpc/add", r#"{"a": "one", "b": 2}"#);
    assert_eq!(
        wrong_type.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_type.body
    );
    assert_eq!(wrong_type.json()["code"], "22P02");
    let raised = f.post("/rest/v1/rpc/fail", r#"{"message": "it broke"}"#);
    assert_eq!(raised.status, StatusCode::BAD_REQUEST);
    assert_eq!(raised.json()["code"], "P0001");
    assert_eq!(raised.json()["message"], "it broke");
    let custom = f.post("/rest/v1/rpc/pay", "{}");
    assert_eq!(custom.status.as_u16(), 402, "{}", custom.body);
    assert_eq!(custom.json()["code"], "PT402");
    assert_eq!(custom.json()["message"], "no money");
    assert_eq!(custom.json()["hint"], "top up");
}

/// `SET ROLE` does not apply a role's settings; the sidecar applies the role's statement_timeout
/// (read with the schema) to each request of that role, as PostgREST does.
#[test]
fn a_roles_statement_timeout_applies_to_its_requests() {
    let f = Fixture::build(
        None,
        "CREATE FUNCTION nap(seconds float8) RETURNS integer LANGUAGE sql VOLATILE \
             AS $$ SELECT 1 FROM pg_sleep(seconds) $$;
         DO $$ BEGIN
             EXECUTE format('ALTER ROLE authenticated IN DATABASE %I SET statement_timeout = %L',
                            current_database(), '300ms');
         END $$;",
    );
    let quick = f.post("/rest/v1/rpc/nap", r#"{"seconds": 0.01}"#);
    assert_eq!(quick.status, StatusCode::OK, "{}", quick.body);
    let slow = f.post("/rest/v1/rpc/nap", r#"{"seconds": 3}"#);
    // PostgREST's status for class 57 (operator intervention), 57014 included.
    assert_eq!(
        slow.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        slow.body
    );
    assert_eq!(slow.json()["code"], "57014");
    // anon has no timeout of its own: the same nap that alice may not take, anon may.
    let anon = f.send(
        Method::POST,
        "/rest/v1/rpc/nap",
        &[("content-type", "application/json")],
        r#"{"seconds": 0.6}"#,
    );
    assert_eq!(anon.status, StatusCode::OK, "{}", anon.body);
}

#[test]
fn params_single_object_passes_the_whole_body_as_the_json_argument() {
    let f = Fixture::build(
        None,
        "CREATE FUNCTION count_keys(payload jsonb) RETURNS integer LANGUAGE sql IMMUTABLE \
             AS $$ SELECT count(*)::integer FROM jsonb_object_keys(payload) $$;",
    );
    let single = [("prefer", "params=single-object")];
    let body = r#"{"a": 1, "b": [2], "payload": 3}"#;
    let counted = f.post_with("/rest/v1/rpc/count_keys", &single, body);
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.body);
    assert_eq!(counted.json(), json!(3));
    // Without the preference the keys are argument names, and there is no such function.
    let named = f.post("/rest/v1/rpc/count_keys", body);
    assert_eq!(named.status, StatusCode::NOT_FOUND, "{}", named.body);
    // A function without a single json argument, and a body that is not JSON.
    let other = f.post_with("/rest/v1/rpc/add", &single, r#"{"a": 1, "b": 2}"#);
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    assert_eq!(other.json()["code"], "PGRST202");
    let broken = f.post_with("/rest/v1/rpc/count_keys", &single, "{");
    assert_eq!(broken.status, StatusCode::BAD_REQUEST, "{}", broken.body);
    assert_eq!(broken.json()["code"], "PGRST102");
}

#[test]
fn a_raw_body_reaches_a_single_bytea_argument_byte_for_byte() {
    let f = Fixture::build(
        None,
        "CREATE FUNCTION hex_of(bytea) RETURNS text LANGUAGE sql IMMUTABLE \
             AS $$ SELECT encode($1, 'hex') $$;",
    );
    let octets = [("content-type", "application/octet-stream")];
    // A NUL, which no text value can hold, and a two-byte UTF-8 character.
    let reply = f.post_with("/rest/v1/rpc/hex_of", &octets, "a\u{0}\u{e9}\\x");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!("6100c3a95c78"));
}
