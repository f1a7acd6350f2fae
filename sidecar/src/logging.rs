//! Log set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Logs go to stderr so that stdout stays clean for command output
/// (`sluice keys` is meant to be piped).
pub fn init() {
    let (filter, bad_filter) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        // Unset is the normal case; a malformed RUST_LOG is reported once logging works.
        Err(err) => (
            EnvFilter::new("info"),
            std::env::var("RUST_LOG").ok().map(|value| (value, err)),
        ),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some((value, err)) = bad_filter {
        tracing::warn!("ignoring RUST_LOG={value:?} ({err}); logging at info");
    }
}
