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
//! * with `shared_preload_libraries = 'sluice'`, the background worker (`worker.rs`): the
//!   committing backend only records its transaction id in a shared commit queue and sets the
//!   worker's latch. Commits do not serialize on the log, and one NOTIFY covers a whole batch.
//! * otherwise (or with `sluice.inline_numbering = on`), the committing backend itself, in a
//!   pre-commit callback: it holds the lock through its own commit and NOTIFYs its range. Simple,
//!   but concurrent commits serialize, as they do for any NOTIFY.

use crate::elevate::AsExtensionOwner;
use crate::settings;
use crate::worker;
use pgrx::prelude::*;
use pgrx::{register_xact_callback, PgXactCallbackEvent};
use std::cell::Cell;

/// Key of the advisory lock that serializes numbering ("sluice" in ASCII).
pub const NUMBERING_LOCK: i64 = 0x736c_7569_6365;

/// The notification channel readers LISTEN on.
pub const CHANNEL: &str = "sluice_changes";

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
    if settings::INLINE_NUMBERING.get() || !worker::serves_this_database() {
        register_xact_callback(
            PgXactCallbackEvent::PreCommit,
            number_own_events_before_commit,
        );
        register_xact_callback(PgXactCallbackEvent::Commit, || EVENTS_IN_TRANSACTION.set(0));
    } else {
        // SAFETY: reads the top transaction's id, which the change insert has already assigned.
        let xid = unsafe { pg_sys::GetTopFullTransactionIdIfAny() }.value;
        register_xact_callback(PgXactCallbackEvent::Commit, move || {
            EVENTS_IN_TRANSACTION.set(0);
            // Runs after the commit is visible, so the worker's next snapshot sees the events.
            worker::enqueue_committed(xid);
        });
    }
}

fn number_own_events_before_commit() {
    let _owner = AsExtensionOwner::begin();
    // Pre-commit runs after the last statement's snapshot was released; SPI needs one.
    let _snapshot = ActiveSnapshot::push();
    Spi::connect_mut(|client| {
        client
            .update(
                "SELECT pg_advisory_xact_lock($1)",
                None,
                &[NUMBERING_LOCK.into()],
            )
            .unwrap_or_else(|e| error!("sluice: could not lock the change log: {e}"));
        if let Some(range) = number_pending(client, Pending::OwnTransaction, &[]) {
            notify(client, range);
        }
    });
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

/// Which unnumbered events a numbering pass takes.
pub enum Pending {
    /// The events of the calling transaction (inline numbering at pre-commit).
    OwnTransaction,
    /// Every committed unnumbered event (the worker); transactions listed in the commit queue
    /// come first, in commit order, the rest after them by transaction id.
    Committed,
}

/// Assigns positions to pending events; returns the first and last position assigned.
/// The caller holds `NUMBERING_LOCK`. One statement, so one snapshot decides both how many
/// positions are reserved and which rows receive them.
pub fn number_pending(
    client: &mut pgrx::spi::SpiClient<'_>,
    which: Pending,
    commit_order: &[i64],
) -> Option<(i64, i64)> {
    let (source, order) = match which {
        Pending::OwnTransaction => (
            "FROM sluice.changes ch WHERE ch.position IS NULL AND ch.xid = pg_current_xact_id()",
            "ch.seq",
        ),
        Pending::Committed => (
            "FROM sluice.changes ch \
             LEFT JOIN unnest($1::bigint[]) WITH ORDINALITY AS q(xid, ord) \
                    ON ch.xid = q.xid::text::xid8 \
             WHERE ch.position IS NULL",
            "q.ord NULLS LAST, ch.xid, ch.seq",
        ),
    };
    let sql = format!(
        "WITH pending AS MATERIALIZED ( \
             SELECT ch.ctid AS row_id, row_number() OVER (ORDER BY {order}) AS n \
             {source} \
         ), block AS MATERIALIZED ( \
             SELECT setval('sluice.change_positions', \
                           nextval('sluice.change_positions') + count(*) - 1) - count(*) AS base \
             FROM pending HAVING count(*) > 0 \
         ), numbered AS ( \
             UPDATE sluice.changes c SET position = block.base + pending.n \
             FROM pending, block WHERE c.ctid = pending.row_id \
             RETURNING c.position \
         ) \
         SELECT min(position), max(position) FROM numbered"
    );
    let args = match which {
        Pending::OwnTransaction => vec![],
        Pending::Committed => vec![commit_order.to_vec().into()],
    };
    let row = client
        .update(sql.as_str(), None, &args)
        .unwrap_or_else(|e| error!("sluice: could not number change events: {e}"))
        .first();
    let first = row.get::<i64>(1).ok().flatten()?;
    let last = row.get::<i64>(2).ok().flatten()?;
    Some((first, last))
}

/// One small NOTIFY per numbered range: readers fetch the events with `changes_after`, so a
/// 1 MB row never goes near the 8000-byte payload limit.
pub fn notify(client: &mut pgrx::spi::SpiClient<'_>, (first, last): (i64, i64)) {
    let payload = format!("{{\"from\":{first},\"to\":{last}}}");
    client
        .update(
            "SELECT pg_notify($1, $2)",
            None,
            &[CHANNEL.into(), payload.into()],
        )
        .unwrap_or_else(|e| error!("sluice: could not notify readers: {e}"));
}
