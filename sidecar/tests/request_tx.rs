//! The per-request transaction (`db::tx`) against real Postgres with the extension installed,
//! connected as the `authenticator` role the sidecar uses in production.
//!
//! Each test sets its database up with plain synchronous helpers, then drives the async code on a
//! current-thread runtime of its own (the helpers start runtimes of their own, which cannot nest).

mod support;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::rest::{allow_authenticator_login, AUTHENTICATOR_PASSWORD};

use axum::http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use sluice_sidecar::auth::jwt::keys::JwtSecret;
use sluice_sidecar::auth::{Identity, Verifier, VerifierOptions};
use sluice_sidecar::db::tx::{self, Caller, End, RequestContext, Statement};
use sluice_sidecar::db::{pool, Pool};
use sluice_sidecar::http::error::ApiError;
use support::postgres::{Server, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::config::Host;

const ALICE: &str = "0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d";
const BOB: &str = "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b";

const SCHEMA: &str = "
    CREATE TABLE notes (id bigserial PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL);
    ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_notes ON notes USING (owner = auth.uid());
    GRANT SELECT ON notes TO anon, authenticated, service_role;
    INSERT INTO notes (owner, body) VALUES
        ('0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'alice 1'),
        ('0b6a3c4e-8f5d-4a2b-9c1d-7e6f5a4b3c2d', 'alice 2'),
        ('f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b', 'bob 1');

    CREATE TABLE handles (handle text PRIMARY KEY);
    GRANT SELECT, INSERT ON handles TO authenticated;
    INSERT INTO handles VALUES ('taken');

    CREATE TABLE secrets (value text);
";

/// A database with the extension, the test schema, and `authenticator` able to log in.
fn setup() -> TestDb {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    allow_authenticator_login(&db);
    db.execute(SCHEMA);
    db
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `db`'s connection settings with `authenticator` as the user, optionally through another address.
fn authenticator_config(db: &TestDb, via: Option<SocketAddr>) -> tokio_postgres::Config {
    let admin = tokio_postgres::Config::from_str(&db.url()).unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .user("authenticator")
        .password(AUTHENTICATOR_PASSWORD)
        .dbname(admin.get_dbname().unwrap());
    match via {
        Some(addr) => config.host(addr.ip().to_string()).port(addr.port()),
        None => {
            for host in admin.get_hosts() {
                match host {
                    Host::Tcp(name) => config.host(name),
                    Host::Unix(path) => config.host_path(path),
                };
            }
            config.port(admin.get_ports().first().copied().unwrap_or(5432))
        }
    };
    config
}

/// A pool of one connection, so that consecutive requests provably share it.
fn pool_of_one(config: &tokio_postgres::Config) -> Pool {
    pool::build(config, 1).unwrap()
}

const SECRET: &str = "sluice-request-tx-test-secret-0123456789";

/// An identity made the way requests make it: a signed token through the verifier.
fn identity(role: &str, sub: Option<&str>) -> Identity {
    let mut claims = json!({"role": role, "aud": "authenticated"});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    let token = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    Identity::from_headers(&headers, &verifier()).unwrap()
}

/// A request without a token.
/// The plain data `db::tx` takes for an identity.
fn caller(identity: &Identity) -> Caller<'_> {
    Caller {
        role: &identity.role,
        claims: &identity.claims_text,
        anonymous: identity.is_anonymous(),
    }
}

fn anon() -> Identity {
    Identity::from_headers(&HeaderMap::new(), &verifier()).unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(&JwtSecret::new(SECRET).unwrap(), VerifierOptions::default())
}

fn sql(sql: &str) -> Statement<'_> {
    Statement { sql, params: &[] }
}

/// Runs `statements` as `identity` (`method` decides read-only) and returns the first column of
/// the first row of each, as text.
async fn run_text(
    pool: &Pool,
    identity: &Identity,
    method: Method,
    statements: &[Statement<'_>],
) -> Result<Vec<Option<String>>, ApiError> {
    let client = pool
        .get()
        .await
        .map_err(|err| ApiError::Database(err.into()))?;
    let headers = HeaderMap::new();
    let context = RequestContext::new(caller(identity), &method, "/rest/v1/test", &headers);
    let results = tx::run(&client, &context, statements).await?;
    Ok(results.iter().map(|rows| rows[0].get(0)).collect())
}

#[test]
fn a_request_runs_as_its_identity_and_leaves_nothing_behind() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let alice = identity("authenticated", Some(ALICE));
        let mut headers = HeaderMap::new();
        headers.insert("x-test", "yes".parse().unwrap());
        let method = Method::POST;
        let context = RequestContext::new(caller(&alice), &method, "/rest/v1/rpc/whoami", &headers);

        let client = pool.get().await.unwrap();
        let rows = tx::run(
            &client,
            &context,
            &[sql(
                "SELECT pg_backend_pid(), current_user::text, auth.uid()::text, auth.role(), \
                   current_setting('request.method'), current_setting('request.path'), \
                   current_setting('request.headers')::json->>'x-test', \
                   auth.jwt()->>'aud', current_setting('transaction_read_only')",
            )],
        )
        .await
        .unwrap();
        let row = &rows[0][0];
        let pid: i32 = row.get(0);
        assert_eq!(row.get::<_, String>(1), "authenticated");
        assert_eq!(row.get::<_, String>(2), ALICE);
        assert_eq!(row.get::<_, String>(3), "authenticated");
        assert_eq!(row.get::<_, String>(4), "POST");
        assert_eq!(row.get::<_, String>(5), "/rest/v1/rpc/whoami");
        assert_eq!(row.get::<_, String>(6), "yes");
        assert_eq!(row.get::<_, String>(7), "authenticated");
        assert_eq!(row.get::<_, String>(8), "off", "POST may write");
        drop(client);

        // The same pooled connection afterwards: back to the login role, no claims.
        let client = pool.get().await.unwrap();
        let row = client
            .query_one(
                "SELECT pg_backend_pid(), current_user::text, current_setting('role'), \
                 current_setting('request.jwt.claims', true)",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), pid, "the pool has one connection");
        assert_eq!(row.get::<_, String>(1), "authenticator");
        assert_eq!(row.get::<_, String>(2), "none");
        let claims: Option<String> = row.get(3);
        assert!(
            claims.as_deref().unwrap_or_default().is_empty(),
            "{claims:?}"
        );
        drop(client);

        // The next request on it, anonymous, sees only its own claims.
        let seen = run_text(
            &pool,
            &anon(),
            Method::GET,
            &[
                sql("SELECT current_user::text"),
                sql("SELECT auth.uid()::text"),
                sql("SELECT current_setting('request.jwt.claims')"),
                sql("SELECT current_setting('transaction_read_only')"),
                sql("SELECT pg_backend_pid()::text"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            seen,
            [
                Some("anon".into()),
                None,
                Some(r#"{"role":"anon"}"#.into()),
                Some("on".into()),
                Some(pid.to_string()),
            ]
        );
    });
}

#[test]
fn rls_policies_see_the_request_claims() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let notes = [sql(
            "SELECT coalesce(json_agg(body ORDER BY body), '[]')::text FROM notes",
        )];
        let visible = |identity: Identity| {
            let pool = &pool;
            let notes = &notes;
            async move {
                run_text(pool, &identity, Method::GET, notes).await.unwrap()[0]
                    .clone()
                    .unwrap()
            }
        };
        assert_eq!(
            visible(identity("authenticated", Some(ALICE))).await,
            r#"["alice 1", "alice 2"]"#
        );
        assert_eq!(
            visible(identity("authenticated", Some(BOB))).await,
            r#"["bob 1"]"#
        );
        // No sub, no rows; anon likewise.
        assert_eq!(visible(identity("authenticated", None)).await, "[]");
        assert_eq!(visible(anon()).await, "[]");
        // service_role has BYPASSRLS.
        assert_eq!(
            visible(identity("service_role", None)).await,
            r#"["alice 1", "alice 2", "bob 1"]"#
        );
    });
}

