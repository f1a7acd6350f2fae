//! Webhooks end to end: real sidecars (the `sluice` binary) deliver the change log of a real Postgres
//! to a real HTTP receiver (support::receiver). Signatures are checked by the npm `standardwebhooks`
//! library, not by our code.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::postgres::{Cluster, Server, TestDb};
use support::realtime::authenticator_url;
use support::receiver::{verify_with_standardwebhooks, Receiver};
use support::sidecar::Sidecar;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn database(server: &Server) -> TestDb {
    let db = TestDb::create(server);
    db.install_extension();
    db.execute(
        "CREATE TABLE items (id serial PRIMARY KEY, writer int, n int); \
         GRANT SELECT ON items TO service_role;",
    );
    db
}

/// `count` single-row INSERTs, each its own transaction, from each of `writers` connections at once.
fn insert_concurrently(url: &str, writers: i32, count: i32) {
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    let connection = tokio::spawn(connection);
                    let insert = client
                        .prepare("INSERT INTO items (writer, n) VALUES ($1, $2)")
                        .await
                        .unwrap();
                    for n in 0..count {
                        client.execute(&insert, &[&writer, &n]).await.unwrap();
                    }
                    drop(client);
                    let _ = connection.await;
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a writer");
    }
}

#[test]
fn two_sidecars_deliver_each_of_1000_concurrent_inserts_once_signed_and_in_order() {
    let server = Server::shared();
    let db = database(&server);
    let receiver = Receiver::start();
    db.execute(&format!(
        "SELECT sluice.create_webhook('items', '{}', '{{items}}', '{{INSERT}}', secret => '{SECRET}')",
        receiver.url("/ok/items")
    ));
    let url = authenticator_url(&db);
    let (a, b) = (Sidecar::serve(&url), Sidecar::serve(&url));

    insert_concurrently(&db.url(), 4, 250);
    receiver.wait_for("/ok/items", 1000, Duration::from_secs(120));
    // Anything sent twice would arrive within this.
    std::thread::sleep(Duration::from_secs(2));
    let received = receiver.received("/ok/items");
    assert_eq!(
        received.len(),
        1000,
        "exactly one delivery per event; logs:\n{}\n{}",
        a.log(),
        b.log()
    );

    let positions: Vec<i64> = received
        .iter()
        .map(|r| r.json()["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "deliveries arrive in position order"
    );
    let mut rows = HashSet::new();
    for delivery in &received {
        let body = delivery.json();
        assert_eq!(body["type"], "INSERT");
        assert_eq!(body["schema"], "public");
        assert_eq!(body["table"], "items");
        assert_eq!(body["old_record"], Value::Null);
        assert!(body["commit_timestamp"].is_string());
        assert_eq!(delivery.headers["content-type"], "application/json");
        rows.insert(body["record"]["id"].as_i64().unwrap());
    }
    assert_eq!(rows.len(), 1000, "every inserted row, once");

    let verified = verify_with_standardwebhooks(SECRET, &received);
    assert_eq!(verified.len(), 1000);
    assert_eq!(
        verified.iter().collect::<HashSet<_>>().len(),
        1000,
        "one webhook-id per event"
    );

    let logged = db.rows(
        "SELECT count(*) AS n, count(DISTINCT position) AS positions, max(attempt) AS attempts \
         FROM sluice.webhook_deliveries WHERE webhook = 'items' AND status = 'succeeded'",
    );
    assert_eq!(logged[0]["n"], 1000, "{logged}");
    assert_eq!(logged[0]["positions"], 1000);
    assert_eq!(logged[0]["attempts"], 1);
    let cursor = db.rows("SELECT position FROM sluice.webhook_cursors");
    assert_eq!(cursor[0]["position"], positions[999]);
}

#[test]
fn failures_are_retried_logged_and_410_disables_while_a_hanging_receiver_holds_up_nobody() {
    let server = Server::shared();
    let db = database(&server);
    let receiver = Receiver::start();
    let create = |name: &str, path: &str, options: &str| {
        db.execute(&format!(
            "SELECT sluice.create_webhook('{name}', '{}', '{{items}}', secret => '{SECRET}'{options})",
            receiver.url(path)
        ))
    };
    create("flaky", "/flaky/5", ", retry_delay => '20 ms'");
    create("gone", "/gone", "");
    create(
        "hanging",
        "/sleep/3000",
        ", timeout => '300 ms', retry_delay => '50 ms', max_attempts => 3",
    );
    create("prompt", "/ok/prompt", "");
    create("patient", "/retry-after/2", ", retry_delay => '20 ms'");
    let sidecar = Sidecar::serve(&authenticator_url(&db));

    let inserted = Instant::now();
    db.execute("INSERT INTO items (writer, n) VALUES (1, 1)");

    // The prompt webhook is not held up by the one whose receiver hangs.
    let prompt = receiver.wait_for("/ok/prompt", 1, Duration::from_secs(10));
    let prompt_delay = prompt[0].at.duration_since(inserted);
    assert!(
        prompt_delay < Duration::from_secs(2),
        "delivered in {prompt_delay:?}; log:\n{}",
        sidecar.log()
    );
    assert!(
        receiver.received("/sleep/").len() <= 1,
        "the hanging receiver is still on its first attempt"
    );

    // 500 five times, then 200: six attempts, one webhook-id.
    let flaky = db.rows_until(
        "SELECT attempt, status, response_status FROM sluice.webhook_deliveries \
         WHERE webhook = 'flaky' ORDER BY attempt",
        Duration::from_secs(20),
        |rows| {
            rows.as_array()
                .unwrap()
                .iter()
                .any(|r| r["status"] == "succeeded")
        },
    );
    let statuses: Vec<(i64, &str, i64)> = flaky
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["attempt"].as_i64().unwrap(),
                r["status"].as_str().unwrap(),
                r["response_status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, "failed", 500),
            (2, "failed", 500),
            (3, "failed", 500),
            (4, "failed", 500),
            (5, "failed", 500),
            (6, "succeeded", 200)
        ]
    );
    let attempts = receiver.received("/flaky/5");
    assert_eq!(attempts.len(), 6);
    assert!(attempts.iter().all(|a| a.id() == attempts[0].id()));
    verify_with_standardwebhooks(SECRET, &attempts);

    // 429 with Retry-After: 2 waits two seconds, though the webhook's own first delay is 20 ms.
    let patient = receiver.wait_for("/retry-after/2", 2, Duration::from_secs(10));
    let waited = patient[1].at.duration_since(patient[0].at);
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "Retry-After honoured: waited {waited:?}"
    );

    // 410: the webhook is disabled, with the reason.
    let gone = db.rows_until(
        "SELECT active, disabled_reason FROM sluice.webhooks WHERE name = 'gone'",
        Duration::from_secs(10),
        |rows| rows[0]["active"] == false,
    );
    assert!(gone[0]["disabled_reason"].as_str().unwrap().contains("410"));
    let logged = db.rows(
        "SELECT status, response_status FROM sluice.webhook_deliveries WHERE webhook = 'gone'",
    );
    assert_eq!(
        logged,
        serde_json::json!([{"status": "failed", "response_status": 410}])
    );

    // The hanging receiver: each attempt times out, and after three the event is dead.
    let hanging = db.rows_until(
        "SELECT attempt, status, error, duration_ms FROM sluice.webhook_deliveries \
         WHERE webhook = 'hanging' ORDER BY attempt",
        Duration::from_secs(20),
        |rows| rows.as_array().unwrap().len() == 3,
    );
    assert_eq!(hanging[0]["status"], "failed");
    assert_eq!(hanging[2]["status"], "dead");
    assert!(
        hanging[0]["error"].as_str().unwrap().contains("timed out"),
        "{hanging}"
    );
    let waited = hanging[0]["duration_ms"].as_i64().unwrap();
    assert!(
        (290..3000).contains(&waited),
        "each attempt waits out the timeout: {hanging}"
    );

    // A dead delivery can be retried: it is delivered again with the same webhook-id.
    db.execute(
        "SELECT sluice.alter_webhook('hanging', target => '{}')"
            .replace("{}", &receiver.url("/ok/hanging"))
            .as_str(),
    );
    db.execute("SELECT sluice.retry_webhook('hanging')");
    let retried = receiver.wait_for("/ok/hanging", 1, Duration::from_secs(10));
    assert_eq!(retried[0].id(), receiver.received("/sleep/")[0].id());
}

