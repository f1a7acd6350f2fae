//! The numbering worker (only when Sluice is in `shared_preload_libraries`).
//!
//! A committing backend pushes its transaction id onto a small shared commit queue and sets the
//! worker's latch (only if no wake-up is already pending). The worker drains the queue, numbers
//! every committed pending event under `NUMBERING_LOCK` in commit-queue order, and sends one
//! NOTIFY for the whole batch. Commits of tracked tables therefore neither serialize on the log
//! nor each pay for a NOTIFY; readers are woken once per batch.

use crate::changelog::{self, NumberingError};
use crate::error::raise;
use crate::settings;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic, PgLwLock};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const QUEUE_CAPACITY: usize = 4096;
const BATCH_WINDOW: Duration = Duration::from_millis(1);
/// A wake-up this long after the previous pass finds the log idle: nobody is likely to commit
/// within the window, so the batch goes out at once.
const IDLE_AFTER: Duration = Duration::from_millis(5);

/// Transaction ids in the order their commits became visible. On overflow the oldest order is
/// kept and the rest are numbered by transaction id (still a safe cursor; only the order among
/// a burst of simultaneous commits is then approximate).
#[derive(Copy, Clone)]
pub struct CommitQueue {
    len: usize,
    xids: [u64; QUEUE_CAPACITY],
}

// SAFETY: plain old data, no pointers.
unsafe impl PGRXSharedMemory for CommitQueue {}

impl CommitQueue {
    /// The queued transaction ids, oldest commit first, as the numbering statement takes them.
    fn xids(&self) -> Vec<i64> {
        self.xids[..self.len].iter().map(|&x| x as i64).collect()
    }
}

static COMMIT_QUEUE: PgLwLock<CommitQueue> = unsafe { PgLwLock::new(c"sluice_commit_queue") };
/// The worker's PGPROC number plus one (0: no worker running).
static WORKER_PROC: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"sluice_worker_proc") };
/// The database the worker is connected to.
static WORKER_DATABASE: PgAtomic<AtomicU32> = unsafe { PgAtomic::new(c"sluice_worker_db") };
/// Set by a committer that woke the worker; cleared by the worker before it drains the queue.
static WAKE_PENDING: PgAtomic<AtomicBool> = unsafe { PgAtomic::new(c"sluice_wake_pending") };

/// True in every backend of a cluster that preloaded Sluice (set in the postmaster, inherited).
static PRELOADED: AtomicBool = AtomicBool::new(false);

