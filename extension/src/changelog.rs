//! Positions in the change log, and why they are safe resume cursors.
//!
//! A bigserial is taken when a row is written, not when its transaction commits: T1 takes 10,
//! T2 takes 11, T2 commits, a reader delivers 11 and remembers "after 11"; T1 then commits 10,
//! which is never read. So the change trigger writes each event with `position` NULL, and
//! positions are assigned later, in one place, under one lock:
//!
//! * numbering takes the transaction-scoped advisory lock `NUMBERING_LOCK`, reads the pending
//!   (committed, or its own) events with a fresh snapshot, reserves a block of values from
//!   `sluice.change_positions`, and writes them, all in one statement;
//! * the lock is released only after the numbering transaction's commit is visible to new
//!   snapshots, so the next numbering sees it and takes higher values.
//!
//! Hence numbered positions become visible strictly in increasing order: every reader's snapshot
//! holds a prefix of the positions, and `WHERE position > $last ORDER BY position` never skips.
//!
//! Who numbers:
//! * with `shared_preload_libraries = 'sluice'` (and `sluice.numbering = worker`, the default),
//!   the background worker (`worker.rs`): after its commit is visible, a backend only pushes its
//!   transaction id onto a shared commit queue and sets the worker's latch. The worker numbers
//!   whole batches in commit-queue order and sends one NOTIFY per batch. Commits neither wait
//!   for one another nor each pay for a NOTIFY.
//! * otherwise (or with `sluice.numbering = inline`), the committing backend itself, in a
//!   pre-commit callback: it takes the lock, numbers every pending event its snapshot sees
//!   (earlier commits first, its own last), NOTIFYs the range and holds the lock through its own
//!   commit. Correct and cheap alone, but concurrent commits then serialize, as they do for any
//!   NOTIFY. `bench/README.md` has the numbers.
//!
//! Numbering everything visible (not only its own events) keeps positions in commit order: a
//! transaction that committed before another began numbering is always numbered before it.

use crate::elevate::AsExtensionOwner;
use crate::error::{raise, report};
use crate::settings::{self, Numbering};
use crate::worker;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::pg_sys::PgOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiError};
use pgrx::{register_xact_callback, PgXactCallbackEvent};
use std::cell::{Cell, RefCell};

/// Key of the advisory lock that serializes numbering ("sluice" in ASCII).
pub const NUMBERING_LOCK: i64 = 0x736c_7569_6365;

/// The notification channel readers LISTEN on.
pub const CHANNEL: &str = "sluice_changes";

/// What can go wrong while numbering the log (at a commit, or in the worker). Each is the
/// failure of one of our own statements on our own tables: an external routine exception
/// (class 38), so the committing client sees it is Sluice's, not its SQL's.
#[derive(Debug, thiserror::Error)]
pub enum NumberingError {
    #[error("sluice: could not prepare numbering: {0}")]
    Prepare(SpiError),
    #[error("sluice: could not lock the change log: {0}")]
    Lock(SpiError),
    #[error("sluice: could not read the change log: {0}")]
    Read(SpiError),
    #[error("sluice: could not number change events: {0}")]
    Number(SpiError),
    #[error("sluice: could not notify readers: {0}")]
    Notify(SpiError),
}

impl NumberingError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            NumberingError::Lock(_) => PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE,
            _ => PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        }
    }
}

impl From<NumberingError> for ErrorReport {
    fn from(error: NumberingError) -> Self {
        report(error.sqlstate(), &error, "sluice::changelog")
    }
}

thread_local! {
    /// Events written by the current transaction so far (0 = none yet).
    static EVENTS_IN_TRANSACTION: Cell<i64> = const { Cell::new(0) };
}

/// The order of the next event within the current transaction. The first event of a
/// transaction arranges for the transaction's events to be numbered at commit.
pub fn next_event_seq() -> i64 {
    let seq = EVENTS_IN_TRANSACTION.get() + 1;
    EVENTS_IN_TRANSACTION.set(seq);
    if seq == 1 {
        arrange_numbering_at_commit();
    }
    seq
}

fn arrange_numbering_at_commit() {
    register_xact_callback(PgXactCallbackEvent::Abort, || EVENTS_IN_TRANSACTION.set(0));
    if settings::NUMBERING.get() == Numbering::Worker && worker::serves_this_database() {
        // SAFETY: reads the top transaction's id, assigned when the tracked row was written.
        let xid = unsafe { pg_sys::GetTopFullTransactionIdIfAny() }.value;
        register_xact_callback(PgXactCallbackEvent::Commit, move || {
            EVENTS_IN_TRANSACTION.set(0);
            // Runs after the commit is visible, so the worker's next snapshot sees the events.
            worker::enqueue_committed(xid);
        });
    } else {
        register_xact_callback(PgXactCallbackEvent::PreCommit, number_before_commit);
        register_xact_callback(PgXactCallbackEvent::Commit, || EVENTS_IN_TRANSACTION.set(0));
    }
}

