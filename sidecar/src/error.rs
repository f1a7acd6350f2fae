//! The one place where failures become HTTP responses.
//!
//! Every error body has the shape PostgREST (and so supabase-js) uses: `{code, message, details,
//! hint}`. `code` is a SQLSTATE when Postgres raised the error, PostgREST's own code where we answer
//! as PostgREST does (`PGRST3xx` for tokens), and one of our own `SLUICE…` codes otherwise (grouped
//! like PostgREST's: 0xx database, 1xx request, 5xx internal). Server-side failures are logged in
//! full and shown to the client only as a generic message.

use std::error::Error as StdError;

use axum::http::header::{CONTENT_RANGE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth::TokenError;
use crate::db::tx::TxError;
use crate::db::DbError;
use crate::realtime::api::BroadcastApiError;
use crate::rest::RestError;

pub mod codes {
    pub const DATABASE_UNAVAILABLE: &str = "SLUICE000";
    pub const DATABASE_TIMEOUT: &str = "SLUICE001";
    pub const ROUTE_NOT_FOUND: &str = "SLUICE100";
    pub const METHOD_NOT_ALLOWED: &str = "SLUICE101";
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
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
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
        self.details = details;
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
            ApiError::Database(err) if err.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Transaction(tx) if tx.error.is_unavailable() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Transaction(tx) => match tx.error.server_error() {
                Some(db) => status_for_sqlstate(db.code().code(), db.message(), tx.anonymous),
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
            ApiError::Database(err) if err.is_unavailable() => ErrorBody::unavailable(err),
            ApiError::Database(err) => ErrorBody::internal(err.sqlstate()),
            ApiError::Auth(err) => {
                ErrorBody::new(auth_code(err), err.to_string()).with_details(auth_details(err))
            }
            ApiError::Transaction(tx) if tx.error.is_unavailable() => {
                ErrorBody::unavailable(&tx.error)
            }
            // The client's own request failed (a constraint, a permission, bad input, a RAISE):
            // Postgres's words are the answer, as in PostgREST. A plain 500 is ours to explain.
            ApiError::Transaction(tx) => match tx.error.server_error() {
                Some(db) if self.status() != StatusCode::INTERNAL_SERVER_ERROR => ErrorBody {
                    code: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                    details: db.detail().map(str::to_owned),
                    hint: db.hint().map(str::to_owned),
                },
                _ => ErrorBody::internal(tx.error.sqlstate()),
            },
            ApiError::Internal(_) => ErrorBody::internal(None),
            ApiError::Rest(err) => ErrorBody {
                code: err.code().to_owned(),
                message: err.to_string(),
                details: err.details(),
                hint: err.hint(),
            },
            ApiError::RealtimeVersion(_) => {
                ErrorBody::new(codes::REALTIME_VERSION, self.to_string())
            }
            ApiError::NotWebSocket(_) => ErrorBody::new(codes::NOT_WEBSOCKET, self.to_string()),
            ApiError::Broadcast(err) => ErrorBody::new(err.code(), err.to_string()),
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

/// The HTTP status of a request whose SQL failed with `sqlstate`, as PostgREST maps it (its
/// `Error.hs`), so that clients written against PostgREST see the statuses they expect:
/// 23503/23505 → 409, 42501 → 401 for anon and 403 otherwise, 42P01/42883 → 404, P0001 → 400,
/// 25006 → 405, `RAISE ... USING ERRCODE = 'PT4xx'` → that status. Three changes, each deliberate:
/// - 40001 and 40P01 (serialization failure, deadlock) → 503: the same request may succeed again;
/// - 57014 (canceled, e.g. by `statement_timeout`) → 504;
/// - a SQLSTATE in no class listed here → 500, where PostgREST says 400: an error we have not
///   classified is more likely a server problem than the client's. The classes that are the
///   client's doing (0A, 22, 23, 42, 44) are listed, so their 400 stays.
pub fn status_for_sqlstate(sqlstate: &str, message: &str, anonymous: bool) -> StatusCode {
    match sqlstate {
        "23503" | "23505" => StatusCode::CONFLICT,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        // The token's role does not exist in this database.
        "22023" if message.starts_with("role") && message.ends_with("does not exist") => {
            StatusCode::UNAUTHORIZED
        }
        // pg-safeupdate refusing an UPDATE/DELETE without WHERE: the client's doing.
        "21000" if message.ends_with("requires a WHERE clause") => StatusCode::BAD_REQUEST,
        "40001" | "40P01" => StatusCode::SERVICE_UNAVAILABLE,
        "42501" if anonymous => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        "42P01" | "42883" => StatusCode::NOT_FOUND,
        "42P17" | "53400" => StatusCode::INTERNAL_SERVER_ERROR,
        "57014" => StatusCode::GATEWAY_TIMEOUT,
        "57P01" | "57P02" | "57P03" => StatusCode::SERVICE_UNAVAILABLE,
        "P0001" => StatusCode::BAD_REQUEST,
        _ if sqlstate.starts_with("PT") => sqlstate[2..]
            .parse::<u16>()
            .ok()
            .filter(|code| (100..600).contains(code))
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        _ => match sqlstate.get(..2).unwrap_or_default() {
            "08" | "53" => StatusCode::SERVICE_UNAVAILABLE,
            "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
            "0A" | "22" | "23" | "42" | "44" => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
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

/// An error and its causes on one line, `outer: inner: innermost`. Many errors (tokio-postgres's among
/// them) print only their own layer, so a message without the chain would hide the actual cause; a
/// cause whose text is already shown is skipped, for errors that do print their source.
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = err.source();
    }
    text
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
            ("P0001", 400), // RAISE EXCEPTION
            ("P0002", 500), // no_data_found in PL/pgSQL
            ("PT402", 402), // RAISE ... USING ERRCODE = 'PT402'
            ("PT999", 500),
            ("PTabc", 500),
            ("40001", 503), // serialization_failure: retry
            ("40P01", 503), // deadlock_detected: retry
            ("57014", 504), // statement_timeout
            ("57P01", 503), // admin shutdown
            ("53300", 503), // too_many_connections
            ("53400", 500), // configuration_limit_exceeded
            ("08006", 503),
            ("28000", 403),
            ("0P000", 403),
            ("XX000", 500),
            ("ZZ999", 500), // unknown: ours, not the client's
        ] {
            assert_eq!(status(code), expected, "SQLSTATE {code}");
        }
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

    #[test]
    fn describe_walks_the_cause_chain_without_repeating_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper: {0}")]
        struct Wrapper(#[source] Outer);

        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe(&Outer(inner)), "outer: refused");
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe(&Wrapper(Outer(inner))), "wrapper: outer: refused");
    }
}
