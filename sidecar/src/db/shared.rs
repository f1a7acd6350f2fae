//! Shared connections that pipeline single-statement reads, and send the reads that queue up
//! together.
//!
//! A GET is one call of `sluice.run_request` in its own implicit transaction. On a pooled
//! connection each GET has a backend to itself, which sleeps between requests and is woken for
//! each one (a socket read, a send, a wake-up, on both sides, per request). So concurrent reads
//! share a few connections here instead. A read placed on a shared connection is queued there; a
//! sender task of the connection takes everything queued and sends it as one call: a read alone
//! as `sluice.run_request`, several as one call of `sluice.run_reads`, which runs each read in a
//! subtransaction of its own that is rolled back after it (extension/src/reads.rs). Postgres then
//! starts, commits and answers one transaction, with one flush, for all of them: per read, that
//! cost more than the read itself. Two senders may be on their way at once, so the next call is
//! queued behind the one the backend is on and the backend does not wait for the sidecar; reads
//! that arrive meanwhile go together in the call after. Under light load a read is sent at once,
//! alone. The reads of one call are answered together, when the last has ended: a slow read holds
//! the reads sent with it, as it holds the reads queued behind it on the connection. Both are
//! bounded by the roles' statement timeouts, and new reads pass the connection over meanwhile
//! (below).
//!
//! Each read still runs as its own role with its own claims and settings, all transaction-local
//! to its subtransaction, so nothing one read sets is seen by the next one. A read that fails
//! answers its own error (SQLSTATE, message, detail, hint) and the others are not affected; no
//! read is run twice.
//!
//! Only read-only, committed single-statement requests come here (`tx::execute` decides);
//! writes, dry runs and multi-statement transactions keep exclusive pooled connections.
//!
//! Choosing a connection: the open one with the fewest reads not yet answered, below `depth`,
//! whose oldest unanswered call has not taken longer than its reads should (`stalled`). A
//! connection behind a slow query (a function that sleeps, a large scan) is passed over once that
//! query has taken longer than normal reads, so that fast reads are not queued behind it; when
//! no connection qualifies, the read takes a pooled connection as every request did before.
//!
//! Cancellation: a read whose client goes away is **not** cancelled in Postgres. A cancel request
//! names a backend, not a query, and on a shared connection it would hit whichever query runs
//! at that moment: possibly another client's. The abandoned read runs to its end (it is
//! read-only and bounded by its role's `statement_timeout`, which `run_request` and
//! `run_reads` apply) and its answer is dropped. Its place in the connection's count of
//! unanswered reads is given up only when it has ended, not when the client leaves.
//!
//! Failure: when a backend dies (terminated, crashed, the network gone) the reads on it fail
//! (503, as on a pooled connection) and the next read that looks at the connection opens a new one
//! in the background; meanwhile reads use the other shared connections or the pool.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Error as PgError, NoTls, Statement};

use super::pool::CONNECT_TIMEOUT;
use super::tx::{OwnedCall, TextRow, RUN_READS, RUN_REQUEST};
use super::{DbError, ReadError};

/// How long the oldest unanswered call of a connection may take before new reads pass the
/// connection over: `STALLED_AFTER`, and `PER_READ` more for each read in the call. A GET by key
/// answers in well under a millisecond, and a read among others in a call in a few tens of
/// microseconds, so this means a slow query (or an overloaded machine, where the pool is as good
/// a place). Without the allowance per read, a call of 64 reads on a slow, busy machine passed
/// the 5 ms and sent reads to the (costlier) pool just when the machine had the least to spare.
const STALLED_AFTER: Duration = Duration::from_millis(5);
const PER_READ: Duration = Duration::from_micros(200);

/// Whether a call of `reads` reads, sent at `sent_at`, has taken longer than it should by `now`.
fn stalled(now: Instant, sent_at: Instant, reads: usize) -> bool {
    let allowed = STALLED_AFTER + PER_READ * u32::try_from(reads).unwrap_or(u32::MAX).min(1024);
    now.saturating_duration_since(sent_at) > allowed
}

/// Tasks that may send a connection's reads at once: with two, the next call is on its way while
/// the backend works on the current one, so the backend does not wait for the sidecar between
/// calls; reads arriving meanwhile queue for the call after.
const SENDERS: usize = 2;

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
    batches: AtomicU64,
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
    /// `RUN_REQUEST`, prepared once on this connection: a read sent alone.
    call: Statement,
    /// `RUN_READS`, prepared once on this connection: reads sent together.
    batch: Statement,
    state: Mutex<State>,
    /// Set when a query on it failed because the connection broke (the backend was terminated,
    /// the server went away): no read is sent on it any more, even before the client notices
    /// that the socket closed.
    broken: AtomicBool,
}