/// The response a failed request would get: status, `code`, and the `WWW-Authenticate` header.
fn answer(err: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
    let challenge = err.www_authenticate();
    (
        err.status(),
        serde_json::to_value(err.body()).unwrap(),
        challenge,
    )
}

#[test]
fn database_errors_keep_their_sqlstate_and_postgrest_status() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let alice = identity("authenticated", Some(ALICE));

        let err = run_text(
            &pool,
            &alice,
            Method::POST,
            &[sql("INSERT INTO handles VALUES ('taken') RETURNING handle")],
        )
        .await
        .unwrap_err();
        let (status, body, _) = answer(err);
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "23505");
        assert!(
            body["message"].as_str().unwrap().contains("duplicate key"),
            "{body}"
        );
        assert_eq!(body["details"], "Key (handle)=(taken) already exists.");

        // Insufficient privilege: anon may log in to get more (401), a user may not (403).
        let insert = [sql("INSERT INTO handles VALUES ('mine') RETURNING handle")];
        let (status, body, challenge) = answer(
            run_text(&pool, &anon(), Method::POST, &insert)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "42501");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        let read = [sql("SELECT value FROM secrets")];
        let (status, body, challenge) = answer(
            run_text(&pool, &alice, Method::GET, &read)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["code"], "42501");
        assert_eq!(challenge, None);

        // GET is read-only: a write under it is refused as a wrong method.
        let (status, body, _) = answer(
            run_text(&pool, &alice, Method::GET, &insert)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "25006");

        let (status, body, _) = answer(
            run_text(&pool, &alice, Method::GET, &[sql("SELECT 'x'::int::text")])
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("22P02"))
        );
        let (status, body, _) = answer(
            run_text(&pool, &alice, Method::GET, &[sql("SELECT * FROM nowhere")])
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::NOT_FOUND, &json!("42P01"))
        );
    });
}

