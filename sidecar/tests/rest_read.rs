//! The REST read path end to end: `GET`/`HEAD /rest/v1/{table}` and `GET /rest/v1/` through the
//! real router, with the real pool (as `authenticator`), the real schema cache and real Postgres
//! with the extension and RLS.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::app::{AppOptions, Reply, TestApp};
use support::postgres::{Server, TestDb};
use support::rest::token;

const ALICE: &str = "0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d";
const BOB: &str = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b";

const SCHEMA: &str = r#"
    CREATE TABLE people (id uuid PRIMARY KEY, name text NOT NULL);
    GRANT SELECT ON people TO anon, authenticated;
    INSERT INTO people VALUES
        ('0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'alice'),
        ('f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b', 'bob');

    CREATE TABLE todos (
        id bigint PRIMARY KEY,
        owner uuid NOT NULL REFERENCES people,
        title text NOT NULL,
        done boolean NOT NULL,
        tags text[] NOT NULL DEFAULT '{}',
        meta jsonb,
        slot int4range,
        due date,
        reviewer uuid REFERENCES people,
        "odd ""col"", x" text DEFAULT 'odd'
    );
    ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_todos ON todos USING (owner = auth.uid());
    GRANT SELECT ON todos TO anon, authenticated;
    INSERT INTO todos VALUES
        (1, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'buy milk', false, '{shop,food}',
            '{"prio": 1, "labels": ["a", "b"]}', '[1,5)', '2026-01-01'),
        (2, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'Walk the dog', true, '{home}',
            '{"prio": 2}', '[5,10)', NULL),
        (3, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'write, "quoted" report', false, '{}',
            NULL, NULL, '2026-03-01'),
        (4, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'buy bread', true, '{shop,food}',
            '{"prio": 3}', '[20,30)', '2026-02-01'),
        (5, '0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'the cats and the dogs', false, '{fun}',
            '{"prio": 1}', NULL, NULL),
        (6, 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b', 'bob secret', false, '{}', NULL, NULL, NULL),
        (7, 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b', 'bob other', true, '{}', NULL, NULL, NULL);

    CREATE VIEW open_todos WITH (security_invoker = true) AS
        SELECT id, title FROM todos WHERE NOT done;
    GRANT SELECT ON open_todos TO anon, authenticated;

    CREATE TABLE notes (id integer PRIMARY KEY, todo_id bigint REFERENCES todos, body text);
    GRANT SELECT ON notes TO anon, authenticated;
    INSERT INTO notes VALUES (1, 1, 'n1'), (2, 1, 'n2'), (3, 2, 'n3'), (4, 6, 'bob note');

    CREATE TABLE labels (id integer PRIMARY KEY, name text NOT NULL);
    CREATE TABLE todo_labels (
        todo_id bigint REFERENCES todos,
        label_id integer REFERENCES labels,
        PRIMARY KEY (todo_id, label_id)
    );
    GRANT SELECT ON labels, todo_labels TO anon, authenticated;
    INSERT INTO labels VALUES (1, 'urgent'), (2, 'errand'), (3, 'unused');
    INSERT INTO todo_labels VALUES (1, 1), (1, 2), (4, 2);

    -- Views embed like the table they show when they show its key columns under the same names.
    CREATE VIEW my_todos WITH (security_invoker = true) AS SELECT id, owner, title FROM todos;
    CREATE VIEW renamed_todos WITH (security_invoker = true) AS SELECT id AS todo, title FROM todos;
    GRANT SELECT ON my_todos, renamed_todos TO anon, authenticated;

    -- Statistics say 1000 rows, 500 remain: planned counts differ from exact ones.
    CREATE TABLE readings (id integer PRIMARY KEY, value float8) WITH (autovacuum_enabled = false);
    GRANT SELECT ON readings TO anon, authenticated;
    INSERT INTO readings SELECT g, g / 10.0 FROM generate_series(1, 1000) g;
    ANALYZE readings;
    DELETE FROM readings WHERE id > 500;

    CREATE SCHEMA api;
    GRANT USAGE ON SCHEMA api TO anon, authenticated;
    CREATE TABLE api.things (id integer PRIMARY KEY, name text);
    GRANT SELECT ON api.things TO anon, authenticated;
    INSERT INTO api.things VALUES (1, 'api thing');
"#;

const SECRET: &str = "sluice-rest-read-test-secret-0123456789";

struct Fixture {
    t: TestApp,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_max_rows(None)
    }

    fn with_max_rows(max_rows: Option<u64>) -> Fixture {
        let mut options = AppOptions::new(&[SCHEMA], SECRET);
        options.schemas = &["public", "api"];
        options.max_rows = max_rows;
        Fixture {
            t: TestApp::start(options),
        }
    }

    fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.t.send(method, path, headers, "")
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

    /// `GET path` as alice, expecting 200, returning the ids of the rows.
    fn ids(&self, path: &str) -> Vec<i64> {
        let reply = self.get(path);
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        reply.ids()
    }
}

#[test]
fn rls_shows_each_user_only_their_rows() {
    let f = Fixture::new();
    assert_eq!(f.ids("/rest/v1/todos?select=id&order=id"), [1, 2, 3, 4, 5]);

    let bob = f.get_as(&token(Some(BOB), SECRET), "/rest/v1/todos?order=id", &[]);
    assert_eq!(bob.status, StatusCode::OK);
    assert_eq!(bob.ids(), [6, 7]);
    assert_eq!(bob.json()[0]["title"], "bob secret");
    assert_eq!(
        bob.header("content-type"),
        "application/json; charset=utf-8"
    );

    let anon = f.request(Method::GET, "/rest/v1/todos", &[]);
    assert_eq!(anon.status, StatusCode::OK);
    assert_eq!(anon.json(), json!([]));
    assert_eq!(anon.header("content-range"), "*/*");

    let forged = f.get_as(
        &token(Some(BOB), "another-secret-that-is-long-enough-0123"),
        "/rest/v1/todos",
        &[],
    );
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.json()["code"], "PGRST301");
}

#[test]
fn filters_of_every_family() {
    let f = Fixture::new();
    let cases: &[(&str, &[i64])] = &[
        ("id=eq.2", &[2]),
        ("id=neq.2", &[1, 3, 4, 5]),
        ("id=gt.3", &[4, 5]),
        ("id=gte.3&id=lte.4", &[3, 4]),
        ("id=lt.2", &[1]),
        ("title=like.buy*", &[1, 4]),
        ("title=ilike.*WALK*", &[2]),
        ("title=match.^b.y", &[1, 4]),
        ("title=imatch.DOGS?$", &[2, 5]),
        ("id=in.(1,3,99)", &[1, 3]),
        ("id=not.in.(1,3)", &[2, 4, 5]),
        ("meta=is.null", &[3]),
        ("due=not.is.null", &[1, 3, 4]),
        ("done=is.true", &[2, 4]),
        ("due=isdistinct.2026-01-01", &[2, 3, 4, 5]),
        ("title=fts.cat", &[5]),
        ("title=fts(english).cat%20%26%20dog", &[5]),
        ("title=plfts.the%20cats", &[5]),
        ("title=phfts(english).walk%20the%20dog", &[2]),
        ("title=wfts.buy%20-milk", &[4]),
        ("tags=cs.{shop}", &[1, 4]),
        ("tags=cd.{shop,food,home}", &[1, 2, 3, 4]),
        ("tags=ov.{home,fun}", &[2, 5]),
        ("slot=sl.[10,20)", &[1, 2]),
        ("slot=sr.[2,3)", &[2, 4]),
        ("slot=nxr.[1,6)", &[1]),
        ("slot=nxl.[5,50)", &[2, 4]),
        ("slot=adj.[10,20)", &[2, 4]),
        ("meta->>prio=eq.1", &[1, 5]),
        ("meta->prio=gt.1", &[2, 4]),
        ("meta->labels->>0=eq.a", &[1]),
        ("meta=cs.{\"prio\":2}", &[2]),
        ("id=eq(any).{1,5}", &[1, 5]),
        ("title=like(all).{*b*,*y*}", &[1, 4]),
        ("title=not.like.buy*", &[2, 3, 5]),
    ];
    for (filter, expected) in cases {
        let path = format!("/rest/v1/todos?select=id&order=id&{filter}");
        assert_eq!(f.ids(&path), *expected, "{filter}");
    }
}

#[test]
fn or_and_trees() {
    let f = Fixture::new();
    assert_eq!(
        f.ids("/rest/v1/todos?order=id&or=(id.eq.1,id.eq.5)"),
        [1, 5]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=id&or=(done.is.true,and(id.lt.3,title.like.*milk*))"),
        [1, 2, 4]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=id&not.or=(done.is.true,id.eq.1)"),
        [3, 5]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=id&and=(id.gt.1,or(title.ilike.*DOG*,id.not.lt.5))"),
        [2, 5]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=id&done=is.false&or=(id.eq.1,id.eq.2)"),
        [1]
    );
}

#[test]
fn select_order_and_pages() {
    let f = Fixture::new();
    let reply = f.get("/rest/v1/todos?select=id,label:title,prio:meta->>prio,labels:meta->labels,idtext:id::text&id=eq.1");
    assert_eq!(
        reply.json(),
        json!([{"id": 1, "label": "buy milk", "prio": "1", "labels": ["a", "b"], "idtext": "1"}])
    );
    // Columns keep their order.
    assert!(
        reply.body.find("\"label\"") < reply.body.find("\"prio\""),
        "{}",
        reply.body
    );

    assert_eq!(
        f.ids("/rest/v1/todos?order=done.desc,id.desc"),
        [4, 2, 5, 3, 1]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=due.asc.nullsfirst,id"),
        [2, 5, 1, 4, 3]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=due.desc.nullslast,id"),
        [3, 4, 1, 2, 5]
    );
    assert_eq!(
        f.ids("/rest/v1/todos?order=meta->prio.desc.nullslast,id"),
        [4, 2, 1, 5, 3]
    );
    assert_eq!(f.ids("/rest/v1/todos?order=id&limit=2&offset=1"), [2, 3]);

    // Views are served like tables; names that need quoting are quoted.
    assert_eq!(f.ids("/rest/v1/open_todos?order=id"), [1, 3, 5]);
    let odd = f.get(r#"/rest/v1/todos?select=id,"odd \"col\", x"&"odd \"col\", x"=eq.odd&id=eq.1"#);
    assert_eq!(odd.status, StatusCode::OK, "{}", odd.body);
    assert_eq!(odd.json(), json!([{"id": 1, "odd \"col\", x": "odd"}]));

    let empty = f.get("/rest/v1/todos?select=");
    assert_eq!(empty.json(), json!([{}, {}, {}, {}, {}]));
}

#[test]
fn range_and_exact_counts() {
    let f = Fixture::new();
    let reply = f.get("/rest/v1/todos?order=id&limit=2");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-range"), "0-1/*");

    let counted = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?order=id",
        &[("range", "1-2"), ("prefer", "count=exact")],
    );
    assert_eq!(counted.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(counted.header("content-range"), "1-2/5");
    assert_eq!(counted.header("preference-applied"), "count=exact");
    assert_eq!(counted.ids(), [2, 3]);

    let all = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?done=is.true",
        &[("prefer", "count=exact")],
    );
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.header("content-range"), "0-1/2");

    let none = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?id=gt.100",
        &[("prefer", "count=exact")],
    );
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.header("content-range"), "*/0");
    assert_eq!(none.json(), json!([]));

    let beyond = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?offset=9",
        &[("prefer", "count=exact")],
    );
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.header("content-range"), "*/5");
    assert_eq!(beyond.json()["code"], "PGRST103");
}