/// The reads of one connection.
#[derive(Default)]
struct State {
    /// Reads placed on the connection and not yet answered: queued or sent.
    places: usize,
    /// Reads waiting for a sender, in the order they came.
    queue: Vec<Queued>,
    /// When each call on its way was sent and how many reads it carries, oldest first: the
    /// front is the call the backend is on (or the one after it).
    sent: VecDeque<(Instant, usize)>,
    /// Sender tasks running (at most `SENDERS`).
    senders: usize,
}

struct Queued {
    call: OwnedCall,
    reply: oneshot::Sender<Result<Option<TextRow>, DbError>>,
}

impl Connection {
    fn is_down(&self) -> bool {
        self.broken.load(Ordering::Relaxed) || self.client.is_closed()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counts and queues: still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends the queued reads, all of them in one call, until none is left; then ends. The reads
    /// are taken when the task runs, not when it was spawned, so that reads arriving meanwhile
    /// go in the same call.
    async fn send_queued(&self, batches: &AtomicU64) {
        loop {
            let (reads, sent_at) = {
                let mut state = self.state();
                if state.queue.is_empty() {
                    state.senders -= 1;
                    return;
                }
                let sent_at = Instant::now();
                let reads = std::mem::take(&mut state.queue);
                state.sent.push_back((sent_at, reads.len()));
                (reads, sent_at)
            };
            let answers = if let [single] = reads.as_slice() {
                vec![self.run_one(&single.call).await]
            } else {
                batches.fetch_add(1, Ordering::Relaxed);
                self.run_many(&reads).await
            };
            // Marked before these reads leave the connection's count: until then the connection
            // looks busy, so no read is sent on it between its failure and the mark.
            if answers
                .iter()
                .any(|answer| answer.as_ref().is_err_and(DbError::is_unavailable))
            {
                self.broken.store(true, Ordering::Relaxed);
            }
            {
                let mut state = self.state();
                state.places -= reads.len();
                if let Some(at) = state.sent.iter().position(|(at, _)| *at == sent_at) {
                    state.sent.remove(at);
                }
            }
            for (read, answer) in reads.into_iter().zip(answers) {
                // A read whose client went away no longer listens: its answer is dropped.
                let _ = read.reply.send(answer);
            }
        }
    }

    /// One read: `sluice.run_request`, whose errors are the call's.
    async fn run_one(&self, call: &OwnedCall) -> Result<Option<TextRow>, DbError> {
        let call = call.borrowed();
        self.client
            .query_one(&self.call, &call.args())
            .await
            .and_then(|row| row.try_get(0))
            .map_err(DbError::Query)
    }

    /// Several reads in one call of `sluice.run_reads`: each answers its own row or its own
    /// error. If the call itself fails (the connection broke), every read fails with that error.
    async fn run_many(&self, reads: &[Queued]) -> Vec<Result<Option<TextRow>, DbError>> {
        let batch = Batch::new(reads.iter().map(|read| &read.call));
        let rows = match self.client.query(&self.batch, &batch.args()).await {
            Ok(rows) => rows,
            Err(err) => {
                let err = Arc::new(err);
                return reads
                    .iter()
                    .map(|_| Err(DbError::Shared(Arc::clone(&err))))
                    .collect();
            }
        };
        if rows.len() != reads.len() {
            let answered = ReadError::internal(format!(
                "sluice.run_reads answered {} rows for {} reads",
                rows.len(),
                reads.len()
            ));
            return reads
                .iter()
                .map(|_| Err(DbError::Read(Box::new(answered.clone()))))
                .collect();
        }
        rows.iter().map(read_answer).collect()
    }
}

/// A row of `sluice.run_reads`: the read's first row, or its error.
fn read_answer(row: &tokio_postgres::Row) -> Result<Option<TextRow>, DbError> {
    let error: Option<Vec<Option<String>>> = row.try_get(1).map_err(DbError::Query)?;
    match error {
        Some(fields) => Err(DbError::Read(Box::new(ReadError::from_fields(fields)))),
        None => row.try_get(0).map_err(DbError::Query),
    }
}

/// The columns of `RUN_READS` for a batch of reads.
struct Batch<'a> {
    roles: Vec<&'a str>,
    claims: Vec<&'a str>,
    methods: Vec<&'a str>,
    paths: Vec<&'a str>,
    headers: Vec<&'a str>,
    timeouts: Vec<&'a str>,
    sqls: Vec<&'a str>,
    param_counts: Vec<i32>,
    params: Vec<Option<&'a str>>,
}

