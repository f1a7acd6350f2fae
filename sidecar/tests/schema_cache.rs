//! The schema cache against real Postgres: what it loads from the catalogs, how it follows DDL (the
//! extension's event trigger and PostgREST's `pgrst` channel), reconnection, and the OpenAPI
//! document built from it.
//!
//! Postgres comes from `SLUICE_TEST_DATABASE_URL` or a throwaway cluster (see `support::postgres`);
//! each test has a database of its own with the extension installed.

mod support;

use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_sidecar::db::listen::{self, Listener};
use sluice_sidecar::db::pool;
use sluice_sidecar::schema::{
    self, openapi, Cardinality, ExposedSchemas, ExposedSchemasError, FunctionLookupError, Identity,
    QualifiedName, RelationKind, ReturnKind, SchemaCache, SchemaError, SchemaHandle, Volatility,
};
use support::postgres::{Server, TestDb};
use tokio_postgres::NoTls;

/// Enum, domain, identity/serial/generated columns, arrays, comments; FKs of every kind; views and
/// a materialized view; functions of every return shape.
const FIXTURE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');

CREATE TABLE authors (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email email,
    mood mood NOT NULL DEFAULT 'ok',
    tags text[] NOT NULL DEFAULT '{}',
    moods mood[],
    nick varchar(20),
    created_at timestamptz NOT NULL DEFAULT now(),
    name_upper text GENERATED ALWAYS AS (upper(name)) STORED
);
COMMENT ON TABLE authors IS 'People who write';
COMMENT ON COLUMN authors.name IS 'Full name';

CREATE SCHEMA private;
CREATE TABLE private.secrets (id int PRIMARY KEY);

CREATE TABLE books (
    id serial PRIMARY KEY,
    title text NOT NULL,
    author_id bigint NOT NULL REFERENCES authors (id),
    editor_id bigint REFERENCES authors (id),
    secret_id int REFERENCES private.secrets (id),
    data jsonb,
    price numeric(10, 2) DEFAULT 0,
    published boolean NOT NULL DEFAULT false
);

CREATE TABLE tags (id int PRIMARY KEY, label text NOT NULL UNIQUE);
CREATE TABLE book_tags (
    book_id int REFERENCES books (id),
    tag_id int REFERENCES tags (id),
    PRIMARY KEY (book_id, tag_id)
);
CREATE TABLE author_profiles (author_id bigint PRIMARY KEY REFERENCES authors (id), bio text);

CREATE VIEW book_titles AS SELECT id, title FROM books;
CREATE VIEW author_counts AS SELECT author_id, count(*) AS n FROM books GROUP BY author_id;
CREATE MATERIALIZED VIEW tag_labels AS SELECT label FROM tags;

CREATE FUNCTION add_them(a integer, b integer DEFAULT 1) RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION add_them(a text, b text) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT a || b';
CREATE FUNCTION books_by(author bigint) RETURNS SETOF books
    LANGUAGE sql STABLE AS 'SELECT * FROM books WHERE author_id = author';
CREATE FUNCTION stats(OUT total bigint, OUT latest timestamptz)
    LANGUAGE sql STABLE AS 'SELECT count(*), max(created_at) FROM authors';
CREATE FUNCTION top_titles(n int) RETURNS TABLE (title text, author text)
    LANGUAGE sql STABLE
    AS 'SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id LIMIT n';
CREATE FUNCTION bump() RETURNS void LANGUAGE sql VOLATILE AS 'SELECT 1';
CREATE FUNCTION total(VARIADIC nums int[]) RETURNS int
    LANGUAGE sql IMMUTABLE AS 'SELECT sum(x)::int FROM unnest(nums) AS x';
CREATE FUNCTION echo(json) RETURNS json LANGUAGE sql IMMUTABLE AS 'SELECT $1';
COMMENT ON FUNCTION echo(json) IS 'Returns its body';
CREATE FUNCTION a_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE PROCEDURE a_procedure() LANGUAGE sql AS 'SELECT 1';
"#;

