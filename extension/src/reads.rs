//! `sluice.run_reads`: several sidecar reads in one call.
//!
//! The sidecar pipelines concurrent GETs on a shared connection, each one call of
//! `sluice.run_request` in its own implicit transaction. Per read, Postgres then starts and
//! commits a transaction, parses the protocol messages of the call and flushes its socket at the
//! ReadyForQuery that ends it: on a GET by key that was about a third of the backend's CPU
//! (bench/README.md). When reads queue up behind each other, the sidecar sends them together
//! through this function instead: one statement, one transaction, one flush.
//!
//! Each read runs in a subtransaction of its own that is always rolled back once its first row
//! has been read: the role, the claims and the request settings (set transaction-locally in it,
//! as `run_request` sets them) revert with it, so no read sees another's, and neither do the
//! reads after it. Even a setting a read's function makes for the session is undone. A read
//! that fails is rolled back the same way and its error (SQLSTATE, message, detail, hint) is its
//! row's answer: the other reads of the call are not affected, and none runs twice. Each read
//! takes its own snapshot, as a statement does, and its role's statement timeout counts from its
//! own start.
//!
//! Only reads: the whole call is a read-only transaction (GET and HEAD only, as the sidecar
//! pipelines nothing else), and only `authenticator` may call it.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;
use pgrx::Array;

use crate::error::{raise, report};
use crate::request;
use crate::rethrow;

/// The call's own failures: its arguments do not describe a batch of reads.
#[derive(Debug, thiserror::Error)]
pub enum ReadsError {
    /// 22023 (invalid_parameter_value).
    #[error("sluice.run_reads: {0}")]
    Malformed(&'static str),
}

impl From<ReadsError> for ErrorReport {
    fn from(error: ReadsError) -> Self {
        report(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            &error,
            "sluice::reads",
        )
    }
}

/// One read of the batch, borrowed from the call's arguments.
struct Read<'a> {
    role: &'a str,
    claims: &'a str,
    method: &'a str,
    path: &'a str,
    headers: &'a str,
    statement_timeout: &'a str,
    sql: &'a str,
    params: &'a [Option<&'a str>],
}

/// A read's answer: its first row's columns as text (`None`: no row), or its error as
/// `[sqlstate, message, detail, hint]`.
type Answer = Result<Option<Vec<Option<String>>>, Vec<Option<String>>>;

/// Backs `sluice.run_reads`: one row per read, in the order given, with either `result` (the
/// read's first row as text, NULL when it returned none) or `error` set. A read with no row
/// has both NULL.
///
/// `param_counts[i]` parameters of `params` belong to read `i`, in order.
#[pg_extern(
    sql = "CREATE FUNCTION sluice.run_reads(roles text[], claims text[], methods text[], paths text[], headers text[], statement_timeouts text[], sqls text[], param_counts int4[], params text[]) RETURNS TABLE(result text[], error text[]) STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'; \
    COMMENT ON FUNCTION sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[]) IS 'Runs several read-only sidecar requests, each in a subtransaction rolled back after it; a read''s error is its row''s answer (for authenticator only).'; \
    REVOKE ALL ON FUNCTION sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[]) FROM PUBLIC; \
    GRANT EXECUTE ON FUNCTION sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[]) TO authenticator;"
)]
// pgrx reads the column names from the tuple type itself, so it cannot be a type alias.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn run_reads<'a>(
    roles: Array<'a, &'a str>,
    claims: Array<'a, &'a str>,
    methods: Array<'a, &'a str>,
    paths: Array<'a, &'a str>,
    headers: Array<'a, &'a str>,
    statement_timeouts: Array<'a, &'a str>,
    sqls: Array<'a, &'a str>,
    param_counts: Array<'a, i32>,
    params: Array<'a, &'a str>,
) -> TableIterator<
    'static,
    (
        name!(result, Option<Vec<Option<String>>>),
        name!(error, Option<Vec<Option<String>>>),
    ),
> {
    let columns = [
        &roles,
        &claims,
        &methods,
        &paths,
        &headers,
        &statement_timeouts,
        &sqls,
    ]
    .map(|array| {
        array
            .iter()
            .map(|value| value.unwrap_or_else(|| raise(ReadsError::Malformed("a NULL setting"))))
            .collect::<Vec<&str>>()
    });
    let count = columns[0].len();
    if columns.iter().any(|column| column.len() != count) || param_counts.len() != count {
        raise(ReadsError::Malformed("the arrays differ in length"));
    }
    let params: Vec<Option<&str>> = params.iter().collect();
    let mut reads = Vec::with_capacity(count);
    let mut next = 0usize;
    for (i, param_count) in param_counts.iter().enumerate() {
        let param_count = param_count
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| raise(ReadsError::Malformed("a parameter count is not a count")));
        let end = next
            .checked_add(param_count)
            .filter(|&end| end <= params.len())
            .unwrap_or_else(|| raise(ReadsError::Malformed("fewer parameters than counted")));
        let [roles, claims, methods, paths, headers, timeouts, sqls] = &columns;
        reads.push(Read {
            role: roles[i],
            claims: claims[i],
            method: methods[i],
            path: paths[i],
            headers: headers[i],
            statement_timeout: timeouts[i],
            sql: sqls[i],
            params: &params[next..end],
        });
        next = end;
    }
    if next != params.len() {
        raise(ReadsError::Malformed("more parameters than counted"));
    }

    // Once for the whole call, at its top level: the transaction is a reader's, without JIT.
    let context = request::guc_context();
    request::set_local(context, "transaction_read_only", "on");
    request::apply_request_jit(context);

    let answers: Vec<Answer> = reads.iter().map(run_read).collect();
    TableIterator::new(answers.into_iter().map(|answer| match answer {
        Ok(row) => (row, None),
        Err(error) => (None, Some(error)),
    }))
}