#[test]
fn a_failed_statement_rolls_back_the_whole_request() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let alice = identity("authenticated", Some(ALICE));
        let err = run_text(
            &pool,
            &alice,
            Method::POST,
            &[
                sql("INSERT INTO handles VALUES ('first') RETURNING handle"),
                sql("INSERT INTO handles VALUES ('taken') RETURNING handle"),
            ],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::CONFLICT);

        // Prefer: tx=rollback runs everything and keeps nothing.
        let client = pool.get().await.unwrap();
        let headers = HeaderMap::new();
        let method = Method::POST;
        let mut context =
            RequestContext::new(caller(&alice), &method, "/rest/v1/handles", &headers);
        context.end = End::Rollback;
        let rows = tx::run(
            &client,
            &context,
            &[sql(
                "INSERT INTO handles VALUES ('dry run') RETURNING handle",
            )],
        )
        .await
        .unwrap();
        assert_eq!(rows[0][0].get::<_, String>(0), "dry run");
        drop(client);

        let kept = run_text(
            &pool,
            &alice,
            Method::GET,
            &[sql(
                "SELECT string_agg(handle, ',' ORDER BY handle) FROM handles",
            )],
        )
        .await
        .unwrap();
        assert_eq!(kept, [Some("taken".to_owned())]);
    });
}

#[test]
fn a_request_abandoned_mid_flight_still_ends_its_transaction() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let alice = identity("authenticated", Some(ALICE));
        let slow = [sql("SELECT pg_sleep(0.3)::text")];
        // Warm the statement cache, so the abandoned run's pipeline is sent on its first poll.
        run_text(&pool, &alice, Method::GET, &slow).await.unwrap();

        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            run_text(&pool, &alice, Method::GET, &slow),
        )
        .await;
        assert!(abandoned.is_err(), "the request should still be running");

        // The connection went back to the pool; what it runs next is queued behind the abandoned
        // request's COMMIT, so it runs outside any transaction. (The simple protocol: there a
        // statement outside a transaction starts its own, so now() is the statement's own time.)
        let client = pool.get().await.unwrap();
        let rows = client
            .simple_query(
                "SELECT current_user, now() = statement_timestamp(), \
                 current_setting('request.jwt.claims', true)",
            )
            .await
            .unwrap();
        let row = rows
            .iter()
            .find_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .unwrap();
        assert_eq!(row.get(0), Some("authenticator"));
        assert_eq!(
            row.get(1),
            Some("t"),
            "still inside the abandoned transaction"
        );
        assert_eq!(row.get(2).unwrap_or_default(), "");
    });
}

/// A TCP proxy in front of Postgres that counts the client's turns: a write by the client after the
/// server has spoken. Each round trip a client waits for is one turn; a pipeline is one turn however
/// many statements it carries.
struct TurnCounter {
    addr: SocketAddr,
    turns: Arc<AtomicUsize>,
}

