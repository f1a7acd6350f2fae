//! Realtime operations across processes: broadcast and presence between two sidecars on one
//! database, recovery after Postgres restarts, and a slow client cut off without hurting others.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::postgres::{Cluster, Server, TestDb};
use support::realtime::{authenticator_url, changes_of, runtime, sign, sql, Ended, Socket};
use support::sidecar::Sidecar;

/// The next message with `event`, skipping others.
async fn expect_event(socket: &mut Socket, event: &str) -> Value {
    loop {
        let message = socket
            .next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|ended| panic!("waiting for {event}: {ended:?}"));
        if message["event"] == event {
            return message;
        }
    }
}

#[test]
fn broadcast_and_presence_work_between_two_sidecars() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    let url = authenticator_url(&db);
    let (a, b) = (Sidecar::serve(&url), Sidecar::serve(&url));
    let anon = sign(json!({"role": "anon"}));
    let room = "realtime:room";
    let config = |key: &str| json!({"config": {"broadcast": {"self": false, "ack": true}, "presence": {"key": key}}});

    runtime().block_on(async {
        let mut ann = Socket::connect(a.addr(), &anon).await;
        assert_eq!(ann.join(room, config("ann")).await["status"], "ok");
        let mut kept = Vec::new();
        let reply = ann
            .call(
                room,
                "presence",
                json!({"type": "presence", "event": "track", "payload": {"mood": "calm"}}),
                &mut kept,
            )
            .await;
        assert_eq!(reply["status"], "ok");

        // Bob joins on the other sidecar and is told who is there.
        let mut bob = Socket::connect(b.addr(), &anon).await;
        assert_eq!(bob.join(room, config("bob")).await["status"], "ok");
        let state = expect_event(&mut bob, "presence_state").await;
        let mut state = state["payload"].clone();
        if state.get("ann").is_none() {
            // The state can reach b just after bob joined: then it comes as a diff.
            let diff = expect_event(&mut bob, "presence_diff").await;
            state = diff["payload"]["joins"].clone();
        }
        assert_eq!(state["ann"]["metas"][0]["mood"], "calm", "{state}");

        // A broadcast from ann on a reaches bob on b, acknowledged to ann, not echoed to her.
        let reply = ann
            .call(
                room,
                "broadcast",
                json!({"type": "broadcast", "event": "wave", "payload": {"n": 1}}),
                &mut kept,
            )
            .await;
        assert_eq!(reply["status"], "ok");
        let message = expect_event(&mut bob, "broadcast").await;
        assert_eq!(
            message["payload"],
            json!({"type": "broadcast", "event": "wave", "payload": {"n": 1}})
        );

        // Bob tracks; ann sees the join. Bob leaves; ann sees the leave.
        bob.call(
            room,
            "presence",
            json!({"type": "presence", "event": "track", "payload": {"mood": "busy"}}),
            &mut kept,
        )
        .await;
        let diff = loop {
            let diff = expect_event(&mut ann, "presence_diff").await;
            if diff["payload"]["joins"].get("bob").is_some() {
                break diff;
            }
        };
        assert_eq!(diff["payload"]["joins"]["bob"]["metas"][0]["mood"], "busy");
        drop(bob);
        let diff = loop {
            let diff = expect_event(&mut ann, "presence_diff").await;
            if diff["payload"]["leaves"].get("bob").is_some() {
                break diff;
            }
        };
        assert_eq!(diff["payload"]["leaves"]["bob"]["metas"][0]["mood"], "busy");
        assert!(
            !kept.iter().any(|m| m["event"] == "broadcast"),
            "no echo to the sender: {kept:?}"
        );
    });
}

async fn receive(socket: &mut Socket, ids: &mut Vec<i64>, want: usize) {
    while ids.len() < want {
        match socket.next(Duration::from_secs(30)).await {
            Ok(m) if m["event"] == "postgres_changes" => {
                ids.push(m["payload"]["data"]["record"]["id"].as_i64().unwrap())
            }
            Ok(_) => {}
            Err(ended) => panic!("after {} events: {ended:?}", ids.len()),
        }
    }
}

