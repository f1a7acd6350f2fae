//! The topic shorthand of the seed designs: `posts.*`, `posts.created`, `posts.updated`,
//! `posts.deleted` subscribe without any postgres_changes configuration.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, runtime, sign, sql, Ended, Socket};
use support::sidecar::Sidecar;

async fn events(socket: &mut Socket) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match socket.next(Duration::from_millis(700)).await {
            Ok(m) if m["event"] == "postgres_changes" => {
                let data = &m["payload"]["data"];
                let id = data.get("record").unwrap_or(&data["old_record"])["id"].clone();
                seen.push(format!("{} {id}", data["type"].as_str().unwrap()));
            }
            Ok(_) => {}
            Err(Ended::TimedOut) => return seen,
            Err(ended) => panic!("{ended:?}"),
        }
    }
}

#[test]
fn topic_shorthand_subscribes_to_a_table() {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db.execute(
        "CREATE TABLE posts (id int PRIMARY KEY, title text); GRANT SELECT ON posts TO anon; \
         SELECT sluice.enable_realtime('posts');",
    );
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    runtime().block_on(async {
        let anon = sign(json!({"role": "anon"}));
        let mut sockets = Vec::new();
        for topic in [
            "posts.*",
            "posts.created",
            "posts.updated",
            "public.posts.deleted",
        ] {
            let mut socket = Socket::connect(sidecar.addr(), &anon).await;
            let reply: Value = socket
                .join(&format!("realtime:{topic}"), json!({"config": {}}))
                .await;
            assert_eq!(reply["status"], "ok", "{topic}: {reply}");
            assert_eq!(reply["response"]["postgres_changes"][0]["table"], "posts");
            sockets.push(socket);
        }
        sql(
            &db.url(),
            "INSERT INTO posts VALUES (1, 'a'); UPDATE posts SET title = 'b'; DELETE FROM posts;",
        )
        .await;
        let expected = [
            vec!["INSERT 1", "UPDATE 1", "DELETE 1"],
            vec!["INSERT 1"],
            vec!["UPDATE 1"],
            vec!["DELETE 1"],
        ];
        for (socket, expected) in sockets.iter_mut().zip(expected) {
            assert_eq!(events(socket).await, expected);
        }
        // A name that is no shorthand is a plain channel (broadcast/presence only).
        let mut socket = Socket::connect(sidecar.addr(), &anon).await;
        let reply = socket.join("realtime:lobby", json!({"config": {}})).await;
        assert_eq!(reply["response"]["postgres_changes"], json!([]));
    });
}
