//! The live schema cache: an `ArcSwap` that requests read without locking, and the task that
//! replaces it whenever the schema changes.
//!
//! A request calls `SchemaHandle::current()` once and plans against that `Arc` snapshot; a reload
//! builds a complete new cache off to the side and swaps the pointer, so a request sees the old
//! cache or the new one, never a mix. A failed reload keeps the old cache (stale but whole) and is
//! retried.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::config::ExposedSchemas;
use super::listen::{listener_config, Listener};
use super::load::load;
use super::model::SchemaCache;
use super::SchemaError;
use crate::error::describe;

/// DDL often comes in bursts (a migration, `CREATE TABLE` with its indexes and grants): wait this
/// long after the first notification so that one reload covers the burst.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Reconnection and retry delays double from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Shared access to the current schema cache. Cheap to clone; the reload task stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SchemaHandle {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Arc<ArcSwap<SchemaCache>>,
    requested: Arc<Notify>,
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

    /// Asks the reload task to reload soon (a SIGUSR1 handler, say). Does not wait.
    pub fn request_reload(&self) {
        self.inner.requested.notify_one();
    }

    /// A handle on a cache that never changes, for tests of code that plans against a cache.
    pub fn fixed(cache: SchemaCache) -> SchemaHandle {
        SchemaHandle {
            inner: Arc::new(Inner {
                cache: Arc::new(ArcSwap::from_pointee(cache)),
                requested: Arc::new(Notify::new()),
                task: None,
            }),
        }
    }
}

/// Connects a listener, loads the cache once, and spawns the task that keeps it current. Fails if
/// the first connection or load fails (start-up has already waited for the database by then).
pub async fn start(
    database: &tokio_postgres::Config,
    exposed: ExposedSchemas,
) -> Result<SchemaHandle, SchemaError> {
    let config = listener_config(database);
    let mut listener = Listener::connect(&config).await?;
    let cache = timed_load(&mut listener, &exposed, &Reason::Startup).await?;
    let cache = Arc::new(ArcSwap::from_pointee(cache));
    let requested = Arc::new(Notify::new());
    let reloader = Reloader {
        config,
        exposed,
        cache: Arc::clone(&cache),
        requested: Arc::clone(&requested),
    };
    let task = tokio::spawn(reloader.run(listener));
    Ok(SchemaHandle {
        inner: Arc::new(Inner {
            cache,
            requested,
            task: Some(task),
        }),
    })
}

enum Reason {
    Startup,
    Notified(String),
    Requested,
    Reconnected,
    Retry,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("at start-up"),
            Reason::Notified(what) => write!(f, "after {what}"),
            Reason::Requested => f.write_str("on request"),
            Reason::Reconnected => f.write_str("after reconnecting"),
            Reason::Retry => f.write_str("on retry"),
        }
    }
}

async fn timed_load(
    listener: &mut Listener,
    exposed: &ExposedSchemas,
    reason: &Reason,
) -> Result<SchemaCache, SchemaError> {
    let started = Instant::now();
    let cache = load(&mut listener.client, exposed).await?;
    tracing::info!(
        "schema cache loaded {reason}: {} in {} ms",
        cache.summary(),
        started.elapsed().as_millis()
    );
    Ok(cache)
}

struct Reloader {
    config: tokio_postgres::Config,
    exposed: ExposedSchemas,
    cache: Arc<ArcSwap<SchemaCache>>,
    requested: Arc<Notify>,
}

enum Wake {
    Reload(Reason),
    Disconnected,
}

impl Reloader {
    async fn run(self, mut listener: Listener) {
        let mut pending: Option<Reason> = None;
        let mut failures: u32 = 0;
        loop {
            let reason = match pending.take() {
                Some(reason) => reason,
                None => match self.wait(&mut listener).await {
                    Wake::Reload(reason) => reason,
                    Wake::Disconnected => {
                        tracing::warn!(
                            "the schema cache lost its database connection; reconnecting (the \
                             cache stays as it is meanwhile)"
                        );
                        listener = self.reconnect().await;
                        // DDL may have happened while we were away.
                        Reason::Reconnected
                    }
                },
            };
            match timed_load(&mut listener, &self.exposed, &reason).await {
                Ok(cache) => {
                    self.cache.store(Arc::new(cache));
                    failures = 0;
                }
                Err(err) if listener.client.is_closed() => {
                    tracing::warn!("schema cache reload failed: {}", describe(&err));
                    listener = self.reconnect().await;
                    pending = Some(Reason::Reconnected);
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

    /// Waits for a notification (then for the burst to end) or a request.
    async fn wait(&self, listener: &mut Listener) -> Wake {
        tokio::select! {
            changed = listener.changes.changed() => match changed {
                Ok(()) => {
                    tokio::time::sleep(DEBOUNCE).await;
                    // Marks everything that arrived during the pause as seen: one reload for all.
                    let what = listener.changes.borrow_and_update().clone();
                    Wake::Reload(Reason::Notified(what))
                }
                Err(_) => Wake::Disconnected,
            },
            () = self.requested.notified() => Wake::Reload(Reason::Requested),
        }
    }

    async fn reconnect(&self) -> Listener {
        let mut attempts: u32 = 0;
        loop {
            match Listener::connect(&self.config).await {
                Ok(listener) => {
                    tracing::info!("the schema cache reconnected to the database");
                    return listener;
                }
                Err(err) => {
                    attempts += 1;
                    let delay = backoff(attempts);
                    tracing::warn!(
                        "the schema cache could not reconnect (retrying in {} ms): {}",
                        delay.as_millis(),
                        describe(&err)
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
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
        handle.request_reload(); // No task: nothing happens, nothing panics.
    }
}
