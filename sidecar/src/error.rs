//! The one place where failures become HTTP responses.
//!
//! Every error body has the shape PostgREST (and so supabase-js) uses: `{code, message, details,
//! hint}`. `code` is a SQLSTATE when Postgres raised the error, and one of our own `SLUICE…` codes
//! otherwise (grouped like PostgREST's: 0xx database, 1xx request, 5xx internal). Server-side
//! failures are logged in full and shown to the client only as a generic message.

use std::error::Error as StdError;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::db::DbError;

pub mod codes {
    pub const DATABASE_UNAVAILABLE: &str = "SLUICE000";
    pub const DATABASE_TIMEOUT: &str = "SLUICE001";
    pub const ROUTE_NOT_FOUND: &str = "SLUICE100";
    pub const METHOD_NOT_ALLOWED: &str = "SLUICE101";
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
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Database(err) if err.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            ApiError::Database(DbError::Timeout(_)) => ErrorBody::new(
                codes::DATABASE_TIMEOUT,
                "the database did not answer in time",
            )
            .with_hint("retry later"),
            ApiError::Database(err) if err.is_unavailable() => {
                ErrorBody::new(codes::DATABASE_UNAVAILABLE, "the database is unavailable")
                    .with_hint("retry later")
            }
            // Not an outage, so a bug or a broken invariant: the cause goes to the log only.
            ApiError::Database(err) => ErrorBody::new(
                err.sqlstate().unwrap_or(codes::INTERNAL),
                "internal error: the server log has the details",
            ),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        (self.status(), Json(self.body())).into_response()
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
