//! The one LISTEN connection of a sidecar. A notification on `sluice_changes` is only a wake-up:
//! the listener then reads `sluice.changes_after(delivered)` until it is caught up, and fans out in
//! position order. After the connection drops it reconnects with backoff and reads again from
//! where it stopped, so nothing is lost however long the gap. It also carries the instances'
//! broadcast/presence channel and drops cached table facts after DDL.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::changes;
use super::cluster::{Cluster, CLUSTER_CHANNEL};
use super::hub::Hub;
use crate::error::describe;

pub const CHANGES_CHANNEL: &str = "sluice_changes";
const SCHEMA_CHANNEL: &str = "sluice_schema";
const BATCH: i32 = 1000;
/// Reads the log even without a wake-up now and then: a NOTIFY lost with a connection is caught
/// on reconnect anyway, this only bounds the delay if something else went wrong.
const POLL: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

enum Wake {
    Changes,
    Schema,
    Cluster(String),
}

pub async fn run(config: Config, hub: Arc<Hub>, cluster: Arc<Cluster>) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        match session(&config, &hub, &cluster, &mut backoff).await {
            Ok(()) => return,
            Err(err) => tracing::warn!(
                "realtime: the change listener lost its database connection ({}); reconnecting in {:?}",
                describe(&err),
                backoff
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connect(
    config: &Config,
) -> Result<(Client, mpsc::UnboundedReceiver<Wake>), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            let wake = match message {
                Ok(AsyncMessage::Notification(n)) => match n.channel() {
                    CHANGES_CHANNEL => Wake::Changes,
                    SCHEMA_CHANNEL => Wake::Schema,
                    _ => Wake::Cluster(n.payload().to_owned()),
                },
                Ok(_) => continue,
                Err(err) => {
                    tracing::debug!("realtime listener connection: {}", describe(&err));
                    break;
                }
            };
            if tx.send(wake).is_err() {
                break;
            }
        }
    });
    // The session reads the log as service_role (the only request role allowed to).
    client
        .batch_execute(&format!(
            "SET ROLE service_role; LISTEN {CHANGES_CHANNEL}; LISTEN {SCHEMA_CHANNEL}; LISTEN {CLUSTER_CHANNEL}"
        ))
        .await?;
    Ok((client, rx))
}

#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("the connection closed")]
    Closed,
}

async fn session(
    config: &Config,
    hub: &Hub,
    cluster: &Cluster,
    backoff: &mut Duration,
) -> Result<(), ListenError> {
    let (client, mut wakes) = connect(config).await?;
    {
        let mut delivered = hub.delivered_lock().await;
        if !*hub.ready.borrow() {
            // First start: deliver what commits from now on.
            *delivered = changes::head(&client).await?;
            hub.ready.send_replace(true);
        }
    }
    tracing::info!("realtime: listening for changes");
    *backoff = BACKOFF_FIRST;
    hub.forget_tables();
    cluster.announce().await;
    loop {
        catch_up(&client, hub).await?;
        let wake = tokio::time::timeout(POLL, wakes.recv()).await;
        match wake {
            Ok(Some(Wake::Changes)) | Err(_) => {}
            Ok(Some(Wake::Schema)) => hub.forget_tables(),
            Ok(Some(Wake::Cluster(payload))) => cluster.receive(&payload).await,
            // The connection task ended: the connection is gone.
            Ok(None) => return Err(ListenError::Closed),
        }
        // Drain further wake-ups already queued: one read covers them all.
        while let Ok(wake) = wakes.try_recv() {
            match wake {
                Wake::Changes => {}
                Wake::Schema => hub.forget_tables(),
                Wake::Cluster(payload) => cluster.receive(&payload).await,
            }
        }
    }
}

/// Reads and fans out until the log has nothing after `delivered`.
async fn catch_up(client: &Client, hub: &Hub) -> Result<(), tokio_postgres::Error> {
    let mut delivered = hub.delivered_lock().await;
    loop {
        let (batch, highest) = changes::read_after(client, *delivered, BATCH).await?;
        let Some(highest) = highest else {
            return Ok(());
        };
        if let Err(err) = hub.fan_out(&batch, &mut delivered).await {
            // Visibility checks need a pooled connection; retry from the event that failed.
            tracing::warn!("realtime: delivery failed ({}); retrying", describe(&err));
            drop(delivered);
            tokio::time::sleep(BACKOFF_FIRST).await;
            delivered = hub.delivered_lock().await;
            continue;
        }
        // Past TRUNCATE events too, which are not delivered.
        *delivered = (*delivered).max(highest);
    }
}