fn database_with_fixture() -> TestDb {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db.execute(FIXTURE);
    db
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

fn database_config(db: &TestDb) -> tokio_postgres::Config {
    db.url().parse().expect("a valid test URL")
}

/// The schema cache as `sluice serve` starts it: on a pool, told of changes by the one LISTEN
/// connection.
async fn start_cache(db: &TestDb, exposed: ExposedSchemas) -> Result<SchemaHandle, SchemaError> {
    let config = database_config(db);
    let pool = pool::build(&config, 2).expect("a pool");
    schema::start(pool, &Listener::start(&config), exposed).await
}

async fn connect(db: &TestDb) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url(), NoTls)
        .await
        .expect("connecting to the test database");
    tokio::spawn(connection);
    client
}

/// Polls the handle until `accept` holds, for at most `limit`; returns how long it took.
async fn wait_for(
    handle: &SchemaHandle,
    limit: Duration,
    what: &str,
    accept: impl Fn(&SchemaCache) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        if accept(&handle.current()) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the schema cache did not show {what} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn has_column(table: &'static str, column: &'static str) -> impl Fn(&SchemaCache) -> bool {
    move |cache| cache.column("public", table, column).is_some()
}

#[test]
fn the_model_describes_tables_columns_keys_views_and_functions() {
    let db = database_with_fixture();
    let handle =
        block_on(start_cache(&db, ExposedSchemas::default())).expect("the schema cache starts");
    let cache = handle.current();

    // Relations, by kind; only the exposed schema's.
    let kinds: Vec<(&str, RelationKind)> =
        cache.tables().map(|t| (t.name.as_str(), t.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("author_counts", RelationKind::View),
            ("author_profiles", RelationKind::Table),
            ("authors", RelationKind::Table),
            ("book_tags", RelationKind::Table),
            ("book_titles", RelationKind::View),
            ("books", RelationKind::Table),
            ("tag_labels", RelationKind::MaterializedView),
            ("tags", RelationKind::Table),
        ]
    );
    let view = cache.table("public", "book_titles").unwrap();
    assert!(
        view.insertable && view.updatable && view.deletable,
        "{view:#?}"
    );
    let grouped = cache.table("public", "author_counts").unwrap();
    assert!(!grouped.insertable && !grouped.updatable && !grouped.deletable);
    let matview = cache.table("public", "tag_labels").unwrap();
    assert!(!matview.insertable && !matview.updatable);

    // Columns.
    let authors = cache.table("public", "authors").unwrap();
    assert_eq!(authors.description.as_deref(), Some("People who write"));
    assert_eq!(authors.primary_key, ["id"]);
    let names: Vec<&str> = authors.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "name",
            "email",
            "mood",
            "tags",
            "moods",
            "nick",
            "created_at",
            "name_upper"
        ]
    );
    let id = authors.column("id").unwrap();
    assert_eq!(
        (id.type_name.as_str(), id.type_oid, id.position),
        ("bigint", 20, 1)
    );
    assert_eq!(id.identity, Some(Identity::Always));
    assert!(!id.nullable && id.has_default() && !id.is_writable() && id.default.is_none());
    let name = authors.column("name").unwrap();
    assert_eq!(name.description.as_deref(), Some("Full name"));
    assert!(!name.nullable && !name.has_default());
    let email = authors.column("email").unwrap();
    assert_eq!(email.type_name, "public.email");
    assert_eq!(
        (email.base_type.as_str(), email.base_type_oid),
        ("text", 25)
    );
    assert!(email.nullable);
    let mood = authors.column("mood").unwrap();
    assert_eq!(mood.type_name, "public.mood");
    assert_eq!(mood.enum_values, ["sad", "ok", "happy"]);
    assert_eq!(mood.default.as_deref(), Some("'ok'::public.mood"));
    let tags = authors.column("tags").unwrap();
    assert_eq!(tags.type_name, "text[]");
    assert_eq!(tags.element_type.as_deref(), Some("text"));
    assert_eq!(tags.element_type_oid, Some(25));
    assert_eq!(tags.default.as_deref(), Some("'{}'::text[]"));
    let moods = authors.column("moods").unwrap();
    assert_eq!(moods.type_name, "public.mood[]");
    assert_eq!(moods.element_type.as_deref(), Some("public.mood"));
    assert_eq!(moods.enum_values, ["sad", "ok", "happy"]);
    let nick = authors.column("nick").unwrap();
    assert_eq!(nick.type_name, "character varying(20)");
    assert_eq!(nick.base_type, "character varying");
    assert_eq!(nick.max_length, Some(20));
    let created = authors.column("created_at").unwrap();
    assert_eq!(created.type_name, "timestamp with time zone");
    assert_eq!(created.default.as_deref(), Some("now()"));
    let upper = authors.column("name_upper").unwrap();
    assert!(upper.generated && upper.default.is_none() && !upper.is_writable());

    let books = cache.table("public", "books").unwrap();
    let serial = books.column("id").unwrap();
    assert_eq!(
        serial.default.as_deref(),
        Some("nextval('public.books_id_seq'::regclass)")
    );
    assert_eq!(books.column("price").unwrap().type_name, "numeric(10,2)");
    assert_eq!(
        cache.table("public", "tags").unwrap().unique_keys,
        [["label"]]
    );
    assert_eq!(cache.column("public", "books", "nope"), None);

    // Foreign keys and relationships in both directions.
    let fk_names: Vec<&str> = books
        .foreign_keys
        .iter()
        .map(|fk| fk.constraint.as_str())
        .collect();
    assert_eq!(
        fk_names,
        [
            "books_author_id_fkey",
            "books_editor_id_fkey",
            "books_secret_id_fkey"
        ]
    );
    let secret = &books.foreign_keys[2];
    assert_eq!(
        secret.referenced_table,
        QualifiedName::new("private", "secrets")
    );
    assert!(
        cache
            .relationships_from("public", "books")
            .iter()
            .all(|rel| rel.foreign_table.schema == "public"),
        "a key into an unexposed schema gives no relationship"
    );

    // Two keys to authors: ambiguous until hinted, by constraint or column.
    assert_eq!(
        cache
            .relationships("public", "books", "authors", None)
            .len(),
        2
    );
    let author = cache.relationships("public", "books", "authors", Some("books_author_id_fkey"));
    assert_eq!(author.len(), 1);
    assert_eq!(
        author[0].cardinality,
        Cardinality::ManyToOne {
            constraint: "books_author_id_fkey".into(),
            columns: vec![("author_id".into(), "id".into())],
        }
    );
    let edited = cache.relationships("public", "authors", "books", Some("editor_id"));
    assert_eq!(edited.len(), 1);
    assert!(matches!(
        &edited[0].cardinality,
        Cardinality::OneToMany { constraint, columns }
            if constraint == "books_editor_id_fkey" && columns == &[("id".to_owned(), "editor_id".to_owned())]
    ));
    let by_column = cache.relationships("public", "books", "editor_id", None);
    assert_eq!(by_column.len(), 1);
    assert_eq!(by_column[0].foreign_table.name, "authors");

    // Many-to-many through the junction, both ways.
    let m2m = cache.relationships("public", "books", "tags", None);
    assert_eq!(m2m.len(), 1, "{m2m:#?}");
    let Cardinality::ManyToMany(junction) = &m2m[0].cardinality else {
        panic!("{m2m:#?}")
    };
    assert_eq!(junction.table, QualifiedName::new("public", "book_tags"));
    assert_eq!(junction.constraint, "book_tags_book_id_fkey");
    assert_eq!(junction.foreign_constraint, "book_tags_tag_id_fkey");
    assert_eq!(junction.columns, [("id".to_owned(), "book_id".to_owned())]);
    assert_eq!(
        junction.foreign_columns,
        [("id".to_owned(), "tag_id".to_owned())]
    );
    assert_eq!(
        cache.relationships("public", "tags", "books", None).len(),
        1
    );

    // One-to-one: the key is also the primary key.
    let profile = cache.relationships("public", "authors", "author_profiles", None);
    assert!(matches!(
        profile[0].cardinality,
        Cardinality::OneToOne {
            fk_on_table: false,
            ..
        }
    ));

    // Functions: overloads, return shapes, volatility; triggers and procedures left out.
    let overloads = cache.function_overloads("public", "add_them");
    assert_eq!(overloads.len(), 2);
    let add = cache.function("public", "add_them", &["a"]).unwrap();
    assert_eq!(add.args[0].type_name, "integer");
    assert!(!add.args[0].has_default && add.args[1].has_default);
    assert_eq!(add.returns, ReturnKind::Scalar);
    assert_eq!(add.volatility, Volatility::Immutable);
    assert!(matches!(
        cache.function("public", "add_them", &["a", "b"]),
        Err(FunctionLookupError::Ambiguous { count: 2, .. })
    ));
    assert!(matches!(
        cache.function("public", "add_them", &["c"]),
        Err(FunctionLookupError::NotFound { .. })
    ));

    let books_by = cache.function("public", "books_by", &["author"]).unwrap();
    assert!(books_by.returns_set);
    assert_eq!(books_by.return_type, "public.books");
    assert_eq!(
        books_by.returned_relation(),
        Some(&QualifiedName::new("public", "books"))
    );
    assert_eq!(books_by.volatility, Volatility::Stable);

    let stats = cache.function("public", "stats", &[] as &[&str]).unwrap();
    assert!(!stats.returns_set && stats.args.is_empty());
    assert_eq!(stats.returns, ReturnKind::OutArgs);
    let outs: Vec<(&str, &str)> = stats
        .out_args
        .iter()
        .map(|a| (a.name.as_deref().unwrap(), a.type_name.as_str()))
        .collect();
    assert_eq!(
        outs,
        [("total", "bigint"), ("latest", "timestamp with time zone")]
    );

    let top = cache.function("public", "top_titles", &["n"]).unwrap();
    assert!(top.returns_set);
    assert_eq!(top.returns, ReturnKind::OutArgs);
    assert_eq!(top.out_args.len(), 2);

    let bump = cache.function("public", "bump", &[] as &[&str]).unwrap();
    assert_eq!(
        (bump.returns.clone(), bump.volatility),
        (ReturnKind::Void, Volatility::Volatile)
    );

    let total = cache.function("public", "total", &["nums"]).unwrap();
    assert!(total.args[0].variadic);
    assert_eq!(total.args[0].type_name, "integer[]");

    // A single unnamed json argument takes the whole body, whatever its keys.
    let echo = cache.function("public", "echo", &["anything"]).unwrap();
    assert!(echo.takes_body_as_single_arg());
    assert_eq!(echo.description.as_deref(), Some("Returns its body"));

    assert!(cache.function_overloads("public", "a_trigger").is_empty());
    assert!(cache.function_overloads("public", "a_procedure").is_empty());
}

