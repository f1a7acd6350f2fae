//! `/rest/v1/`: the OpenAPI document, reads of tables and views, and writes to them. The work is in `crate::rest`
//! (parse → plan → SQL → response); this only wires it to the pool and the schema cache.

use axum::body::{to_bytes, Body};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::statement::{int8_column, read_result, run_one, text_column};
use super::AppState;
use crate::auth::Identity;
use crate::db::tx::{End, RequestContext};
use crate::db::DbError;
use crate::error::ApiError;
use crate::rest::parse::{self, RestRequest, Target, Transaction};
use crate::rest::plan::write::{self, WriteMethod};
use crate::rest::response::{self, WriteResult};
use crate::rest::{plan, sql, RestError};
use crate::schema::{openapi_for_schema, Privileges};

/// `GET /rest/v1/`: the OpenAPI document of the schema `Accept-Profile` names (default: the
/// first exposed schema), as the request's role may use it. The token is checked as for any
/// request, and the role's privileges are asked of Postgres under that role, in one read-only
/// request transaction.
pub async fn openapi(
    State(state): State<AppState>,
    identity: Identity,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = parse::parse_request(&Method::GET, Target::Relation, "", &headers)
        .map_err(RestError::from)?;
    let cache = state.schema.current();
    let schema = plan::schema_for(&cache, request.profile.as_deref())?;
    let not_exposed = || RestError::SchemaNotExposed {
        schema: schema.to_owned(),
        exposed: cache.exposed_schemas().to_vec(),
    };
    let objects = cache.schema(schema).ok_or_else(not_exposed)?;
    let tables: Vec<u32> = objects.tables.values().map(|table| table.oid).collect();
    let functions: Vec<u32> = objects
        .functions
        .values()
        .flatten()
        .map(|function| function.oid)
        .collect();
    let statement = sql::privileges(schema, &tables, &functions);

    let mut context = RequestContext::new(&identity, &Method::GET, uri.path(), &headers);
    context.statement_timeout = cache.statement_timeout(&identity.role);
    let row = run_one(
        &state,
        &context,
        &statement.sql,
        &statement.params,
        "the privileges statement returned no row",
        ApiError::from,
    )
    .await?;
    let answer = text_column(&row, 0)?.ok_or(ApiError::Internal("NULL privileges"))?;
    let privileges = Privileges::from_json(&answer)
        .map_err(|_| ApiError::Internal("the privileges statement's answer is unreadable"))?;

    let host = headers
        .get("host")
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let url = format!("http://{host}{}", uri.path().trim_end_matches('/'));
    let document = openapi_for_schema(&cache, schema, &url, &privileges).ok_or_else(not_exposed)?;
    Ok(Json(document).into_response())
}

/// `GET`/`HEAD /rest/v1/{relation}`: one read-only transaction, one statement whose single row
/// carries the body Postgres already shaped.
pub async fn read(
    State(state): State<AppState>,
    identity: Identity,
    method: Method,
    relation: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(relation) = relation.map_err(|_| RestError::InvalidPath)?;
    let query = uri.query().unwrap_or("");
    let request = parse_within_limits(&state, &method, Target::Relation, query, &headers)?;
    let profile_given = request.profile.is_some();
    let cache = state.schema.current();
    let plan = plan::plan_read(&cache, &relation, request, state.max_rows)?;
    let statement = sql::read(&plan);

    let mut context = RequestContext::new(&identity, &method, uri.path(), &headers);
    context.statement_timeout = cache.statement_timeout(&identity.role);
    let row = run_one(
        &state,
        &context,
        &statement.sql,
        &statement.params,
        "the read statement returned no row",
        ApiError::from,
    )
    .await?;
    let result = read_result(&row)?;
    let content_profile =
        (profile_given || cache.exposed_schemas().len() > 1).then_some(plan.root.schema.as_str());
    Ok(response::read_response(
        &plan,
        &method,
        result,
        content_profile,
    )?)
}