#[test]
fn max_rows_caps_every_response() {
    let f = Fixture::with_max_rows(Some(2));
    let reply = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?order=id",
        &[("prefer", "count=exact")],
    );
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.ids(), [1, 2]);
    assert_eq!(reply.header("content-range"), "0-1/5");
    assert_eq!(f.ids("/rest/v1/todos?order=id&limit=1"), [1]);
}

#[test]
fn csv_quotes_what_needs_quoting() {
    let f = Fixture::new();
    let reply = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?select=id,title,due&id=in.(1,2,3)&order=id",
        &[("accept", "text/csv")],
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        reply.body,
        "id,title,due\n1,\"buy milk\",2026-01-01\n2,\"Walk the dog\",\n3,\"write, \"\"quoted\"\" report\",2026-03-01"
    );
    let empty = f.get_as(
        &token(Some(ALICE), SECRET),
        "/rest/v1/todos?id=eq.99",
        &[("accept", "text/csv")],
    );
    // PostgREST's CSV always has the line break after the (here empty) header.
    assert_eq!(empty.body, "\n");
}

#[test]
fn single_object_is_one_row_or_406() {
    let f = Fixture::new();
    let object = [("accept", "application/vnd.pgrst.object+json")];
    let alice = token(Some(ALICE), SECRET);
    let one = f.get_as(&alice, "/rest/v1/todos?select=id,title&id=eq.1", &object);
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json(), json!({"id": 1, "title": "buy milk"}));
    assert_eq!(
        one.header("content-type"),
        "application/vnd.pgrst.object+json; charset=utf-8"
    );

    let many = f.get_as(&alice, "/rest/v1/todos?select=id", &object);
    assert_eq!(many.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(many.json()["code"], "PGRST116");
    assert_eq!(many.json()["details"], "The result contains 5 rows");
    let none = f.get_as(&alice, "/rest/v1/todos?id=eq.6", &object);
    assert_eq!(none.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(none.json()["details"], "The result contains 0 rows");
}

#[test]
fn head_answers_headers_without_a_body() {
    let f = Fixture::new();
    let bearer = format!("Bearer {}", token(Some(ALICE), SECRET));
    let reply = f.request(
        Method::HEAD,
        "/rest/v1/todos?limit=2",
        &[("authorization", &bearer), ("prefer", "count=exact")],
    );
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.header("content-range"), "0-1/5");
    assert_eq!(
        reply.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(reply.body, "");
}

#[test]
fn bad_requests_are_clear_json_errors() {
    let f = Fixture::new();
    let unknown_table = f.get("/rest/v1/nope");
    assert_eq!(unknown_table.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_table.json()["code"], "PGRST205");
    assert_eq!(
        unknown_table.json()["message"],
        "Could not find the table 'public.nope' in the schema cache"
    );

    for path in [
        "/rest/v1/todos?select=nope",
        "/rest/v1/todos?nope=eq.1",
        "/rest/v1/todos?order=nope",
    ] {
        let reply = f.get(path);
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.json()["code"], "42703", "{path}");
    }

    let malformed = f.get("/rest/v1/todos?id=eqq.1");
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["code"], "PGRST100");
    let unbalanced = f.get("/rest/v1/todos?or=(id.eq.1");
    assert_eq!(unbalanced.status, StatusCode::BAD_REQUEST);

    for path in [
        "/rest/v1/todos?id=eq.abc",
        "/rest/v1/todos?id=in.(1,x)",
        "/rest/v1/todos?due=gt.notadate",
        "/rest/v1/todos?title=fts(nolang).x",
    ] {
        let reply = f.get(path);
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        let body = reply.json();
        assert!(
            body["code"].as_str().unwrap().starts_with("22") || body["code"] == "42704",
            "{path}: {body}"
        );
        assert!(body["message"].is_string());
    }

    let cast = f.get("/rest/v1/todos?select=id::text);--");
    assert_eq!(cast.status, StatusCode::BAD_REQUEST, "{}", cast.body);

    let related_order = f.get("/rest/v1/todos?select=*,notes(*)&order=notes(id)");
    assert_eq!(related_order.status, StatusCode::BAD_REQUEST);
    assert_eq!(related_order.json()["code"], "PGRST118");
}

