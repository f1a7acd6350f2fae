//! `/rest/v1/rpc/{function}`: calls of exposed functions. The work is in `crate::rest` (parse →
//! `plan::rpc` → `sql::rpc` → response); this only wires it to the pool and the schema cache.

use axum::body::{to_bytes, Body};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::rest::parse_within_limits;
use super::AppState;
use crate::auth::Identity;
use crate::db::tx::Access;
use crate::http::error::ApiError;
use crate::rest::execute::{self, content_profile, HttpRequest, Mode};
use crate::rest::parse::Target;
use crate::rest::plan::rpc::{self as rpc_plan, CallResult};
use crate::rest::response;
use crate::rest::sql::rpc as rpc_sql;
use crate::rest::RestError;

/// `GET`/`HEAD` (arguments in the query string, read-only) and `POST` (arguments in the body,
/// at most `--max-body-bytes`; read-only unless the function is VOLATILE): one transaction, one
/// statement.
pub(super) async fn call(
    State(state): State<AppState>,
    identity: Identity,
    method: Method,
    function: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path(function) = function.map_err(|_| RestError::InvalidPath)?;
    let query = uri.query().unwrap_or("");
    let request = parse_within_limits(&state, &method, Target::Function, query, &headers)?;
    let limit = state.writes.max_body_bytes;
    // As for writes: any failure to read the body (in practice: the limit) is answered as too
    // large.
    let body = to_bytes(body, limit)
        .await
        .map_err(|_| RestError::BodyTooLarge { limit })?;
    let profile_given = request.profile.is_some();
    let cache = state.schema.current();
    let plan = rpc_plan::plan_call(&cache, &function, &method, request, &body, state.max_rows)?;
    let statement = rpc_sql::call(&plan);

    let request = HttpRequest::new(&identity, &method, &uri, &headers);
    let access = if plan.read_only {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let mode = Mode {
        access: Some(access),
        ..Mode::rolled_back_if(plan.rollback)
    };
    let row = execute::execute(
        &state.pool,
        &cache,
        request,
        mode,
        (&statement.sql, &statement.params),
        "the call statement returned no row",
    )
    .await?;
    let result = execute::read_result(&row)?;
    let profile = content_profile(&cache, profile_given, &plan.schema);

    let mut response = match &plan.result {
        CallResult::Rows { read, .. } => response::read_response(read, &method, result, profile)?,
        CallResult::Void => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        CallResult::Scalar { .. } | CallResult::Records { .. } => {
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(result.body.unwrap_or_else(|| "null".to_owned()))
            };
            let mut response = Response::new(body);
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
    };
    if let Some(profile) = profile.and_then(|p| HeaderValue::from_str(p).ok()) {
        response.headers_mut().insert("content-profile", profile);
    }
    if plan.rollback {
        response.headers_mut().append(
            "preference-applied",
            HeaderValue::from_static("tx=rollback"),
        );
    }
    Ok(response)
}
