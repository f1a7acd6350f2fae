//! Raising a module's typed error as a Postgres ERROR with its own SQLSTATE.
//!
//! Each module that can fail keeps one error enum naming what went wrong, with the SQLSTATE each
//! case carries (`ModuleError::sqlstate`) and a `From<ModuleError> for ErrorReport`, as
//! supabase/wrappers does: SQL callers then catch Sluice's errors by code, and none of them
//! collapses to XX000 (internal_error), which is what a bare `error!` raises.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// Raises `error` as an ERROR (aborting the transaction); never returns.
pub fn raise(error: impl Into<ErrorReport>) -> ! {
    error.into().report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// An `ErrorReport` with `code` and the error's text as its message, for the `From` impls.
pub fn report(
    code: PgSqlErrorCode,
    error: &impl std::fmt::Display,
    module: &'static str,
) -> ErrorReport {
    ErrorReport::new(code, error.to_string(), module)
}
