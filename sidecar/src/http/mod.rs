//! HTTP routing. Handlers stay thin: they call into `db`/`auth` and return `ApiError` on failure,
//! which `error` turns into a response.

pub mod auth_api;
mod drain;
pub mod error;
mod health;
mod limits;
mod realtime;
mod rest;
mod rpc;
pub mod storage;
mod webhooks;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Verifier;
use crate::db::Pool;
use crate::http::error::ApiError;
use crate::realtime::Realtime;
use crate::rest::parse::QueryLimits;
use crate::schema::SchemaHandle;

pub use limits::{MAX_HEADERS, MAX_HEADER_BYTES, MAX_URI_BYTES};

/// What every handler can reach. Cheap to clone: the pool, the verifier and the strings are shared.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    /// The extension version the start-up check found (equal to the sidecar's own).
    pub extension_version: Arc<str>,
    /// Verifies request tokens; the `Identity` extractor reaches it through `FromRef`.
    pub verifier: Arc<Verifier>,
    /// The schema cache of the exposed schemas, kept current by its own task.
    pub schema: SchemaHandle,
    /// `--max-rows`: the most rows one REST response returns.
    pub max_rows: Option<u64>,
    /// `--max-query-*`: how complex one REST request may be.
    pub query_limits: QueryLimits,
    /// `--max-body-bytes` and `--allow-unfiltered-writes`.
    pub writes: WriteLimits,
    /// `--rest-aggregates-enabled`.
    pub aggregates_enabled: bool,
    /// Realtime subscriptions and fan-out.
    pub realtime: Realtime,
    /// `--db-plan-enabled`: whether REST answers the plan media types (`explain()`).
    pub plan_enabled: bool,
}

impl AppState {
    /// The state with the default limits (no `--max-rows`, the default query and write limits) and the
    /// sidecar's own version as the extension's (the start-up check makes them equal). `serve`
    /// and the tests all build it here, then set what they vary.
    pub fn new(
        pool: Pool,
        verifier: Arc<Verifier>,
        schema: SchemaHandle,
        realtime: Realtime,
    ) -> AppState {
        AppState {
            pool,
            extension_version: Arc::from(crate::VERSION),
            verifier,
            schema,
            max_rows: None,
            query_limits: QueryLimits::default(),
            writes: WriteLimits::default(),
            aggregates_enabled: false,
            realtime,
            plan_enabled: false,
        }
    }
}

/// What the REST write path allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// The longest request body read; longer ones are refused with 413.
    pub max_body_bytes: usize,
    /// Whether PATCH and DELETE may run without a filter.
    pub allow_unfiltered: bool,
}

impl Default for WriteLimits {
    fn default() -> Self {
        WriteLimits {
            max_body_bytes: 1024 * 1024,
            allow_unfiltered: false,
        }
    }
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/rest/v1", get(rest::openapi))
        .route("/rest/v1/", get(rest::openapi))
        .route(
            "/rest/v1/{relation}",
            get(rest::read)
                .head(rest::read)
                .post(rest::write)
                .patch(rest::write)
                .put(rest::write)
                .delete(rest::write)
                .layer(drain::DrainUnreadLayer),
        )
        .route(
            "/rest/v1/rpc/{function}",
            get(rpc::call)
                .head(rpc::call)
                .post(rpc::call)
                .layer(drain::DrainUnreadLayer),
        )
        .route("/realtime/v1/websocket", get(realtime::websocket))
        .route("/realtime/v1/api/broadcast", post(realtime::broadcast))
        .route(
            "/realtime/v1/api/broadcast/{topic}/events/{event}",
            post(realtime::broadcast_one),
        )
        .merge(webhooks::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(limits::BoundRequestHeadLayer)
        .with_state(state)
}

/// `app` plus the auth API under `/auth/v1/`, which has its own state.
pub fn app_with_auth(state: AppState, auth: auth_api::AuthState) -> Router {
    app(state).merge(auth_api::routes(auth))
}

async fn route_not_found(method: Method, uri: Uri, body: Body) -> Response {
    let error = ApiError::RouteNotFound {
        method,
        path: uri.path().to_owned(),
    };
    drain::after_draining(body, error).await
}

async fn method_not_allowed(method: Method, uri: Uri, body: Body) -> Response {
    let error = ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
    };
    drain::after_draining(body, error).await
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use axum::body::{to_bytes, Body};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    /// A state whose pool points at a port nothing listens on: routes that do not touch the database
    /// work, and those that do see it down, with no Postgres needed.
    fn state_without_database() -> AppState {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("postgres://nobody@127.0.0.1:{port}/nothing");
        let config = tokio_postgres::Config::from_str(&url).unwrap();
        let secret = crate::auth::jwt::keys::JwtSecret::new("x".repeat(32)).unwrap();
        let pool = crate::db::pool::build(&config, 2).unwrap();
        let changes = crate::changelog::ChangeReader::new(pool.clone());
        AppState::new(
            pool.clone(),
            Arc::new(Verifier::new(&secret, Default::default())),
            SchemaHandle::fixed(crate::schema::SchemaCache::new(
                &Default::default(),
                Vec::new(),
                Vec::new(),
            )),
            Realtime::idle(pool, changes),
        )
    }

