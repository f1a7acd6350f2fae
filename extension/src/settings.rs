//! Configuration parameters (GUCs) of the extension.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// The database whose change log the background worker numbers (only when preloaded).
pub static WORKER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// Who assigns change-log positions (see `changelog.rs`).
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Numbering {
    /// The background worker, in batches (falls back to inline when no worker serves the
    /// database).
    #[name = c"worker"]
    Worker,
    /// The committing transaction itself, waiting for the numbering lock.
    #[name = c"inline"]
    Inline,
}

pub static NUMBERING: GucSetting<Numbering> = GucSetting::<Numbering>::new(Numbering::Worker);

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
        c"Who assigns change-log positions: worker or inline.",
        c"worker: the background worker, in batches after commit. inline: the committing transaction, under a lock held through its commit (concurrent commits serialize). Without a worker serving the database, both mean inline.",
        &NUMBERING,
        GucContext::Userset,
        GucFlags::default(),
    );
}