#[test]
fn internal_schemas_are_never_exposed() {
    for internal in [
        "auth",
        "sluice",
        "storage",
        "pg_catalog",
        "information_schema",
    ] {
        assert_eq!(
            ExposedSchemas::new(["public", internal]),
            Err(ExposedSchemasError::Internal(internal.to_owned()))
        );
    }

    let db = database_with_fixture();
    db.execute("CREATE SCHEMA api; CREATE TABLE api.items (id int PRIMARY KEY);");
    let exposed: ExposedSchemas = "api,public".parse().unwrap();
    let handle = block_on(start_cache(&db, exposed)).unwrap();
    let cache = handle.current();
    assert_eq!(cache.exposed_schemas(), ["api", "public"]);
    assert_eq!(cache.default_schema(), "api");
    assert!(cache.table("api", "items").is_some());
    // The extension's schemas exist in this database, but nothing of theirs is loaded.
    for internal in ["auth", "sluice", "storage", "private"] {
        assert!(cache.schema(internal).is_none(), "{internal} is exposed");
    }
    assert!(cache.table("auth", "users").is_none());
    assert!(cache
        .tables()
        .all(|t| t.schema == "api" || t.schema == "public"));
    assert!(cache
        .functions()
        .all(|f| f.schema == "api" || f.schema == "public"));
}

