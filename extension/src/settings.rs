//! Configuration parameters (GUCs) of the extension.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// The database whose change log the background worker numbers (only when preloaded).
pub static WORKER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// Number positions in the committing backend even when the worker is running.
pub static INLINE_NUMBERING: GucSetting<bool> = GucSetting::<bool>::new(false);

pub fn register() {
    GucRegistry::define_string_guc(
        c"sluice.database",
        c"Database whose change log the Sluice background worker serves.",
        c"Only read when sluice is in shared_preload_libraries. Other databases number their change events inline at commit.",
        &WORKER_DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"sluice.inline_numbering",
        c"Assign change-log positions in the committing transaction instead of the background worker.",
        c"Slower under concurrency (commits serialize), but needs no worker.",
        &INLINE_NUMBERING,
        GucContext::Userset,
        GucFlags::default(),
    );
}
