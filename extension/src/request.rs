//! `sluice.run_request`: one sidecar request in one protocol message.
//!
//! The sidecar's REST requests each compile to one statement, which must run with the request's
//! role and claims set transaction-locally. Sent as `BEGIN; SELECT set_config(…); <statement>;
//! COMMIT`, that is four protocol messages, and the client library ends each with a Sync: Postgres
//! then flushes its socket four times per request, and on a 2-core machine those flushes and the
//! wake-ups they cause on both sides cost more than the query itself (see bench/README.md).
//!
//! This function does the whole request inside the single implicit transaction of the statement
//! that calls it: it sets the settings locally (as `set_config(…, true)` does), marks the
//! transaction read-only for GET/HEAD, and runs the statement through a plan cached per backend
//! and SQL text. Errors raised by the statement leave with their own SQLSTATE, message, detail and
//! hint, and abort the transaction, settings included. Nothing outlives the call: the settings are
//! transaction-local and the transaction ends with the calling statement.
//!
//! Only `authenticator` (the sidecar's login) may call it; it can do nothing that login cannot do
//! with plain SQL. The role switch is checked by Postgres against the session user, as SET ROLE is.

use std::ffi::{CStr, CString};
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiError};
use pgrx::PgOid;

use crate::error::{raise, report};
use crate::plan_cache;
use crate::rethrow;
use crate::settings;

/// Failures of the request functions' own steps; errors the request's SQL raises keep theirs.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// 22021 (character_not_in_repertoire): a setting cannot carry a NUL.
    #[error("sluice: a request setting contains a NUL character")]
    NulInSetting,
    #[error("sluice: could not prepare the request: {0}")]
    Prepare(SpiError),
    /// The request's statement failed; `rethrow` replaces this with the error it raised.
    #[error("sluice: could not run the request: {0}")]
    Run(SpiError),
    /// 22004 (null_value_not_allowed): unreachable for a STRICT function, checked all the same.
    #[error("sluice.run_request: argument {0} is NULL")]
    NullArgument(usize),
    #[error("sluice: could not plan the count: {0}")]
    PlanCount(SpiError),
    /// 42501: `planned_rows` outside a session of the sidecar's login role.
    #[error("sluice: only the authenticator role's sessions may call sluice.planned_rows")]
    NotAuthenticator,
    /// 42601 (syntax_error): the count query must be exactly one SELECT.
    #[error("sluice: sluice.planned_rows estimates exactly one SELECT statement")]
    NotOneSelect,
}

impl RequestError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            RequestError::NulInSetting => PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            RequestError::NullArgument(_) => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            RequestError::Prepare(_) | RequestError::Run(_) | RequestError::PlanCount(_) => {
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION
            }
            RequestError::NotAuthenticator => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            RequestError::NotOneSelect => PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
        }
    }
}