pub fn init_preloaded() {
    pg_shmem_init!(
        COMMIT_QUEUE = CommitQueue {
            len: 0,
            xids: [0; QUEUE_CAPACITY]
        }
    );
    pg_shmem_init!(WORKER_PROC);
    pg_shmem_init!(WORKER_DATABASE);
    pg_shmem_init!(WAKE_PENDING);
    PRELOADED.store(true, Ordering::Relaxed);
    BackgroundWorkerBuilder::new("sluice change-log numbering")
        .set_type("sluice")
        .set_function("sluice_numbering_worker_main")
        .set_library("sluice")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

/// Whether a running worker numbers this database's change log.
pub fn serves_this_database() -> bool {
    if !PRELOADED.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: MyDatabaseId is set for any backend that can run a trigger.
    let mine = unsafe { pg_sys::MyDatabaseId };
    WORKER_PROC.get().load(Ordering::Acquire) != 0
        && WORKER_DATABASE.get().load(Ordering::Acquire) == mine.to_u32()
}

/// Called after a commit whose events are still unnumbered became visible. Must not raise an
/// error (it runs post-commit).
pub fn enqueue_committed(xid: u64) {
    {
        let mut queue = COMMIT_QUEUE.exclusive();
        if queue.len < QUEUE_CAPACITY {
            let at = queue.len;
            queue.xids[at] = xid;
            queue.len += 1;
        }
    }
    wake();
}

fn wake() {
    if !WAKE_PENDING.get().swap(true, Ordering::AcqRel) {
        let proc_number = WORKER_PROC.get().load(Ordering::Acquire);
        if proc_number > 0 {
            // SAFETY: ProcGlobal->allProcs has one entry per PGPROC number; SetLatch on a
            // latch whose owner has exited is harmless.
            unsafe {
                let proc = (*pg_sys::ProcGlobal)
                    .allProcs
                    .add((proc_number - 1) as usize);
                pg_sys::SetLatch(&mut (*proc).procLatch);
            }
        }
    }
}

/// The commit queue as it is now (empty without the worker), for inline numbering's order.
pub fn commit_order() -> Vec<i64> {
    if !PRELOADED.load(Ordering::Relaxed) {
        return Vec::new();
    }
    COMMIT_QUEUE.share().xids()
}

fn drain_commit_queue() -> Vec<i64> {
    let mut queue = COMMIT_QUEUE.exclusive();
    let drained = queue.xids();
    queue.len = 0;
    drained
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn sluice_numbering_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = settings::WORKER_DATABASE
        .get()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|| "postgres".to_owned());
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    // SAFETY: MyDatabaseId and MyProc are set once the worker is connected.
    unsafe {
        WORKER_DATABASE
            .get()
            .store(pg_sys::MyDatabaseId.to_u32(), Ordering::Release);
        WORKER_PROC
            .get()
            .store((*pg_sys::MyProc).pgprocno + 1, Ordering::Release);
    }
    log!("sluice: numbering worker serving database \"{database}\"");

    // The timeout is a safety net: events committed while no worker ran are numbered within a
    // second even if nobody sets the latch.
    let mut last_pass = Instant::now();
    while BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
        // While commits keep coming, a short batching window lets those arriving meanwhile
        // share this pass (and its commit and NOTIFY). After a quiet spell the window would only
        // delay the one commit that woke us, so there is none.
        if last_pass.elapsed() < IDLE_AFTER {
            std::thread::sleep(BATCH_WINDOW);
        }
        WAKE_PENDING.get().store(false, Ordering::Release);
        BackgroundWorker::transaction(number_batch);
        last_pass = Instant::now();
    }
    WORKER_PROC.get().store(0, Ordering::Release);
    log!("sluice: numbering worker stopped");
}

/// Numbers every committed pending event (commit-queue order first) and sends one NOTIFY for
/// the batch.
///
/// The queue is drained only once `NUMBERING_LOCK` is held. Drained before it, the commits taken
/// out were known to this worker alone while it waited for the lock; an inline numberer holding
/// the lock meanwhile (a session with `sluice.numbering = inline` in the same database) numbered
/// their events by transaction id, after later commits still in the queue: a commit that had
/// returned before another began could come after it in the log.
fn number_batch() {
    Spi::connect_mut(|client| {
        let installed = client
            .select(
                "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'sluice'",
                None,
                &[],
            )
            .map(|t| !t.is_empty())
            .unwrap_or(false);
        if !installed {
            drain_commit_queue();
            return;
        }
        // Skip the lock when nothing is pending (the timeout pass, or events that an inline
        // numberer took along with its own).
        let pending = client
            .select(
                "SELECT EXISTS (SELECT 1 FROM sluice.changes WHERE position IS NULL)",
                None,
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1))
            .unwrap_or_else(|e| raise(NumberingError::Read(e)))
            .unwrap_or(true);
        // Nothing pending: the queued commits were numbered by someone else (an inline numberer
        // takes everyone's events). Their ids are dropped, under the lock as always, once they
        // fill half the queue, so that it keeps room for the order of commits yet to come.
        let stale = !pending && COMMIT_QUEUE.share().len > QUEUE_CAPACITY / 2;
        if !pending && !stale {
            return;
        }
        client
            .update(
                "SELECT pg_advisory_xact_lock($1)",
                None,
                &[changelog::NUMBERING_LOCK.into()],
            )
            .unwrap_or_else(|e| raise(NumberingError::Lock(e)));
        // (Numbering runs even when draining stale ids: a commit queued since the check above is
        // numbered now, in queue order, rather than losing its place.)
        let commit_order = drain_commit_queue();
        if let Some(range) = changelog::number_pending(client, &commit_order) {
            changelog::notify(client, range);
        }
    });
}
