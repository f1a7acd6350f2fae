//! The sidecar's router over a fresh test database, driven in-process (no socket): what the REST,
//! RPC and auth tests share. Each test file keeps only its own request shortcuts.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use sluice_sidecar::auth::jwt::keys::JwtSecret;
use sluice_sidecar::auth::{Verifier, VerifierOptions};
use sluice_sidecar::changelog::ChangeReader;
use sluice_sidecar::db::listen::Listener;
use sluice_sidecar::db::pool;
use sluice_sidecar::http::{app, AppState, WriteLimits};
use sluice_sidecar::realtime::Realtime;
use sluice_sidecar::rest::parse::QueryLimits;
use sluice_sidecar::schema::{self, ExposedSchemas, SchemaHandle};
use tokio::runtime::Runtime;
use tower::ServiceExt;

use super::postgres::{Server, TestDb};
use super::rest::{allow_authenticator_login, authenticator_config, encode};

/// How to build the app: the database's SQL and the settings a test varies.
pub struct AppOptions<'a> {
    /// Run in order on the new database, after the extension is installed.
    pub setup_sql: &'a [&'a str],
    pub schemas: &'a [&'a str],
    pub secret: &'a str,
    pub max_rows: Option<u64>,
    pub query_limits: QueryLimits,
    pub writes: WriteLimits,
    pub pool_size: usize,
}

impl<'a> AppOptions<'a> {
    /// Schema `public`, default limits.
    pub fn new(setup_sql: &'a [&'a str], secret: &'a str) -> Self {
        AppOptions {
            setup_sql,
            schemas: &["public"],
            secret,
            max_rows: None,
            query_limits: QueryLimits::default(),
            writes: WriteLimits::default(),
            pool_size: 2,
        }
    }
}

/// A database made for one test, and a runtime to drive the router on.
pub struct TestApp {
    pub app: Router,
    pub runtime: Runtime,
    pub db: TestDb,
}

impl TestApp {
    pub fn start(options: AppOptions<'_>) -> TestApp {
        let db = test_database(options.setup_sql);
        let runtime = current_thread_runtime();
        let state = app_state(&db, &runtime, &options);
        TestApp {
            app: app(state),
            runtime,
            db,
        }
    }

    /// Sends one request through the router and reads the whole answer.
    pub fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut request = Request::builder().method(method).uri(encode(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        self.runtime.block_on(async {
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            Reply {
                status,
                headers,
                body: String::from_utf8(bytes.to_vec()).unwrap(),
            }
        })
    }
}

/// A fresh database with the extension, `authenticator` able to log in, and `setup_sql` run in order.
pub fn test_database(setup_sql: &[&str]) -> TestDb {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    allow_authenticator_login(&db);
    for sql in setup_sql {
        db.execute(sql);
    }
    db
}

pub fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The state `sluice serve` would build for `db` (connecting as `authenticator`), with realtime
/// idle: these tests do not open sockets.
pub fn app_state(db: &TestDb, runtime: &Runtime, options: &AppOptions<'_>) -> AppState {
    let config = authenticator_config(db);
    let exposed = ExposedSchemas::new(options.schemas.iter().copied()).unwrap();
    let pool = pool::build(&config, options.pool_size).unwrap();
    let schema: SchemaHandle = runtime.block_on(async {
        let listener = Listener::start(&config);
        schema::start(pool.clone(), &listener, exposed)
            .await
            .unwrap()
    });
    let verifier = Verifier::new(
        &JwtSecret::new(options.secret).unwrap(),
        VerifierOptions::default(),
    );
    let realtime = Realtime::idle(pool.clone(), ChangeReader::new(pool.clone()));
    AppState {
        max_rows: options.max_rows,
        query_limits: options.query_limits,
        writes: options.writes,
        ..AppState::new(pool, Arc::new(verifier), schema, realtime)
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// The `id` of each row of a JSON array body, in order.
    pub fn ids(&self) -> Vec<i64> {
        let body = self.json();
        body.as_array()
            .unwrap_or_else(|| panic!("not an array: {body}"))
            .iter()
            .map(|row| row["id"].as_i64().unwrap())
            .collect()
    }

    /// The error code of a JSON error body, after checking the status.
    pub fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        self.json()["code"].as_str().unwrap().to_owned()
    }
}
