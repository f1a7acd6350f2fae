//! Work the accounts domain does after answering (making and mailing a link, see `links`), so that
//! the answer's time does not depend on it. Bounded: at most `MAX_PENDING` tasks at once, and a
//! request waits for a slot *before* anything about its email is known, so under a flood every
//! answer slows alike and memory stays bounded. Drained at shutdown, so that a link already
//! promised is still mailed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Tasks that may run (or wait for a database connection) at once.
pub(crate) const MAX_PENDING: u32 = 64;

#[derive(Debug)]
pub struct Background {
    slots: Arc<Semaphore>,
    max: u32,
}

impl Default for Background {
    fn default() -> Self {
        Background::new(MAX_PENDING)
    }
}

impl Background {
    pub fn new(max: u32) -> Background {
        Background {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Waits for a free slot, then runs `work` in a task of its own.
    pub async fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        // The semaphore is never closed, so acquiring fails never.
        let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            work.await;
            drop(slot);
        });
    }

    /// Waits until every task has finished, for at most `within`; false if some had not.
    pub async fn drain(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.slots.acquire_many(self.max))
            .await
            .is_ok_and(|acquired| acquired.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn drain_waits_for_the_tasks_and_spawn_for_a_slot() {
        let background = Background::new(2);
        let done = Arc::new(AtomicU32::new(0));
        let task = |done: Arc<AtomicU32>| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.fetch_add(1, Ordering::SeqCst);
        };
        background.spawn(task(Arc::clone(&done))).await;
        background.spawn(task(Arc::clone(&done))).await;
        // Both slots taken: the third waits until one is free.
        let third = background.spawn(task(Arc::clone(&done)));
        assert!(tokio::time::timeout(Duration::from_millis(10), third)
            .await
            .is_err());
        background.spawn(task(Arc::clone(&done))).await;
        assert!(done.load(Ordering::SeqCst) >= 1);
        assert!(!background.drain(Duration::from_millis(1)).await);
        assert!(background.drain(Duration::from_secs(5)).await);
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }
}
