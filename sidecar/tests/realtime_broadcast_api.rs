//! The HTTP broadcast API (`POST /realtime/v1/api/broadcast`, as Supabase's): messages reach the
//! channel's members on every sidecar, the one that took the request included; bad requests are
//! refused with a JSON error, and a refused batch delivers nothing.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use support::http::post;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, runtime, sign, Ended, Socket};
use support::sidecar::Sidecar;

const BATCH: &str = "/realtime/v1/api/broadcast";

fn send(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, body) = post(addr, BATCH, headers, body).unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
    };
    (status, body)
}

/// The broadcasts `socket` receives until it has been quiet for a while.
async fn broadcasts(socket: &mut Socket) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        match socket.next(Duration::from_millis(700)).await {
            Ok(m) if m["event"] == "broadcast" => seen.push(m["payload"].clone()),
            Ok(_) => {}
            Err(Ended::TimedOut) => return seen,
            Err(ended) => panic!("{ended:?}"),
        }
    }
}

/// Waits until a broadcast posted to `from` reaches `to` (on `realtime:room`).
async fn linked(from: SocketAddr, to: &mut Socket, token: &str) {
    let ping = json!({"messages": [{"topic": "room", "event": "ping", "payload": {}}]});
    for _ in 0..30 {
        let (status, reply) = send(from, &[("apikey", token)], ping.to_string().as_bytes());
        assert_eq!(status, 202, "{reply}");
        if !broadcasts(to).await.is_empty() {
            return;
        }
    }
    panic!("broadcasts posted to {from} never arrived");
}

#[test]
fn a_batch_reaches_members_on_every_sidecar() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let url = authenticator_url(&db);
    let (a, b) = (Sidecar::serve(&url), Sidecar::serve(&url));
    let anon = sign(json!({"role": "anon"}));
    runtime().block_on(async {
        let mut on_a = Socket::connect(a.addr(), &anon).await;
        let mut on_b = Socket::connect(b.addr(), &anon).await;
        for socket in [&mut on_a, &mut on_b] {
            let reply = socket.join("realtime:room", json!({"config": {}})).await;
            assert_eq!(reply["status"], "ok", "{reply}");
        }
        let mut elsewhere = Socket::connect(b.addr(), &anon).await;
        let reply = elsewhere
            .join("realtime:other", json!({"config": {}}))
            .await;
        assert_eq!(reply["status"], "ok", "{reply}");

        // Until a sidecar's LISTEN connection is up, what the other sends does not reach it.
        linked(a.addr(), &mut on_b, &anon).await;
        linked(b.addr(), &mut on_a, &anon).await;
        broadcasts(&mut on_a).await;
        broadcasts(&mut on_b).await;

        // With the API key as supabase-js sends it (apikey, and Authorization: Bearer).
        let body = json!({"messages": [
            {"topic": "room", "event": "wave", "payload": {"n": 1}, "private": false},
            {"topic": "room", "event": "wave", "payload": {"n": 2}},
        ]});
        let bearer = format!("Bearer {anon}");
        let (status, reply) = send(
            a.addr(),
            &[
                ("apikey", &anon),
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        assert_eq!((status, reply), (202, Value::Null));
        let expected = [
            json!({"type": "broadcast", "event": "wave", "payload": {"n": 1}}),
            json!({"type": "broadcast", "event": "wave", "payload": {"n": 2}}),
        ];
        assert_eq!(
            broadcasts(&mut on_a).await,
            expected,
            "on the receiving sidecar"
        );
        assert_eq!(
            broadcasts(&mut on_b).await,
            expected,
            "on the other sidecar"
        );
        assert_eq!(broadcasts(&mut elsewhere).await, Vec::<Value>::new());

        // One message by URL, as realtime-js's httpSend() sends it.
        let (status, _) = post(
            b.addr(),
            "/realtime/v1/api/broadcast/room/events/nod",
            &[("apikey", &anon), ("Content-Type", "application/json")],
            b"{\"ok\": true}",
        )
        .unwrap();
        assert_eq!(status, 202);
        let expected = [json!({"type": "broadcast", "event": "nod", "payload": {"ok": true}})];
        assert_eq!(broadcasts(&mut on_a).await, expected);
        assert_eq!(broadcasts(&mut on_b).await, expected);
    });
}

/// What is sent (headers, body) and the status, code and message part expected.
type Case<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
    &'a str,
);