    async fn call(method: Method, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        send(request).await
    }

    async fn send(request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = app(state_without_database())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn unknown_route_is_a_json_404() {
        let (status, body) = call(Method::GET, "/no/such/route").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            serde_json::json!({
                "code": "SLUICE100",
                "message": "no route for GET /no/such/route",
                "details": null,
                "hint": null,
            })
        );
    }

    #[tokio::test]
    async fn wrong_method_on_a_known_route_is_a_json_405() {
        let (status, body) = call(Method::DELETE, "/health").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "SLUICE101");
        assert_eq!(body["message"], "DELETE is not allowed on /health");
    }

    #[tokio::test]
    async fn the_openapi_document_checks_the_token_then_asks_the_database() {
        // A forged token is refused before any database work, as on every other endpoint.
        let request = Request::builder()
            .uri("/rest/v1/")
            .header("authorization", "Bearer not.a.token")
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "PGRST301");
        // A genuine (here: anonymous) request needs the role's privileges from the database.
        let (status, body) = call(Method::GET, "/rest/v1/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "SLUICE000");
    }

    #[tokio::test]
    async fn an_unknown_table_is_404_before_any_database_work() {
        let (status, body) = call(Method::GET, "/rest/v1/nope?select=id").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "PGRST205");
        let (status, body) = call(Method::GET, "/rest/v1/nope?id=eqq.1").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "PGRST100");
        let (status, body) = call(Method::GET, "/rest/v1/%FF").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "SLUICE121");
    }

    #[tokio::test]
    async fn write_bodies_are_checked_before_any_database_work() {
        let state = AppState {
            writes: WriteLimits {
                max_body_bytes: 16,
                allow_unfiltered: false,
            },
            ..state_without_database()
        };
        for (body, status, code) in [
            ("{\"id\":", StatusCode::BAD_REQUEST, "PGRST102"),
            ("{\"id\": 1}", StatusCode::NOT_FOUND, "PGRST205"),
            (
                "[{\"a\": \"0123456789\"}]",
                StatusCode::PAYLOAD_TOO_LARGE,
                "SLUICE122",
            ),
        ] {
            let request = Request::builder()
                .method(Method::POST)
                .uri("/rest/v1/nope")
                .body(Body::from(body))
                .unwrap();
            let response = app(state.clone()).oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{body}");
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json["code"], code, "{body}");
        }
    }

    #[tokio::test]
    async fn a_body_left_unread_by_a_refusal_is_read_before_the_answer() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        const CHUNK: usize = 16 * 1024;
        const CHUNKS: usize = 256; // 4 MiB, more than --max-body-bytes
        for (method, path, token, status, code) in [
            (
                Method::POST,
                "/rest/v1/nope",
                "not.a.token",
                401,
                "PGRST301",
            ),
            (Method::PATCH, "/rest/v1/nope?id=eqq.1", "", 400, "PGRST100"),
            (
                Method::DELETE,
                "/rest/v1/nope?order=id.up",
                "",
                400,
                "PGRST100",
            ),
            (Method::POST, "/rest/v1/rpc/f?select=(", "", 400, "PGRST100"),
            (
                Method::POST,
                "/rest/v1/rpc/f",
                "not.a.token",
                401,
                "PGRST301",
            ),
        ] {
            let read = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&read);
            let chunks = futures_util::stream::iter((0..CHUNKS).map(move |_| {
                counter.fetch_add(CHUNK, Ordering::SeqCst);
                Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; CHUNK]))
            }));
            let mut request = Request::builder().method(method.clone()).uri(path);
            if !token.is_empty() {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request.body(Body::from_stream(chunks)).unwrap();
            let response = app(state_without_database())
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), status, "{method} {path}");
            assert!(response.headers().get("connection").is_none());
            assert_eq!(
                read.load(Ordering::SeqCst),
                CHUNK * CHUNKS,
                "{method} {path}"
            );
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json["code"], code, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn a_body_the_handler_gave_up_draining_is_not_drained_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        const MIB: usize = 1024 * 1024;
        // 200 MiB offered to an RPC: its handler reads up to --max-body-bytes and discards up to
        // the drain bound (64 MiB) before answering 413; the middleware must not start a second
        // 64 MiB drain after it, but close the connection.
        let read = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&read);
        let chunk = axum::body::Bytes::from(vec![b'x'; MIB]);
        let chunks = futures_util::stream::iter((0..200).map(move |_| {
            counter.fetch_add(MIB, Ordering::SeqCst);
            Ok::<_, std::io::Error>(chunk.clone())
        }));
        let request = Request::builder()
            .method(Method::POST)
            .uri("/rest/v1/rpc/f")
            .body(Body::from_stream(chunks))
            .unwrap();
        let state = state_without_database();
        let limit = state.writes.max_body_bytes;
        let response = app(state).oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 413);
        assert_eq!(response.headers()["connection"], "close");
        // Each reader overshoots its bound by the chunk that crosses it: the handler's limit, its
        // drain, and the one chunk the middleware reads before it sees the count is past it (a
        // second drain would have read another 64 MiB).
        let taken = read.load(Ordering::SeqCst);
        assert!(
            taken <= limit + 64 * MIB + 3 * MIB,
            "{taken} bytes read with a limit of {limit}"
        );
    }

    #[tokio::test]
    async fn the_websocket_endpoint_answers_plain_requests_with_json_errors() {
        let (status, body) = call(Method::GET, "/realtime/v1/websocket?vsn=9.9.9").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "SLUICE130");
        let (status, body) = call(Method::GET, "/realtime/v1/websocket?apikey=bad").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "PGRST301");
        let (status, body) = call(Method::GET, "/realtime/v1/websocket?vsn=2.0.0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "SLUICE131");
    }

    #[tokio::test]
    async fn oversized_urls_and_headers_get_json_errors() {
        let long = format!("/rest/v1/nope?select={}", "a".repeat(MAX_URI_BYTES));
        let (status, body) = call(Method::GET, &long).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG);
        assert_eq!(body["code"], "SLUICE102");
        assert!(
            body["message"].as_str().unwrap().contains("16384"),
            "{body}"
        );

        let mut request = Request::builder().uri("/health");
        for i in 0..=MAX_HEADERS {
            request = request.header(format!("x-h{i}"), "1");
        }
        let response = app(state_without_database())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "SLUICE103");
        for field in ["message", "details", "hint"] {
            assert!(body.get(field).is_some(), "{body}");
        }
    }

    #[tokio::test]
    async fn health_is_503_when_the_database_is_down() {
        let (status, body) = call(Method::GET, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["database"], "down");
        assert_eq!(body["code"], "SLUICE000");
        assert!(body["message"].is_string());
    }
}
