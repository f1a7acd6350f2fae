//! `/admin/v1/webhooks`: webhooks managed over HTTP by `service_role` (any other role: 403). Each
//! route maps onto one of the SQL functions (`webhooks::admin` holds the SQL), run as
//! service_role in one transaction, so the rules and errors are those of SQL:
//!
//! * `GET    /admin/v1/webhooks`                         every definition, with its cursor position
//! * `POST   /admin/v1/webhooks`                         create: `{name, target, tables, events?,
//!   secret?, headers?, filter?, timeout?, max_attempts?, retry_delay?, on_dead?}` → 201
//!   `{name, secret}`
//! * `GET    /admin/v1/webhooks/{name}`                  one definition
//! * `PATCH  /admin/v1/webhooks/{name}`                  alter (same fields, and `active`)
//! * `DELETE /admin/v1/webhooks/{name}`                  drop → 204
//! * `POST   /admin/v1/webhooks/{name}/retry`            `{from_position?}` → `{from_position}`
//! * `POST   /admin/v1/webhooks/{name}/rotate-secret`    `{secret?, keep_old?}` → `{secret}`
//! * `GET    /admin/v1/webhooks/{name}/deliveries?limit=N`  the latest attempts (100 by default)

use std::collections::HashMap;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use super::AppState;
use crate::auth::Identity;
use crate::db::tx::{self, Caller, RequestContext, Statement};
use crate::db::DbError;
use crate::http::error::ApiError;
use crate::rest::RestError;
use crate::webhooks::admin as sql;

const ADMIN_ROLE: &str = "service_role";
const DEFAULT_DELIVERIES: i32 = 100;
const MAX_DELIVERIES: i32 = 10_000;

/// What the admin API refuses before any SQL runs.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("webhooks are managed by service_role; this token's role is {0}")]
    NotServiceRole(String),
    #[error("the body must be a JSON object: {0}")]
    InvalidBody(String),
    #[error("limit must be a number from 1 to {MAX_DELIVERIES}")]
    InvalidLimit,
}

impl AdminError {
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::NotServiceRole(_) => "SLUICE140",
            AdminError::InvalidBody(_) => "SLUICE141",
            AdminError::InvalidLimit => "SLUICE142",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            AdminError::NotServiceRole(_) => 403,
            AdminError::InvalidBody(_) | AdminError::InvalidLimit => 400,
        }
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/webhooks", get(list).post(create))
        .route(
            "/admin/v1/webhooks/{name}",
            get(show).patch(alter).delete(drop_webhook),
        )
        .route("/admin/v1/webhooks/{name}/retry", post(retry))
        .route("/admin/v1/webhooks/{name}/rotate-secret", post(rotate))
        .route("/admin/v1/webhooks/{name}/deliveries", get(deliveries))
}

/// The caller and the request line, extracted once per request; every route runs its SQL through
/// `run`, which first checks that the caller is service_role.
struct Admin {
    identity: Identity,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let identity = Identity::from_request_parts(parts, state).await?;
        Ok(Admin {
            identity,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

impl Admin {
    fn check(&self) -> Result<(), ApiError> {
        if self.identity.role == ADMIN_ROLE {
            Ok(())
        } else {
            Err(AdminError::NotServiceRole(self.identity.role.clone()).into())
        }
    }

    /// Runs the statements in one transaction as service_role; returns the last one's first
    /// column of its first row, as text.
    async fn run(
        &self,
        state: &AppState,
        statements: &[Statement<'_>],
    ) -> Result<Option<String>, ApiError> {
        self.check()?;
        let client = state.pool.get().await.map_err(DbError::Pool)?;
        let caller = Caller {
            role: ADMIN_ROLE,
            claims: &self.identity.claims_text,
            anonymous: false,
        };
        let context = RequestContext::new(caller, &self.method, self.uri.path(), &self.headers);
        let rows = tx::run(&client, &context, statements).await?;
        Ok(rows
            .last()
            .and_then(|rows| rows.first())
            .and_then(|row| row.get::<_, Option<String>>(0)))
    }

    /// The body, once the caller is known to be service_role.
    async fn body(&self, state: &AppState, body: Body) -> Result<Value, ApiError> {
        self.check()?;
        body_object(state, body).await
    }
}

/// The one definition of a `LIST` result.
fn first_of(list: Option<String>) -> Option<String> {
    list.and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|list| list.get(0).cloned())
        .map(|value| value.to_string())
}

fn json(status: StatusCode, text: Option<String>) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        text.unwrap_or_else(|| "null".to_owned()),
    )
        .into_response()
}

async fn body_object(state: &AppState, body: Body) -> Result<Value, ApiError> {
    let limit = state.writes.max_body_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| RestError::BodyTooLarge { limit })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(AdminError::InvalidBody(format!("got {other}")).into()),
        Err(err) => Err(AdminError::InvalidBody(err.to_string()).into()),
    }
}