impl From<RequestError> for ErrorReport {
    fn from(error: RequestError) -> Self {
        report(error.sqlstate(), &error, "sluice::request")
    }
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION sluice.run_request(role text, claims text, method text, path text, headers text, read_only bool, statement_timeout text, sql text, params text[]) RETURNS text[] STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'run_request_wrapper';
COMMENT ON FUNCTION sluice.run_request(text, text, text, text, text, bool, text, text, text[]) IS 'Runs one sidecar request: settings, role and statement in one call (for authenticator only).';
REVOKE ALL ON FUNCTION sluice.run_request(text, text, text, text, text, bool, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.run_request(text, text, text, text, text, bool, text, text, text[]) TO authenticator;
"#,
    name = "run_request",
);

/// The fmgr V1 record of `run_request_wrapper` (what `#[pg_extern]` would generate).
#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_run_request_wrapper() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `sluice.run_request`, written by hand instead of by `#[pg_extern]` so that an error raised by
/// the request can be re-thrown as it was raised (see `rethrow.rs` for why pgrx cannot). The
/// symbol keeps the name `#[pg_extern]` gave it, so the function's SQL definition is unchanged.
#[no_mangle]
#[doc(hidden)]
pub unsafe extern "C-unwind" fn run_request_wrapper(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres calls this with a valid fcinfo on its main thread. pgrx's guard turns
    // panics (and errors that are not the request's) into ERRORs as for any `#[pg_extern]`, and
    // returns only after everything the call allocated in Rust has been dropped. What is left on
    // this frame is a Datum or a pointer, neither with a destructor, so the longjmp of `rethrow`
    // skips no Rust frame that owns anything: only this one, then Postgres's own.
    let outcome = unsafe {
        pgrx::pgrx_extern_c_guard(|| rethrow::catching_errors(|| run_request_call(fcinfo)))
    };
    match outcome {
        Ok(datum) => datum,
        // SAFETY: see above.
        Err(error) => unsafe { rethrow::rethrow(error) },
    }
}

/// The arguments out of `fcinfo` (the function is STRICT: none is NULL), the request run, and its
/// result as the function's return value. The text arguments are read in place (`&str` into the
/// detoasted argument) and the parameters passed on as the array's own `text` datums: converting
/// them through Rust strings and back (pgrx's `Vec<Option<String>>`, which also looks the element
/// type up per call) was about 3% of a GET by key's backend CPU.
fn run_request_call(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    fn text<'a>(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> &'a str {
        // SAFETY: index < the function's 9 declared arguments, whose types are as read here;
        // the text lives (detoasted if it had to be) until the call returns.
        unsafe { pgrx::fcinfo::pg_getarg::<&str>(fcinfo, index) }
            .unwrap_or_else(|| raise(RequestError::NullArgument(index)))
    }
    // SAFETY: argument 5 is the `bool`, argument 8 the `text[]`.
    let (read_only, params) = unsafe {
        (
            pgrx::fcinfo::pg_getarg::<bool>(fcinfo, 5).unwrap_or_default(),
            text_array_datums(fcinfo, 8),
        )
    };
    let row = run_request(
        text(fcinfo, 0),
        text(fcinfo, 1),
        text(fcinfo, 2),
        text(fcinfo, 3),
        text(fcinfo, 4),
        read_only,
        text(fcinfo, 6),
        text(fcinfo, 7),
        &params,
    );
    match row.and_then(IntoDatum::into_datum) {
        Some(datum) => datum,
        // SAFETY: fcinfo is the call's own.
        None => unsafe { pgrx::fcinfo::pg_return_null(fcinfo) },
    }
}

/// The elements of the `text[]` argument `index` (of any dimensions, in storage order, as
/// `unnest` reads them), each as the array's own `text` datum (`None` for a NULL element).
///
/// # Safety
/// Argument `index` of `fcinfo` must be a non-NULL `text[]`. The datums point into the
/// (detoasted) array, which lives in the call's memory context until the call returns.
unsafe fn text_array_datums(
    fcinfo: pg_sys::FunctionCallInfo,
    index: usize,
) -> Vec<Option<pg_sys::Datum>> {
    // SAFETY: see above; `deconstruct_array` fills the three out-parameters with palloc'd
    // arrays of `count` elements (text: variable length, by reference, int-aligned).
    unsafe {
        let raw = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, index);
        if raw.is_null() {
            raise(RequestError::NullArgument(index));
        }
        let array = pg_sys::pg_detoast_datum(raw.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let mut elements: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut count: std::ffi::c_int = 0;
        pg_sys::deconstruct_array(
            array,
            pg_sys::TEXTOID,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
            &mut elements,
            &mut nulls,
            &mut count,
        );
        (0..usize::try_from(count).unwrap_or(0))
            .map(|i| (!*nulls.add(i)).then(|| *elements.add(i)))
            .collect()
    }
}

/// Runs `sql` with `params` (all `text`; the SQL casts them) as `role` with the request settings
/// and the role's statement timeout (empty: none), and returns the first result row's columns as
/// text (NULL when the statement returned no row).
#[allow(clippy::too_many_arguments)]
fn run_request(
    role: &str,
    claims: &str,
    method: &str,
    path: &str,
    headers: &str,
    read_only: bool,
    statement_timeout: &str,
    sql: &str,
    params: &[Option<pg_sys::Datum>],
) -> Option<Vec<Option<String>>> {
    let context = set_request(role, claims, method, path, headers);
    if read_only {
        set_local(context, "transaction_read_only", "on");
    }
    apply_request_jit(context);
    if !statement_timeout.is_empty() {
        apply_statement_timeout(context, statement_timeout);
    }
    let args: Vec<DatumWithOid<'_>> = params
        .iter()
        .map(|param| match *param {
            // SAFETY: a `text` datum of the argument array, alive until the call returns.
            Some(datum) => unsafe { DatumWithOid::new(datum, pg_sys::TEXTOID) },
            None => DatumWithOid::null_oid(pg_sys::TEXTOID),
        })
        .collect();
    run_statement(sql, &args)
}

/// Runs `sql` with `args` (all `text`) through its kept plan, as the current role with the
/// settings in force, and returns its first row's columns as text (`None`: no row).
pub(crate) fn run_statement(sql: &str, args: &[DatumWithOid<'_>]) -> Option<Vec<Option<String>>> {
    let statement = cached_plan(sql, args.len());
    // `select`, not `update`: the statement was prepared with `prepare_mut`, so both run it with
    // SPI's `read_only = false` (a POST still writes, a GET's volatile function still meets the
    // read-only transaction), but pgrx's `update` first calls `GetCurrentTransactionId()`, which
    // gives every request a transaction id: a read then commits with a WAL record and a WAL
    // flush, as a write does. Run through `select`, a read gets no id; a write gets one when it
    // writes (bench/README.md, "Where the Postgres CPU of a GET goes").
    Spi::connect_mut(|client| {
        client
            .select(&**statement, None, args)
            .unwrap_or_else(|e| raise(RequestError::Run(e)));
        first_row_as_text()
    })
}

/// Switches to `role` and sets the request's settings transaction-locally; returns the context
/// further settings are made in as that role.
pub(crate) fn set_request(
    role: &str,
    claims: &str,
    method: &str,
    path: &str,
    headers: &str,
) -> pg_sys::GucContext::Type {
    // The context a setting is made in is the current user's (a superuser's settings are
    // PGC_SUSET): looked up once before the role switch and once after it, not per setting.
    set_local(guc_context(), "role", role);
    let context = guc_context();
    set_local(context, "request.jwt.claims", claims);
    set_local(context, "request.method", method);
    set_local(context, "request.path", path);
    set_local(context, "request.headers", headers);
    context
}

/// The context `set_config` would make a setting in for the current user: PGC_SUSET for a
/// superuser, PGC_USERSET for everyone else.
pub(crate) fn guc_context() -> pg_sys::GucContext::Type {
    // SAFETY: reads the current user's superuser flag (cached by Postgres per role).
    if unsafe { pg_sys::superuser() } {
        pg_sys::GucContext::PGC_SUSET
    } else {
        pg_sys::GucContext::PGC_USERSET
    }
}

/// `set_config(name, value, true)` without the SQL round: the same checks (a role the session
/// user is not a member of is refused), scoped to the transaction, made in `context` (see
/// `guc_context`).
pub(crate) fn set_local(context: pg_sys::GucContext::Type, name: &str, value: &str) {
    let name = CString::new(name).expect("setting names have no NUL");
    let value = CString::new(value).unwrap_or_else(|_| raise(RequestError::NulInSetting));
    // SAFETY: both strings outlive the call, which copies them; errors are raised as ERROR.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            PgLogLevel::ERROR as i32,
            false,
        );
    }
}