impl TurnCounter {
    async fn start(target: String) -> TurnCounter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let turns = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&turns);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&target).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                // The client's first write (the startup message) is a turn too.
                let server_spoke = Arc::new(AtomicBool::new(true));
                let (spoke, turns) = (Arc::clone(&server_spoke), Arc::clone(&counted));
                tokio::spawn(pump(client_read, server_write, move || {
                    if spoke.swap(false, Ordering::SeqCst) {
                        turns.fetch_add(1, Ordering::SeqCst);
                    }
                }));
                tokio::spawn(pump(server_read, client_write, move || {
                    server_spoke.store(true, Ordering::SeqCst);
                }));
            }
        });
        TurnCounter { addr, turns }
    }

    fn turns(&self) -> usize {
        self.turns.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to`, calling `on_data` before forwarding each chunk (so the other side cannot
/// react to a chunk before it is accounted for).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    on_data: impl Fn() + Send + 'static,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                on_data();
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn tcp_target(db: &TestDb) -> String {
    let config = tokio_postgres::Config::from_str(&db.url()).unwrap();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        other => panic!("the round-trip test needs a TCP database URL, got {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// DESIGN.md: one request = one transaction = one round trip. Measured on the wire. (A current-
/// thread runtime makes the count exact: the connection task cannot start writing until the whole
/// pipeline is queued. On a multi-threaded runtime it may start earlier and split the write, which
/// costs no extra waiting, as nothing waits for an answer in between.)
#[test]
fn a_request_is_one_round_trip_once_its_statements_are_prepared() {
    let db = setup();
    runtime().block_on(async {
        let proxy = TurnCounter::start(tcp_target(&db)).await;
        let pool = pool_of_one(&authenticator_config(&db, Some(proxy.addr)));
        let alice = identity("authenticated", Some(ALICE));
        let statements = [
            sql("SELECT count(*)::text FROM notes"),
            sql("SELECT auth.uid()::text"),
        ];
        // Connecting, and preparing the statements on this connection, take round trips of their own.
        run_text(&pool, &alice, Method::POST, &statements)
            .await
            .unwrap();

        let before = proxy.turns();
        let seen = run_text(&pool, &alice, Method::POST, &statements)
            .await
            .unwrap();
        let turns = proxy.turns() - before;
        assert_eq!(seen, [Some("2".into()), Some(ALICE.into())]);
        assert_eq!(
            turns, 1,
            "BEGIN, set_config, 2 statements and COMMIT took {turns} round trips"
        );

        // A statement new to the connection costs one more, to prepare it.
        let before = proxy.turns();
        run_text(&pool, &alice, Method::POST, &[sql("SELECT 'new'")])
            .await
            .unwrap();
        assert_eq!(proxy.turns() - before, 2);
    });
}

/// `sluice.run_request` (the path REST requests take): runs as the request's identity with its
/// settings, read-only for GET, and leaves nothing behind on the connection.
#[test]
fn run_request_runs_as_its_identity_and_leaves_nothing_behind() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let alice = identity("authenticated", Some(ALICE));
        let mut headers = HeaderMap::new();
        headers.insert("x-test", "yes".parse().unwrap());
        let client = pool.get().await.unwrap();
        let whoami = "SELECT current_user, auth.uid(), current_setting('request.method'), \
             current_setting('request.path'), current_setting('request.headers')::json->>'x-test', \
             current_setting('transaction_read_only'), \
             (SELECT string_agg(body, ',' ORDER BY id) FROM notes), $1::text";
        for (method, read_only) in [(Method::GET, "on"), (Method::POST, "off")] {
            let context = RequestContext::new(caller(&alice), &method, "/rest/v1/notes", &headers);
            let row = tx::run_request(&client, &context, whoami, &[Some("p".into())])
                .await
                .unwrap()
                .unwrap();
            let expected = [
                "authenticated",
                ALICE,
                method.as_str(),
                "/rest/v1/notes",
                "yes",
                read_only,
                "alice 1,alice 2",
                "p",
            ];
            assert_eq!(row, expected.map(|v| Some(v.to_owned())), "{method}");
        }
        let row = client
            .query_one(
                "SELECT current_user::text, current_setting('role'), \
                 coalesce(current_setting('request.jwt.claims', true), '')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "authenticator");
        assert_eq!(row.get::<_, String>(1), "none");
        assert_eq!(row.get::<_, String>(2), "");

        // Array parameters travel as array literals and come back intact.
        let mut params = sluice_sidecar::rest::sql::Params::default();
        let tricky = ["a,b", "say \"hi\"", "back\\slash", "NULL", "{}", "", "ünï"];
        let placeholder = params.text_array(&tricky.map(str::to_owned));
        let sql = format!("SELECT array_to_json({placeholder})::text");
        let context = RequestContext::new(caller(&alice), &Method::GET, "/", &headers);
        let values = params.as_text();
        let row = tx::run_request(&client, &context, &sql, &values);
        let json: Vec<String> =
            serde_json::from_str(row.await.unwrap().unwrap()[0].as_deref().unwrap()).unwrap();
        assert_eq!(json, tricky);

        // No row is None; NULL columns are None.
        let none = tx::run_request(&client, &context, "SELECT 1 WHERE false", &[]);
        assert_eq!(none.await.unwrap(), None);
        let nulls = tx::run_request(&client, &context, "SELECT NULL::int8, 7::int8", &[]);
        assert_eq!(nulls.await.unwrap(), Some(vec![None, Some("7".into())]));
    });
}

#[test]
fn run_request_refuses_writes_on_get_and_rolls_back_failures() {
    let db = setup();
    runtime().block_on(async {
        let pool = pool_of_one(&authenticator_config(&db, None));
        let alice = identity("authenticated", Some(ALICE));
        let headers = HeaderMap::new();
        let client = pool.get().await.unwrap();
        let insert = "INSERT INTO handles VALUES ($1::text) RETURNING handle";

        let get = RequestContext::new(caller(&alice), &Method::GET, "/", &headers);
        let err = tx::run_request(&client, &get, insert, &[Some("a".into())])
            .await
            .unwrap_err();
        assert_eq!(err.error.sqlstate(), Some("25006"), "{err:?}");

        // The insert succeeds, then the statement fails: nothing stays.
        let post = RequestContext::new(caller(&alice), &Method::POST, "/", &headers);
        let failing = "WITH i AS (INSERT INTO handles VALUES ($1::text) RETURNING 1) \
                       SELECT 1 / (count(*) - 1) FROM i";
        let err = tx::run_request(&client, &post, failing, &[Some("b".into())])
            .await
            .unwrap_err();
        assert_eq!(err.error.sqlstate(), Some("22012"), "{err:?}");
        // A unique violation keeps its SQLSTATE and detail.
        let err = tx::run_request(&client, &post, insert, &[Some("taken".into())])
            .await
            .unwrap_err();
        assert_eq!(err.error.sqlstate(), Some("23505"), "{err:?}");
        let detail = err.error.server_error().and_then(|e| e.detail);
        assert_eq!(detail, Some("Key (handle)=(taken) already exists."));

        let handles = "SELECT string_agg(handle, ',' ORDER BY handle) FROM handles";
        let kept = tx::run_request(&client, &get, handles, &[]).await.unwrap();
        assert_eq!(kept, Some(vec![Some("taken".into())]));

        // A dry run answers and keeps nothing.
        let mut dry = RequestContext::new(caller(&alice), &Method::POST, "/", &headers);
        dry.end = End::Rollback;
        let row = tx::run_request(&client, &dry, insert, &[Some("dry".into())])
            .await
            .unwrap();
        assert_eq!(row, Some(vec![Some("dry".into())]));
        let kept = tx::run_request(&client, &get, handles, &[]).await.unwrap();
        assert_eq!(kept, Some(vec![Some("taken".into())]));
    });
}

#[test]
fn run_request_is_one_round_trip_once_prepared() {
    let db = setup();
    runtime().block_on(async {
        let proxy = TurnCounter::start(tcp_target(&db)).await;
        let pool = pool_of_one(&authenticator_config(&db, Some(proxy.addr)));
        let alice = identity("authenticated", Some(ALICE));
        let headers = HeaderMap::new();
        let context = RequestContext::new(caller(&alice), &Method::GET, "/", &headers);
        let client = pool.get().await.unwrap();
        let count = "SELECT count(*) FROM notes WHERE body <> $1::text";
        // The first call prepares `SELECT sluice.run_request(…)` on the connection.
        tx::run_request(&client, &context, count, &[Some("x".into())])
            .await
            .unwrap();
        for sql in [count, "SELECT 'a statement new to the connection'"] {
            let before = proxy.turns();
            let params = if sql == count {
                vec![Some("x".into())]
            } else {
                vec![]
            };
            tx::run_request(&client, &context, sql, &params)
                .await
                .unwrap();
            assert_eq!(proxy.turns() - before, 1, "{sql}");
        }
    });
}
