//! The one place where failures become HTTP responses (only `http/` turns errors into responses;
//! the layers below return their own error types, which are mapped here).
//!
//! Every error body has the shape PostgREST (and so supabase-js) uses: `{code, message, details,
//! hint}`. `code` is a SQLSTATE when Postgres raised the error, PostgREST's own code where we answer
//! as PostgREST does (`PGRST3xx` for tokens), and one of our own `SLUICE…` codes otherwise (grouped
//! like PostgREST's: 0xx database, 1xx request, 5xx internal). An error Postgres raised keeps its
//! message, detail and hint whatever its status, as PostgREST sends it; the sidecar's own failures
//! (a broken invariant, a connection that broke) are logged in full and shown only as a generic
//! message.

use axum::http::header::{CONTENT_RANGE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::describe;

use crate::auth::TokenError;
use crate::db::tx::TxError;
use crate::db::DbError;
use crate::http::webhooks::AdminError;
use crate::realtime::api::BroadcastApiError;
use crate::rest::execute::ExecuteError;
use crate::rest::RestError;

pub mod codes {
    pub const DATABASE_UNAVAILABLE: &str = "SLUICE000";
    pub const DATABASE_TIMEOUT: &str = "SLUICE001";
    pub const ROUTE_NOT_FOUND: &str = "SLUICE100";
    pub const METHOD_NOT_ALLOWED: &str = "SLUICE101";
    /// The request target (path and query) is longer than the server serves (414).
    pub const URI_TOO_LONG: &str = "SLUICE102";
    /// The request has too many headers, or too many bytes of them (431).
    pub const HEADERS_TOO_LARGE: &str = "SLUICE103";
    /// The token could not be decoded or verified, or the `Authorization` header is not `Bearer`.
    pub const JWT_INVALID: &str = "PGRST301";
    /// No token, and anonymous requests are off (`anon` is not in `--jwt-roles`).
    pub const JWT_REQUIRED: &str = "PGRST302";
    /// The token is genuine but its claims are refused: expired, not yet valid, issued in the
    /// future, wrong audience, a role that is not allowed, claims that are not an object.
    pub const JWT_CLAIMS: &str = "PGRST303";
    /// A WebSocket asked for a realtime protocol version we do not speak.
    pub const REALTIME_VERSION: &str = "SLUICE130";
    /// A plain HTTP request (or a malformed upgrade) to the WebSocket endpoint.
    pub const NOT_WEBSOCKET: &str = "SLUICE131";
    pub const INTERNAL: &str = "SLUICE500";
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route for {method} {path}")]
    RouteNotFound { method: Method, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String },
    #[error("the request URL is {length} bytes long; at most {limit} are served")]
    UriTooLong { length: usize, limit: usize },
    #[error("the request has {count} headers of {bytes} bytes in all; at most {} headers of {} bytes are served", crate::http::MAX_HEADERS, crate::http::MAX_HEADER_BYTES)]
    HeadersTooLarge { count: usize, bytes: usize },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Auth(#[from] TokenError),
    /// A request's own SQL failed: the status follows the SQLSTATE.
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// A broken invariant of our own; the text goes to the log only.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A REST request that is malformed, names what does not exist, or asks for what we lack.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// `/realtime/v1/websocket?vsn=...` with a version other than 1.0.0 and 2.0.0.
    #[error("unsupported realtime protocol version {0:?}; use vsn=1.0.0 or vsn=2.0.0")]
    RealtimeVersion(String),
    /// A request to the WebSocket endpoint that is not a valid WebSocket upgrade.
    #[error("this endpoint only accepts WebSocket upgrades: {0}")]
    NotWebSocket(String),
    /// A request to the HTTP broadcast API that cannot be sent (`SLUICE132`..`SLUICE136`).
    #[error(transparent)]
    Broadcast(#[from] BroadcastApiError),
    /// A request to the webhooks admin API refused before any SQL ran (`SLUICE140`..`SLUICE142`).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl From<ExecuteError> for ApiError {
    fn from(err: ExecuteError) -> Self {
        match err {
            ExecuteError::Transaction(err) => ApiError::Transaction(err),
            ExecuteError::Refused(err) => ApiError::Rest(err),
            ExecuteError::Malformed(what) => ApiError::Internal(what),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// Text, except PGRST201's array of candidate relationships.
    pub details: Option<serde_json::Value>,
    pub hint: Option<String>,
}

impl ErrorBody {
    fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code.to_owned(),
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn with_details(mut self, details: Option<String>) -> Self {
        self.details = details.map(serde_json::Value::String);
        self
    }

    /// An outage: the database cannot be reached or did not answer.
    fn unavailable(err: &DbError) -> Self {
        match err {
            DbError::Timeout(_) => ErrorBody::new(
                codes::DATABASE_TIMEOUT,
                "the database did not answer in time",
            ),
            _ => ErrorBody::new(codes::DATABASE_UNAVAILABLE, "the database is unavailable"),
        }
        .with_hint("retry later")
    }

    /// A bug or a broken invariant: the cause goes to the log only.
    fn internal(sqlstate: Option<&str>) -> Self {
        ErrorBody::new(
            sqlstate.unwrap_or(codes::INTERNAL),
            "internal error: the server log has the details",
        )
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Database(err) if err.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Transaction(tx) if tx.error.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Transaction(tx) => match tx.error.server_error() {
                Some(db) => status_for_sqlstate(db.code, db.message, tx.anonymous),
                None => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Rest(err) => {
                StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::RealtimeVersion(_) | ApiError::NotWebSocket(_) => StatusCode::BAD_REQUEST,
            ApiError::Broadcast(err) => {
                StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Admin(err) => {
                StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    pub fn body(&self) -> ErrorBody {
        match self {
            ApiError::RouteNotFound { .. } => {
                ErrorBody::new(codes::ROUTE_NOT_FOUND, self.to_string())
            }
            ApiError::MethodNotAllowed { .. } => {
                ErrorBody::new(codes::METHOD_NOT_ALLOWED, self.to_string())
            }
            ApiError::UriTooLong { .. } => ErrorBody::new(codes::URI_TOO_LONG, self.to_string())
                .with_hint("send fewer or shorter filters, or call a function with POST"),
            ApiError::HeadersTooLarge { .. } => {
                ErrorBody::new(codes::HEADERS_TOO_LARGE, self.to_string())
            }
            ApiError::Database(err) if err.is_unavailable() => ErrorBody::unavailable(err),
            ApiError::Database(err) => ErrorBody::internal(err.sqlstate()),
            ApiError::Auth(err) => {
                ErrorBody::new(auth_code(err), err.to_string()).with_details(auth_details(err))
            }
            ApiError::Transaction(tx) if tx.error.is_unavailable() => {
                ErrorBody::unavailable(&tx.error)
            }
            // Postgres raised it while running the request's SQL (a constraint, a permission, bad
            // input, a RAISE, a P0002 from a function): Postgres's words are the answer whatever
            // the status, as PostgREST sends them. Only a failure without a server error (the
            // connection broke) is ours to explain, in the log.
            ApiError::Transaction(tx) => match tx.error.server_error() {
                Some(db) => ErrorBody {
                    code: db.code.to_owned(),
                    message: db.message.to_owned(),
                    details: db.detail.map(|d| serde_json::Value::String(d.to_owned())),
                    hint: db.hint.map(str::to_owned),
                },
                None => ErrorBody::internal(tx.error.sqlstate()),
            },
            ApiError::Internal(_) => ErrorBody::internal(None),
            ApiError::Rest(err) => ErrorBody {
                code: err.code().to_owned(),
                message: err.to_string(),
                details: err.details_value(),
                hint: err.hint(),
            },
            ApiError::RealtimeVersion(_) => {
                ErrorBody::new(codes::REALTIME_VERSION, self.to_string())
            }
            ApiError::NotWebSocket(_) => ErrorBody::new(codes::NOT_WEBSOCKET, self.to_string()),
            ApiError::Broadcast(err) => ErrorBody::new(err.code(), err.to_string()),
            ApiError::Admin(err) => ErrorBody::new(err.code(), err.to_string()),
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3), with PostgREST's wording.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            ApiError::Auth(TokenError::TokenRequired) => Some("Bearer".to_owned()),
            ApiError::Auth(err @ TokenError::NotBearer) => Some(format!(
                "Bearer error=\"invalid_request\", error_description={}",
                quoted(&err.to_string())
            )),
            ApiError::Auth(err) => Some(format!(
                "Bearer error=\"invalid_token\", error_description={}",
                quoted(&err.to_string())
            )),
            _ if self.status() == StatusCode::UNAUTHORIZED => Some("Bearer".to_owned()),
            _ => None,
        }
    }

    /// Server-side failures are logged with their whole cause chain; client errors are not logged,
    /// they are the client's to see.
    pub fn log(&self) {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!("{}", describe(self));
        } else if status.is_server_error() {
            tracing::error!("{}", describe(self));
        }
    }
}

fn auth_code(err: &TokenError) -> &'static str {
    match err {
        TokenError::EmptyToken
        | TokenError::WrongPartCount(_)
        | TokenError::Undecodable
        | TokenError::UnsupportedAlgorithm { .. }
        | TokenError::NoSuitableKey { .. }
        | TokenError::BadSignature
        | TokenError::NotBearer => codes::JWT_INVALID,
        TokenError::TokenRequired => codes::JWT_REQUIRED,
        TokenError::Expired
        | TokenError::NotYetValid
        | TokenError::IssuedInFuture
        | TokenError::NotInAudience
        | TokenError::ClaimsNotObject
        | TokenError::ClaimNotNumber(_)
        | TokenError::RoleNotString
        | TokenError::RoleNotAllowed { .. } => codes::JWT_CLAIMS,
    }
}

fn auth_details(err: &TokenError) -> Option<String> {
    match err {
        TokenError::UnsupportedAlgorithm { alg } => Some(format!(
            "the token is signed with {alg:?}; accepted are HS256, RS256 and ES256"
        )),
        TokenError::NoSuitableKey {
            alg,
            kid: Some(kid),
        } => Some(format!("no {alg} key has the token's kid {kid:?}")),
        TokenError::NoSuitableKey { alg, kid: None } => Some(format!("no {alg} key is configured")),
        // PostgREST's own detail for a signature no key verifies.
        TokenError::BadSignature => Some("None of the keys was able to decode the JWT".to_owned()),
        TokenError::RoleNotAllowed { role } => Some(format!(
            "the token's role {role:?} is not one of the roles requests may run as"
        )),
        _ => None,
    }
}

/// An RFC 9110 quoted-string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The HTTP status of a request whose SQL failed with `sqlstate`, exactly as PostgREST 12 maps it
/// (`mapSQLtoHTTP` in its `Error.hs`), so that clients written against PostgREST see the statuses
/// they expect. Its default matters as much as its rules: a code it has no rule for (a user's
/// `U0001`, classes 22, 23, 42...) is the client's problem, 400. Class 54 (a statement over one of
/// Postgres's limits: too many columns or array dimensions, JSON nested too deep, an index row too
/// large) is 413, and `PTnnn` is status nnn.
pub fn status_for_sqlstate(sqlstate: &str, message: &str, anonymous: bool) -> StatusCode {
    let status =
        |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let class = sqlstate.get(..2).unwrap_or_default();
    match sqlstate {
        "23503" | "23505" => StatusCode::CONFLICT,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        // pg-safeupdate refusing an UPDATE/DELETE without WHERE is the client's doing; any other
        // cardinality violation ("more than one row returned by a subquery") is the server's.
        "21000" if message.ends_with("requires a WHERE clause") => StatusCode::BAD_REQUEST,
        "21000" => StatusCode::INTERNAL_SERVER_ERROR,
        // The token's role does not exist in this database.
        "22023" if message.starts_with("role") && message.ends_with("does not exist") => {
            StatusCode::UNAUTHORIZED
        }
        "53400" => StatusCode::INTERNAL_SERVER_ERROR,
        "57P01" => StatusCode::SERVICE_UNAVAILABLE,
        "P0001" => StatusCode::BAD_REQUEST,
        "42883" if message.starts_with("function xmlagg(") => StatusCode::NOT_ACCEPTABLE,
        "42883" | "42P01" => StatusCode::NOT_FOUND,
        "42P17" => StatusCode::INTERNAL_SERVER_ERROR,
        "42501" if anonymous => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        _ if class == "PT" => sqlstate[2..]
            .parse::<u16>()
            .ok()
            .filter(|code| (100..1000).contains(code))
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, status),
        _ => match class {
            "08" => StatusCode::SERVICE_UNAVAILABLE,
            "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
            "53" => StatusCode::SERVICE_UNAVAILABLE,
            "54" => StatusCode::PAYLOAD_TOO_LARGE,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "55" | "57" | "58" | "F0" | "HV"
            | "P0" | "XX" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Some(challenge) = self
            .www_authenticate()
            .and_then(|value| HeaderValue::from_str(&value).ok())
        {
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        if let ApiError::Rest(RestError::OffsetBeyondTotal { total, .. }) = &self {
            // As PostgREST: the client learns how many rows there are.
            if let Ok(value) = HeaderValue::from_str(&format!("*/{total}")) {
                response.headers_mut().insert(CONTENT_RANGE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::to_bytes;
    use deadpool_postgres::{PoolError, TimeoutType};

    use super::*;

    async fn respond(err: ApiError) -> (StatusCode, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn unknown_route_is_404_with_all_four_fields() {
        let (status, body) = respond(ApiError::RouteNotFound {
            method: Method::GET,
            path: "/nope".into(),
        })
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            serde_json::json!({
                "code": "SLUICE100",
                "message": "no route for GET /nope",
                "details": null,
                "hint": null,
            })
        );
    }

    #[tokio::test]
    async fn wrong_method_is_405() {
        let (status, body) = respond(ApiError::MethodNotAllowed {
            method: Method::POST,
            path: "/health".into(),
        })
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "SLUICE101");
    }

    #[tokio::test]
    async fn pool_failure_is_503_database_unavailable() {
        let err = ApiError::from(DbError::Pool(PoolError::Timeout(TimeoutType::Create)));
        let (status, body) = respond(err).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "SLUICE000");
        assert_eq!(body["hint"], "retry later");
    }

    #[tokio::test]
    async fn database_timeout_is_503_with_its_own_code() {
        let (status, body) = respond(DbError::Timeout(Duration::from_secs(2)).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "SLUICE001");
    }

    #[test]
    fn sqlstates_map_to_postgrest_statuses() {
        let status = |code: &str| status_for_sqlstate(code, "", false).as_u16();
        for (code, expected) in [
            ("23505", 409), // unique_violation
            ("23503", 409), // foreign_key_violation
            ("23502", 400), // not_null_violation
            ("23514", 400), // check_violation
            ("22P02", 400), // invalid_text_representation
            ("22003", 400), // numeric_value_out_of_range
            ("42P01", 404), // undefined_table
            ("42883", 404), // undefined_function
            ("42703", 400), // undefined_column
            ("42P17", 500), // infinite_recursion (an RLS policy that recurses)
            ("44000", 400), // with_check_option_violation
            ("25006", 405), // read_only_sql_transaction: a write under GET
            ("25001", 500), // invalid transaction state
            ("21000", 500), // more than one row returned by a subquery
            ("P0001", 400), // RAISE EXCEPTION
            ("P0002", 500), // no_data_found in PL/pgSQL
            ("PT402", 402), // RAISE ... USING ERRCODE = 'PT402'
            ("PT403", 403),
            ("PT999", 999),
            ("PT099", 500),
            ("PTabc", 500),
            ("U0001", 400), // no rule: PostgREST's default
            ("ZZ999", 400),
            ("40001", 500), // serialization_failure
            ("40P01", 500), // deadlock_detected
            ("57014", 500), // query_canceled (statement_timeout)
            ("57P01", 503), // admin shutdown
            ("53300", 503), // too_many_connections
            ("53400", 500), // configuration_limit_exceeded
            ("54000", 413), // program_limit_exceeded
            ("54001", 413), // statement_too_complex
            ("54011", 413), // too_many_columns
            ("08006", 503),
            ("28000", 403),
            ("0P000", 403),
            ("0L000", 403),
            ("09000", 500),
            ("38000", 500),
            ("HV000", 500),
            ("XX000", 500),
        ] {
            assert_eq!(status(code), expected, "SQLSTATE {code}");
        }
        assert_eq!(
            status_for_sqlstate("21000", "UPDATE requires a WHERE clause", false).as_u16(),
            400
        );
        assert_eq!(
            status_for_sqlstate("42883", "function xmlagg(integer) does not exist", false).as_u16(),
            406
        );
    }

    #[test]
    fn permission_denied_is_401_for_anon_and_403_otherwise() {
        assert_eq!(
            status_for_sqlstate("42501", "permission denied for table t", true),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_for_sqlstate("42501", "permission denied for table t", false),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_for_sqlstate("22023", "role \"admin\" does not exist", false),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_for_sqlstate("22023", "invalid value for parameter", false),
            StatusCode::BAD_REQUEST
        );
    }

    async fn respond_with_headers(
        err: ApiError,
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, challenge, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn invalid_token_is_401_pgrst301_with_a_bearer_challenge() {
        let (status, challenge, body) = respond_with_headers(TokenError::BadSignature.into()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            serde_json::json!({
                "code": "PGRST301",
                "message": "No suitable key or wrong key type",
                "details": "None of the keys was able to decode the JWT",
                "hint": null,
            })
        );
        assert_eq!(
            challenge.as_deref(),
            Some(
                r#"Bearer error="invalid_token", error_description="No suitable key or wrong key type""#
            )
        );
    }

    #[tokio::test]
    async fn refused_claims_are_pgrst303() {
        let (status, challenge, body) = respond_with_headers(TokenError::Expired.into()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "PGRST303");
        assert_eq!(body["message"], "JWT expired");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="invalid_token", error_description="JWT expired""#)
        );
        let role = TokenError::RoleNotAllowed {
            role: "postgres".into(),
        };
        let (_, _, body) = respond_with_headers(role.into()).await;
        assert_eq!(body["code"], "PGRST303");
        assert!(body["details"].as_str().unwrap().contains("\"postgres\""));
    }

    #[tokio::test]
    async fn missing_token_when_anon_is_off_is_pgrst302_with_a_bare_challenge() {
        let (status, challenge, body) =
            respond_with_headers(TokenError::TokenRequired.into()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "PGRST302");
        assert_eq!(body["message"], "Anonymous access is disabled");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
    }

    #[tokio::test]
    async fn non_bearer_authorization_is_an_invalid_request() {
        let (status, challenge, body) = respond_with_headers(TokenError::NotBearer.into()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "PGRST301");
        assert!(challenge
            .unwrap()
            .starts_with(r#"Bearer error="invalid_request""#));
    }

    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