#[test]
fn embedding_follows_foreign_keys_in_every_direction() {
    let f = Fixture::new();
    let get_json = |path: &str| {
        let reply = f.get(path);
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        reply.json()
    };
    // Many-to-one, with a hint because `reviewer` also references people.
    assert_eq!(
        get_json("/rest/v1/todos?select=id,author:people!owner(name)&id=eq.1"),
        json!([{"id": 1, "author": {"name": "alice"}}])
    );
    assert_eq!(
        get_json("/rest/v1/todos?select=id,people!reviewer(name)&id=eq.1"),
        json!([{"id": 1, "people": null}])
    );
    // One-to-many, with embedded order, filter and limit.
    assert_eq!(
        get_json(
            "/rest/v1/todos?select=id,notes(id,body)&id=in.(1,2,3)&order=id&notes.order=id.desc"
        ),
        json!([
            {"id": 1, "notes": [{"id": 2, "body": "n2"}, {"id": 1, "body": "n1"}]},
            {"id": 2, "notes": [{"id": 3, "body": "n3"}]},
            {"id": 3, "notes": []},
        ])
    );
    assert_eq!(
        get_json("/rest/v1/todos?select=id,notes(id)&id=eq.1&notes.limit=1&notes.order=id"),
        json!([{"id": 1, "notes": [{"id": 1}]}])
    );
    assert_eq!(
        get_json("/rest/v1/todos?select=id,notes(id)&id=in.(1,2)&order=id&notes.id=eq.3"),
        json!([{"id": 1, "notes": []}, {"id": 2, "notes": [{"id": 3}]}])
    );
    // !inner drops parents without a matching child.
    assert_eq!(
        get_json("/rest/v1/todos?select=id,notes!inner(id)&notes.body=eq.n3"),
        json!([{"id": 2, "notes": [{"id": 3}]}])
    );
    // Many-to-many through the junction table, nested.
    assert_eq!(
        get_json("/rest/v1/todos?select=id,labels(name)&id=in.(1,2)&order=id&labels.order=name"),
        json!([
            {"id": 1, "labels": [{"name": "errand"}, {"name": "urgent"}]},
            {"id": 2, "labels": []},
        ])
    );
    assert_eq!(
        get_json("/rest/v1/labels?select=name,todos(id,people!owner(name))&id=eq.2&todos.order=id"),
        json!([{"name": "errand", "todos": [
            {"id": 1, "people": {"name": "alice"}},
            {"id": 4, "people": {"name": "alice"}},
        ]}])
    );
    // Ordering by a column of a to-one embedding.
    assert_eq!(
        get_json("/rest/v1/notes?select=id,todos(title)&id=in.(1,3)&order=todos(done).desc"),
        json!([{"id": 3, "todos": {"title": "Walk the dog"}}, {"id": 1, "todos": {"title": "buy milk"}}])
    );
    assert_eq!(
        get_json("/rest/v1/notes?select=id,t:todos(id)&id=in.(1,3)&order=t(id).desc"),
        json!([{"id": 3, "t": {"id": 2}}, {"id": 1, "t": {"id": 1}}])
    );
    // RLS applies inside embeddings too: bob's todo is not alice's to see.
    assert_eq!(
        get_json("/rest/v1/notes?select=id,todos(title)&order=id&id=in.(1,4)"),
        json!([{"id": 1, "todos": {"title": "buy milk"}}, {"id": 4, "todos": null}])
    );

    let ambiguous = f.get("/rest/v1/todos?select=*,people(*)");
    assert_eq!(ambiguous.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(ambiguous.json()["code"], "PGRST201");
    let missing = f.get("/rest/v1/todos?select=*,things(*)");
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["code"], "PGRST200");
    let unselected = f.get("/rest/v1/todos?notes.id=eq.1");
    assert_eq!(unselected.status, StatusCode::BAD_REQUEST);
    assert_eq!(unselected.json()["code"], "PGRST108");
}

