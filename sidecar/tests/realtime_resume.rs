//! Lossless resume: 10,000 rows written by concurrent transactions while the client's sidecar is
//! killed with SIGKILL midway; the client resumes on a second sidecar with the last position it saw
//! and ends with every event once, in commit (position) order.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, changes_of, runtime, sign, Ended, Socket};
use support::sidecar::Sidecar;
use tokio_postgres::NoTls;

const ROWS: i32 = 10_000;
const WRITERS: i32 = 8;

/// Collects postgres_changes events as (position, id), returning when the socket ends or `stop`
/// says so.
async fn collect(
    socket: &mut Socket,
    got: &mut Vec<(i64, i32)>,
    stop: impl Fn(&[(i64, i32)]) -> bool,
) -> Option<Ended> {
    loop {
        if stop(got) {
            return None;
        }
        match socket.next(Duration::from_secs(30)).await {
            Ok(message) if message["event"] == "postgres_changes" => {
                let data = &message["payload"]["data"];
                got.push((
                    data["position"].as_i64().unwrap(),
                    data["record"]["id"].as_i64().unwrap() as i32,
                ));
            }
            Ok(_) => {}
            Err(ended) => return Some(ended),
        }
    }
}

async fn write_rows(url: String, writer: i32) {
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let mut id = writer + 1;
    let mut size = 1;
    while id <= ROWS {
        // Transactions of 1 to 5 rows, so commits interleave with different sizes.
        let mut ids = Vec::new();
        for _ in 0..size {
            if id <= ROWS {
                ids.push(id);
            }
            id += WRITERS;
        }
        client.batch_execute("BEGIN").await.unwrap();
        for id in &ids {
            client
                .execute("INSERT INTO loss (id) VALUES ($1)", &[id])
                .await
                .unwrap();
        }
        client.batch_execute("COMMIT").await.unwrap();
        size = size % 5 + 1;
    }
}

#[test]
fn resume_after_sigkill_on_another_sidecar_loses_and_repeats_nothing() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    db.execute(
        "CREATE TABLE loss (id int PRIMARY KEY, at timestamptz DEFAULT now()); \
         GRANT SELECT ON loss TO anon; SELECT sluice.enable_realtime('loss');",
    );
    let url = authenticator_url(&db);
    let mut first = Sidecar::serve(&url);
    let second = Sidecar::serve(&url);
    let anon = sign(json!({"role": "anon"}));

    runtime().block_on(async {
        let mut socket = Socket::connect(first.addr(), &anon).await;
        let reply = socket.join("realtime:loss", changes_of("loss")).await;
        assert_eq!(reply["status"], "ok", "{reply}");

        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(write_rows(db.url(), w)))
            .collect();
        let mut got = Vec::new();
        let ended = collect(&mut socket, &mut got, |got| got.len() >= 3000).await;
        assert!(
            ended.is_none(),
            "the first sidecar stopped early: {ended:?}\n{}",
            first.log()
        );
        // Midway: the writers are still writing when the sidecar dies.
        assert!(
            writers.iter().any(|w| !w.is_finished()),
            "the writers finished before the kill"
        );
        first.signal(libc::SIGKILL);
        // Whatever was already on the wire still arrives; then the socket breaks.
        let ended = collect(&mut socket, &mut got, |_| false).await;
        assert!(
            matches!(ended, Some(Ended::Closed(_) | Ended::Broken(_))),
            "{ended:?}"
        );
        first.wait_exit(Duration::from_secs(10));
        let last = got.last().unwrap().0;
        eprintln!("{} events before the kill; resuming after position {last}", got.len());

        let mut socket = Socket::connect(second.addr(), &anon).await;
        let mut join = changes_of("loss");
        join["resume_after"] = json!(last);
        let reply = socket.join("realtime:loss", join).await;
        assert_eq!(reply["status"], "ok", "{reply}");
        let ended = collect(&mut socket, &mut got, |got| got.len() >= ROWS as usize).await;
        assert!(ended.is_none(), "{ended:?}\n{}", second.log());
        for writer in writers {
            writer.await.unwrap();
        }
        // Nothing more arrives: no duplicates after the last row.
        let extra = socket.next(Duration::from_millis(500)).await;
        assert!(
            matches!(extra, Err(Ended::TimedOut)),
            "unexpected {extra:?}"
        );

        let ids: HashSet<i32> = got.iter().map(|&(_, id)| id).collect();
        assert_eq!(got.len(), ROWS as usize, "each event exactly once");
        assert_eq!(ids.len(), ROWS as usize);
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "positions strictly increase"
        );
        // Commit order is the log's order: the same sequence of ids as sluice.changes by position.
        let (client, connection) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        let logged: Vec<(i64, i32)> = client
            .query(
                "SELECT position, (record->>'id')::int FROM sluice.changes WHERE table_name = 'loss' ORDER BY position",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        assert_eq!(got, logged);
    });
}

#[test]
fn resuming_from_a_pruned_position_is_an_explicit_error() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    db.execute(
        "CREATE TABLE pruned (id int PRIMARY KEY); GRANT SELECT ON pruned TO anon; \
         SELECT sluice.enable_realtime('pruned'); \
         INSERT INTO pruned VALUES (1); INSERT INTO pruned VALUES (2);",
    );
    // Numbering may be asynchronous (the background worker): wait for the positions.
    for _ in 0..100 {
        if support::postgres::execute(&db.url(), "DO $$ BEGIN IF (SELECT count(*) FROM sluice.changes WHERE position IS NOT NULL) < 2 THEN RAISE 'not yet'; END IF; END $$").is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    db.execute("SELECT sluice.prune_changes('-1 hour')");
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    runtime().block_on(async {
        let mut socket = Socket::connect(sidecar.addr(), &sign(json!({"role": "anon"}))).await;
        let mut join = changes_of("pruned");
        join["resume_after"] = json!(0);
        let reply: Value = socket.join("realtime:pruned", join).await;
        assert_eq!(reply["status"], "error", "{reply}");
        assert_eq!(reply["response"]["code"], "resume_pruned");
        assert!(reply["response"]["reason"]
            .as_str()
            .unwrap()
            .contains("reload"));
    });
}