/// One read in a subtransaction that is rolled back whatever happens in it.
fn run_read(read: &Read<'_>) -> Answer {
    let subtransaction = SubTransaction::begin();
    let mut timed = false;
    let answer = caught(|| {
        let context =
            request::set_request(read.role, read.claims, read.method, read.path, read.headers);
        if !read.statement_timeout.is_empty() {
            timed = true;
            request::apply_statement_timeout(context, read.statement_timeout);
        }
        let args: Vec<DatumWithOid<'_>> = read.params.iter().map(|&p| p.into()).collect();
        request::run_statement(read.sql, &args)
    });
    if timed {
        request::disarm_statement_timeout();
    }
    subtransaction.roll_back();
    answer
}

/// The state a subtransaction changes and that the code around it keeps using: the memory
/// context and the resource owner (as PL/pgSQL saves them around an exception block).
struct SubTransaction {
    context: pg_sys::MemoryContext,
    owner: pg_sys::ResourceOwner,
}

impl SubTransaction {
    fn begin() -> SubTransaction {
        // SAFETY: inside a transaction (the calling statement's); the read runs in the caller's
        // memory context, as `BeginInternalSubTransaction` switches to the new one.
        unsafe {
            let subtransaction = SubTransaction {
                context: pg_sys::CurrentMemoryContext,
                owner: pg_sys::CurrentResourceOwner,
            };
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            pg_sys::MemoryContextSwitchTo(subtransaction.context);
            subtransaction
        }
    }

    /// Rolls back everything the read did, settings and role included; the error state was
    /// already cleared when its error was caught (pgrx flushes it).
    fn roll_back(self) {
        // SAFETY: the subtransaction begun by `begin` is the current one: the read's own SPI
        // connections ended when their guards dropped, and any subtransaction of its own was
        // ended by the statement that began it (or by the abort of this one).
        unsafe {
            pg_sys::MemoryContextSwitchTo(self.context);
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(self.context);
            pg_sys::CurrentResourceOwner = self.owner;
        }
    }
}

/// Runs `f`, turning any failure into the error fields of a read's answer: a Postgres error as
/// it was raised (its own SQLSTATE, see `rethrow.rs`), an error of ours or a Rust panic with
/// the code and message pgrx gives it.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, Vec<Option<String>>> {
    match catch_unwind(AssertUnwindSafe(|| rethrow::catching_errors(f))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(raised)) => Err(raised.into_fields()),
        Err(payload) => Err(panic_fields(payload)),
    }
}

fn panic_fields(payload: Box<dyn std::any::Any + Send>) -> Vec<Option<String>> {
    let report = match payload.downcast::<CaughtError>() {
        Ok(caught) => match *caught {
            CaughtError::PostgresError(report)
            | CaughtError::ErrorReport(report)
            | CaughtError::RustPanic {
                ereport: report, ..
            } => report,
        },
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "sluice.run_reads: a read panicked".to_owned());
            return vec![Some("XX000".to_owned()), Some(message), None, None];
        }
    };
    vec![
        Some(sqlstate(report.sql_error_code() as isize as i32)),
        Some(report.message().to_owned()),
        report.detail().map(str::to_owned),
        report.hint().map(str::to_owned),
    ]
}

/// The five characters of a packed SQLSTATE (Postgres's `unpack_sql_state`, without its
/// static buffer).
pub(crate) fn sqlstate(code: i32) -> String {
    (0..5)
        .map(|i| char::from((((code >> (6 * i)) & 0x3F) as u8) + b'0'))
        .collect()
}

/// `[sqlstate, message, detail, hint]` of a copied error.
pub(crate) fn error_fields(error: &pg_sys::ErrorData) -> Vec<Option<String>> {
    let text = |field: *const std::ffi::c_char| {
        // SAFETY: a non-null field of an ErrorData is a NUL-terminated string.
        (!field.is_null()).then(|| {
            unsafe { CStr::from_ptr(field) }
                .to_string_lossy()
                .into_owned()
        })
    };
    vec![
        Some(sqlstate(error.sqlerrcode)),
        Some(text(error.message).unwrap_or_default()),
        text(error.detail),
        text(error.hint),
    ]
}
