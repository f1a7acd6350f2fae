//! `/rest/v1/`: the OpenAPI document, reads of tables and views, and writes to them. The work is in `crate::rest`
//! (parse → plan → SQL → response); this only wires it to the pool and the schema cache.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::drain::read_at_most;
use super::AppState;
use crate::auth::Identity;
use crate::db::tx::Access;
use crate::http::error::ApiError;
use crate::rest::execute::{self, content_profile, HttpRequest, Mode};
use crate::rest::parse::{
    self, Explain, MediaType, Output, ParseError, RestRequest, Target, Transaction,
};
use crate::rest::plan::write::{self, WriteMethod};
use crate::rest::{plan, response, sql, RestError};
use crate::schema::{openapi_for_schema, Privileges, SchemaCache};

/// `GET /rest/v1/`: the OpenAPI document of the schema `Accept-Profile` names (default: the
/// first exposed schema), as the request's role may use it. The token is checked as for any
/// request, and the role's privileges are asked of Postgres under that role, in one read-only
/// request transaction.
pub(super) async fn openapi(
    State(state): State<AppState>,
    identity: Identity,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (media, output, profile) = parse::parse_root_request(&headers).map_err(RestError::from)?;
    // PostgREST's root answers the OpenAPI media type, JSON or anything (`*/*`), nothing else.
    if media != MediaType::OpenApi && media != MediaType::Json || output != Output::default() {
        let requested = match output.explain {
            Some(explain) => explain.mime(media),
            None => media.mime().to_owned(),
        };
        return Err(RestError::from(ParseError::NotAcceptable {
            requested: vec![requested],
        })
        .into());
    }
    let cache = state.schema.current();
    let schema = plan::schema_for(&cache, profile.as_deref())?;
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

    let request = HttpRequest::new(&identity, &Method::GET, &uri, &headers);
    let row = execute::execute(
        &state.pool,
        &cache,
        request,
        Mode::DEFAULT,
        (&statement.sql, &statement.params),
        "the privileges statement returned no row",
    )
    .await?;
    let answer = execute::text_column(&row, 0)?.ok_or(ApiError::Internal("NULL privileges"))?;
    let privileges = Privileges::from_json(&answer)
        .map_err(|_| ApiError::Internal("the privileges statement's answer is unreadable"))?;

    let host = headers
        .get("host")
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let url = format!("http://{host}{}", uri.path().trim_end_matches('/'));
    let document = openapi_for_schema(&cache, schema, &url, &privileges).ok_or_else(not_exposed)?;
    // PostgREST names the document's media type whatever the client accepted.
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openapi+json; charset=utf-8"),
    );
    Ok(response)
}

/// `GET`/`HEAD /rest/v1/{relation}`: one read-only transaction, one statement whose single row
/// carries the body Postgres already shaped.
pub(super) async fn read(
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
    let output = request.output;
    let cache = state.schema.current();
    let plan = plan::plan_read(&cache, &relation, request, state.max_rows)?;
    let statement = sql::read(&plan);

    let request = HttpRequest::new(&identity, &method, &uri, &headers);
    if let Some(explain) = output.explain {
        let sql = (statement.sql.as_str(), &statement.params);
        return explained(
            &state,
            &cache,
            request,
            Access::ReadOnly,
            sql,
            explain,
            plan.media,
        )
        .await;
    }
    let sql = shaped(statement.sql, output, &["page_count", "total"]);
    let row = execute::execute(
        &state.pool,
        &cache,
        request,
        Mode::DEFAULT,
        (&sql, &statement.params),
        "the read statement returned no row",
    )
    .await?;
    let result = execute::read_result(&row)?;
    let profile = content_profile(&cache, profile_given, &plan.root.schema);
    let response = response::read_response(&plan, &method, result, profile)?;
    Ok(stripped_type(response, output, plan.media))
}

/// `POST`/`PATCH`/`PUT`/`DELETE /rest/v1/{relation}`: the body is read up to `--max-body-bytes`,
/// checked to be JSON of the right shape, planned, and written in one statement of one
/// read-write transaction (rolled back with `Prefer: tx=rollback`, answered all the same).
pub(super) async fn write(
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
    let bytes = read_at_most(body, limit)
        .await
        .ok_or(RestError::BodyTooLarge { limit })?;
    let payload = write::parse_payload(&bytes, write_method)?;
    let rows = payload_array(&bytes, write_method)?;
    let profile_given = request.profile.is_some();
    let rollback = request.prefer.transaction == Some(Transaction::Rollback);
    let output = request.output;
    let cache = state.schema.current();
    let plan = write::plan_write(
        &cache,
        &relation,
        write_method,
        request,
        &payload,
        state.writes.allow_unfiltered,
    )?;
    let statement = sql::write_shaped(&plan, &rows, output.strip_nulls);

    let request = HttpRequest::new(&identity, &method, &uri, &headers);
    if let Some(explain) = output.explain {
        let sql = (statement.sql.as_str(), &statement.params);
        return explained(
            &state,
            &cache,
            request,
            Access::ReadWrite,
            sql,
            explain,
            plan.media,
        )
        .await;
    }
    let row = execute::execute(
        &state.pool,
        &cache,
        request,
        Mode::rolled_back_if(rollback),
        (&statement.sql, &statement.params),
        "the write statement returned no row",
    )
    .await?;
    let result = execute::write_result(&row)?;
    let profile = content_profile(&cache, profile_given, &plan.schema);
    let response = response::write_response(&plan, write_method, &relation, result, profile)?;
    Ok(stripped_type(response, output, plan.media))
}

/// The statement's SQL as the output asks: its body without null-valued keys for
/// `nulls=stripped` (`rest` names the statement's other columns).
pub(super) fn shaped(sql: String, output: Output, rest: &[&str]) -> String {
    if output.strip_nulls {
        sql::output::strip_nulls(&sql, rest)
    } else {
        sql
    }
}

/// `Content-Type` of a `nulls=stripped` answer, as PostgREST names it.
pub(super) fn stripped_type(mut response: Response, output: Output, media: MediaType) -> Response {
    let stripped = match media {
        _ if !output.strip_nulls => None,
        MediaType::Json => Some("application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"),
        MediaType::SingleObject => {
            Some("application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8")
        }
        _ => None,
    };
    if let Some(stripped) = stripped {
        if response.headers().contains_key(CONTENT_TYPE) {
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(stripped));
        }
    }
    response
}

/// 200 with the statement's plan (`Accept: application/vnd.pgrst.plan…`), its `Content-Type` the
/// plan media type with its target and options, as PostgREST answers.
pub(super) async fn explained(
    state: &AppState,
    cache: &SchemaCache,
    request: HttpRequest<'_>,
    access: Access,
    statement: (&str, &sql::Params),
    explain: Explain,
    media: MediaType,
) -> Result<Response, ApiError> {
    let sql = sql::output::explain(statement.0, explain);
    let body = execute::explain(&state.pool, cache, request, access, (&sql, statement.1)).await?;
    let mut response = Response::new(Body::from(body));
    let content_type = format!("{}; charset=utf-8", explain.mime(media));
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    Ok(response)
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
    let mut request = parse::parse_request(method, target, query, headers)?;
    // The plan media types only when the server allows them (`--db-plan-enabled`, PostgREST's
    // `db-plan-enabled`); else they are passed over for the next range `Accept` names, and
    // PGRST107 when none is left.
    if request.output.explain.is_some() && !state.plan_enabled {
        (request.media, request.output) = parse::negotiate_without_plans(headers)?;
    }
    state.query_limits.check(&request)?;
    request.aggregates_enabled = state.aggregates_enabled;
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
