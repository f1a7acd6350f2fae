//! One LISTEN connection per sidecar, one change-log reader for every consumer: the schema cache
//! and realtime both work off the one connection, TRUNCATE reaches the reader and realtime, and
//! after the connection is killed it reconnects with backoff and nothing written meanwhile is lost.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_sidecar::changelog::{ChangeReader, Op};
use sluice_sidecar::db::pool;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, runtime, sign, sql, Ended, Socket};
use support::rest::authenticator_config;
use support::sidecar::Sidecar;
use tokio_postgres::NoTls;

const TABLES: &str = "
CREATE TABLE items (id int PRIMARY KEY, owner text);
GRANT SELECT ON items TO anon;
SELECT sluice.enable_realtime('items');
CREATE TABLE hidden (id int PRIMARY KEY);
ALTER TABLE hidden ENABLE ROW LEVEL SECURITY;
CREATE POLICY nobody ON hidden FOR SELECT TO anon USING (false);
GRANT SELECT ON hidden TO anon;
SELECT sluice.enable_realtime('hidden');
";

fn database() -> TestDb {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db.execute(TABLES);
    db
}

/// The sidecar's sessions as `pg_stat_activity` shows them: how many last ran a LISTEN, and how
/// many are not request connections (application name `sluice` for the pool, `sluice pipeline` for
/// the shared read connections) at all. The listener runs nothing but its LISTEN, so its `query`
/// stays that statement however long it lives.
async fn sessions(admin: &tokio_postgres::Client) -> (i64, i64) {
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE query LIKE 'LISTEN %'), \
                    count(*) FILTER (WHERE application_name NOT IN ('sluice', 'sluice pipeline')) \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND usename = 'authenticator'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn admin(db: &TestDb) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// postgres_changes events on a socket as "TYPE id" (id of the new or old row, `-` for none),
/// until nothing comes for `quiet`.
async fn events(socket: &mut Socket, quiet: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match socket.next(quiet).await {
            Ok(m) if m["event"] == "postgres_changes" => seen.push(describe(&m["payload"]["data"])),
            Ok(_) => {}
            Err(Ended::TimedOut) => return seen,
            Err(ended) => panic!("{ended:?}"),
        }
    }
}

fn describe(data: &Value) -> String {
    let row = data.get("record").or(data.get("old_record"));
    let id = row.map_or("-".to_owned(), |row| row["id"].to_string());
    format!("{} {id}", data["type"].as_str().unwrap())
}

/// Waits until `path` answers 200: the schema cache knows what it asks for.
fn wait_for_column(sidecar: &Sidecar, path: &str, within: Duration) -> Duration {
    let started = Instant::now();
    sidecar.get_until(path, within, |r| r.status == 200);
    started.elapsed()
}

/// An anonymous socket joined to every change of `items`.
async fn items_socket(sidecar: &Sidecar) -> Socket {
    let mut socket = Socket::connect(sidecar.addr(), &sign(json!({"role": "anon"}))).await;
    let reply = socket
        .join("realtime:items", support::realtime::changes_of("items"))
        .await;
    assert_eq!(reply["status"], "ok", "{reply}");
    socket
}

#[test]
fn one_listen_connection_serves_the_schema_cache_and_realtime() {
    let db = database();
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    runtime().block_on(async {
        let admin = admin(&db).await;
        let mut socket = items_socket(&sidecar).await;

        // DDL reloads the schema cache: the new column becomes selectable over REST.
        sql(&db.url(), "ALTER TABLE items ADD COLUMN note text").await;
        let took = wait_for_column(
            &sidecar,
            "/rest/v1/items?select=note",
            Duration::from_secs(2),
        );
        eprintln!("schema cache reloaded {took:?} after the DDL");
        // And a change reaches the subscriber.
        sql(&db.url(), "INSERT INTO items (id) VALUES (1)").await;
        assert_eq!(
            events(&mut socket, Duration::from_secs(2)).await,
            ["INSERT 1"]
        );

        let (listening, dedicated) = sessions(&admin).await;
        assert_eq!(
            listening,
            1,
            "exactly one LISTEN connection\n{}",
            sidecar.log()
        );
        assert_eq!(
            dedicated,
            1,
            "no connection besides the pool and the listener\n{}",
            sidecar.log()
        );
    });
}

#[test]
fn a_truncate_reaches_the_reader_and_every_consumer_with_its_own_cursor() {
    let db = database();
    support::rest::allow_authenticator_login(&db);
    let pool = pool::build(&authenticator_config(&db), 2).unwrap();
    runtime().block_on(async {
        let reader = ChangeReader::new(pool);
        let head = reader.head().await.unwrap();
        sql(
            &db.url(),
            "INSERT INTO items VALUES (1); TRUNCATE items; INSERT INTO items VALUES (2);",
        )
        .await;
        // Two consumers, each with its own cursor, read the same log.
        let mut first = reader.follow(head);
        let mut second = reader.follow(head);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < 3 && Instant::now() < deadline {
            let batch = tokio::time::timeout(Duration::from_secs(6), first.next())
                .await
                .expect("a batch");
            first.advance(batch.through.unwrap());
            seen.extend(batch.events);
        }
        let ops: Vec<Op> = seen.iter().map(|c| c.op).collect();
        assert_eq!(ops, [Op::Insert, Op::Truncate, Op::Insert]);
        assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
        let truncate = &seen[1];
        assert_eq!(
            (truncate.schema.as_str(), truncate.table.as_str()),
            ("public", "items")
        );
        assert!(truncate.record.is_none() && truncate.old_record.is_none());

        let batch = second.next().await;
        let positions: Vec<i64> = batch.events.iter().map(|c| c.position).collect();
        assert_eq!(
            positions,
            seen.iter().map(|c| c.position).collect::<Vec<_>>()
        );
        assert_eq!(second.cursor(), head, "reading does not move a cursor");
        assert_eq!(first.cursor(), seen[2].position);
    });
}