#[test]
fn accept_profile_chooses_an_exposed_schema_and_refuses_others() {
    let f = Fixture::new();
    let alice = token(Some(ALICE), SECRET);
    let api = f.get_as(&alice, "/rest/v1/things", &[("accept-profile", "api")]);
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    assert_eq!(api.json(), json!([{"id": 1, "name": "api thing"}]));
    assert_eq!(api.header("content-profile"), "api");

    let wrong_schema = f.get("/rest/v1/things");
    assert_eq!(wrong_schema.status, StatusCode::NOT_FOUND);

    for schema in [
        "auth",
        "sluice",
        "pg_catalog",
        "information_schema",
        "storage",
    ] {
        let reply = f.get_as(&alice, "/rest/v1/users", &[("accept-profile", schema)]);
        assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{schema}");
        assert_eq!(reply.json()["code"], "PGRST106");
        assert_eq!(
            reply.json()["message"],
            "The schema must be one of the following: public, api"
        );
    }
}

#[test]
fn the_openapi_document_follows_accept_profile() {
    let f = Fixture::new();
    let public = f.request(Method::GET, "/rest/v1/", &[]);
    assert_eq!(public.status, StatusCode::OK);
    let doc = public.json();
    assert!(doc["paths"]["/todos"].is_object(), "{doc}");
    let api = f.request(Method::GET, "/rest/v1/", &[("accept-profile", "api")]);
    assert!(api.json()["paths"]["/things"].is_object());
    let refused = f.request(Method::GET, "/rest/v1/", &[("accept-profile", "auth")]);
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(refused.json()["code"], "PGRST106");
}