impl<'a> Batch<'a> {
    fn new(calls: impl ExactSizeIterator<Item = &'a OwnedCall>) -> Batch<'a> {
        let n = calls.len();
        let mut batch = Batch {
            roles: Vec::with_capacity(n),
            claims: Vec::with_capacity(n),
            methods: Vec::with_capacity(n),
            paths: Vec::with_capacity(n),
            headers: Vec::with_capacity(n),
            timeouts: Vec::with_capacity(n),
            sqls: Vec::with_capacity(n),
            param_counts: Vec::with_capacity(n),
            params: Vec::new(),
        };
        for call in calls {
            let call = call.borrowed();
            // `sluice.run_reads` runs every read read-only; only reads are pipelined.
            debug_assert!(call.read_only, "a write was queued on a shared connection");
            batch.roles.push(call.role);
            batch.claims.push(call.claims);
            batch.methods.push(call.method);
            batch.paths.push(call.path);
            batch.headers.push(call.headers);
            batch.timeouts.push(call.statement_timeout);
            batch.sqls.push(call.sql);
            // A statement has far fewer than 2^31 parameters (Postgres allows 65,535).
            batch.param_counts.push(call.params.len() as i32);
            batch
                .params
                .extend(call.params.iter().map(Option::as_deref));
        }
        batch
    }

    fn args(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.roles,
            &self.claims,
            &self.methods,
            &self.paths,
            &self.headers,
            &self.timeouts,
            &self.sqls,
            &self.param_counts,
            &self.params,
        ]
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
    /// Calls of `sluice.run_reads`: several reads sent together.
    pub batches: u64,
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
            batches: AtomicU64::new(0),
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
            batches: self.batches.load(Ordering::Relaxed),
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
            let state = connection.state();
            let waiting = state.places;
            let stalled = state
                .sent
                .front()
                .is_some_and(|&(sent_at, reads)| stalled(now, sent_at, reads));
            drop(state);
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
                connection.state().places += 1;
                self.pipelined.fetch_add(1, Ordering::Relaxed);
                Some(Lane {
                    pipeline: Arc::clone(self),
                    connection,
                    queued: false,
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

/// Opens one shared connection and prepares `RUN_REQUEST` and `RUN_READS` on it. They are
/// prepared as the login role, as on pooled connections: both functions are callable by it, and
/// each request's own statement is parsed inside the call, as the request's role.
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
    let batch = client.prepare(RUN_READS).await?;
    Ok(Connection {
        client,
        call,
        batch,
        state: Mutex::new(State::default()),
        broken: AtomicBool::new(false),
    })
}

/// A read's place on a shared connection: counted among the connection's unanswered reads
/// until its answer has arrived.
pub(crate) struct Lane {
    pipeline: Arc<Pipeline>,
    connection: Arc<Connection>,
    /// Whether the read was handed to the connection, whose sender then gives the place back.
    queued: bool,
}

impl Lane {
    /// Queues `call` on the connection and waits for its answer. Reads queued while the
    /// connection's senders are busy go together in their next call. If this future is dropped
    /// (the client went away) the read still runs to its end: no cancel is sent (see the
    /// module's comment), and its place is held until it has ended.
    pub(crate) async fn run(mut self, call: OwnedCall) -> Result<Option<TextRow>, DbError> {
        let (reply, answer) = oneshot::channel();
        let spawn = {
            let mut state = self.connection.state();
            state.queue.push(Queued { call, reply });
            self.queued = true;
            let spawn = state.senders < SENDERS;
            if spawn {
                state.senders += 1;
            }
            spawn
        };
        if spawn {
            let sender = Sender {
                connection: Arc::clone(&self.connection),
                pipeline: Arc::clone(&self.pipeline),
                done: false,
            };
            tokio::spawn(sender.run());
        }
        answer.await.unwrap_or_else(|_| {
            Err(DbError::Read(Box::new(ReadError::internal(
                "the shared connection's sender stopped before answering".to_owned(),
            ))))
        })
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if !self.queued {
            self.connection.state().places -= 1;
        }
    }
}

/// A task that sends a connection's queued reads (`Connection::send_queued`). Should it end by
/// a panic, the connection is given up: the reads still queued fail instead of waiting for a
/// sender that will not come.
struct Sender {
    connection: Arc<Connection>,
    pipeline: Arc<Pipeline>,
    done: bool,
}

impl Sender {
    async fn run(mut self) {
        self.connection.send_queued(&self.pipeline.batches).await;
        self.done = true;
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.connection.broken.store(true, Ordering::Relaxed);
        let mut state = self.connection.state();
        state.senders = state.senders.saturating_sub(1);
        let queued = std::mem::take(&mut state.queue);
        state.places = state.places.saturating_sub(queued.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_may_take_longer_the_more_reads_it_carries() {
        let sent = Instant::now();
        let after = |ms: u64| sent + Duration::from_millis(ms);
        assert!(!stalled(after(4), sent, 1));
        assert!(stalled(after(6), sent, 1), "a lone read past 5 ms is slow");
        assert!(!stalled(after(6), sent, 32), "32 reads may take 11.4 ms");
        assert!(!stalled(after(11), sent, 32));
        assert!(stalled(after(12), sent, 32));
        assert!(
            stalled(after(300), sent, usize::MAX),
            "the allowance is bounded"
        );
    }
}
