//! The checks PostgREST makes of a write's outcome, made by the statement itself: a single-object
//! write must touch exactly one row (PGRST116), a write with `Prefer: max-affected` at most that many
//! (PGRST124). Either failure must undo the write, and COMMIT is on its way with the statement, so
//! the statement fails: through `sluice.raise_error`, with a SQLSTATE of Sluice's own and the row
//! count as the error's DETAIL. The sidecar knows the failure by that code alone, never by message
//! text (which `lc_messages` translates), and the count is digits the SQL wrote.

use super::super::RestError;
use crate::db::ServerError;

/// Not exactly one row for `Accept: application/vnd.pgrst.object+json` (PostgREST's PGRST116).
/// Class `SL` is Sluice's own: Postgres leaves classes beginning I–Z to implementations.
const NOT_ONE_ROW: &str = "SL116";
/// More rows than `Prefer: max-affected` (PostgREST's PGRST124).
const TOO_MANY_ROWS: &str = "SL124";

/// A `text` expression that fails the statement as "not exactly one row", `rows` being the count.
pub(super) fn not_one_row(rows: &str) -> String {
    fail(
        NOT_ONE_ROW,
        "JSON object requested, multiple (or no) rows returned",
        rows,
    )
}

/// A `text` expression that fails the statement as "more rows than max-affected".
pub(super) fn too_many_rows(rows: &str) -> String {
    fail(
        TOO_MANY_ROWS,
        "Query result exceeds max-affected preference constraint",
        rows,
    )
}

/// `code` and `message` are the constants above, never request values.
fn fail(code: &str, message: &str, rows: &str) -> String {
    format!("sluice.raise_error('{code}', '{message}', ({rows})::text)")
}

/// The refusal a guard's failure stands for, if `err` is one: known by its SQLSTATE, with the row
/// count from its DETAIL.
pub(crate) fn refusal(err: &ServerError<'_>) -> Option<RestError> {
    let rows = || err.detail?.parse::<i64>().ok();
    match err.code {
        NOT_ONE_ROW => Some(RestError::NotOneRow { rows: rows()? }),
        TOO_MANY_ROWS => Some(RestError::MaxAffectedExceeded { affected: rows()? }),
        _ => None,
    }
}
