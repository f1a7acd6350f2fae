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

/// Whether `sluice.run_request` leaves JIT compilation on (off by default: see request.rs).
pub static REQUEST_JIT: GucSetting<bool> = GucSetting::<bool>::new(false);

/// Registers the settings. `preloading`: called from `shared_preload_libraries`. Postgres
/// refuses to define a postmaster-context setting after start-up with FATAL, which ends the
/// connection: so when the library is loaded by `CREATE EXTENSION` (or a first call) in a
/// server that does not preload it, `sluice.database` is defined at `sighup` level instead. It
/// is only read by the worker, which exists only when preloaded.
pub fn register(preloading: bool) {
    GucRegistry::define_string_guc(
        c"sluice.database",
        c"Database whose change log the Sluice background worker serves.",
        c"Only read when sluice is in shared_preload_libraries. Other databases number their change events inline at commit.",
        &WORKER_DATABASE,
        if preloading {
            GucContext::Postmaster
        } else {
            GucContext::Sighup
        },
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
    // Superuser-level, so a request (which runs as a request role) cannot switch it on.
    GucRegistry::define_bool_guc(
        c"sluice.request_jit",
        c"Whether REST requests (sluice.run_request) may use JIT compilation.",
        c"Off by default, as Supabase sets jit off for its request roles: compiling a request's query costs far more than it saves. When on, the server's own jit setting applies.",
        &REQUEST_JIT,
        GucContext::Suset,
        GucFlags::default(),
    );
}