#[test]
fn bad_requests_are_refused_with_json_errors_and_deliver_nothing() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    let addr = sidecar.addr();
    let anon = sign(json!({"role": "anon"}));
    let key = [("apikey", anon.as_str())];
    let good = json!({"topic": "room", "event": "e", "payload": {"n": 1}});
    runtime().block_on(async {
        let mut member = Socket::connect(addr, &anon).await;
        let reply = member.join("realtime:room", json!({"config": {}})).await;
        assert_eq!(reply["status"], "ok", "{reply}");

        let batch = |messages: Value| json!({"messages": messages}).to_string().into_bytes();
        let big = json!({"topic": "room", "event": "e", "payload": {"text": "x".repeat(8000)}});
        let private = json!({"topic": "room", "event": "e", "payload": {}, "private": true});
        let expired = sign(json!({"role": "anon", "exp": 1000}));
        let bearer_expired = format!("Bearer {expired}");
        let cases: Vec<Case> = vec![
            (
                "no token",
                vec![],
                batch(json!([good])),
                401,
                "SLUICE132",
                "needs a token",
            ),
            (
                "a forged token",
                vec![("apikey", "not.a.token")],
                batch(json!([good])),
                401,
                "PGRST301",
                "",
            ),
            (
                "an expired token",
                vec![("Authorization", bearer_expired.as_str())],
                batch(json!([good])),
                401,
                "PGRST303",
                "JWT expired",
            ),
            (
                "not JSON",
                key.to_vec(),
                b"{\"messages\": [".to_vec(),
                400,
                "SLUICE133",
                "not valid JSON",
            ),
            (
                "no messages",
                key.to_vec(),
                b"{\"topic\": \"room\"}".to_vec(),
                422,
                "SLUICE134",
                "\"messages\" array",
            ),
            (
                "a message without an event, after a good one",
                key.to_vec(),
                batch(json!([good, {"topic": "room", "payload": {}}])),
                422,
                "SLUICE134",
                "message 1: event is required",
            ),
            (
                "a message too large for NOTIFY, after a good one",
                key.to_vec(),
                batch(json!([good, big])),
                413,
                "SLUICE135",
                "message 1 is too large",
            ),
            (
                "a private message, after a good one",
                key.to_vec(),
                batch(json!([good, private])),
                403,
                "SLUICE136",
                "private channels are not supported",
            ),
        ];
        for (case, headers, body, status, code, message) in cases {
            let (got, reply) = send(addr, &headers, &body);
            assert_eq!(got, status, "{case}: {reply}");
            assert_eq!(reply["code"], code, "{case}: {reply}");
            let text = reply["message"].as_str().unwrap_or_default();
            assert!(text.contains(message), "{case}: {reply}");
        }
        // A private message by URL.
        let (status, reply) = post(
            addr,
            "/realtime/v1/api/broadcast/room/events/e?private=true",
            &key,
            b"{}",
        )
        .unwrap();
        assert_eq!(status, 403, "{reply}");

        assert_eq!(
            broadcasts(&mut member).await,
            Vec::<Value>::new(),
            "a refused batch sends nothing, not even its good messages"
        );
    });
}

/// With the database down the NOTIFY cannot go out: 503, and nothing is delivered, not even here.
#[test]
fn a_broadcast_while_the_database_is_down_is_503() {
    let cluster = std::sync::Arc::new(support::postgres::Cluster::start());
    let db = TestDb::create(&Server::Cluster(cluster.clone()));
    db.install_extension();
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    let anon = sign(json!({"role": "anon"}));
    let body = json!({"messages": [{"topic": "room", "event": "e", "payload": {}}]}).to_string();
    runtime().block_on(async {
        let mut member = Socket::connect(sidecar.addr(), &anon).await;
        let reply = member.join("realtime:room", json!({"config": {}})).await;
        assert_eq!(reply["status"], "ok", "{reply}");
        let (status, _) = send(sidecar.addr(), &[("apikey", &anon)], body.as_bytes());
        assert_eq!(status, 202);
        assert_eq!(broadcasts(&mut member).await.len(), 1);

        cluster.stop();
        let (status, reply) = send(sidecar.addr(), &[("apikey", &anon)], body.as_bytes());
        assert_eq!(status, 503, "{reply}");
        assert!(
            ["SLUICE000", "SLUICE001"].contains(&reply["code"].as_str().unwrap_or_default()),
            "{reply}"
        );
        assert_eq!(broadcasts(&mut member).await, Vec::<Value>::new());
    });
}