/// JIT off for the request unless `sluice.request_jit` is on. Compiling a query pays off for long
/// analytical statements, not for requests: a request repeating one filter 5,000 times spent
/// 32.9 s compiling (0.12 s without JIT). Plans are made at execution with the settings then in
/// force, so setting it here, before the statement runs, reaches every plan of the request.
pub(crate) fn apply_request_jit(context: pg_sys::GucContext::Type) {
    if !settings::REQUEST_JIT.get() {
        set_local(context, "jit", "off");
    }
}

/// The role's `statement_timeout` (`SET ROLE` does not apply it; the sidecar passes it). Setting
/// it only takes effect at the next statement's start, and this call is inside its statement, so
/// the timer is armed here, counting from now; the statement's end disarms it.
pub(crate) fn apply_statement_timeout(context: pg_sys::GucContext::Type, timeout: &str) {
    set_local(context, "statement_timeout", timeout);
    // SAFETY: reading a GUC variable of this backend and arming one of its own timers, which
    // cannot raise an error for a predefined timeout id.
    unsafe {
        let milliseconds = pg_sys::StatementTimeout;
        if milliseconds > 0 {
            enable_timeout_after(STATEMENT_TIMEOUT, milliseconds);
        }
    }
}

/// Stops the timer `apply_statement_timeout` armed, once its statement has ended. A timeout that
/// fired after the statement had ended (its signal handled, the cancel still pending) would
/// otherwise cancel whatever runs next; it is dropped, as the statement it was for is done.
pub(crate) fn disarm_statement_timeout() {
    // SAFETY: disarming and reading this backend's own timer, and clearing its own pending
    // cancel flag (set only by its own signal handler, which the timeout's signal ran already).
    unsafe {
        disable_timeout(STATEMENT_TIMEOUT, true);
        if get_timeout_indicator(STATEMENT_TIMEOUT, true) {
            pg_sys::QueryCancelPending = 0;
        }
    }
}

