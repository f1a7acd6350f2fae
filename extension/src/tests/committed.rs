//! Change-log tests that need real commits from several connections: out-of-order commits,
//! concurrent writers with a resuming reader, and LISTEN wake-ups. Each runs in every numbering
//! mode (Sluice is preloaded in the test server, so the background worker runs), and checks that
//! the mode's numberer really numbered the events (`assert_numbered_by`).

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Every `sluice.numbering` mode: each must give the same guarantees.
const MODES: [(&str, &str); 2] = [("worker", "worker"), ("inline", "inline")];

fn connect(numbering: &str) -> Client {
    // Starts the test server (once per process) and checks it answers.
    pgrx_tests::run_test(
        "server_ready",
        None,
        crate::pg_test::postgresql_conf_options(),
    )
    .expect("test server");
    let (mut client, _) = pgrx_tests::client().expect("connect to the test server");
    client
        .batch_execute(&format!("SET sluice.numbering = {numbering}"))
        .unwrap();
    if numbering == "worker" {
        wait_for_the_worker(&mut client);
    }
    client
}

/// Right after the test server starts, the worker may not serve the database yet, and commits
/// then number their events inline (which `assert_numbered_by` would rightly refuse).
fn wait_for_the_worker(client: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if worker_serves_this_database(client) {
            // It records itself as serving just after it connects.
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no numbering worker serves the test database"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn worker_serves_this_database(client: &mut Client) -> bool {
    client
        .query_one(
            "SELECT count(*) = 1 FROM pg_stat_activity \
             WHERE backend_type = 'sluice' AND datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0)
}

fn tracked_table(client: &mut Client, name: &str, columns: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({columns}); SELECT sluice.enable_realtime('{name}');"
        ))
        .unwrap();
}

fn last_position(client: &mut Client) -> i64 {
    client
        .query_one("SELECT coalesce(max(position), 0) FROM sluice.changes", &[])
        .unwrap()
        .get(0)
}

struct Event {
    position: i64,
    op: String,
    record: Option<Value>,
}

/// One read of the log after `after`, only this table's events kept (other tests write too).
fn read_after(client: &mut Client, after: i64, max_rows: i32, table: &str) -> (i64, Vec<Event>) {
    let rows = client
        .query(
            "SELECT position, table_name, op, record FROM sluice.changes_after($1, $2)",
            &[&after, &max_rows],
        )
        .unwrap();
    let last = rows.last().map(|r| r.get::<_, i64>(0)).unwrap_or(after);
    let mut previous = after;
    let mut events = Vec::new();
    for row in rows {
        let position: i64 = row.get(0);
        assert!(
            position > previous,
            "positions must increase: {previous} then {position}"
        );
        previous = position;
        if row.get::<_, String>(1) == table {
            events.push(Event {
                position,
                op: row.get(2),
                record: row.get(3),
            });
        }
    }
    (last, events)
}

/// Reads until `done(events so far)` or five seconds pass.
fn read_until(
    client: &mut Client,
    mut after: i64,
    table: &str,
    done: impl Fn(&[Event]) -> bool,
) -> (i64, Vec<Event>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while !done(&seen) {
        assert!(
            Instant::now() < deadline,
            "events did not arrive in time; saw {}",
            seen.len()
        );
        let (last, events) = read_after(client, after, 50, table);
        if events.is_empty() && last == after {
            std::thread::sleep(Duration::from_millis(2));
        }
        after = last;
        seen.extend(events);
    }
    (after, seen)
}

/// Who numbered this table's events: in "worker" mode the background worker (the numbered row
/// version was written by another transaction than the event's own), in "inline" mode the
/// committing transaction itself. Without this, "worker" silently passing through the inline
/// fallback (no worker serving the database) would look the same.
fn assert_numbered_by(client: &mut Client, mode: &str, table: &str) {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE xmin::text = (xid::text::numeric % 4294967296)::text), \
                    count(*) \
             FROM sluice.changes WHERE table_name = $1 AND position IS NOT NULL",
            &[&table],
        )
        .unwrap();
    let (by_writer, numbered): (i64, i64) = (row.get(0), row.get(1));
    assert!(numbered > 0, "{mode}: no numbered events of {table}");
    match mode {
        "worker" => {
            assert_eq!(
                by_writer, 0,
                "worker mode: {by_writer} of {numbered} events were numbered inline by their writer"
            );
            assert!(
                worker_serves_this_database(client),
                "worker mode: no numbering worker serves this database"
            );
        }
        _ => assert_eq!(
            by_writer, numbered,
            "inline mode: every event is numbered by its own transaction"
        ),
    }
}

