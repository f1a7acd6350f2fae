//! Errors that leave a function exactly as they were raised, SQLSTATE included.
//!
//! pgrx catches every Postgres error at its FFI boundary, copies a few fields out of the
//! `ErrorData`, flushes the original and carries the copy up as a Rust panic. The copy keeps the
//! SQLSTATE as `PgSqlErrorCode`, a Rust enum of the codes Postgres itself defines, and its
//! `From<i32>` maps every other code to `ERRCODE_INTERNAL_ERROR` (pgrx-pg-sys 0.18,
//! `submodules/errcodes.rs`); the error's other fields (schema, table, constraint, context) are
//! dropped. So a `RAISE ... USING ERRCODE = 'PT403'`, PostgREST's status codes and any user code
//! came out of `sluice.run_request` as XX000.
//!
//! `catching_errors` keeps the original: an error context callback, which Postgres calls for every
//! report while its `ErrorData` is the current one (before any handler sees it), copies the
//! report when it is an ERROR. When the closure then fails with that error, the copy is returned
//! instead of the panic, and the function's entry point hands it to `rethrow` once every Rust
//! frame with something to drop has unwound.

use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;

/// A copy of a Postgres ERROR, allocated in the memory context that was current when
/// `catching_errors` began (which outlives the call).
pub(crate) struct RaisedError(*mut pg_sys::ErrorData);

// The raw functions, without pgrx's guard: a guard would catch what they raise (an out-of-memory
// while copying, the re-thrown error itself) and turn it back into a panic.
extern "C-unwind" {
    #[link_name = "CopyErrorData"]
    fn copy_error_data() -> *mut pg_sys::ErrorData;
    #[link_name = "FreeErrorData"]
    fn free_error_data(edata: *mut pg_sys::ErrorData);
    #[link_name = "ReThrowError"]
    fn rethrow_error(edata: *mut pg_sys::ErrorData) -> !;
}

/// What the context callback shares with `catching_errors`.
struct Capture {
    /// Where copies live: the caller's context, not `ErrorContext`, which is reset after each error.
    context: pg_sys::MemoryContext,
    /// The last ERROR reported while the closure ran (earlier ones were caught inside it).
    error: Cell<*mut pg_sys::ErrorData>,
}

/// Runs `f`; a Postgres ERROR that ends it comes back as the original error, every other failure
/// (a Rust panic, an `error!` of ours) unwinds on as before.
pub(crate) fn catching_errors<T>(f: impl FnOnce() -> T) -> Result<T, RaisedError> {
    // SAFETY: reading and swapping Postgres's error context stack on its own (only) thread. The
    // callback entry lives on this frame and is unlinked before the frame ends, on every path:
    // `catch_unwind` returns here whether `f` returned or failed.
    unsafe {
        let capture = Capture {
            context: pg_sys::CurrentMemoryContext,
            error: Cell::new(ptr::null_mut()),
        };
        let mut callback = pg_sys::ErrorContextCallback {
            previous: pg_sys::error_context_stack,
            callback: Some(copy_error),
            arg: ptr::from_ref(&capture).cast_mut().cast::<c_void>(),
        };
        pg_sys::error_context_stack = &mut callback;
        let outcome = catch_unwind(AssertUnwindSafe(f));
        pg_sys::error_context_stack = callback.previous;
        match outcome {
            Ok(value) => Ok(value),
            Err(payload) => match raised_by(&payload, capture.error.get()) {
                Some(error) => Err(error),
                None => resume_unwind(payload),
            },
        }
    }
}

/// The copied error, if `payload` is pgrx's panic for that same error (not a Rust panic after an
/// error that the statement itself caught and handled).
fn raised_by(
    payload: &Box<dyn std::any::Any + Send>,
    copy: *mut pg_sys::ErrorData,
) -> Option<RaisedError> {
    let Some(CaughtError::PostgresError(report)) = payload.downcast_ref::<CaughtError>() else {
        return None;
    };
    // SAFETY: a non-null copy is a complete ErrorData made by CopyErrorData in a live context.
    let message = unsafe {
        let copy = copy.as_ref()?;
        (!copy.message.is_null()).then(|| CStr::from_ptr(copy.message).to_string_lossy())
    };
    match message {
        Some(message) if message != report.message() => None,
        _ => Some(RaisedError(copy)),
    }
}

/// The error context callback: copies the report being raised if it is an ERROR.
///
/// # Safety
/// Called by Postgres's `errfinish` with `arg` pointing at the `Capture` of a live
/// `catching_errors` frame; it only calls C functions that do not return into Rust by longjmp
/// except on out-of-memory, and this frame holds nothing to drop.
unsafe extern "C-unwind" fn copy_error(arg: *mut c_void) {
    // SAFETY: as documented above; CopyErrorData must not allocate in ErrorContext, so it runs in
    // the capture's context, and the previous context is restored before returning.
    unsafe {
        let capture = &*arg.cast::<Capture>();
        let previous = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = capture.context;
        let copy = copy_error_data();
        pg_sys::CurrentMemoryContext = previous;
        if (*copy).elevel != pg_sys::PGERROR as i32 {
            free_error_data(copy);
            return;
        }
        let earlier = capture.error.replace(copy);
        if !earlier.is_null() {
            free_error_data(earlier);
        }
    }
}

impl RaisedError {
    /// `[sqlstate, message, detail, hint]` of the error, which is freed.
    pub(crate) fn into_fields(self) -> Vec<Option<String>> {
        // SAFETY: the copy is a complete ErrorData in a context that is still alive, freed once
        // here (the value is consumed).
        unsafe {
            let fields = crate::reads::error_fields(&*self.0);
            free_error_data(self.0);
            fields
        }
    }
}

/// Raises `error` again, unchanged.
///
/// # Safety
/// `ReThrowError` longjmps to the innermost Postgres error handler, skipping every frame in
/// between without running destructors: call it only from a function called directly by Postgres
/// (an fmgr entry point) whose own frame owns nothing that needs dropping.
pub(crate) unsafe fn rethrow(error: RaisedError) -> ! {
    // SAFETY: the copy is an ERROR (checked when it was taken) in a context that is still alive;
    // ReThrowError copies it into ErrorContext before jumping. The caller upholds the rest.
    unsafe { rethrow_error(error.0) }
}