#[test]
fn the_real_binary_serves_the_exposed_schemas() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db.execute(SCHEMA);
    db.execute("CREATE TABLE api.open (id integer); GRANT SELECT ON api.open TO anon; INSERT INTO api.open SELECT generate_series(1, 5);");
    let mut command = support::sidecar::serve_command(&db.url());
    command
        .env("SLUICE_DB_SCHEMAS", "api,public")
        .env("SLUICE_MAX_ROWS", "3");
    let mut sidecar = support::sidecar::Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));

    let doc = sidecar.get("/rest/v1/").unwrap();
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/open"].is_object(), "{}", doc.body);
    let rows = sidecar
        .get("/rest/v1/open?select=id&order=id.desc")
        .unwrap();
    assert_eq!(rows.status, 200);
    assert_eq!(rows.body, json!([{"id": 5}, {"id": 4}, {"id": 3}]));
    let todos = sidecar.get("/rest/v1/todos").unwrap();
    assert_eq!(todos.status, 404, "public is not the default schema here");

    let mut refused = support::sidecar::serve_command(&db.url());
    refused.env("SLUICE_DB_SCHEMAS", "public,auth");
    let (status, log) = support::sidecar::run(refused, Duration::from_secs(30));
    assert!(!status.success());
    assert!(log.contains("SLUICE_DB_SCHEMAS"), "{log}");
}