// utils/timeout.h, which pgrx does not bind. `TimeoutId` is a C enum; STATEMENT_TIMEOUT is its
// fourth value in Postgres 15 (the only version this extension is built for).
const STATEMENT_TIMEOUT: std::ffi::c_int = 3;
extern "C" {
    fn enable_timeout_after(id: std::ffi::c_int, delay_ms: std::ffi::c_int);
    fn disable_timeout(id: std::ffi::c_int, keep_indicator: bool);
    fn get_timeout_indicator(id: std::ffi::c_int, reset_indicator: bool) -> bool;
}

/// The kept plan for `sql`, prepared on first use as the current role (so names resolve as the
/// request sees them); `plan_cache` decides what is kept. Postgres revalidates kept plans after
/// DDL and when the role changes under a plan that depends on row-level security.
fn cached_plan(sql: &str, param_count: usize) -> Rc<OwnedPreparedStatement> {
    if let Some(statement) = plan_cache::lookup(sql) {
        return statement;
    }
    let types = text_types(param_count);
    let statement = Rc::new(Spi::connect_mut(|client| {
        client
            .prepare_mut(sql, &types)
            .unwrap_or_else(|e| raise(RequestError::Prepare(e)))
            .keep()
    }));
    plan_cache::keep(sql, &statement);
    statement
}

/// The sidecar binds every parameter as `text` (its SQL casts them): `count` text types.
fn text_types(count: usize) -> Vec<PgOid> {
    vec![PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTOID); count]
}

fn text_arguments(params: &[Option<String>]) -> Vec<DatumWithOid<'_>> {
    params.iter().map(|p| p.as_deref().into()).collect()
}

