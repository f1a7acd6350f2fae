//! The connection pool, and beside it the shared connections that pipeline single-statement reads
//! (`shared.rs`).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::shared::{Pipeline, PipelineSettings};

/// Bounds on the pool's waits, so that a request never hangs on a database that is gone: a slow
/// connect or a full pool surfaces as an error the client sees, not as a stuck request.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The application name of the shared connections, unless the configuration sets one.
pub const PIPELINE_APPLICATION_NAME: &str = "sluice pipeline";

#[derive(Debug, thiserror::Error)]
#[error("could not build the connection pool: {0}")]
pub struct PoolBuildError(#[from] deadpool_postgres::BuildError);

/// The database as the rest of the sidecar reaches it: the pool of exclusive connections (what
/// `Deref` gives: `pool.get()` checks one out), and, when enabled, the few shared connections
/// that single-statement reads are pipelined on (`tx::execute` chooses). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    connections: deadpool_postgres::Pool,
    pipeline: Option<Arc<Pipeline>>,
}

impl Pool {
    /// The same pool with `settings.connections` shared connections for reads (none when 0).
    /// They open in the background (at once when called inside the runtime, else on first use);
    /// until one is open, reads take pooled connections.
    pub fn pipelined(self, database: &tokio_postgres::Config, settings: PipelineSettings) -> Pool {
        let mut config = connection_config(database);
        if database.get_application_name().is_none() {
            // So that an operator (and a test) tells them from the pool's in pg_stat_activity.
            config.application_name(PIPELINE_APPLICATION_NAME);
        }
        let pipeline = (settings.connections > 0).then(|| Pipeline::new(config, settings));
        Pool {
            connections: self.connections,
            pipeline,
        }
    }

    /// The shared connections, if this pool has them.
    pub fn pipeline(&self) -> Option<&Arc<Pipeline>> {
        self.pipeline.as_ref()
    }
}

impl Deref for Pool {
    type Target = deadpool_postgres::Pool;

    fn deref(&self) -> &deadpool_postgres::Pool {
        &self.connections
    }
}

/// The connection settings every connection of the sidecar's pool and pipeline uses: the
/// configured ones, with a connect timeout and the application name `sluice` unless set.
pub(crate) fn connection_config(database: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut database = database.clone();
    if database.get_connect_timeout().is_none() {
        database.connect_timeout(CONNECT_TIMEOUT);
    }
    if database.get_application_name().is_none() {
        database.application_name("sluice");
    }
    database
}

/// Builds the pool, without shared connections (`Pool::pipelined` adds them). No connection is
/// opened here: connections are made on first use, so this cannot fail because the database is
/// down (the start-up check reports that, with retries).
///
/// Recycling is `Fast` (check `is_closed` only, no test query per checkout). When Postgres restarts it
/// terminates every backend, tokio-postgres sees the socket close and marks the client closed, and
/// the pool discards it and connects afresh on the next checkout: the sidecar heals without a restart.
/// `Verified` would also catch a silently dead TCP peer, at the cost of a round trip on every request;
/// that case instead fails one request and is then discarded the same way.
pub fn build(database: &tokio_postgres::Config, size: usize) -> Result<Pool, PoolBuildError> {
    let manager = Manager::from_config(
        connection_config(database),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let connections = deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RECYCLE_TIMEOUT))
        .build()?;
    Ok(Pool {
        connections,
        pipeline: None,
    })
}