#[test]
fn a_sidecar_killed_mid_delivery_leaves_the_event_to_the_other() {
    let server = Server::shared();
    let db = database(&server);
    let receiver = Receiver::start();
    db.execute(&format!(
        "SELECT sluice.create_webhook('held', '{}', '{{items}}', secret => '{SECRET}')",
        receiver.url("/hold-first/5000")
    ));
    let url = authenticator_url(&db);
    let mut first = Sidecar::serve(&url);
    // The first sidecar leads the webhook before the second starts.
    db.rows_until(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 1936488296 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        Duration::from_secs(10),
        |rows| rows.as_array().unwrap().len() == 1,
    );
    let second = Sidecar::serve(&url);

    db.execute("INSERT INTO items (writer, n) VALUES (1, 1)");
    // The first attempt is being answered (slowly) when its sidecar dies.
    receiver.wait_for("/hold-first/", 1, Duration::from_secs(10));
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10));

    let received = receiver.wait_for("/hold-first/", 2, Duration::from_secs(15));
    assert_eq!(received[0].id(), received[1].id(), "the same event, again");
    let logged = db.rows_until(
        "SELECT status FROM sluice.webhook_deliveries WHERE webhook = 'held'",
        Duration::from_secs(10),
        |rows| !rows.as_array().unwrap().is_empty(),
    );
    assert_eq!(
        logged,
        serde_json::json!([{"status": "succeeded"}]),
        "{}",
        second.log()
    );
}