#[test]
fn the_stream_survives_a_postgres_restart_without_losing_events() {
    let cluster = std::sync::Arc::new(Cluster::start());
    let server = support::postgres::Server::Cluster(cluster.clone());
    let db = TestDb::create(&server);
    db.install_extension();
    db.execute("CREATE TABLE r (id int PRIMARY KEY); GRANT SELECT ON r TO anon; SELECT sluice.enable_realtime('r');");
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    runtime().block_on(async {
        let mut socket = Socket::connect(sidecar.addr(), &sign(json!({"role": "anon"}))).await;
        assert_eq!(
            socket.join("realtime:r", changes_of("r")).await["status"],
            "ok"
        );

        let mut ids = Vec::new();
        sql(&db.url(), "INSERT INTO r SELECT generate_series(1, 50)").await;
        receive(&mut socket, &mut ids, 50).await;
        cluster.stop();
        cluster.start_again();
        // Written before the sidecar has noticed: it must catch up from the log.
        sql(&db.url(), "INSERT INTO r SELECT generate_series(51, 100)").await;
        receive(&mut socket, &mut ids, 100).await;
        assert_eq!(ids, (1..=100).collect::<Vec<i64>>());
        assert!(sidecar.log().contains("reconnecting"), "{}", sidecar.log());
    });
}

#[test]
fn a_client_that_cannot_keep_up_is_cut_off_and_others_get_everything() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    db.execute("CREATE TABLE flood (id int PRIMARY KEY, pad text); GRANT SELECT ON flood TO anon; SELECT sluice.enable_realtime('flood');");
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    let anon = sign(json!({"role": "anon"}));
    runtime().block_on(async {
        let mut slow = Socket::connect_with_buffer(sidecar.addr(), &anon, Some(4096)).await;
        assert_eq!(
            slow.join("realtime:flood", changes_of("flood")).await["status"],
            "ok"
        );
        let mut fast = Socket::connect(sidecar.addr(), &anon).await;
        assert_eq!(
            fast.join("realtime:flood", changes_of("flood")).await["status"],
            "ok"
        );

        const ROWS: usize = 20_000;
        sql(
            &db.url(),
            &format!(
                "INSERT INTO flood SELECT g, repeat('x', 1000) FROM generate_series(1, {ROWS}) g"
            ),
        )
        .await;
        // The slow client reads, but far slower than events come: what was sent before the cut,
        // then the reason.
        let slow_reader = tokio::spawn(async move {
            loop {
                match slow.next(Duration::from_secs(20)).await {
                    Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                    Err(ended) => return ended,
                }
            }
        });
        let mut count = 0;
        while count < ROWS {
            match fast.next_text(Duration::from_secs(60)).await {
                Ok(text) if text.contains("\"postgres_changes\"") => count += 1,
                Ok(_) => {}
                Err(ended) => panic!("the fast client lost its stream after {count}: {ended:?}"),
            }
        }
        let ended = slow_reader.await.unwrap();
        match ended {
            Ended::Closed(Some((code, reason))) => {
                assert_eq!(code, 1008);
                assert!(reason.contains("did not keep up"), "{reason}");
            }
            other => panic!("expected a close frame with a reason, got {other:?}"),
        }
    });
}

#[test]
fn presences_of_a_killed_sidecar_are_dropped_by_the_others() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    let url = authenticator_url(&db);
    let (mut a, b) = (Sidecar::serve(&url), Sidecar::serve(&url));
    runtime().block_on(async {
        let anon = sign(json!({"role": "anon"}));
        let room = "realtime:lobby";
        let mut bob = Socket::connect(b.addr(), &anon).await;
        assert_eq!(
            bob.join(room, json!({"config": {"presence": {"key": "bob"}}}))
                .await["status"],
            "ok"
        );
        let mut ann = Socket::connect(a.addr(), &anon).await;
        assert_eq!(
            ann.join(room, json!({"config": {"presence": {"key": "ann"}}}))
                .await["status"],
            "ok"
        );
        let mut kept = Vec::new();
        ann.call(
            room,
            "presence",
            json!({"type": "presence", "event": "track", "payload": {}}),
            &mut kept,
        )
        .await;
        let diff = expect_event(&mut bob, "presence_diff").await;
        assert!(diff["payload"]["joins"].get("ann").is_some(), "{diff}");

        a.signal(libc::SIGKILL);
        a.wait_exit(Duration::from_secs(10));
        // Within the silence timeout plus one keep-alive tick.
        let started = std::time::Instant::now();
        let diff = loop {
            let message = bob
                .next(Duration::from_secs(30))
                .await
                .unwrap_or_else(|ended| panic!("waiting for ann to leave: {ended:?}"));
            if message["event"] == "presence_diff"
                && message["payload"]["leaves"].get("ann").is_some()
            {
                break message;
            }
        };
        assert!(started.elapsed() < Duration::from_secs(30), "{diff}");
    });
}
