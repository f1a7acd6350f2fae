//! Resume: a channel that joins with `resume_after` first replays the change log after that
//! position, then goes live exactly where the replay ended (see `hub` for why this leaves no gap
//! and no duplicate).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::hub::{ChangeSub, SubKey};
use super::Realtime;
use crate::error::describe;

/// Replays the log after the subscription's cursor, then registers it live.
pub async fn catch_up_then_live(rt: Realtime, key: SubKey, sub: Arc<ChangeSub>) {
    let mut cursor = sub.cursor.load(Ordering::Relaxed);
    let mut backoff = Duration::from_millis(100);
    loop {
        match rt.read_log(cursor).await {
            Ok((batch, Some(highest))) => {
                let mut complete = true;
                for change in &batch {
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
                    // Past TRUNCATE events too, which are read but not delivered.
                    cursor = cursor.max(highest);
                }
                if sub.outbox.overflowed() {
                    return;
                }
            }
            Ok((_, None)) => {
                // Caught up with the log: go live if the listener has not delivered past us.
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
