//! The live schema cache: an `ArcSwap` that requests read without locking, and the task that
//! replaces it whenever the schema changes.
//!
//! A request calls `SchemaHandle::current()` once and plans against that `Arc` snapshot; a reload
//! builds a complete new cache off to the side and swaps the pointer, so a request sees the old
//! cache or the new one, never a mix. A failed reload keeps the old cache (stale but whole) and is
//! retried. Schema notices come from the sidecar's one LISTEN connection (`db::listen`); the
//! catalogs are read on a pooled connection.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;

use super::config::ExposedSchemas;
use super::load::load;
use super::model::SchemaCache;
use super::SchemaError;
use crate::db::listen::{Listener, Notice, Subscription, Topic};
use crate::db::Pool;
use crate::error::describe;

/// DDL often comes in bursts (a migration, `CREATE TABLE` with its indexes and grants): wait this
/// long after the first notification so that one reload covers the burst.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Retry delays double from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How long the first load waits for the listener to listen. Waiting means no DDL between the
/// load and the first LISTEN can go unnoticed; if it takes longer, the cache loads anyway and
/// loads again once the listener listens.
const FIRST_LISTEN_WAIT: Duration = Duration::from_secs(5);

/// Shared access to the current schema cache. Cheap to clone; the reload task stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SchemaHandle {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Arc<ArcSwap<SchemaCache>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl SchemaHandle {
    /// The cache as of now. Hold the `Arc` for the whole request, so that every lookup of the
    /// request agrees.
    pub fn current(&self) -> Arc<SchemaCache> {
        self.inner.cache.load_full()
    }

    /// A handle on a cache that never changes, for tests of code that plans against a cache.
    pub fn fixed(cache: SchemaCache) -> SchemaHandle {
        SchemaHandle {
            inner: Arc::new(Inner {
                cache: Arc::new(ArcSwap::from_pointee(cache)),
                task: None,
            }),
        }
    }
}

/// Loads the cache once (on a pooled connection) and spawns the task that reloads it whenever
/// the listener hears of a schema change or listens again after a gap. Fails if the first load
/// fails (start-up has already waited for the database by then).
pub async fn start(
    pool: Pool,
    listener: &Listener,
    exposed: ExposedSchemas,
) -> Result<SchemaHandle, SchemaError> {
    let mut notices = listener.subscribe(&[Topic::Schema]);
    // A notice queued before the first load is covered by it; the first `Listening` is expected.
    let pending = match tokio::time::timeout(FIRST_LISTEN_WAIT, notices.recv()).await {
        Ok(_) => None,
        Err(_) => {
            tracing::warn!(
                "the schema cache loads before the LISTEN connection is up; it reloads once it is"
            );
            Some(Reason::Listening)
        }
    };
    let cache = timed_load(&pool, &exposed, &Reason::Startup).await?;
    let cache = Arc::new(ArcSwap::from_pointee(cache));
    let reloader = Reloader {
        pool,
        exposed,
        cache: Arc::clone(&cache),
    };
    let task = tokio::spawn(reloader.run(notices, pending));
    Ok(SchemaHandle {
        inner: Arc::new(Inner {
            cache,
            task: Some(task),
        }),
    })
}

enum Reason {
    Startup,
    Notified(String),
    Listening,
    Retry,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("at start-up"),
            Reason::Notified(what) => write!(f, "after {what}"),
            Reason::Listening => f.write_str("after the LISTEN connection (re)connected"),
            Reason::Retry => f.write_str("on retry"),
        }
    }
}

async fn timed_load(
    pool: &Pool,
    exposed: &ExposedSchemas,
    reason: &Reason,
) -> Result<SchemaCache, SchemaError> {
    let started = Instant::now();
    let mut client = pool.get().await.map_err(SchemaError::Connect)?;
    let cache = load(&mut client, exposed).await?;
    tracing::info!(
        "schema cache loaded {reason}: {} in {} ms",
        cache.summary(),
        started.elapsed().as_millis()
    );
    Ok(cache)
}

struct Reloader {
    pool: Pool,
    exposed: ExposedSchemas,
    cache: Arc<ArcSwap<SchemaCache>>,
}

impl Reloader {
    async fn run(self, mut notices: Subscription, mut pending: Option<Reason>) {
        let mut failures: u32 = 0;
        loop {
            let reason = match pending.take() {
                Some(reason) => reason,
                None => wait(&mut notices).await,
            };
            match timed_load(&self.pool, &self.exposed, &reason).await {
                Ok(cache) => {
                    self.cache.store(Arc::new(cache));
                    failures = 0;
                }
                Err(err) => {
                    failures += 1;
                    let delay = backoff(failures);
                    tracing::error!(
                        "schema cache reload failed (keeping the previous cache; retrying in {} \
                         ms): {}",
                        delay.as_millis(),
                        describe(&err)
                    );
                    tokio::time::sleep(delay).await;
                    pending = Some(Reason::Retry);
                }
            }
        }
    }
}

/// Waits for a schema notice (then for the burst to end) or for the listener to listen again
/// (DDL may have happened while it was away).
async fn wait(notices: &mut Subscription) -> Reason {
    let mut reason = match notices.recv().await {
        Notice::Schema { reason } => Reason::Notified(reason),
        _ => Reason::Listening,
    };
    tokio::time::sleep(DEBOUNCE).await;
    // Everything that arrived during the pause is covered by the one reload.
    while let Some(notice) = notices.try_recv() {
        if let Notice::Schema { reason: what } = notice {
            reason = Reason::Notified(what);
        }
    }
    reason
}

/// 250 ms, 500 ms, 1 s, ... up to 10 s.
fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(10), RETRY_MAX);
        assert_eq!(backoff(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn a_fixed_handle_serves_its_cache() {
        let cache = SchemaCache::new(&ExposedSchemas::default(), Vec::new(), Vec::new());
        let handle = SchemaHandle::fixed(cache.clone());
        assert_eq!(*handle.current(), cache);
    }
}
