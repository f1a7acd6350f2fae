//! Running a REST request's one statement: the one place that turns a planned statement and the
//! caller's identity into an executed request (role, claims and request settings, the role's own
//! `statement_timeout`, read-only or not, committed or rolled back), runs it exactly once, and
//! reads its single result row. Reads, writes and calls all come through here.

use axum::http::{HeaderMap, Method};

use super::response::{ReadResult, WriteResult};
use super::sql::{guard, Params};
use super::RestError;
use crate::auth::Identity;
use crate::db::tx::{self, Access, Caller, End, RequestContext, TextRow, TxError};
use crate::db::Pool;
use crate::schema::SchemaCache;

/// The HTTP request as the statement sees it: who asks (role and claims), and the method, path
/// and headers its SQL may read (`request.method`, `request.path`, `request.headers`).
#[derive(Clone, Copy)]
pub(crate) struct HttpRequest<'a> {
    pub identity: &'a Identity,
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl<'a> HttpRequest<'a> {
    pub(crate) fn new(
        identity: &'a Identity,
        method: &'a Method,
        uri: &'a axum::http::Uri,
        headers: &'a HeaderMap,
    ) -> Self {
        HttpRequest {
            identity,
            method,
            path: uri.path(),
            headers,
        }
    }

    /// The transaction context of this request's caller: role, claims, method, path, headers, and
    /// the method's default access (read-only for GET and HEAD), committed.
    fn context(&self) -> RequestContext<'a> {
        let identity = self.identity;
        let caller = Caller {
            role: &identity.role,
            claims: &identity.claims_text,
            anonymous: identity.is_anonymous(),
        };
        RequestContext::new(caller, self.method, self.path, self.headers)
    }
}

/// How the statement's transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode {
    /// `None`: read-only for GET and HEAD, read-write otherwise.
    pub access: Option<Access>,
    pub end: End,
}

impl Mode {
    /// By method, committed.
    pub(crate) const DEFAULT: Mode = Mode {
        access: None,
        end: End::Commit,
    };

    /// Committed, or rolled back for `Prefer: tx=rollback`.
    pub(crate) fn rolled_back_if(rollback: bool) -> Mode {
        Mode {
            end: if rollback { End::Rollback } else { End::Commit },
            ..Mode::DEFAULT
        }
    }
}

/// Why an executed request has no result.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The statement (or the database) failed: Postgres's own error.
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// One of the statement's own checks failed (see `sql::guard`).
    #[error(transparent)]
    Refused(#[from] RestError),
    /// A result row of a shape our SQL never produces: a bug of ours.
    #[error("internal error: {0}")]
    Malformed(&'static str),
}

/// Runs `sql` with `params` as `request`'s caller, once, and returns its first result row
/// (`what` names the statement if it returned none, which our SQL never does).
pub(crate) async fn execute(
    pool: &Pool,
    cache: &SchemaCache,
    request: HttpRequest<'_>,
    mode: Mode,
    (sql, params): (&str, &Params),
    what: &'static str,
) -> Result<TextRow, ExecuteError> {
    let mut context = request.context();
    context.statement_timeout = cache.statement_timeout(&request.identity.role);
    if let Some(access) = mode.access {
        context.access = access;
    }
    context.end = mode.end;
    let row = tx::execute(pool, &context, sql, &params.as_text())
        .await
        .map_err(|err| match guard_refusal(&err) {
            Some(refusal) => ExecuteError::Refused(refusal),
            None => ExecuteError::Transaction(err),
        })?;
    row.ok_or(ExecuteError::Malformed(what))
}

/// The plan of `sql` (an `EXPLAIN`, see `sql::output`), asked as `request`'s caller in a
/// transaction that is always rolled back, so that `analyze` of a write changes nothing: the rows
/// (one per line of text, or one of JSON) each ended by a line break, as PostgREST answers.
pub(crate) async fn explain(
    pool: &Pool,
    cache: &SchemaCache,
    request: HttpRequest<'_>,
    access: Access,
    (sql, params): (&str, &Params),
) -> Result<String, ExecuteError> {
    let mut context = request.context();
    context.access = access;
    context.end = End::Rollback;
    // The role's own statement_timeout, as `run_request` applies it (`analyze` runs the query).
    let timeout = cache
        .statement_timeout(&request.identity.role)
        .unwrap_or_default();
    let timeout_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&timeout];
    let values = params.as_text();
    let bound: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
        .iter()
        .map(|value| value as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let statements = [
        tx::Statement {
            sql: "SELECT set_config('statement_timeout', coalesce(nullif($1::text, ''), \
                  current_setting('statement_timeout')), true)",
            params: &timeout_params,
        },
        tx::Statement {
            sql,
            params: &bound,
        },
    ];
    let rows = tx::execute_all(pool, &context, &statements)
        .await
        .map_err(ExecuteError::Transaction)?;
    let mut body = String::new();
    for row in rows.last().into_iter().flatten() {
        let PlanLine(line) = row
            .try_get(0)
            .map_err(|_| ExecuteError::Malformed("a plan row that is not text"))?;
        body.push_str(line);
        body.push('\n');
    }
    Ok(body)
}

/// A row of `EXPLAIN`: `text` (FORMAT TEXT) or `json` (FORMAT JSON), whose binary forms are
/// both the UTF-8 text itself.
struct PlanLine<'a>(&'a str);

impl<'a> tokio_postgres::types::FromSql<'a> for PlanLine<'a> {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PlanLine(std::str::from_utf8(raw)?))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        use tokio_postgres::types::Type;
        [Type::TEXT, Type::JSON].contains(ty)
    }
}

fn guard_refusal(err: &TxError) -> Option<RestError> {
    guard::refusal(&err.error.server_error()?)
}

/// The (body, page count, total) row that read statements and set-returning calls produce.
pub(crate) fn read_result(row: &TextRow) -> Result<ReadResult, ExecuteError> {
    Ok(ReadResult {
        body: text_column(row, 0)?,
        page_count: int8_column(row, 1)?.ok_or(ExecuteError::Malformed("a NULL page count"))?,
        total: int8_column(row, 2)?,
    })
}

/// The (body, affected, location) row of a write statement.
pub(crate) fn write_result(row: &TextRow) -> Result<WriteResult, ExecuteError> {
    Ok(WriteResult {
        body: text_column(row, 0)?,
        affected: int8_column(row, 1)?.ok_or(ExecuteError::Malformed("a NULL row count"))?,
        location: text_column(row, 2)?,
        // Only a merging upsert's statement has the fourth column.
        inserted: match row.get(3) {
            Some(_) => int8_column(row, 3)?,
            None => None,
        },
    })
}

/// Column `index` of a result row (text, or NULL).
pub(crate) fn text_column(row: &TextRow, index: usize) -> Result<Option<String>, ExecuteError> {
    row.get(index)
        .cloned()
        .ok_or(ExecuteError::Malformed("a result row with too few columns"))
}

/// Column `index` of a result row, an `int8` in its text form (or NULL).
fn int8_column(row: &TextRow, index: usize) -> Result<Option<i64>, ExecuteError> {
    text_column(row, index)?
        .map(|text| {
            text.parse()
                .map_err(|_| ExecuteError::Malformed("an int8 column that is not a number"))
        })
        .transpose()
}

/// `Content-Profile`: the schema answered from, when the client named one or there is a choice.
pub(crate) fn content_profile<'a>(
    cache: &SchemaCache,
    given: bool,
    schema: &'a str,
) -> Option<&'a str> {
    (given || cache.exposed_schemas().len() > 1).then_some(schema)
}
