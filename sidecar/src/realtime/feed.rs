//! Realtime's consumer of the change log: it follows the log from its head at start-up and fans
//! each batch out to the live subscriptions in position order. The log is read by `changelog`
//! (woken by the sidecar's one LISTEN connection), so after any gap the feed simply reads on
//! from where it stopped: nothing is lost however long the gap.

use std::sync::Arc;
use std::time::Duration;

use super::hub::Hub;
use crate::changelog::ChangeReader;
use crate::error::describe;

const RETRY: Duration = Duration::from_millis(100);

pub(super) async fn run(changes: ChangeReader, hub: Arc<Hub>) {
    let head = loop {
        match changes.head().await {
            Ok(head) => break head,
            Err(err) => {
                tracing::warn!("realtime: could not read the change log's head ({err}); retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    {
        // First start: deliver what commits from now on.
        let mut delivered = hub.delivered_lock().await;
        *delivered = head;
        hub.ready.send_replace(true);
    }
    tracing::info!("realtime: following the change log from position {head}");
    let mut follower = changes.follow(head);
    loop {
        let batch = follower.next().await;
        let mut delivered = hub.delivered_lock().await;
        match hub.fan_out(&batch.events, &mut delivered).await {
            // Past events that were read but not decoded, too.
            Ok(()) => *delivered = (*delivered).max(batch.through.unwrap_or(*delivered)),
            // Visibility checks need a pooled connection; `delivered` stopped before the event
            // that failed, and the next read starts there.
            Err(err) => {
                tracing::warn!("realtime: delivery failed ({}); retrying", describe(&err));
                follower.advance(*delivered);
                drop(delivered);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        follower.advance(*delivered);
    }
}
