//! The server-side heartbeat timeout: a socket that goes silent (its client vanished without
//! closing) is closed and its presences leave; a socket that heartbeats stays open.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, runtime, sign, Ended, Socket};
use support::sidecar::{serve_command, Sidecar};

/// The timeout the sidecar runs with in this test, in seconds.
const TIMEOUT: u64 = 2;

/// Heartbeats on `socket` until `stop` returns a message, and returns it; panics if the socket
/// ends or if `within` passes first.
async fn heartbeat_until(
    socket: &mut Socket,
    within: Duration,
    stop: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < within, "nothing within {within:?}");
        socket.push("phoenix", "heartbeat", json!({})).await;
        let tick = Instant::now() + Duration::from_millis(500);
        loop {
            let left = tick.saturating_duration_since(Instant::now());
            match socket.next(left).await {
                Ok(message) if stop(&message) => return message,
                Ok(_) => {}
                Err(Ended::TimedOut) => break,
                Err(ended) => panic!("the heartbeating socket ended: {ended:?}"),
            }
        }
    }
}

#[test]
fn a_silent_socket_is_closed_and_its_presence_leaves_while_a_heartbeating_one_stays() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let mut command = serve_command(&authenticator_url(&db));
    command.env("SLUICE_REALTIME_HEARTBEAT_TIMEOUT", TIMEOUT.to_string());
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));
    let anon = sign(json!({"role": "anon"}));
    let room = "realtime:heartbeat";
    runtime().block_on(async {
        let mut alive = Socket::connect(sidecar.addr(), &anon).await;
        let reply = alive
            .join(room, json!({"config": {"presence": {"key": "alive"}}}))
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");

        // The ghost joins, tracks, and then sends nothing at all.
        let mut ghost = Socket::connect(sidecar.addr(), &anon).await;
        let reply = ghost
            .join(room, json!({"config": {"presence": {"key": "ghost"}}}))
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");
        let mut kept = Vec::new();
        // The sidecar hears the track after this instant and answers it later (under load, a
        // long while later), so its silence clock starts between the two: timed from here, the
        // leave can never come before the timeout.
        let silent_since = Instant::now();
        let reply = ghost
            .call(
                room,
                "presence",
                json!({"type": "presence", "event": "track", "payload": {"here": true}}),
                &mut kept,
            )
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");
        heartbeat_until(&mut alive, Duration::from_secs(10), |m| {
            m["event"] == "presence_diff" && m["payload"]["joins"].get("ghost").is_some()
        })
        .await;

        // The ghost's presence leaves once the timeout has passed, not before.
        let leave = heartbeat_until(&mut alive, Duration::from_secs(15), |m| {
            m["event"] == "presence_diff" && m["payload"]["leaves"].get("ghost").is_some()
        })
        .await;
        let waited = silent_since.elapsed();
        assert!(waited >= Duration::from_secs(TIMEOUT), "{waited:?}");
        assert!(waited < Duration::from_secs(TIMEOUT + 5), "{waited:?}");
        assert_eq!(
            leave["payload"]["leaves"]["ghost"]["metas"][0]["here"],
            true
        );

        // The ghost's socket was closed with the reason (it reads, but had sent nothing).
        let ended = loop {
            match ghost.next(Duration::from_secs(5)).await {
                Ok(_) => continue,
                Err(ended) => break ended,
            }
        };
        match ended {
            Ended::Closed(Some((code, reason))) => {
                assert_eq!(code, 1000);
                assert!(reason.contains("heartbeat timeout"), "{reason}");
            }
            other => panic!("expected a close frame with a reason, got {other:?}"),
        }

        // The heartbeating socket stays open and served well past the timeout.
        let mut kept = Vec::new();
        while silent_since.elapsed() < Duration::from_secs(TIMEOUT * 3) {
            let reply = alive
                .call("phoenix", "heartbeat", json!({}), &mut kept)
                .await;
            assert_eq!(reply["status"], "ok", "{reply}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(!sidecar.log().contains("panicked"), "{}", sidecar.log());
    });
}
