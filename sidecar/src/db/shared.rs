//! Shared connections that pipeline single-statement reads.
//!
//! A GET is one call of `sluice.run_request` in its own implicit transaction. On a pooled
//! connection each GET has a backend to itself, which sleeps between requests and is woken for
//! each one (a socket read, a send, a wake-up, on both sides, per request). tokio-postgres
//! pipelines the queries issued concurrently on one `Client`: its connection task writes every
//! queued message before flushing and reads every answer available, and an error in one query
//! skips only to that query's own Sync. So concurrent reads share a few connections here: each
//! backend works through a queue instead of sleeping, and both sides make far fewer system calls
//! per request. The role, claims and request settings are transaction-local inside
//! `run_request`, so nothing one read sets is seen by the next one on the same connection.
//!
//! Only read-only, committed single-statement requests come here (`tx::execute` decides);
//! writes, dry runs and multi-statement transactions keep exclusive pooled connections.
//!
//! Choosing a connection: the open one with the fewest queries not yet answered, below
//! `depth`, whose oldest unanswered query was sent at most `STALLED_AFTER` ago. A connection
//! behind a slow query (a function that sleeps, a large scan) is passed over once that query
//! has taken longer than a normal read, so that fast reads are not queued behind it; when no
//! connection qualifies, the read takes a pooled connection as every request did before.
//!
//! Cancellation: a read whose client goes away is **not** cancelled in Postgres. A cancel request
//! names a backend, not a query, and on a shared connection it would hit whichever query runs
//! at that moment: possibly another client's. The abandoned read runs to its end (it is
//! read-only and bounded by its role's `statement_timeout`, which `run_request` applies) and its
//! answer is dropped. Its place in the connection's count of unanswered queries is given up only
//! when it has ended (see `Lane`'s `Drop`), not when the client leaves.
//!
//! Failure: when a backend dies (terminated, crashed, the network gone) the queries on it fail
//! (503, as on a pooled connection) and the next read that looks at the connection opens a new one
//! in the background; meanwhile reads use the other shared connections or the pool.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Config, Error as PgError, NoTls, Statement};

use super::pool::CONNECT_TIMEOUT;
use super::tx::{Call, TextRow, RUN_REQUEST};
use super::DbError;

/// How long the oldest unanswered query of a connection may have waited before new reads pass
/// the connection over: a GET by key answers in well under a millisecond, so a few milliseconds
/// mean a slow query (or an overloaded machine, where the pool is as good a place).
const STALLED_AFTER: Duration = Duration::from_millis(5);

/// How long after a failed attempt a connection is tried again (reads take the pool meanwhile).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// `--db-pipeline-connections` and `--db-pipeline-depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineSettings {
    /// How many shared connections; 0 turns pipelining off.
    pub connections: usize,
    /// The most unanswered queries on one connection; more reads wait in the pool instead.
    pub depth: usize,
}

/// The shared connections, each opened on demand and replaced when it dies.
pub struct Pipeline {
    config: Config,
    depth: usize,
    slots: Box<[Mutex<Slot>]>,
    pipelined: AtomicU64,
    passed_over: AtomicU64,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("connections", &self.slots.len())
            .field("depth", &self.depth)
            .field("stats", &self.stats())
            .finish()
    }
}

enum Slot {
    /// Not open yet, or closed: opened by the next read that looks.
    Closed,
    Opening,
    Open(Arc<Connection>),
    /// The last attempt to open failed at this instant.
    Failed(Instant),
}

struct Connection {
    client: Client,
    /// `RUN_REQUEST`, prepared once on this connection.
    call: Statement,
    /// When each query not yet answered was sent, oldest first. Answers come back in the order
    /// the queries were sent, so the front is the query the backend is on (or the one after it).
    sent: Mutex<VecDeque<Instant>>,
    /// Set when a query on it failed because the connection broke (the backend was terminated,
    /// the server went away): no read is sent on it any more, even before the client notices
    /// that the socket closed.
    broken: AtomicBool,
}

impl Connection {
    fn is_down(&self) -> bool {
        self.broken.load(Ordering::Relaxed) || self.client.is_closed()
    }

