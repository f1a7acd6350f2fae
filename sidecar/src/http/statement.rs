//! Running the single statement a REST request compiles to (reads, writes and calls alike): on a
//! pooled connection, inside the request's transaction, returning its one result row.

use tokio_postgres::Row;

use super::AppState;
use crate::db::tx::{self, RequestContext, Statement, TxError};
use crate::db::DbError;
use crate::error::ApiError;
use crate::rest::response::ReadResult;
use crate::rest::sql::Params;

/// `what` names the statement in the (never expected) error for a missing result row;
/// `on_error` lets a caller recognise errors its own statement raises on purpose.
pub(super) async fn run_one(
    state: &AppState,
    context: &RequestContext<'_>,
    sql: &str,
    params: &Params,
    what: &'static str,
    on_error: impl FnOnce(TxError) -> ApiError,
) -> Result<Row, ApiError> {
    let client = state
        .pool
        .get()
        .await
        .map_err(|err| ApiError::Database(err.into()))?;
    let params = params.as_sql();
    let results = tx::run(
        &client,
        context,
        &[Statement {
            sql,
            params: &params,
        }],
    )
    .await
    .map_err(on_error)?;
    results
        .into_iter()
        .next()
        .and_then(|rows| rows.into_iter().next())
        .ok_or(ApiError::Internal(what))
}

/// The (body, page count, total) row that read statements and set-returning calls produce.
pub(super) fn read_result(row: &Row) -> Result<ReadResult, ApiError> {
    Ok(ReadResult {
        body: row.try_get(0).map_err(query_error)?,
        page_count: row.try_get(1).map_err(query_error)?,
        total: row.try_get(2).map_err(query_error)?,
    })
}

pub(super) fn query_error(err: tokio_postgres::Error) -> ApiError {
    ApiError::Database(DbError::Query(err))
}
