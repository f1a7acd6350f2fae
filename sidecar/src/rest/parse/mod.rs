//! A PostgREST request's query string and headers into a typed [`RestRequest`]: pure, no I/O,
//! no schema.
//!
//! # Entry points
//!
//! - [`parse_request`]`(method, target, query, headers)`: any request on `/rest/v1/<name>`
//!   ([`Target::Relation`]) or `/rest/v1/rpc/<name>` ([`Target::Function`]).
//! - [`parse_read`]`(query, headers)`: the same for `GET /rest/v1/<table>`.
//! - [`parse_filter`]`(key, value)`: one filter parameter, for a planner that wants to re-read a
//!   function argument as a filter or the other way round (see [`RestRequest::params`]).
//!
//! `query` is the raw query string (with or without its `?`), still percent-encoded.
//!
//! # What is kept for later
//!
//! Names (columns, relations, aliases, hints, casts, schemas) stay strings: the planner resolves
//! them against the schema cache and quotes them. Values stay strings: they become bound
//! parameters, and Postgres reads them as the column's type. Nothing here decides whether a
//! request is allowed; errors here are only about form ([`ParseError`] lists them with codes).
//!
//! # Where PostgREST is lenient and we are not
//!
//! Trailing text after a complete value (`is.nullx`, `in.(1)x`, `select=a)b`) and unreadable
//! `limit`/`offset` values are errors rather than silently ignored; empty names are errors; a
//! hint or join type given twice is an error; nesting is limited to [`MAX_DEPTH`].
//!
//! # Bounds
//!
//! [`QueryLimits::check`] refuses a parsed request that asks for too much (filters, or/and
//! branches, select items, order terms, nesting), before it costs the database anything.

mod cursor;
mod decode;
mod error;
mod field;
mod filter;
mod limits;
mod logic;
mod media;
mod order;
mod page;
mod prefer;
mod query;
mod select;

#[cfg(test)]
mod tests;

use axum::http::{HeaderMap, Method};

pub use cursor::MAX_DEPTH;
pub use decode::MAX_QUERY_LEN;
pub use error::{ParseError, RangeError};
pub use field::{Field, JsonArrow, JsonOperand, JsonStep};
pub use filter::{Condition, FtsOperator, IsValue, Operation, Operator, Quantifier};
pub use limits::{Limit, QueryLimits};
pub use logic::{LogicOperator, LogicTree};
pub use media::{Explain, MediaType, Output};
pub use order::{Direction, NullsOrder, OrderTerm};
pub use page::Page;
pub use prefer::{Count, Handling, Missing, Preferences, Representation, Resolution, Transaction};
pub use query::parse_filter;
pub use select::{AggregateFunction, Embed, JoinType, SelectAggregate, SelectColumn, SelectItem};

/// Something that applies at an embed path: the names of the embeddings from the top level down
/// (`author.comments.order=…` has the path `["author", "comments"]`); empty for the top level.
/// Each name is as the client wrote it, a relation or an alias; the planner matches it to the
/// select tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoped<T> {
    pub path: Vec<String>,
    pub item: T,
}