#[test]
fn nothing_is_lost_across_a_postgres_restart() {
    let cluster = std::sync::Arc::new(Cluster::start());
    let server = Server::Cluster(std::sync::Arc::clone(&cluster));
    let db = database(&server);
    let receiver = Receiver::start();
    db.execute(&format!(
        "SELECT sluice.create_webhook('items', '{}', '{{items}}', secret => '{SECRET}')",
        receiver.url("/ok/restart")
    ));
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    insert_concurrently(&db.url(), 1, 10);
    receiver.wait_for("/ok/restart", 10, Duration::from_secs(20));

    cluster.stop();
    cluster.start_again();
    insert_concurrently(&db.url(), 2, 10);
    let received = receiver.wait_for("/ok/restart", 30, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let received_now = receiver.received("/ok/restart");
    let ids: HashSet<&str> = received_now.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), 30, "every event; log:\n{}", sidecar.log());
    // Before the restart each event was delivered once; after it, at least once, in order.
    assert!(received.len() >= 30);
    let positions: Vec<i64> = received_now
        .iter()
        .map(|r| r.json()["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
}

/// One request to the admin API with `token`: the status and the JSON body (null when empty).
fn admin(
    sidecar: &Sidecar,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("http://{}{path}", sidecar.addr());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .request(method, url)
            .header("apikey", token)
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
        };
        (status, body)
    })
}

