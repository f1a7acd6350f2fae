//! Running the single statement a REST request compiles to (reads, writes and calls alike): on a
//! pooled connection, through the extension's `sluice.run_request`, returning its one result row.

use deadpool_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::AppState;
use crate::db::tx::{self, RequestContext, Statement, TextRow, TxError};
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
) -> Result<TextRow, ApiError> {
    let client = state
        .pool
        .get()
        .await
        .map_err(|err| ApiError::Database(err.into()))?;
    let row = match tx::run_request(&client, context, sql, &params.as_text()).await {
        Err(err) if reraised_as_internal(&err) => {
            rerun_for_the_exact_error(&client, context, sql, params).await
        }
        result => result,
    };
    row.map_err(on_error)?.ok_or(ApiError::Internal(what))
}

/// pgrx re-raises an error from inside `sluice.run_request` with its standard SQLSTATE, message,
/// detail and hint, but a SQLSTATE it has no name for (PostgREST's `PTxxx` status codes, any
/// custom code) comes out as XX000. The request has been rolled back, so it runs again through
/// the plain transaction (BEGIN, settings, statement, COMMIT), which reports the error exactly.
fn reraised_as_internal(err: &TxError) -> bool {
    matches!(&err.error, DbError::Query(query) if query.code() == Some(&SqlState::INTERNAL_ERROR))
}

async fn rerun_for_the_exact_error(
    client: &Client,
    context: &RequestContext<'_>,
    sql: &str,
    params: &Params,
) -> Result<Option<TextRow>, TxError> {
    let values = params.as_sql();
    let results = tx::run(
        client,
        context,
        &[Statement {
            sql,
            params: &values,
        }],
    )
    .await?;
    Ok(results
        .into_iter()
        .next()
        .and_then(|rows| rows.into_iter().next())
        .map(|row| row_as_text(&row)))
}

/// A row of the text and int8 columns our statements return, as `run_request` gives it.
fn row_as_text(row: &Row) -> TextRow {
    (0..row.len())
        .map(|index| {
            row.try_get::<_, Option<String>>(index)
                .ok()
                .flatten()
                .or_else(|| {
                    row.try_get::<_, Option<i64>>(index)
                        .ok()
                        .flatten()
                        .map(|n| n.to_string())
                })
        })
        .collect()
}

/// The (body, page count, total) row that read statements and set-returning calls produce.
pub(super) fn read_result(row: &TextRow) -> Result<ReadResult, ApiError> {
    Ok(ReadResult {
        body: text_column(row, 0)?,
        page_count: int8_column(row, 1)?.ok_or(ApiError::Internal("a NULL page count"))?,
        total: int8_column(row, 2)?,
    })
}

/// Column `index` of a result row (text, or NULL).
pub(super) fn text_column(row: &TextRow, index: usize) -> Result<Option<String>, ApiError> {
    row.get(index)
        .cloned()
        .ok_or(ApiError::Internal("a result row with too few columns"))
}

/// Column `index` of a result row, an `int8` in its text form (or NULL).
pub(super) fn int8_column(row: &TextRow, index: usize) -> Result<Option<i64>, ApiError> {
    text_column(row, index)?
        .map(|text| {
            text.parse()
                .map_err(|_| ApiError::Internal("an int8 column that is not a number"))
        })
        .transpose()
}