    fn sent(&self) -> MutexGuard<'_, VecDeque<Instant>> {
        // A panic while holding the lock leaves a plain queue of instants: still usable.
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What `Pipeline::stats` reports: counters since the start, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineStats {
    /// Reads sent on a shared connection.
    pub pipelined: u64,
    /// Reads that found no shared connection open, below its depth and not stalled, and took
    /// a pooled connection.
    pub passed_over: u64,
    /// Shared connections open now.
    pub open: usize,
}

impl Pipeline {
    /// The pipeline over `config` (the pool's own connection settings). Inside a runtime the
    /// connections start opening at once; otherwise on the first read.
    pub(crate) fn new(config: Config, settings: PipelineSettings) -> Arc<Pipeline> {
        let pipeline = Arc::new(Pipeline {
            config,
            depth: settings.depth.max(1),
            slots: (0..settings.connections)
                .map(|_| Mutex::new(Slot::Closed))
                .collect(),
            pipelined: AtomicU64::new(0),
            passed_over: AtomicU64::new(0),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            let now = Instant::now();
            for index in 0..pipeline.slots.len() {
                pipeline.connection(index, now);
            }
        }
        pipeline
    }

    pub fn stats(&self) -> PipelineStats {
        let open = (0..self.slots.len())
            .filter(|&index| {
                matches!(&*self.slot(index), Slot::Open(connection) if !connection.is_down())
            })
            .count();
        PipelineStats {
            pipelined: self.pipelined.load(Ordering::Relaxed),
            passed_over: self.passed_over.load(Ordering::Relaxed),
            open,
        }
    }

    /// A place for one read on the least busy shared connection, or `None` when none qualifies
    /// (see the module's comment): the read then takes a pooled connection.
    pub(crate) fn lane(self: &Arc<Self>) -> Option<Lane> {
        let now = Instant::now();
        let mut best: Option<(usize, Arc<Connection>)> = None;
        for index in 0..self.slots.len() {
            let Some(connection) = self.connection(index, now) else {
                continue;
            };
            let sent = connection.sent();
            let waiting = sent.len();
            let stalled = sent
                .front()
                .is_some_and(|first| now.saturating_duration_since(*first) > STALLED_AFTER);
            drop(sent);
            if waiting >= self.depth || stalled {
                continue;
            }
            if best.as_ref().is_none_or(|(fewest, _)| waiting < *fewest) {
                best = Some((waiting, connection));
                if waiting == 0 {
                    break;
                }
            }
        }
        match best {
            Some((_, connection)) => {
                // Two reads may both take the last place below `depth`: the bound is soft by the
                // number of reads choosing at the same instant, which is harmless.
                connection.sent().push_back(now);
                self.pipelined.fetch_add(1, Ordering::Relaxed);
                Some(Lane {
                    connection,
                    answered: false,
                })
            }
            None => {
                self.passed_over.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn slot(&self, index: usize) -> MutexGuard<'_, Slot> {
        self.slots[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Slot `index`'s connection if it is open; otherwise starts opening it (unless it is already
    /// opening, or failed less than `RETRY_AFTER` ago) and answers `None`.
    fn connection(self: &Arc<Self>, index: usize, now: Instant) -> Option<Arc<Connection>> {
        let mut slot = self.slot(index);
        match &*slot {
            Slot::Open(connection) if !connection.is_down() => return Some(Arc::clone(connection)),
            Slot::Opening => return None,
            Slot::Failed(at) if now.saturating_duration_since(*at) < RETRY_AFTER => return None,
            Slot::Open(_) | Slot::Closed | Slot::Failed(_) => {}
        }
        // Opening needs the runtime; outside one (never the case in a request) stay closed.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return None;
        };
        *slot = Slot::Opening;
        let pipeline = Arc::clone(self);
        runtime.spawn(async move {
            let opened = tokio::time::timeout(CONNECT_TIMEOUT, connect(&pipeline.config)).await;
            let next = match opened {
                Ok(Ok(connection)) => Slot::Open(Arc::new(connection)),
                Ok(Err(err)) => {
                    tracing::warn!(
                        "could not open a shared connection for reads ({}); reads use the pool",
                        crate::error::describe(&err)
                    );
                    Slot::Failed(Instant::now())
                }
                Err(_) => {
                    tracing::warn!(
                        "opening a shared connection for reads took over {}s; reads use the pool",
                        CONNECT_TIMEOUT.as_secs()
                    );
                    Slot::Failed(Instant::now())
                }
            };
            *pipeline.slot(index) = next;
        });
        None
    }
}

/// Opens one shared connection and prepares `RUN_REQUEST` on it. The statement is prepared as
/// the login role, as on pooled connections: `sluice.run_request` is callable by it, and the
/// request's own statement is parsed inside the call, as the request's role.
async fn connect(config: &Config) -> Result<Connection, PgError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(
                "a shared connection for reads closed: {}",
                crate::error::describe(&err)
            );
        }
    });
    let call = client.prepare(RUN_REQUEST).await?;
    Ok(Connection {
        client,
        call,
        sent: Mutex::new(VecDeque::new()),
        broken: AtomicBool::new(false),
    })
}

/// A read's place on a shared connection: counted among the connection's unanswered queries
/// until its answer has arrived.
pub(crate) struct Lane {
    connection: Arc<Connection>,
    answered: bool,
}

impl Lane {
    /// Sends `call` on the connection and waits for its answer. If this future is dropped (the
    /// client went away) the query still runs to its end: no cancel is sent (see the module's
    /// comment), and its place is held until it has ended (see `Drop`).
    pub(crate) async fn run(mut self, call: Call<'_>) -> Result<Option<TextRow>, DbError> {
        let connection = &self.connection;
        let answer = connection
            .client
            .query_one(&connection.call, &call.args())
            .await
            .and_then(|row| row.try_get(0))
            .map_err(DbError::Query);
        // Marked before this read leaves the connection's count: until then the connection
        // looks stalled, so no read is sent on it between its failure and the mark.
        if answer.as_ref().is_err_and(DbError::is_unavailable) {
            connection.broken.store(true, Ordering::Relaxed);
        }
        self.answered = true;
        answer
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if self.answered {
            self.connection.sent().pop_front();
            return;
        }
        // Abandoned before its answer: the query may be queued or running on the backend. The
        // backend answers in order, so once an empty query sent behind it is answered, it has
        // ended; its place is held until then (a rare path: a client that went away).
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let connection = Arc::clone(&self.connection);
                runtime.spawn(async move {
                    let _ = connection.client.batch_execute("").await;
                    connection.sent().pop_front();
                });
            }
            Err(_) => {
                self.connection.sent().pop_front();
            }
        }
    }
}
