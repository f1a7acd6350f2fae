//! Sluice inside Postgres: RLS helpers reading the request's JWT claims, the collection
//! registry, change triggers feeding a durable change log, row history, and the schema-change
//! signal. Everything here holds however a row is written (HTTP through the sidecar, or psql).

use pgrx::prelude::*;

mod capture;
mod changelog;
mod claims;
mod elevate;
mod error;
mod history;
mod plan_cache;
mod reads;
mod registry;
mod request;
mod rethrow;
mod settings;
mod worker;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);
// Auth tables and the functions the sidecar reaches them through; `auth.users` is tracked.
pgrx::extension_sql_file!(
    "../sql/auth_tables.sql",
    name = "auth_tables",
    requires = [registry::enable_realtime, capture::capture_change]
);

// GoTrue's columns on `auth.users`, so Supabase seeds and user exports load; their hashes move to
// `auth.passwords` (sluice `db reset`, issue 13).
pgrx::extension_sql_file!(
    "../sql/auth_import.sql",
    name = "auth_import",
    requires = ["auth_tables"]
);

// Passwordless sign-in: email and phone codes, PKCE flow state, anonymous users (issue 15).
pgrx::extension_sql_file!(
    "../sql/auth_otp.sql",
    name = "auth_otp",
    requires = ["auth_import"]
);

// OAuth and OpenID Connect sign-in (issue 15): the user behind a provider's account.
pgrx::extension_sql_file!(
    "../sql/auth_oauth.sql",
    name = "auth_oauth",
    requires = ["auth_otp"]
);

// Manual identity linking and unlinking (issue 15), after the OAuth identities it builds on.
pgrx::extension_sql_file!(
    "../sql/auth_link.sql",
    name = "auth_link",
    requires = ["auth_oauth"]
);

// Resent confirmations, reauthentication nonces, phone changes, GoTrue's user JSON (issue 15).
pgrx::extension_sql_file!(
    "../sql/auth_flow.sql",
    name = "auth_flow",
    requires = ["auth_link"]
);

// MFA with TOTP (issue 15): factors, challenges and the sessions' methods (`amr`).
pgrx::extension_sql_file!(
    "../sql/auth_mfa.sql",
    name = "auth_mfa",
    requires = ["auth_tables"]
);

// The sidecar's request guards raise their own SQLSTATEs through it.
pgrx::extension_sql_file!("../sql/raise_error.sql", name = "raise_error");

// Storage (issue 11): buckets and file metadata under RLS, Supabase Storage's helpers.
pgrx::extension_sql_file!("../sql/storage.sql", name = "storage");
// S3 multipart uploads in flight, for the storage sweep.
pgrx::extension_sql_file!(
    "../sql/storage_multipart.sql",
    name = "storage_multipart",
    requires = ["storage"]
);
// Webhooks: definitions, secrets, cursors and the delivery log; the sidecars deliver them.
pgrx::extension_sql_file!(
    "../sql/webhooks.sql",
    name = "webhooks",
    requires = [registry::enable_realtime, "auth_tables"]
);

// Scheduled jobs (pg_cron's shape) and the built-in maintenance job; the sidecars run them.
pgrx::extension_sql_file!(
    "../sql/jobs.sql",
    name = "jobs",
    requires = ["webhooks", "auth_tables"]
);

/// The version the sidecar checks for at start-up.
#[pg_extern(immutable, parallel_safe)]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[allow(non_snake_case)]
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: reading a postmaster global that is set before libraries load.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    settings::register(preloading);
    if preloading {
        worker::init_preloaded();
    }
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // Preloaded, so the tests can exercise the background numbering worker; the path is
        // chosen per session with `sluice.numbering`.
        vec![
            "shared_preload_libraries = 'sluice'",
            "sluice.database = 'pgrx_tests'",
        ]
    }
}