thread_local! {
    static STATEMENTS: RefCell<Option<NumberingStatements>> = const { RefCell::new(None) };
}

/// Prepared once per backend: these run on every commit that wrote events.
struct NumberingStatements {
    lock: OwnedPreparedStatement,
    number: OwnedPreparedStatement,
}

fn with_statements<R>(
    client: &mut SpiClient<'_>,
    f: impl FnOnce(&mut SpiClient<'_>, &NumberingStatements) -> R,
) -> R {
    STATEMENTS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let statements = cell.get_or_insert_with(|| {
            let int8 = [PgOid::BuiltIn(pg_sys::BuiltinOid::INT8OID)];
            let prepare = |sql: &str, args: &[PgOid]| {
                client
                    .prepare_mut(sql, args)
                    .unwrap_or_else(|e| raise(NumberingError::Prepare(e)))
                    .keep()
            };
            NumberingStatements {
                lock: prepare("SELECT pg_advisory_xact_lock($1)", &int8),
                number: prepare(
                    NUMBER_PENDING,
                    &[PgOid::BuiltIn(pg_sys::BuiltinOid::INT8ARRAYOID)],
                ),
            }
        });
        f(client, statements)
    })
}

/// Numbers pending events in the committing transaction and NOTIFYs their range.
fn number_before_commit() {
    let _owner = AsExtensionOwner::begin();
    // Pre-commit runs after the last statement's snapshot was released; SPI needs one, and it
    // must be taken after the lock is held, which each SPI statement's own snapshot is.
    let _snapshot = ActiveSnapshot::push();
    Spi::connect_mut(|client| {
        with_statements(client, |client, statements| {
            client
                .update(&statements.lock, None, &[NUMBERING_LOCK.into()])
                .unwrap_or_else(|e| raise(NumberingError::Lock(e)));
            if let Some(range) = number_with(client, &statements.number, &worker::commit_order()) {
                notify(client, range);
            }
        })
    })
}

struct ActiveSnapshot;

impl ActiveSnapshot {
    fn push() -> Self {
        // SAFETY: we are inside a live transaction (pre-commit); popped in Drop, and on error
        // the transaction abort discards the active-snapshot stack.
        unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
        ActiveSnapshot
    }
}

impl Drop for ActiveSnapshot {
    fn drop(&mut self) {
        // SAFETY: pops exactly the snapshot pushed in `push`.
        unsafe { pg_sys::PopActiveSnapshot() }
    }
}

/// Assigns positions to every pending event visible to the caller, which holds
/// `NUMBERING_LOCK`: transactions listed in the commit queue ($1) first in that order, then other
/// committed ones by transaction id, then the caller's own. Returns the first and last position.
/// One statement, so one snapshot decides both how many positions are reserved and which rows
/// receive them.
const NUMBER_PENDING: &str = "\
    WITH pending AS MATERIALIZED ( \
        SELECT ch.ctid AS row_id, \
               row_number() OVER (ORDER BY ch.xid = pg_current_xact_id(), q.ord NULLS LAST, \
                                           ch.xid, ch.seq) AS n \
        FROM sluice.changes ch \
        LEFT JOIN unnest($1::bigint[]) WITH ORDINALITY AS q(xid, ord) \
               ON ch.xid = q.xid::text::xid8 \
        WHERE ch.position IS NULL \
    ), block AS MATERIALIZED ( \
        SELECT setval('sluice.change_positions', \
                      nextval('sluice.change_positions') + count(*) - 1) - count(*) AS base \
        FROM pending HAVING count(*) > 0 \
    ), numbered AS ( \
        UPDATE sluice.changes c SET position = block.base + pending.n \
        FROM pending, block WHERE c.ctid = pending.row_id \
        RETURNING c.position \
    ) \
    SELECT min(position), max(position) FROM numbered";

pub fn number_pending(client: &mut SpiClient<'_>, commit_order: &[i64]) -> Option<(i64, i64)> {
    with_statements(client, |client, statements| {
        number_with(client, &statements.number, commit_order)
    })
}

fn number_with(
    client: &mut SpiClient<'_>,
    statement: &OwnedPreparedStatement,
    commit_order: &[i64],
) -> Option<(i64, i64)> {
    let row = client
        .update(statement, None, &[commit_order.to_vec().into()])
        .unwrap_or_else(|e| raise(NumberingError::Number(e)))
        .first();
    let first = row.get::<i64>(1).ok().flatten()?;
    let last = row.get::<i64>(2).ok().flatten()?;
    Some((first, last))
}

/// One small NOTIFY per numbered range: readers fetch the events with `changes_after`, so a
/// 1 MB row never goes near the 8000-byte payload limit.
pub fn notify(client: &mut SpiClient<'_>, (first, last): (i64, i64)) {
    let payload = format!("{{\"from\":{first},\"to\":{last}}}");
    client
        .update(
            "SELECT pg_notify($1, $2)",
            None,
            &[CHANNEL.into(), payload.into()],
        )
        .unwrap_or_else(|e| raise(NumberingError::Notify(e)));
}
