//! Resume: a channel that joins with `resume_after` first replays the change log after that
//! position, then goes live exactly where the replay ended (see `hub` for why this leaves no gap
//! and no duplicate).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::hub::{ChangeSub, SubKey};
use super::Realtime;
use crate::error::describe;

/// Events per replay read.
const BATCH: i32 = 1000;

/// Replays the log after the subscription's cursor, then registers it live.
pub(crate) async fn catch_up_then_live(rt: Realtime, key: SubKey, sub: Arc<ChangeSub>) {
    let mut cursor = sub.cursor.load(Ordering::Relaxed);
    let mut backoff = Duration::from_millis(100);
    loop {
        match rt.changes.read_after(cursor, BATCH).await {
            Ok(batch) if batch.through.is_some() => {
                let mut complete = true;
                for change in &batch.events {
                    if let Err(err) = rt.hub.deliver(change, std::slice::from_ref(&sub)).await {
                        // Retry from the first event not delivered.
                        tracing::warn!("realtime: resume delivery failed: {}", describe(&err));
                        tokio::time::sleep(backoff).await;
                        complete = false;
                        break;
                    }
                    cursor = change.position;
                }
                if complete {
                    // Past events that were read but not decoded, too.
                    cursor = cursor.max(batch.through.unwrap_or(cursor));
                }
                if sub.outbox.overflowed() {
                    return;
                }
            }
            Ok(_) => {
                // Caught up with the log: go live if the feed has not delivered past us.
                let delivered = rt.hub.delivered_lock().await;
                if *rt.hub.ready.borrow() && *delivered <= cursor {
                    sub.cursor.store(cursor, Ordering::Relaxed);
                    rt.hub.insert_live(key, sub);
                    return;
                }
            }
            Err(err) => {
                tracing::warn!("realtime: resume read failed: {err}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