/// What the path of a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A table or view: `/rest/v1/<name>`.
    Relation,
    /// A function: `/rest/v1/rpc/<name>`.
    Function,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRequest {
    /// `select=`; `[Star]` when absent, empty for `select=`.
    pub select: Vec<SelectItem>,
    /// Filter parameters, ANDed together at their path.
    pub filters: Vec<Scoped<Condition>>,
    /// `or=`/`and=` parameters, also ANDed with everything else at their path.
    pub logic: Vec<Scoped<LogicTree>>,
    /// `order=` parameters in the order given; several at one path concatenate.
    pub order: Vec<Scoped<Vec<OrderTerm>>>,
    /// The top level's rows: `limit`/`offset` intersected with the `Range` header (GET only).
    pub page: Page,
    /// `comments.limit=`/`comments.offset=`, one entry per embed path.
    pub embedded_pages: Vec<Scoped<Page>>,
    /// `columns=`: which payload keys an insert or update uses.
    pub columns: Option<Vec<String>>,
    /// `on_conflict=`: the unique columns an upsert conflicts on.
    pub on_conflict: Option<Vec<String>>,
    /// Function reads only: parameters whose value is not an operator expression, taken as
    /// named arguments (PostgREST's rule). Key and value as decoded.
    pub args: Vec<(String, String)>,
    /// Every parameter that is not reserved, decoded, in order: the raw material of `filters`
    /// and `args`, for a planner that knows the function's parameters and wants to decide.
    pub params: Vec<(String, String)>,
    pub prefer: Preferences,
    pub media: MediaType,
    /// `nulls=stripped` and the plan media types (see `media::Output`).
    pub output: Output,
    /// `Accept-Profile` (GET, HEAD, …) or `Content-Profile` (POST, PATCH, PUT, DELETE): the
    /// schema asked for, unchecked.
    pub profile: Option<String>,
    /// Aggregates in `select` are allowed by the server's configuration (set after parsing;
    /// the planner also honours the database's `pgrst.db_aggregates_enabled`).
    pub aggregates_enabled: bool,
}

/// `GET /rest/v1/<table>?<query>`.
pub fn parse_read(query: &str, headers: &HeaderMap) -> Result<RestRequest, ParseError> {
    parse_request(&Method::GET, Target::Relation, query, headers)
}

/// Any request; the method decides which headers count (`Range` on GET only, `Content-Profile`
/// on writes) and whether `limit`/`offset` are allowed (not on PUT).
pub fn parse_request(
    method: &Method,
    target: Target,
    query: &str,
    headers: &HeaderMap,
) -> Result<RestRequest, ParseError> {
    let function_read =
        target == Target::Function && (method == Method::GET || method == Method::HEAD);
    let mut params = query::parse_query(query, function_read)?;

    let top_query_page = params.pages.remove(&Vec::new()).unwrap_or_default();
    if method == Method::PUT && top_query_page != Page::default() {
        return Err(ParseError::PutLimitNotAllowed);
    }
    let range = match headers.get("range") {
        Some(value) if method == Method::GET => page::parse_range_header(value.as_bytes())?,
        _ => None,
    };
    let page = page::top_level(top_query_page, range)?;

    let prefer = prefer::parse_prefer(headers)?;
    let (media, output) = media::parse_accept(headers, false, true)?;
    let profile = profile(method, headers)?;

    Ok(RestRequest {
        select: params.select,
        filters: params.filters,
        logic: params.logic,
        order: params.order,
        page,
        embedded_pages: params
            .pages
            .into_iter()
            .map(|(path, item)| Scoped { path, item })
            .collect(),
        columns: params.columns,
        on_conflict: params.on_conflict,
        args: params.args,
        params: params.params,
        prefer,
        media,
        output,
        profile,
        aggregates_enabled: false,
    })
}

/// The `Accept` header negotiated again without the plan media types, for a server that does not
/// answer them (PostgREST's `db-plan-enabled` off): the format of the first other range that we
/// produce, or 406 naming every range.
pub fn negotiate_without_plans(headers: &HeaderMap) -> Result<(MediaType, Output), ParseError> {
    media::parse_accept(headers, false, false)
}

/// `GET /rest/v1/`: the `Accept` header (where the OpenAPI media type is offered) and the
/// `Accept-Profile` header.
pub fn parse_root_request(
    headers: &HeaderMap,
) -> Result<(MediaType, Output, Option<String>), ParseError> {
    let (media, output) = media::parse_accept(headers, true, false)?;
    Ok((media, output, profile(&Method::GET, headers)?))
}

fn profile(method: &Method, headers: &HeaderMap) -> Result<Option<String>, ParseError> {
    let writes = [Method::POST, Method::PATCH, Method::PUT, Method::DELETE];
    let header = if writes.contains(method) {
        "Content-Profile"
    } else {
        "Accept-Profile"
    };
    headers
        .get(header)
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| ParseError::InvalidHeader {
                    header,
                    problem: "not visible ASCII text".to_owned(),
                })
        })
        .transpose()
}
