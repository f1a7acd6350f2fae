//! The start-up check: wait for the database, then make sure it has the extension this sidecar was
//! built for. Each failure names its fix, since the person reading it is setting the system up.

use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use tokio_postgres::config::Host;

use super::DbError;
use crate::error::describe;

const RETRY_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "the database at {target} was still unreachable after {}s ({}). Check DATABASE_URL (or \
         --database-url) and that Postgres is running and accepting TCP connections",
        .waited.as_secs(), describe(.cause)
    )]
    Unreachable {
        target: String,
        waited: Duration,
        cause: DbError,
    },

    #[error(
        "the database at {target} refused the connection ({}). Check the user, password and \
         database name in DATABASE_URL (or --database-url)",
        describe(.cause)
    )]
    Refused { target: String, cause: DbError },

    #[error(
        "the sluice extension is not installed in this database ({target}): run CREATE EXTENSION \
         sluice; (as a superuser) in that database, then start the sidecar again"
    )]
    ExtensionMissing { target: String },

    #[error(
        "the sluice extension in this database is version {installed} but this sidecar is version \
         {expected}: run ALTER EXTENSION sluice UPDATE TO '{expected}'; (as a superuser), or run \
         the sidecar of version {installed}"
    )]
    VersionMismatch {
        installed: String,
        expected: &'static str,
    },

    #[error("could not read the sluice extension's version: {}", describe(.cause))]
    VersionQuery { cause: tokio_postgres::Error },
}

/// Runs the whole check; returns the extension's version. `deadline` bounds the wait for an
/// unreachable database (`--startup-timeout`, 10 s by default): long enough to ride out a database that
/// is starting beside us (docker compose, a test harness), short enough that a wrong URL fails visibly.
pub(crate) async fn check(
    pool: &Pool,
    target: &str,
    deadline: Duration,
    expected_version: &'static str,
) -> Result<String, StartupError> {
    let client = wait_for_database(pool, target, deadline).await?;
    let installed = installed_extension_version(&client).await?;
    check_version(installed, expected_version, target)
}

/// Takes a connection from the pool, retrying while the database is unreachable for up to `deadline`.
/// Refusals (bad password, unknown database) are not retried: waiting will not fix them.
pub(crate) async fn wait_for_database(
    pool: &Pool,
    target: &str,
    deadline: Duration,
) -> Result<Object, StartupError> {
    let started = Instant::now();
    loop {
        // Each attempt is bounded too, so a host that swallows packets cannot outlast the deadline
        // by much; every attempt gets at least one retry interval.
        let limit = deadline
            .saturating_sub(started.elapsed())
            .max(RETRY_INTERVAL);
        let cause = match tokio::time::timeout(limit, pool.get()).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(err)) => DbError::from(err),
            Err(_) => DbError::Timeout(limit),
        };
        if is_refusal(&cause) {
            return Err(StartupError::Refused {
                target: target.to_owned(),
                cause,
            });
        }
        let waited = started.elapsed();
        if waited >= deadline {
            return Err(StartupError::Unreachable {
                target: target.to_owned(),
                waited,
                cause,
            });
        }
        let remaining = deadline - waited;
        tracing::warn!(
            "database at {target} is not reachable yet ({}); retrying for up to {}s more",
            describe(&cause),
            remaining.as_secs_f32().ceil()
        );
        tokio::time::sleep(RETRY_INTERVAL.min(remaining)).await;
    }
}

/// Class 28 (invalid authorization) and 3D000 (unknown database): the server is up and said no.
fn is_refusal(err: &DbError) -> bool {
    let sqlstate = err.sqlstate();
    sqlstate.is_some_and(|code| code.starts_with("28") || code == "3D000")
}

async fn installed_extension_version(client: &Object) -> Result<Option<String>, StartupError> {
    let row = client
        .query_opt(
            "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'sluice'",
            &[],
        )
        .await
        .map_err(|cause| StartupError::VersionQuery { cause })?;
    row.map(|row| row.try_get::<_, String>(0))
        .transpose()
        .map_err(|cause| StartupError::VersionQuery { cause })
}

/// The sidecar and the extension are released together: the sidecar calls the extension's SQL API of
/// its own release, so any other version is refused rather than half-working.
pub(crate) fn check_version(
    installed: Option<String>,
    expected: &'static str,
    target: &str,
) -> Result<String, StartupError> {
    match installed {
        None => Err(StartupError::ExtensionMissing {
            target: target.to_owned(),
        }),
        Some(installed) if installed == expected => Ok(installed),
        Some(installed) => Err(StartupError::VersionMismatch {
            installed,
            expected,
        }),
    }
}

/// `user@host:port/dbname` for messages; never the password.
pub(crate) fn describe_target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            // One port applies to every host; otherwise ports pair with hosts (libpq's rule).
            let port = match config.get_ports() {
                [] => 5432,
                [port] => *port,
                ports => ports.get(i).copied().unwrap_or(5432),
            };
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("(default user)");
    let dbname = config.get_dbname().unwrap_or(user);
    format!("{user}@{hosts}/{dbname}")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn missing_extension_says_how_to_install_it() {
        let err = check_version(None, "0.1.0", "db").unwrap_err();
        assert!(matches!(err, StartupError::ExtensionMissing { .. }));
        assert!(err.to_string().contains("CREATE EXTENSION sluice"), "{err}");
    }

    #[test]
    fn other_version_names_both_versions_and_the_update() {
        let err = check_version(Some("0.0.9".into()), "0.1.0", "db").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("0.0.9") && message.contains("0.1.0"),
            "{message}"
        );
        assert!(
            message.contains("ALTER EXTENSION sluice UPDATE TO '0.1.0'"),
            "{message}"
        );
    }

    #[test]
    fn same_version_passes() {
        assert_eq!(
            check_version(Some("0.1.0".into()), "0.1.0", "db").unwrap(),
            "0.1.0"
        );
    }

    #[test]
    fn target_omits_the_password() {
        let config =
            tokio_postgres::Config::from_str("postgres://app:s3cret@db.local:6543/shop").unwrap();
        assert_eq!(describe_target(&config), "app@db.local:6543/shop");
    }
}
