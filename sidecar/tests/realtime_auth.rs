//! Tokens on an open realtime socket: a channel whose token expires stops receiving and is told
//! why; an `access_token` message switches the identity RLS sees; a bad one closes the channel.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, changes_of, runtime, sign, sql, Ended, Socket};
use support::sidecar::Sidecar;

const ANN: &str = "00000000-0000-4000-8000-00000000000a";
const BOB: &str = "00000000-0000-4000-8000-00000000000b";

fn setup() -> (TestDb, Sidecar) {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db.execute(
        "CREATE TABLE notes (id int PRIMARY KEY, owner uuid NOT NULL); \
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY own ON notes FOR SELECT TO authenticated USING (owner = auth.uid()); \
         GRANT SELECT ON notes TO authenticated; SELECT sluice.enable_realtime('notes');",
    );
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    (db, sidecar)
}

fn user(sub: &str, exp_in: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    sign(json!({"role": "authenticated", "sub": sub, "exp": now + exp_in}))
}

/// The ids of the change events received until nothing arrives for a while, and other messages.
async fn drain(socket: &mut Socket) -> (Vec<i64>, Vec<Value>) {
    let (mut ids, mut others) = (Vec::new(), Vec::new());
    loop {
        match socket.next(Duration::from_millis(700)).await {
            Ok(m) if m["event"] == "postgres_changes" => {
                ids.push(m["payload"]["data"]["record"]["id"].as_i64().unwrap())
            }
            Ok(m) => others.push(m),
            Err(Ended::TimedOut) => return (ids, others),
            Err(ended) => panic!("{ended:?}"),
        }
    }
}

#[test]
fn an_expired_token_stops_delivery_with_a_reason() {
    let (db, sidecar) = setup();
    runtime().block_on(async {
        let mut socket = Socket::connect(sidecar.addr(), &sign(json!({"role": "anon"}))).await;
        let mut join = changes_of("notes");
        join["access_token"] = json!(user(ANN, 2));
        assert_eq!(socket.join("realtime:notes", join).await["status"], "ok");
        sql(&db.url(), &format!("INSERT INTO notes VALUES (1, '{ANN}')")).await;
        let (ids, _) = drain(&mut socket).await;
        assert_eq!(ids, [1]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        sql(&db.url(), &format!("INSERT INTO notes VALUES (2, '{ANN}')")).await;
        let (ids, others) = drain(&mut socket).await;
        assert_eq!(ids, Vec::<i64>::new(), "nothing after expiry");
        let system = others
            .iter()
            .find(|m| m["event"] == "system")
            .expect("a system message");
        assert_eq!(system["payload"]["status"], "error");
        assert_eq!(system["payload"]["message"], "Token has expired");
        assert!(
            others.iter().any(|m| m["event"] == "phx_close"),
            "{others:?}"
        );
    });
}

#[test]
fn access_token_switches_who_rls_sees_and_a_bad_one_closes_the_channel() {
    let (db, sidecar) = setup();
    runtime().block_on(async {
        let mut socket = Socket::connect(sidecar.addr(), &sign(json!({"role": "anon"}))).await;
        let mut join = changes_of("notes");
        join["access_token"] = json!(user(ANN, 3600));
        assert_eq!(socket.join("realtime:notes", join).await["status"], "ok");
        let insert = |id: i32, owner: &str| format!("INSERT INTO notes VALUES ({id}, '{owner}')");
        sql(&db.url(), &insert(1, ANN)).await;
        sql(&db.url(), &insert(2, BOB)).await;
        assert_eq!(drain(&mut socket).await.0, [1]);

        let mut kept = Vec::new();
        let reply = socket
            .call(
                "realtime:notes",
                "access_token",
                json!({"access_token": user(BOB, 3600)}),
                &mut kept,
            )
            .await;
        assert_eq!(reply["status"], "ok");
        sql(&db.url(), &insert(3, ANN)).await;
        sql(&db.url(), &insert(4, BOB)).await;
        assert_eq!(drain(&mut socket).await.0, [4]);

        socket
            .push(
                "realtime:notes",
                "access_token",
                json!({"access_token": "not.a.token"}),
            )
            .await;
        sql(&db.url(), &insert(5, BOB)).await;
        let (ids, others) = drain(&mut socket).await;
        assert_eq!(ids, Vec::<i64>::new());
        let system = others
            .iter()
            .find(|m| m["event"] == "system")
            .expect("a system message");
        assert!(system["payload"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid token"));
    });
}
