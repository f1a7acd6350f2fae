//! Realtime: WebSockets speaking realtime-js's protocol, fed by one LISTEN connection and the
//! durable change log, with RLS-aware delivery, resume by position, and broadcast/presence across
//! instances. `docs/realtime.md` describes the protocol.
//!
//! `protocol` (frames) → `session` (one socket's channels) → `hub` (subscriptions, fan-out in
//! position order) ← `listener` (the LISTEN connection, reading the log); `cluster` carries
//! broadcast and presence between instances; `resume` replays the log for a channel that joins
//! with a position; `changes` holds all of the module's SQL; `api` checks what the HTTP
//! broadcast API receives.

pub mod api;
pub mod changes;
pub mod cluster;
pub mod filter;
pub mod hub;
pub mod listener;
pub mod protocol;
pub mod resume;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Config;

use crate::db::Pool;
use crate::error::describe;
use changes::Change;
use cluster::Cluster;
use hub::Hub;

/// The realtime service of one sidecar; cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    pub hub: Arc<Hub>,
    pub cluster: Arc<Cluster>,
    /// A socket that sends no frame for this long is closed (`--realtime-heartbeat-timeout`).
    pub heartbeat_timeout: Duration,
}

/// The default of `--realtime-heartbeat-timeout`: realtime-js heartbeats every 25 seconds.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);

/// Application name of the listener's session, for `pg_stat_activity`.
const APPLICATION_NAME: &str = "sluice realtime";

impl Realtime {
    /// Starts the listener task; it connects (and reconnects) by itself.
    pub fn start(database: &Config, pool: Pool) -> Realtime {
        let realtime = Realtime::idle(pool);
        let mut config = crate::schema::listen::listener_config(database);
        if database.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        tokio::spawn(listener::run(
            config,
            Arc::clone(&realtime.hub),
            Arc::clone(&realtime.cluster),
        ));
        tokio::spawn(Arc::clone(&realtime.cluster).keep_alive());
        realtime
    }

    /// A realtime service without a listener (for tests of other routes).
    pub fn idle(pool: Pool) -> Realtime {
        Realtime {
            hub: Arc::new(Hub::new(pool.clone())),
            cluster: Arc::new(Cluster::new(pool)),
            heartbeat_timeout: HEARTBEAT_TIMEOUT,
        }
    }

    /// Events after `after` from the log, on a pooled connection as service_role.
    pub async fn read_log(&self, after: i64) -> Result<(Vec<Change>, Option<i64>), String> {
        let mut client = self.hub.pool.get().await.map_err(|e| describe(&e))?;
        let tx = client.transaction().await.map_err(|e| describe(&e))?;
        tx.batch_execute("SET LOCAL ROLE service_role")
            .await
            .map_err(|e| describe(&e))?;
        let read = changes::read_after(&*tx, after, 1000)
            .await
            .map_err(|e| describe(&e))?;
        tx.commit().await.map_err(|e| describe(&e))?;
        Ok(read)
    }
}
