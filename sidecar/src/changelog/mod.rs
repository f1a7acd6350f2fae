//! The change log, read for every consumer: realtime today, the webhook dispatcher next, each with
//! a cursor of its own.
//!
//! `ChangeReader` reads `sluice.changes_after(position, n)` on pooled connections (`sql` holds all
//! of this module's SQL). Positions become visible in increasing order (the extension numbers
//! events at commit under a lock), so "every event after my cursor, in position order" is exact
//! and a consumer that was away (a lost connection, a restart with a stored cursor) catches up by
//! reading on from its cursor. Every kind of event is read, `TRUNCATE` included; consumers
//! decide what to do with each.
//!
//! A consumer calls `follow(cursor)` and loops on `Follower::next`, which returns the next batch
//! after its cursor, waiting for a wake-up when the log has nothing more. Wake-ups come from the
//! sidecar's one LISTEN connection (`db::listen`): a `NOTIFY sluice_changes`, and each time that
//! connection listens again after a gap (a NOTIFY may have been lost meanwhile). A poll every few
//! seconds bounds the delay should a wake-up still go missing.

pub(crate) mod event;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use event::{Batch, Change, Op};

use crate::db::listen::{Listener, Topic};
use crate::db::Pool;
use crate::error::describe;

/// Events per read.
const BATCH: i32 = 1000;
/// Reads without a wake-up after this long.
const POLL: Duration = Duration::from_secs(5);
/// A failed read is retried after this delay, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("could not get a database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("reading the change log failed: {}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
}

/// Reads the change log; cheap to clone (every clone shares the wake-ups).
#[derive(Clone)]
pub struct ChangeReader {
    pool: Pool,
    /// Bumped on every wake-up; followers wait for it to change.
    wakeups: Arc<watch::Sender<u64>>,
}

impl ChangeReader {
    /// A reader that only polls: for parts that are tested without a listener.
    pub fn new(pool: Pool) -> ChangeReader {
        ChangeReader {
            pool,
            wakeups: Arc::new(watch::channel(0).0),
        }
    }

    /// A reader woken by the listener: on new events, and each time it listens again.
    pub fn start(pool: Pool, listener: &Listener) -> ChangeReader {
        let reader = ChangeReader::new(pool);
        let mut notices = listener.subscribe(&[Topic::Changes]);
        let wakeups = Arc::clone(&reader.wakeups);
        tokio::spawn(async move {
            loop {
                // `Changes` or `Listening`: either way, there may be something to read.
                notices.recv().await;
                wakeups.send_modify(|n| *n = n.wrapping_add(1));
            }
        });
        reader
    }

    /// Up to `limit` committed events after `after`, in position order.
    pub async fn read_after(&self, after: i64, limit: i32) -> Result<Batch, ReadError> {
        let client = self.pool.get().await?;
        Ok(sql::read_after(&client, after, limit).await?)
    }

    /// The highest position committed so far: where a consumer starts that wants only what
    /// commits from now on.
    pub async fn head(&self) -> Result<i64, ReadError> {
        let client = self.pool.get().await?;
        Ok(sql::head(&client).await?)
    }

    /// Positions up to this one have been pruned (`sluice.prune_changes`): a cursor below it
    /// would skip events.
    pub async fn pruned_through(&self) -> Result<i64, ReadError> {
        let client = self.pool.get().await?;
        Ok(sql::pruned_through(&client).await?)
    }

    /// Follows the log from `cursor` (exclusive).
    pub fn follow(&self, cursor: i64) -> Follower {
        Follower {
            reader: self.clone(),
            cursor,
            wakeups: self.wakeups.subscribe(),
            retry: RETRY_FIRST,
        }
    }
}

/// One consumer's position in the log.
pub struct Follower {
    reader: ChangeReader,
    cursor: i64,
    wakeups: watch::Receiver<u64>,
    retry: Duration,
}

impl Follower {
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Marks the events up to `position` as handled; the next read starts after it.
    pub fn advance(&mut self, position: i64) {
        self.cursor = self.cursor.max(position);
    }

    /// The next events after the cursor: at once if the log has any, else after the next
    /// wake-up. The cursor does not move until `advance`, so a consumer that fails to handle a
    /// batch gets it again. A failed read (the database gone) is logged and retried with backoff:
    /// this never gives up, and returns only with at least one position to move past.
    pub async fn next(&mut self) -> Batch {
        loop {
            // Seen before reading: a wake-up during the read makes the wait below return at once.
            self.wakeups.borrow_and_update();
            match self.reader.read_after(self.cursor, BATCH).await {
                Ok(batch) if batch.through.is_some() => {
                    self.retry = RETRY_FIRST;
                    return batch;
                }
                Ok(_) => {
                    self.retry = RETRY_FIRST;
                    // The sender lives in `self.reader`, so this ends by a wake-up or the poll.
                    let _ = tokio::time::timeout(POLL, self.wakeups.changed()).await;
                }
                Err(err) => {
                    tracing::warn!(
                        "change log: reading after {} failed ({err}); retrying in {:?}",
                        self.cursor,
                        self.retry
                    );
                    tokio::time::sleep(self.retry).await;
                    self.retry = (self.retry * 2).min(RETRY_MAX);
                }
            }
        }
    }
}
