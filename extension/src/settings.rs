//! Configuration parameters (GUCs) of the extension.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// The database whose change log the background worker numbers (only when preloaded).
pub static WORKER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// Who assigns change-log positions (see `changelog.rs`).
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Numbering {
    /// The committing backend if the numbering lock is free, else the worker (if it runs).
    #[name = c"auto"]
    Auto,
    /// Always the committing backend, waiting for the lock.
    #[name = c"inline"]
    Inline,
    /// Always the worker (if it runs); mainly for tests of that path.
    #[name = c"worker"]
    Worker,
}

pub static NUMBERING: GucSetting<Numbering> = GucSetting::<Numbering>::new(Numbering::Auto);

pub fn register() {
    GucRegistry::define_string_guc(
        c"sluice.database",
        c"Database whose change log the Sluice background worker serves.",
        c"Only read when sluice is in shared_preload_libraries. Other databases number their change events inline at commit.",
        &WORKER_DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"sluice.numbering",
        c"Who assigns change-log positions: auto, inline or worker.",
        c"auto: the committing transaction when the numbering lock is free, else the background worker. inline: always the committing transaction (commits serialize). worker: always the background worker. Without the worker, all mean inline.",
        &NUMBERING,
        GucContext::Userset,
        GucFlags::default(),
    );
}