/// The first row of the last SPI result, each column through its type's output function.
fn first_row_as_text() -> Option<Vec<Option<String>>> {
    // SAFETY: called inside the SPI connection that ran the statement, so SPI_tuptable is its
    // result (or NULL); SPI_getvalue returns a palloc'd copy (or NULL for a NULL column), read
    // before the connection ends.
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() || pg_sys::SPI_processed == 0 {
            return None;
        }
        let desc = (*table).tupdesc;
        let tuple = *(*table).vals;
        let columns = (*desc).natts;
        Some(
            (1..=columns)
                .map(|column| {
                    let text = pg_sys::SPI_getvalue(tuple, desc, column);
                    (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
                })
                .collect(),
        )
    }
}

/// The planner's row estimate for `query` (run with `params`, all `text`), for `Prefer:
/// count=planned`: `EXPLAIN` reads statistics only, so it costs about as much on a billion rows as
/// on ten. Runs as the caller: EXPLAIN checks the caller's privileges, and row-level security is
/// part of the plan it estimates.
///
/// The sidecar calls it inside the request's statement (run by `sluice.run_request` as the
/// request's role, so that the estimate is the caller's), hence it is executable by the request
/// roles; but only in sessions of `authenticator` (or a superuser), the sidecar's login, and only
/// for one SELECT, which EXPLAIN plans without running: nothing else it is given can execute.
#[pg_extern(
    sql = "CREATE FUNCTION sluice.planned_rows(query text, params text[]) RETURNS int8 STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; \
    COMMENT ON FUNCTION sluice.planned_rows(text, text[]) IS 'The planner''s row estimate for one SELECT (Prefer: count=planned); in sessions of authenticator only.'; \
    REVOKE ALL ON FUNCTION sluice.planned_rows(text, text[]) FROM PUBLIC; \
    GRANT EXECUTE ON FUNCTION sluice.planned_rows(text, text[]) TO anon, authenticated, service_role;"
)]
fn planned_rows(query: &str, params: Vec<Option<String>>) -> i64 {
    require_authenticator_session();
    require_one_select(query);
    let explain = format!("EXPLAIN (FORMAT JSON) {query}");
    let types = text_types(params.len());
    let args = text_arguments(&params);
    let plan = Spi::connect_mut(|client| {
        let statement = client
            .prepare_mut(explain.as_str(), &types)
            .unwrap_or_else(|e| raise(RequestError::PlanCount(e)));
        // EXPLAIN writes nothing: no transaction id for it (see `run_request`).
        client
            .select(&statement, None, &args)
            .and_then(|table| table.first().get_one::<pgrx::Json>())
            .unwrap_or_else(|e| raise(RequestError::PlanCount(e)))
    });
    plan.and_then(|plan| plan.0.pointer("/0/Plan/Plan Rows")?.as_f64())
        .map_or(0, |rows| rows.round() as i64)
}

/// The session (login) user must be `authenticator` or a superuser: a request role cannot log in,
/// so this admits exactly the sidecar's requests (and administrators).
fn require_authenticator_session() {
    // SAFETY: reads the session user id and looks a role up by name (no error when missing).
    let allowed = unsafe {
        let session_user = pg_sys::GetSessionUserId();
        pg_sys::superuser_arg(session_user)
            || session_user == pg_sys::get_role_oid(c"authenticator".as_ptr(), true)
    };
    if !allowed {
        raise(RequestError::NotAuthenticator);
    }
}

/// `query` must parse as exactly one SELECT (a syntax error is raised as Postgres raises it).
fn require_one_select(query: &str) {
    let text = CString::new(query).unwrap_or_else(|_| raise(RequestError::NotOneSelect));
    // SAFETY: the parser reads the NUL-terminated text and returns a list of RawStmt nodes
    // allocated in the current memory context (or NIL for an empty string).
    let one_select = unsafe {
        let statements = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        if statements.is_null() || (*statements).length != 1 {
            false
        } else {
            let raw = (*(*statements).elements).ptr_value as *mut pg_sys::RawStmt;
            pgrx::is_a((*raw).stmt, pg_sys::NodeTag::T_SelectStmt)
        }
    };
    if !one_select {
        raise(RequestError::NotOneSelect);
    }
}
