//! `/rest/v1/rpc/{function}`: calls of exposed functions. The work is in `crate::rest` (parse →
//! `plan::rpc` → `sql::rpc` → response); this only wires it to the pool and the schema cache.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::drain::read_at_most;
use super::rest::{explained, parse_within_limits, shaped, stripped_type};
use super::AppState;
use crate::auth::Identity;
use crate::db::tx::Access;
use crate::http::error::ApiError;
use crate::rest::execute::{self, content_profile, HttpRequest, Mode};
use crate::rest::parse::{Count, MediaType, Target};
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
    let body = read_at_most(body, limit)
        .await
        .ok_or(RestError::BodyTooLarge { limit })?;
    let profile_given = request.profile.is_some();
    let output = request.output;
    let cache = state.schema.current();
    let plan = rpc_plan::plan_call(&cache, &function, &method, request, &body, state.max_rows)?;
    let statement = rpc_sql::call(&plan);

    let request = HttpRequest::new(&identity, &method, &uri, &headers);
    let access = if plan.read_only {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let media = match &plan.result {
        CallResult::Rows { read, .. } => read.media,
        _ => MediaType::Json,
    };
    if let Some(explain) = output.explain {
        let sql = (statement.sql.as_str(), &statement.params);
        return explained(&state, &cache, request, access, sql, explain, media).await;
    }
    let mode = Mode {
        access: Some(access),
        ..Mode::rolled_back_if(plan.rollback)
    };
    let sql = shaped(statement.sql, output, &["page_count", "total"]);
    let row = execute::execute(
        &state.pool,
        &cache,
        request,
        mode,
        (&sql, &statement.params),
        "the call statement returned no row",
    )
    .await?;
    let result = execute::read_result(&row)?;
    let profile = content_profile(&cache, profile_given, &plan.schema);

    let mut response = match &plan.result {
        CallResult::Rows { read, .. } => response::read_response(read, &method, result, profile)?,
        _ => {
            // One row for a scalar or a void call; a set's page starts at its offset.
            let offset = match plan.result {
                CallResult::Scalar { set: true } | CallResult::Records { set: true } => {
                    plan.page.offset
                }
                _ => 0,
            };
            let status = response::status(offset, result.page_count, result.total)?;
            let range = response::content_range(offset, result.page_count, result.total);
            let mut response = if matches!(plan.result, CallResult::Void) {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            } else {
                let body = if method == Method::HEAD {
                    Body::empty()
                } else {
                    Body::from(result.body.unwrap_or_else(|| "null".to_owned()))
                };
                let mut response = Response::new(body);
                *response.status_mut() = status;
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                response
            };
            // Digits, `-`, `/` and `*` only: always a valid header value.
            if let Ok(range) = HeaderValue::from_str(&range) {
                response.headers_mut().insert("content-range", range);
            }
            response
        }
    };
    if let Some(profile) = profile.and_then(|p| HeaderValue::from_str(p).ok()) {
        response.headers_mut().insert("content-profile", profile);
    }
    // As PostgREST: the count, transaction, handling and max-affected preferences given.
    let mut applied = Vec::new();
    if let Some(count) = plan.count {
        applied.push(match count {
            Count::Exact => "count=exact".to_owned(),
            Count::Planned => "count=planned".to_owned(),
            Count::Estimated => "count=estimated".to_owned(),
        });
    }
    if plan.rollback {
        applied.push("tx=rollback".to_owned());
    }
    if let Some(max) = plan.max_affected {
        applied.push("handling=strict".to_owned());
        applied.push(format!("max-affected={max}"));
    }
    if applied.is_empty() {
        response.headers_mut().remove("preference-applied");
    } else if let Ok(applied) = HeaderValue::from_str(&applied.join(", ")) {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(stripped_type(response, output, media))
}