#[test]
fn a_transaction_committing_after_a_later_one_is_not_skipped() {
    for (mode, numbering) in MODES {
        let table = format!("out_of_order_{mode}");
        let mut reader = connect(numbering);
        tracked_table(&mut reader, &table, "id bigserial PRIMARY KEY, label text");
        let start = last_position(&mut reader);

        // T1 writes first (lower id, earlier event), T2 writes later but commits first.
        let mut t1 = connect(numbering);
        let mut t2 = connect(numbering);
        t1.batch_execute(&format!(
            "BEGIN; INSERT INTO {table} (label) VALUES ('first')"
        ))
        .unwrap();
        t2.batch_execute(&format!(
            "BEGIN; INSERT INTO {table} (label) VALUES ('second'); COMMIT"
        ))
        .unwrap();
        let (resume_at, seen) = read_until(&mut reader, start, &table, |e| !e.is_empty());
        assert_eq!(seen.len(), 1, "{mode}: only the committed event is visible");
        assert_eq!(seen[0].record.as_ref().unwrap()["label"], "second");

        t1.batch_execute("COMMIT").unwrap();
        let (_, seen) = read_until(&mut reader, resume_at, &table, |e| !e.is_empty());
        let first = seen[0].record.as_ref().unwrap();
        assert_eq!(
            first["label"], "first",
            "{mode}: resuming after T2 must still deliver T1"
        );
        assert_eq!(first["id"], 1, "{mode}: T1 took its id before T2");
        assert!(seen[0].position > resume_at);
        assert_numbered_by(&mut reader, mode, &table);
    }
}

struct Committed {
    writer: i64,
    transaction: i64,
    rows: i64,
    commit_started: Instant,
    commit_returned: Instant,
}