/// `POST`/`PATCH`/`PUT`/`DELETE /rest/v1/{relation}`: the body is read up to `--max-body-bytes`,
/// checked to be JSON of the right shape, planned, and written in one statement of one
/// read-write transaction (rolled back with `Prefer: tx=rollback`, answered all the same).
pub async fn write(
    State(state): State<AppState>,
    identity: Identity,
    method: Method,
    relation: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path(relation) = relation.map_err(|_| RestError::InvalidPath)?;
    let write_method = match method {
        Method::POST => WriteMethod::Post,
        Method::PATCH => WriteMethod::Patch,
        Method::PUT => WriteMethod::Put,
        Method::DELETE => WriteMethod::Delete,
        _ => {
            return Err(RestError::NotImplemented {
                what: "this method",
            }
            .into())
        }
    };
    let query = uri.query().unwrap_or("");
    let request = parse_within_limits(&state, &method, Target::Relation, query, &headers)?;
    let limit = state.writes.max_body_bytes;
    // Any failure to read the body (in practice: the limit) is answered as too large.
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| RestError::BodyTooLarge { limit })?;
    let payload = write::parse_payload(&bytes, write_method)?;
    let rows = payload_array(&bytes, write_method)?;
    let profile_given = request.profile.is_some();
    let rollback = request.prefer.transaction == Some(Transaction::Rollback);
    let cache = state.schema.current();
    let plan = write::plan_write(
        &cache,
        &relation,
        write_method,
        request,
        &payload,
        state.writes.allow_unfiltered,
    )?;
    let statement = sql::write(&plan, &rows);

    let mut context = RequestContext::new(&identity, &method, uri.path(), &headers);
    context.statement_timeout = cache.statement_timeout(&identity.role);
    if rollback {
        context.end = End::Rollback;
    }
    let row = run_one(
        &state,
        &context,
        &statement.sql,
        &statement.params,
        "the write statement returned no row",
        |err| match &err.error {
            DbError::Query(query) => {
                if let Some(rows) = sql::not_one_row(query) {
                    ApiError::Rest(RestError::NotOneRow { rows })
                } else if let Some(affected) = sql::too_many_rows(query) {
                    ApiError::Rest(RestError::MaxAffectedExceeded { affected })
                } else {
                    err.into()
                }
            }
            _ => err.into(),
        },
    )
    .await?;
    let result = WriteResult {
        body: text_column(&row, 0)?,
        affected: int8_column(&row, 1)?.ok_or(ApiError::Internal("a NULL row count"))?,
        location: text_column(&row, 2)?,
    };
    let content_profile =
        (profile_given || cache.exposed_schemas().len() > 1).then_some(plan.schema.as_str());
    Ok(response::write_response(
        &plan,
        write_method,
        &relation,
        result,
        content_profile,
    )?)
}

/// The request as parsed, refused (`SLUICE115`) when it asks for more than `--max-query-*`
/// allow: before planning, so an oversized request costs neither the planner nor Postgres.
pub(super) fn parse_within_limits(
    state: &AppState,
    method: &Method,
    target: Target,
    query: &str,
    headers: &HeaderMap,
) -> Result<RestRequest, RestError> {
    let request = parse::parse_request(method, target, query, headers)?;
    state.query_limits.check(&request)?;
    Ok(request)
}

/// The body as the JSON array the statement reads: an object is wrapped, not re-serialized, so
/// that numbers keep every digit. DELETE sends an empty array.
fn payload_array(bytes: &[u8], method: WriteMethod) -> Result<String, RestError> {
    if method == WriteMethod::Delete {
        return Ok("[]".to_owned());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| RestError::InvalidBody {
        details: "the body is not UTF-8".to_owned(),
    })?;
    Ok(if text.trim_start().starts_with('[') {
        text.to_owned()
    } else {
        format!("[{text}]")
    })
}