#[test]
fn service_role_manages_webhooks_over_http_and_nobody_else_does() {
    use reqwest::Method;
    use serde_json::json;
    use support::realtime::sign;

    let server = Server::shared();
    let db = database(&server);
    let receiver = Receiver::start();
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    let service = sign(json!({"role": "service_role"}));
    let user =
        sign(json!({"role": "authenticated", "sub": "d3b07384-d9a0-4c3f-9a8e-6f2b1c0e5a11"}));

    // Created over HTTP, it delivers like any other; its secret is returned once.
    let (status, created) = admin(
        &sidecar,
        &service,
        Method::POST,
        "/admin/v1/webhooks",
        Some(
            json!({"name": "api", "target": receiver.url("/ok/api"), "tables": ["items"],
                    "events": ["INSERT", "UPDATE"], "headers": {"x-app": "shop"},
                    "filter": "n=gt.10", "retry_delay": "10 ms"}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "api");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    db.execute("INSERT INTO items (writer, n) VALUES (1, 5), (1, 50)");
    let received = receiver.wait_for("/ok/api", 1, Duration::from_secs(10));
    assert_eq!(received[0].json()["record"]["n"], 50, "the filter holds");
    assert_eq!(received[0].headers["x-app"], "shop");
    verify_with_standardwebhooks(&secret, &received);

    let (status, list) = admin(&sidecar, &service, Method::GET, "/admin/v1/webhooks", None);
    assert_eq!(status, 200);
    assert_eq!(list[0]["name"], "api");
    assert_eq!(list[0]["tables"], json!(["items"]));
    assert_eq!(list[0]["events"], json!(["INSERT", "UPDATE"]));
    assert_eq!(list[0]["active"], true);
    assert!(list[0].get("secret").is_none(), "secrets are never listed");

    // Altered and disabled; rotated (both secrets sign meanwhile); its log; retried; dropped.
    let (status, altered) = admin(
        &sidecar,
        &service,
        Method::PATCH,
        "/admin/v1/webhooks/api",
        Some(json!({"max_attempts": 3, "active": false})),
    );
    assert_eq!(status, 200, "{altered}");
    assert_eq!(altered["max_attempts"], 3);
    assert_eq!(altered["active"], false);
    let (status, enabled) = admin(
        &sidecar,
        &service,
        Method::PATCH,
        "/admin/v1/webhooks/api",
        Some(json!({"active": true})),
    );
    assert_eq!((status, &enabled["active"]), (200, &json!(true)));
    let (status, rotated) = admin(
        &sidecar,
        &service,
        Method::POST,
        "/admin/v1/webhooks/api/rotate-secret",
        None,
    );
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    db.execute("INSERT INTO items (writer, n) VALUES (2, 60)");
    let received = receiver.wait_for("/ok/api", 2, Duration::from_secs(10));
    assert_eq!(
        received[1].headers["webhook-signature"].split(' ').count(),
        2,
        "one signature per valid secret during a rotation"
    );
    verify_with_standardwebhooks(&secret, &received[1..]);
    verify_with_standardwebhooks(&new_secret, &received[1..]);

    let (status, log) = admin(
        &sidecar,
        &service,
        Method::GET,
        "/admin/v1/webhooks/api/deliveries?limit=10",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
    assert_eq!(log[0]["status"], "succeeded");
    let first = received[0].json()["position"].as_i64().unwrap();
    let (status, retried) = admin(
        &sidecar,
        &service,
        Method::POST,
        "/admin/v1/webhooks/api/retry",
        Some(json!({"from_position": first})),
    );
    assert_eq!((status, &retried["from_position"]), (200, &json!(first)));
    let replayed = receiver.wait_for("/ok/api", 4, Duration::from_secs(10));
    assert_eq!(
        replayed[2].id(),
        received[0].id(),
        "replayed with its webhook-id"
    );

    // Refusals: not service_role (403), no such webhook (404), a bad body (400), bad SQL input (400).
    let (status, refused) = admin(&sidecar, &user, Method::GET, "/admin/v1/webhooks", None);
    assert_eq!((status, refused["code"].as_str()), (403, Some("SLUICE140")));
    let (status, missing) = admin(
        &sidecar,
        &service,
        Method::GET,
        "/admin/v1/webhooks/nope",
        None,
    );
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("PT404")),
        "{missing}"
    );
    let (status, bad) = admin(
        &sidecar,
        &service,
        Method::POST,
        "/admin/v1/webhooks",
        Some(json!(["not", "an", "object"])),
    );
    assert_eq!((status, bad["code"].as_str()), (400, Some("SLUICE141")));
    let (status, bad) = admin(
        &sidecar,
        &service,
        Method::POST,
        "/admin/v1/webhooks",
        Some(
            json!({"name": "x", "target": "http://127.0.0.1:9/", "tables": ["items"], "events": ["UPSERT"]}),
        ),
    );
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("22023")),
        "{bad}"
    );

    let (status, _) = admin(
        &sidecar,
        &service,
        Method::DELETE,
        "/admin/v1/webhooks/api",
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = admin(
        &sidecar,
        &service,
        Method::DELETE,
        "/admin/v1/webhooks/api",
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn account_and_file_events_reach_webhooks_on_auth_users_and_storage_objects_without_a_hash() {
    let db = database(&Server::shared());
    let receiver = Receiver::start();
    db.execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS pgcrypto; \
         SELECT sluice.create_webhook('accounts', '{}', '{{auth.users}}', secret => '{SECRET}'); \
         SELECT sluice.create_webhook('files', '{}', '{{storage.objects}}', secret => '{SECRET}');",
        receiver.url("/ok/accounts"),
        receiver.url("/ok/files"),
    ));
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    db.execute(
        "INSERT INTO auth.users (id, aud, role, email, encrypted_password, email_confirmed_at) \
         VALUES ('22222222-2222-2222-2222-222222222222', 'authenticated', 'authenticated', \
                 'hooked@example.com', crypt('a secret', gen_salt('bf')), now()); \
         INSERT INTO storage.buckets (id, name) VALUES ('docs', 'docs'); \
         INSERT INTO storage.objects (bucket_id, name) VALUES ('docs', 'reports/q4.pdf'); \
         DELETE FROM storage.objects WHERE bucket_id = 'docs';",
    );

    let accounts = receiver.wait_for("/ok/accounts", 1, Duration::from_secs(30));
    let account = accounts[0].json();
    assert_eq!(account["type"], "INSERT", "{account}");
    assert_eq!(account["schema"], "auth");
    assert_eq!(account["table"], "users");
    assert_eq!(account["record"]["email"], "hooked@example.com");
    let body = account.to_string();
    assert!(
        !body.contains("$2a$") && !body.contains("$2b$") && !body.contains("$argon2"),
        "a password hash reached a webhook: {body}"
    );

    let files = receiver.wait_for("/ok/files", 2, Duration::from_secs(30));
    let kinds: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let event = f.json();
            let name = if event["type"] == "DELETE" {
                event["old_record"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                event["record"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            (event["type"].as_str().unwrap().to_owned(), name)
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("INSERT".to_owned(), "reports/q4.pdf".to_owned()),
            ("DELETE".to_owned(), "reports/q4.pdf".to_owned()),
        ],
        "log:\n{}",
        sidecar.log()
    );
    let mut all = accounts;
    all.extend(files);
    assert_eq!(verify_with_standardwebhooks(SECRET, &all).len(), all.len());
}