/// The total of `Content-Range` for `Prefer: count=…` on `path`.
fn total(f: &Fixture, path: &str, count: &str) -> i64 {
    let reply = f.get_as(&token(Some(ALICE), SECRET), path, &[("prefer", count)]);
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.body
    );
    // What was applied: as asked, except estimated without --max-rows, which is exact.
    let applied = reply.header("preference-applied");
    assert!(
        applied == count || applied == "count=exact",
        "{applied} for {count}"
    );
    let range = reply.header("content-range");
    range
        .rsplit_once('/')
        .unwrap()
        .1
        .parse()
        .unwrap_or_else(|_| panic!("{range}"))
}

#[test]
fn planned_counts_come_from_the_planner_and_estimated_ones_switch_at_max_rows() {
    let f = Fixture::new();
    assert_eq!(total(&f, "/rest/v1/readings?limit=1", "count=exact"), 500);
    // The statistics still say 1000 rows: only the planner can have answered this.
    let planned = total(&f, "/rest/v1/readings?limit=1", "count=planned");
    assert!((900..=1100).contains(&planned), "{planned}");
    // Filters (bound parameters, an `in` list among them) are part of the estimate.
    let filtered = total(
        &f,
        "/rest/v1/readings?id=in.(1,2,3)&limit=1",
        "count=planned",
    );
    assert!((1..=10).contains(&filtered), "{filtered}");
    // Without --max-rows, estimated is exact.
    assert_eq!(
        total(&f, "/rest/v1/readings?limit=1", "count=estimated"),
        500
    );

    let capped = Fixture::with_max_rows(Some(10));
    // More rows than max-rows: the estimate; at most max-rows: exact.
    let estimated = total(&capped, "/rest/v1/readings", "count=estimated");
    assert!((900..=1100).contains(&estimated), "{estimated}");
    assert_eq!(
        total(&capped, "/rest/v1/readings?id=lte.5", "count=estimated"),
        5
    );
    assert_eq!(total(&capped, "/rest/v1/readings", "count=exact"), 500);
}

#[test]
fn views_embed_through_the_keys_of_the_table_they_show() {
    let f = Fixture::new();
    let to_one = f.get("/rest/v1/my_todos?select=title,people(name)&id=eq.1");
    assert_eq!(to_one.status, StatusCode::OK, "{}", to_one.body);
    assert_eq!(
        to_one.json(),
        json!([{"title": "buy milk", "people": {"name": "alice"}}])
    );
    let to_many = f.get("/rest/v1/my_todos?select=id,notes(body)&id=eq.1&notes.order=id");
    assert_eq!(to_many.status, StatusCode::OK, "{}", to_many.body);
    assert_eq!(
        to_many.json(),
        json!([{"id": 1, "notes": [{"body": "n1"}, {"body": "n2"}]}])
    );
    let into_view = f.get("/rest/v1/notes?select=body,my_todos(title)&id=eq.1");
    assert_eq!(into_view.status, StatusCode::OK, "{}", into_view.body);
    assert_eq!(
        into_view.json(),
        json!([{"body": "n1", "my_todos": {"title": "buy milk"}}])
    );
    // RLS still applies through the view (security_invoker): bob's todo is not alice's to see.
    let hidden = f.get("/rest/v1/notes?select=body,my_todos!inner(title)&id=eq.4");
    assert_eq!(hidden.json(), json!([]));
    // A key column renamed by the view is not traced: no relationship.
    let renamed = f.get("/rest/v1/renamed_todos?select=todo,notes(body)");
    assert_eq!(renamed.status, StatusCode::BAD_REQUEST, "{}", renamed.body);
    assert_eq!(renamed.json()["code"], "PGRST200");
}
