//! The connection pool.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// Bounds on the pool's waits, so that a request never hangs on a database that is gone: a slow
/// connect or a full pool surfaces as an error the client sees, not as a stuck request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("could not build the connection pool: {0}")]
pub struct PoolBuildError(#[from] deadpool_postgres::BuildError);

/// Builds the pool. No connection is opened here: connections are made on first use, so this cannot
/// fail because the database is down (the start-up check reports that, with retries).
///
/// Recycling is `Fast` (check `is_closed` only, no test query per checkout). When Postgres restarts it
/// terminates every backend, tokio-postgres sees the socket close and marks the client closed, and
/// the pool discards it and connects afresh on the next checkout: the sidecar heals without a restart.
/// `Verified` would also catch a silently dead TCP peer, at the cost of a round trip on every request;
/// that case instead fails one request and is then discarded the same way.
pub fn build(database: &tokio_postgres::Config, size: usize) -> Result<Pool, PoolBuildError> {
    let mut database = database.clone();
    if database.get_connect_timeout().is_none() {
        database.connect_timeout(CONNECT_TIMEOUT);
    }
    if database.get_application_name().is_none() {
        database.application_name("sluice");
    }
    let manager = Manager::from_config(
        database,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RECYCLE_TIMEOUT))
        .build()?)
}