#[test]
fn ddl_reloads_the_cache_within_a_second() {
    let db = database_with_fixture();
    block_on(async {
        let handle = start_cache(&db, ExposedSchemas::default()).await.unwrap();
        let client = connect(&db).await;
        let before = handle.current();

        client
            .batch_execute("ALTER TABLE books ADD COLUMN isbn text")
            .await
            .unwrap();
        let took = wait_for(
            &handle,
            Duration::from_secs(1),
            "books.isbn",
            has_column("books", "isbn"),
        )
        .await;
        eprintln!("ALTER TABLE visible after {took:?}");
        // The snapshot taken before is unchanged: a request keeps the cache it started with.
        assert!(before.column("public", "books", "isbn").is_none());

        // A burst of DDL (one migration) is followed by a cache that has all of it.
        client
            .batch_execute(
                "CREATE TABLE reviews (id int PRIMARY KEY, book_id int REFERENCES books (id));
                 ALTER TABLE reviews ADD COLUMN stars int;
                 DROP VIEW author_counts;",
            )
            .await
            .unwrap();
        wait_for(&handle, Duration::from_secs(1), "the migration", |cache| {
            cache.column("public", "reviews", "stars").is_some()
                && cache.table("public", "author_counts").is_none()
                && cache
                    .relationships("public", "books", "reviews", None)
                    .len()
                    == 1
        })
        .await;
    });
}