#[test]
fn a_truncate_reaches_realtime_subscribers_in_order() {
    let db = database();
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    let anon = sign(json!({"role": "anon"}));
    runtime().block_on(async {
        let join = |bindings: Value| json!({"config": {"postgres_changes": bindings}});
        let mut every = Socket::connect(sidecar.addr(), &anon).await;
        let reply = every
            .join(
                "realtime:every",
                join(json!([{"event": "*", "schema": "public", "table": "items", "filter": "id=eq.1"},
                            {"event": "*", "schema": "public", "table": "hidden"}])),
            )
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");
        let mut inserts = Socket::connect(sidecar.addr(), &anon).await;
        let reply = inserts
            .join(
                "realtime:inserts",
                join(json!([{"event": "INSERT", "schema": "public", "table": "items"}])),
            )
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");
        let mut truncates = Socket::connect(sidecar.addr(), &anon).await;
        let reply = truncates
            .join(
                "realtime:truncates",
                join(json!([{"event": "TRUNCATE", "schema": "public", "table": "items"}])),
            )
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");

        sql(
            &db.url(),
            "INSERT INTO items VALUES (1); INSERT INTO items VALUES (2); TRUNCATE items; \
             INSERT INTO items VALUES (1); INSERT INTO hidden VALUES (7); TRUNCATE hidden;",
        )
        .await;
        let quiet = Duration::from_secs(2);
        // The filter keeps row 2 out, not the TRUNCATE (it removed row 1 too); RLS keeps the
        // hidden row out, not the hidden table's TRUNCATE, which carries no row.
        assert_eq!(
            events(&mut every, quiet).await,
            ["INSERT 1", "TRUNCATE -", "INSERT 1", "TRUNCATE -"]
        );
        assert_eq!(
            events(&mut inserts, quiet).await,
            ["INSERT 1", "INSERT 2", "INSERT 1"]
        );
        assert_eq!(events(&mut truncates, quiet).await, ["TRUNCATE -"]);
    });
    // The shape Supabase's realtime gave TRUNCATE: schema, table, type, commit_timestamp; no rows.
    runtime().block_on(async {
        let mut socket = Socket::connect(sidecar.addr(), &anon).await;
        let reply = socket
            .join("realtime:shape", support::realtime::changes_of("items"))
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");
        sql(&db.url(), "TRUNCATE items").await;
        let message = loop {
            let message = socket.next(Duration::from_secs(5)).await.unwrap();
            if message["event"] == "postgres_changes" {
                break message;
            }
        };
        let data = &message["payload"]["data"];
        assert_eq!(data["type"], "TRUNCATE");
        assert_eq!(
            (&data["schema"], &data["table"]),
            (&json!("public"), &json!("items"))
        );
        assert!(data["commit_timestamp"].is_string() && data["position"].is_i64());
        assert!(
            data.get("record").is_none() && data.get("old_record").is_none(),
            "{data}"
        );
    });
}

#[test]
fn after_the_listen_connection_is_killed_it_reconnects_with_backoff_and_nothing_is_missed() {
    let db = database();
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    runtime().block_on(async {
        let admin = admin(&db).await;
        let mut socket = items_socket(&sidecar).await;
        sql(&db.url(), "INSERT INTO items (id) VALUES (1)").await;
        assert_eq!(
            events(&mut socket, Duration::from_secs(2)).await,
            ["INSERT 1"]
        );

        // New connections are refused for a while, so the gap lasts: the pool keeps the ones it
        // has, the listener must reconnect.
        let database = admin
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get::<_, String>(0);
        let refuse = format!("REVOKE CONNECT ON DATABASE \"{database}\" FROM PUBLIC");
        sql(&db.url(), &refuse).await;
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND usename = 'authenticator' \
                   AND query LIKE 'LISTEN %'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(killed.len(), 1, "one LISTEN connection to kill");
        // Written during the gap: their notifications go nowhere.
        sql(
            &db.url(),
            "INSERT INTO items (id) VALUES (2); ALTER TABLE items ADD COLUMN during_gap text; \
             INSERT INTO items (id) VALUES (3); TRUNCATE items; INSERT INTO items (id) VALUES (4);",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let log = sidecar.log();
        for delay in [
            "reconnecting in 100ms",
            "reconnecting in 200ms",
            "reconnecting in 400ms",
        ] {
            assert!(log.contains(delay), "no {delay:?} in the log:\n{log}");
        }
        assert_eq!(sessions(&admin).await.0, 0, "nobody listens during the gap");

        sql(
            &db.url(),
            &format!("GRANT CONNECT ON DATABASE \"{database}\" TO PUBLIC"),
        )
        .await;
        // The schema cache reloads once the listener is back, though the DDL's NOTIFY was lost.
        wait_for_column(
            &sidecar,
            "/rest/v1/items?select=during_gap",
            Duration::from_secs(10),
        );
        // Realtime has caught up on everything written during the gap, in order, once each.
        assert_eq!(
            events(&mut socket, Duration::from_secs(6)).await,
            ["INSERT 2", "INSERT 3", "TRUNCATE -", "INSERT 4"]
        );
        // And the new connection listens again: one of it, and live events flow.
        assert_eq!(sessions(&admin).await, (1, 1), "{}", sidecar.log());
        sql(&db.url(), "INSERT INTO items (id) VALUES (5)").await;
        assert_eq!(
            events(&mut socket, Duration::from_secs(2)).await,
            ["INSERT 5"]
        );
    });
}
