//! A server that does not preload sluice.so: `CREATE EXTENSION sluice` works (it used to end the
//! connection with FATAL: a postmaster-level setting defined after start-up), and the change log
//! is numbered inline at commit, still a safe resume cursor, and still reaches realtime.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::postgres::{Cluster, Server, TestDb};
use support::realtime::{authenticator_url, changes_of, runtime, sign, Socket};
use support::sidecar::Sidecar;
use tokio_postgres::NoTls;

#[test]
fn without_preloading_the_extension_installs_and_the_change_log_works() {
    let server = Server::Cluster(Arc::new(Cluster::start_without_preload()));
    let db = TestDb::create(&server);
    let rows = db.rows("SELECT current_setting('shared_preload_libraries') AS preload");
    assert_eq!(rows, json!([{"preload": ""}]));

    runtime().block_on(async {
        // One connection throughout: CREATE EXTENSION must leave it usable.
        let (client, connection) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE EXTENSION sluice; \
                 CREATE TABLE items (id int PRIMARY KEY, label text); \
                 GRANT SELECT ON items TO anon; \
                 SELECT sluice.enable_realtime('items');",
            )
            .await
            .unwrap();
        let version: String = client
            .query_one("SELECT sluice.version()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!version.is_empty());
    });

    let sidecar = Sidecar::serve(&authenticator_url(&db));
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        let anon = sign(json!({"role": "anon"}));
        let mut socket = Socket::connect(sidecar.addr(), &anon).await;
        let reply = socket.join("realtime:items", changes_of("items")).await;
        assert_eq!(reply["status"], "ok", "{reply}");

        // T1 writes first and commits last: its event must still come after T2's, not be
        // skipped by a reader that resumed after T2.
        let (t1, connection) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        t1.batch_execute("BEGIN; INSERT INTO items VALUES (1, 'first')")
            .await
            .unwrap();
        client
            .batch_execute("INSERT INTO items VALUES (2, 'second')")
            .await
            .unwrap();
        let after_second: i64 = client
            .query_one(
                "SELECT max(position) FROM sluice.changes_after(0, 100)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        t1.batch_execute("COMMIT").await.unwrap();

        let events = client
            .query(
                "SELECT position, record ->> 'label' FROM sluice.changes_after(0, 100)",
                &[],
            )
            .await
            .unwrap();
        let events: Vec<(i64, String)> = events.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].1, "second");
        assert_eq!(events[1].1, "first");
        assert!(events[1].0 > after_second, "{events:?}");
        let resumed = client
            .query(
                "SELECT record ->> 'label' FROM sluice.changes_after($1, 100)",
                &[&after_second],
            )
            .await
            .unwrap();
        assert_eq!(resumed.len(), 1);
        assert_eq!(resumed[0].get::<_, String>(0), "first");

        let mut delivered = Vec::new();
        while delivered.len() < 2 {
            let message = socket
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|ended| panic!("{ended:?}; log:\n{}", sidecar.log()));
            if message["event"] == "postgres_changes" {
                let data = &message["payload"]["data"];
                delivered.push((
                    data["position"].as_i64().unwrap(),
                    data["record"]["label"].as_str().unwrap().to_owned(),
                ));
            }
        }
        assert_eq!(
            delivered, events,
            "realtime delivers the log in position order"
        );
    });
}