#[test]
fn concurrent_writers_and_a_resuming_reader_see_every_event_once_in_commit_order() {
    const WRITERS: i64 = 4;
    const TRANSACTIONS: i64 = 40;
    for (mode, numbering) in MODES {
        let table = format!("interleaved_{mode}");
        let mut reader = connect(numbering);
        tracked_table(
            &mut reader,
            &table,
            "writer int, txn int, k int, PRIMARY KEY (writer, txn, k)",
        );
        let start = last_position(&mut reader);

        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let table = table.clone();
                std::thread::spawn(move || {
                    let mut client = connect(numbering);
                    let mut committed = Vec::new();
                    for transaction in 0..TRANSACTIONS {
                        let rows = 1 + (writer + transaction) % 3;
                        let mut tx = client.transaction().unwrap();
                        for k in 0..rows {
                            tx.execute(
                                &format!("INSERT INTO {table} VALUES ($1::int8::int, $2::int8::int, $3::int8::int)"),
                                &[&writer, &transaction, &k],
                            )
                            .unwrap();
                            // Hold the transaction open so commits interleave with others' writes.
                            std::thread::sleep(Duration::from_micros(((writer * 7 + transaction * 13) % 5 * 300) as u64));
                        }
                        let commit_started = Instant::now();
                        tx.commit().unwrap();
                        committed.push(Committed { writer, transaction, rows, commit_started, commit_returned: Instant::now() });
                    }
                    committed
                })
            })
            .collect();

        // The reader resumes from its last position after every small batch while writers run.
        let total: i64 = (0..WRITERS)
            .flat_map(|w| (0..TRANSACTIONS).map(move |t| 1 + (w + t) % 3))
            .sum();
        let (_, events) = read_until(&mut reader, start, &table, |e| e.len() as i64 >= total);
        let committed: Vec<Committed> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();

        assert_eq!(
            events.len() as i64,
            total,
            "{mode}: every event exactly once"
        );
        let keys: HashSet<(i64, i64, i64)> = events
            .iter()
            .map(|e| {
                let r = e.record.as_ref().unwrap();
                (
                    r["writer"].as_i64().unwrap(),
                    r["txn"].as_i64().unwrap(),
                    r["k"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(keys.len() as i64, total, "{mode}: no duplicates");
        assert!(events.iter().all(|e| e.op == "INSERT"));

        // Where one commit returned before another began, its events come first; and a
        // transaction's events are contiguous and in statement order.
        let index_of = |writer: i64, transaction: i64, k: i64| {
            events
                .iter()
                .position(|e| {
                    let r = e.record.as_ref().unwrap();
                    r["writer"] == writer && r["txn"] == transaction && r["k"] == k
                })
                .unwrap()
        };
        for c in &committed {
            let first = index_of(c.writer, c.transaction, 0);
            for k in 1..c.rows {
                assert_eq!(
                    index_of(c.writer, c.transaction, k),
                    first + k as usize,
                    "{mode}: contiguous"
                );
            }
        }
        for a in &committed {
            for b in &committed {
                if a.commit_returned < b.commit_started {
                    assert!(
                        index_of(a.writer, a.transaction, 0) < index_of(b.writer, b.transaction, 0),
                        "{mode}: commit order: writer {} txn {} committed before writer {} txn {}",
                        a.writer,
                        a.transaction,
                        b.writer,
                        b.transaction
                    );
                }
            }
        }
        assert_numbered_by(&mut reader, mode, &table);
    }
}

#[test]
fn a_listener_is_woken_and_reads_a_one_megabyte_row() {
    for (mode, numbering) in MODES {
        let table = format!("large_rows_{mode}");
        let mut listener = connect(numbering);
        tracked_table(&mut listener, &table, "id int PRIMARY KEY, body text");
        let start = last_position(&mut listener);
        listener.batch_execute("LISTEN sluice_changes").unwrap();

        let mut writer = connect(numbering);
        let body = "x".repeat(1024 * 1024);
        let written = Instant::now();
        writer
            .execute(&format!("INSERT INTO {table} VALUES (1, $1)"), &[&body])
            .unwrap();

        let note = listener
            .notifications()
            .timeout_iter(Duration::from_secs(5))
            .next()
            .unwrap()
            .expect("woken within 5 s");
        let payload: Value = serde_json::from_str(note.payload()).unwrap();
        assert!(
            payload["to"].as_i64().unwrap() > start,
            "{mode}: payload names the positions: {payload}"
        );
        assert!(
            note.payload().len() < 100,
            "{mode}: the payload stays small"
        );

        let (_, events) = read_after(&mut listener, start, 100, &table);
        let elapsed = written.elapsed();
        assert_eq!(events.len(), 1, "{mode}");
        assert_eq!(
            events[0].record.as_ref().unwrap()["body"]
                .as_str()
                .unwrap()
                .len(),
            body.len()
        );
        eprintln!("{mode}: write to event in hand: {elapsed:?}");
        assert_numbered_by(&mut listener, mode, &table);
    }
}

#[test]
fn truncate_is_one_statement_level_event() {
    for (mode, numbering) in MODES {
        let table = format!("truncated_{mode}");
        let mut client = connect(numbering);
        tracked_table(&mut client, &table, "id int PRIMARY KEY");
        let start = last_position(&mut client);
        client
            .batch_execute(&format!(
                "INSERT INTO {table} SELECT generate_series(1, 5); TRUNCATE {table}"
            ))
            .unwrap();
        let (_, events) = read_until(&mut client, start, &table, |e| e.len() >= 6);
        let ops: Vec<&str> = events.iter().map(|e| e.op.as_str()).collect();
        assert_eq!(
            ops,
            ["INSERT", "INSERT", "INSERT", "INSERT", "INSERT", "TRUNCATE"],
            "{mode}"
        );
        assert_numbered_by(&mut client, mode, &table);
    }
}

/// A commit the worker has taken off the queue keeps its place even when an inline numberer
/// (a session with `sluice.numbering = inline`) numbers everyone's events first. Before the fix,
/// the worker drained the queue and then waited for `NUMBERING_LOCK`; an inline numberer holding
/// the lock meanwhile saw only the commits queued after that, and numbered the drained one by
/// transaction id: after a commit that began when it had already returned.
#[test]
fn a_commit_the_worker_has_dequeued_keeps_its_place_before_an_inline_numberer() {
    let mut setup = connect("worker");
    let table = "dequeued_order";
    tracked_table(&mut setup, table, "id int PRIMARY KEY, label text");
    let start = last_position(&mut setup);

    // The inline numberer holds the lock from the start, with an event of its own.
    let mut inline = connect("inline");
    let mut numberer = inline.transaction().unwrap();
    numberer
        .query_one(
            "SELECT pg_advisory_xact_lock($1)::text",
            &[&crate::changelog::NUMBERING_LOCK],
        )
        .unwrap();
    numberer
        .execute(&format!("INSERT INTO {table} VALUES (3, 'inline')"), &[])
        .unwrap();

    // Two worker-mode commits, the second begun after the first returned; the worker is woken
    // by the first and waits for the lock.
    let mut writer = connect("worker");
    // The second writer's transaction id is taken first, so that the two ids are in the
    // opposite order to the commits: numbering by id would put the second first.
    let mut second = connect("worker");
    let mut later = second.transaction().unwrap();
    later.execute("SELECT pg_current_xact_id()", &[]).unwrap();
    writer
        .execute(&format!("INSERT INTO {table} VALUES (1, 'first')"), &[])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    later
        .execute(&format!("INSERT INTO {table} VALUES (2, 'second')"), &[])
        .unwrap();
    later.commit().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The inline numberer commits: it numbers every pending event, in the queue's order.
    numberer.commit().unwrap();

    let (_, events) = read_until(&mut setup, start, table, |e| e.len() >= 3);
    let labels: Vec<&str> = events
        .iter()
        .map(|e| e.record.as_ref().unwrap()["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["first", "second", "inline"], "commit order");
}