#[test]
fn notify_pgrst_reload_schema_reloads_the_cache() {
    let db = database_with_fixture();
    // Without the extension's event triggers only the pgrst channel can tell the cache.
    db.execute(
        "ALTER EVENT TRIGGER sluice_ddl_command_end DISABLE;
         ALTER EVENT TRIGGER sluice_sql_drop DISABLE;",
    );
    block_on(async {
        let handle = start_cache(&db, ExposedSchemas::default()).await.unwrap();
        let client = connect(&db).await;
        let first = handle.current();

        client
            .batch_execute("ALTER TABLE books ADD COLUMN quiet text; NOTIFY pgrst, 'reload config'")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            Arc::ptr_eq(&first, &handle.current()),
            "neither DDL without the event trigger nor 'reload config' reloads"
        );

        client
            .batch_execute("NOTIFY pgrst, 'reload schema'")
            .await
            .unwrap();
        wait_for(
            &handle,
            Duration::from_secs(1),
            "books.quiet",
            has_column("books", "quiet"),
        )
        .await;

        client
            .batch_execute("ALTER TABLE books ADD COLUMN quieter text; NOTIFY pgrst")
            .await
            .unwrap();
        wait_for(
            &handle,
            Duration::from_secs(1),
            "books.quieter",
            has_column("books", "quieter"),
        )
        .await;
    });
}

#[test]
fn the_cache_reconnects_and_catches_up_after_losing_its_connection() {
    let db = database_with_fixture();
    block_on(async {
        let handle = start_cache(&db, ExposedSchemas::default()).await.unwrap();
        let client = connect(&db).await;
        let terminated = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = $1",
                &[&listen::APPLICATION_NAME],
            )
            .await
            .unwrap();
        assert_eq!(terminated.len(), 1, "one LISTEN session to end");
        // Made while the cache may still be disconnected: the notification can be lost, the
        // reload after reconnecting is not.
        client
            .batch_execute("ALTER TABLE books ADD COLUMN during_outage text")
            .await
            .unwrap();
        wait_for(
            &handle,
            Duration::from_secs(5),
            "books.during_outage",
            has_column("books", "during_outage"),
        )
        .await;

        // And the new connection listens again.
        client
            .batch_execute("ALTER TABLE books ADD COLUMN after_outage text")
            .await
            .unwrap();
        wait_for(
            &handle,
            Duration::from_secs(1),
            "books.after_outage",
            has_column("books", "after_outage"),
        )
        .await;
    });
}

