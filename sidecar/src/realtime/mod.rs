//! Realtime: WebSockets speaking realtime-js's protocol, fed by the durable change log, with
//! RLS-aware delivery, resume by position, and broadcast/presence across instances.
//! `docs/realtime.md` describes the protocol.
//!
//! `protocol` (frames) → `session` (one socket's channels) → `hub` (subscriptions, fan-out in
//! position order) ← `feed` (realtime's consumer of `changelog`, following the log from its
//! head); `cluster` carries broadcast and presence between instances; `resume` replays the log
//! for a channel that joins with a position; `sql` holds all of the module's SQL; `api` checks
//! what the HTTP broadcast API receives. Notifications (new events, schema changes, the other
//! instances' messages) come from the sidecar's one LISTEN connection, `db::listen`.

pub(crate) mod api;
pub(crate) mod cluster;
mod feed;
pub(crate) mod filter;
pub(crate) mod hub;
pub(crate) mod protocol;
pub(crate) mod resume;
pub(crate) mod session;
pub(crate) mod sql;

use std::sync::Arc;
use std::time::Duration;

use crate::changelog::ChangeReader;
use crate::db::listen::{Listener, Notice, Subscription, Topic};
use crate::db::Pool;
use cluster::Cluster;
use hub::Hub;

/// The realtime service of one sidecar; cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    pub hub: Arc<Hub>,
    pub cluster: Arc<Cluster>,
    /// The change log, for the feed and for channels that resume.
    pub changes: ChangeReader,
    /// A socket that sends no frame for this long is closed (`--realtime-heartbeat-timeout`).
    pub heartbeat_timeout: Duration,
}

/// The default of `--realtime-heartbeat-timeout`: realtime-js heartbeats every 25 seconds.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);

impl Realtime {
    /// Starts the feed and the tasks that follow the listener's notices.
    pub fn start(pool: Pool, changes: ChangeReader, listener: &Listener) -> Realtime {
        let realtime = Realtime::idle(pool, changes);
        tokio::spawn(feed::run(
            realtime.changes.clone(),
            Arc::clone(&realtime.hub),
        ));
        tokio::spawn(follow_notices(
            listener.subscribe(&[Topic::Schema, Topic::Cluster]),
            Arc::clone(&realtime.hub),
            Arc::clone(&realtime.cluster),
        ));
        tokio::spawn(Arc::clone(&realtime.cluster).keep_alive());
        realtime
    }

    /// A realtime service with no feed (for tests of other routes).
    pub fn idle(pool: Pool, changes: ChangeReader) -> Realtime {
        Realtime {
            hub: Arc::new(Hub::new(pool.clone())),
            cluster: Arc::new(Cluster::new(pool)),
            changes,
            heartbeat_timeout: HEARTBEAT_TIMEOUT,
        }
    }
}

/// Cached table facts go after DDL; the other instances' messages are delivered here; and each
/// time the listener listens again, what may have been missed is made good: the table facts are
/// dropped and the instance says hello, so the others re-announce their presences.
async fn follow_notices(mut notices: Subscription, hub: Arc<Hub>, cluster: Arc<Cluster>) {
    loop {
        match notices.recv().await {
            Notice::Listening => {
                hub.forget_tables();
                cluster.announce().await;
            }
            Notice::Schema { .. } => hub.forget_tables(),
            Notice::Cluster(payload) => cluster.receive(&payload).await,
            Notice::Changes | Notice::Webhooks => {}
        }
    }
}