async fn list(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let all: Option<String> = None;
    let list = Statement {
        sql: sql::LIST,
        params: &[&all],
    };
    Ok(json(StatusCode::OK, admin.run(&state, &[list]).await?))
}

async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let one = Some(name.clone());
    let statements = [
        Statement {
            sql: sql::EXISTS,
            params: &[&name],
        },
        Statement {
            sql: sql::LIST,
            params: &[&one],
        },
    ];
    let list = admin.run(&state, &statements).await?;
    Ok(json(StatusCode::OK, first_of(list)))
}

async fn create(
    State(state): State<AppState>,
    admin: Admin,
    body: Body,
) -> Result<Response, ApiError> {
    let body = admin.body(&state, body).await?;
    let text = sql::create();
    let create = Statement {
        sql: &text,
        params: &[&body],
    };
    Ok(json(
        StatusCode::CREATED,
        admin.run(&state, &[create]).await?,
    ))
}

async fn alter(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = admin.body(&state, body).await?;
    let text = sql::alter();
    let one = Some(name.clone());
    let statements = [
        Statement {
            sql: sql::EXISTS,
            params: &[&name],
        },
        Statement {
            sql: &text,
            params: &[&body, &name],
        },
        Statement {
            sql: sql::LIST,
            params: &[&one],
        },
    ];
    let list = admin.run(&state, &statements).await?;
    Ok(json(StatusCode::OK, first_of(list)))
}

async fn drop_webhook(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let statements = [
        Statement {
            sql: sql::EXISTS,
            params: &[&name],
        },
        Statement {
            sql: sql::DROP,
            params: &[&name],
        },
    ];
    admin.run(&state, &statements).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn retry(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    named_call(&state, &admin, &name, body, sql::RETRY).await
}

async fn rotate(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    named_call(&state, &admin, &name, body, sql::ROTATE).await
}

/// A call on one webhook taking the body (`$1`) and its name (`$2`).
async fn named_call(
    state: &AppState,
    admin: &Admin,
    name: &String,
    body: Body,
    call: &str,
) -> Result<Response, ApiError> {
    let body = admin.body(state, body).await?;
    let statements = [
        Statement {
            sql: sql::EXISTS,
            params: &[name],
        },
        Statement {
            sql: call,
            params: &[&body, name],
        },
    ];
    Ok(json(StatusCode::OK, admin.run(state, &statements).await?))
}

async fn deliveries(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    admin.check()?;
    let limit = match query.get("limit") {
        None => DEFAULT_DELIVERIES,
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=MAX_DELIVERIES).contains(n))
            .ok_or(AdminError::InvalidLimit)?,
    };
    let statements = [
        Statement {
            sql: sql::EXISTS,
            params: &[&name],
        },
        Statement {
            sql: sql::DELIVERIES,
            params: &[&name, &limit],
        },
    ];
    Ok(json(StatusCode::OK, admin.run(&state, &statements).await?))
}