#[test]
fn the_openapi_document_describes_paths_and_components() {
    let db = database_with_fixture();
    // Names OpenAPI cannot take as they are, and a column named like a reserved parameter.
    db.execute(r#"CREATE TABLE "odd name/{x}" ("select" int, "a b" text)"#);
    let handle = block_on(start_cache(&db, ExposedSchemas::default())).unwrap();
    let doc = openapi(&handle.current(), "http://127.0.0.1:54321/rest/v1");

    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:54321/rest/v1");
    let paths = doc["paths"].as_object().unwrap();
    let methods = |path: &str| -> Vec<&str> {
        let mut methods: Vec<&str> = paths[path]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        methods.sort_unstable();
        methods
    };
    assert_eq!(methods("/"), ["get"]);
    assert_eq!(methods("/books"), ["delete", "get", "patch", "post"]);
    assert_eq!(methods("/book_titles"), ["delete", "get", "patch", "post"]);
    assert_eq!(methods("/author_counts"), ["get"]);
    assert_eq!(methods("/tag_labels"), ["get"]);
    assert_eq!(methods("/rpc/add_them"), ["get", "post"]);
    assert_eq!(methods("/rpc/bump"), ["post"], "volatile: no GET");
    assert_eq!(methods("/rpc/echo"), ["post"], "takes the body: no GET");
    assert!(!paths.contains_key("/rpc/a_trigger"));
    let odd = &paths["/odd%20name%2F%7Bx%7D"]["get"];
    assert_eq!(
        odd["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/odd_name__x_"
    );
    assert_eq!(
        doc["components"]["parameters"]["rowFilter.odd_name__x_.a_b"]["name"],
        "a b"
    );
    assert!(doc["components"]["parameters"]
        .get("rowFilter.odd_name__x_.select")
        .is_none());

    // Row filters: one query parameter per column.
    let get_books = &paths["/books"]["get"];
    let params: Vec<&str> = get_books["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["$ref"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"#/components/parameters/rowFilter.books.title"),
        "{params:?}"
    );
    assert!(params.contains(&"#/components/parameters/select"));
    let filter = &doc["components"]["parameters"]["rowFilter.books.title"];
    assert_eq!(filter["name"], "title");
    assert_eq!(filter["in"], "query");
    assert_eq!(
        get_books["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/books"
    );

    // Component schemas with JSON types from Postgres types.
    let authors = &doc["components"]["schemas"]["authors"];
    assert_eq!(authors["description"], "People who write");
    assert_eq!(authors["required"], json!(["name"]));
    let prop = |name: &str| authors["properties"][name].clone();
    assert_eq!(prop("id")["type"], "integer");
    assert_eq!(prop("id")["format"], "int64");
    assert_eq!(prop("id")["readOnly"], true);
    assert!(prop("id")["description"]
        .as_str()
        .unwrap()
        .contains("<pk/>"));
    assert_eq!(prop("name")["type"], "string");
    assert_eq!(prop("name")["format"], "text");
    assert_eq!(prop("email")["nullable"], true);
    assert_eq!(prop("mood")["enum"], json!(["sad", "ok", "happy"]));
    assert_eq!(prop("mood")["default"], "ok");
    assert_eq!(prop("tags")["type"], "array");
    assert_eq!(prop("tags")["items"]["type"], "string");
    assert_eq!(
        prop("moods")["items"]["enum"],
        json!(["sad", "ok", "happy"])
    );
    assert_eq!(prop("nick")["maxLength"], 20);
    assert_eq!(prop("created_at")["format"], "date-time");

    let books = &doc["components"]["schemas"]["books"];
    assert_eq!(books["required"], json!(["title", "author_id"]));
    let author_id = &books["properties"]["author_id"];
    assert!(author_id["description"]
        .as_str()
        .unwrap()
        .contains("<fk table='authors' column='id'/>"));
    assert_eq!(
        books["properties"]["data"].get("type"),
        None,
        "jsonb is any JSON"
    );
    assert_eq!(books["properties"]["price"]["type"], "number");
    assert_eq!(books["properties"]["price"]["default"], 0);
    assert_eq!(books["properties"]["published"]["type"], "boolean");
    assert_eq!(books["properties"]["published"]["default"], false);

    // Functions: the arguments as a body, the result by return shape.
    let add =
        &paths["/rpc/add_them"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(add["oneOf"].as_array().unwrap().len(), 2);
    let books_by = &paths["/rpc/books_by"]["post"];
    assert_eq!(
        books_by["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["author"])
    );
    assert_eq!(
        books_by["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/books"
    );

    assert_every_reference_resolves(&doc, &doc);
    validate_with_openapi_spec_validator(&doc);
}

/// Every `$ref` points at something in the document.
fn assert_every_reference_resolves(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(pointer)) = map.get("$ref") {
                let target = pointer.strip_prefix('#').expect("a local reference");
                assert!(doc.pointer(target).is_some(), "dangling $ref {pointer}");
            }
            map.values()
                .for_each(|v| assert_every_reference_resolves(doc, v));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| assert_every_reference_resolves(doc, v)),
        _ => {}
    }
}

/// The document also passes `openapi-spec-validator` (PyPI), when it is installed
/// (`pip install openapi-spec-validator`); without it the structural checks above stand alone.
fn validate_with_openapi_spec_validator(doc: &Value) {
    let path =
        std::env::temp_dir().join(format!("sluice-openapi-{}.json", support::random_suffix()));
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let outcome = Command::new("openapi-spec-validator").arg(&path).output();
    let _ = std::fs::remove_file(&path);
    match outcome {
        Err(err) => eprintln!("openapi-spec-validator not run ({err}); structural checks only"),
        Ok(output) => assert!(
            output.status.success(),
            "openapi-spec-validator rejected the document:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
