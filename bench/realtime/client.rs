//! Realtime latency client in Rust (run by `bench/realtime.sh` beside the Node client): the same
//! measurement as `bench.mjs`'s latency part, with a reader that costs a few microseconds per frame,
//! so that what it reports is mostly the database and the sidecar rather than the client.
//!
//! Environment: SLUICE_WS, DATABASE_URL, SLUICE_JWT_SECRET; SUBSCRIBERS (default "1 100 1000"),
//! EVENTS (200), CLIENT_THREADS (1: the reader runs on one thread, as the Node client does).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Samples = Arc<Mutex<Vec<(i64, Instant)>>>;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

fn sign(secret: &str, claims: serde_json::Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut claims = claims;
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 86_400);
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a signable token")
}

/// The `id` of the record in a change frame, found without parsing the frame.
fn record_id(frame: &str) -> Option<i64> {
    let record = frame.find("\"record\":{")?;
    let rest = &frame[record..];
    let id = rest.find("\"id\":")? + 5;
    let digits: &str = &rest[id..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Opens a socket, joins `table`'s INSERTs as user `i`, and starts a reader that timestamps every
/// change frame into `samples`. Returns once the join is acknowledged.
async fn subscribe(
    base: &str,
    secret: &str,
    table: &str,
    i: usize,
    samples: Samples,
) -> tokio::task::JoinHandle<()> {
    let anon = sign(secret, json!({"role": "anon"}));
    let url = format!("{base}/realtime/v1/websocket?vsn=1.0.0&apikey={anon}");
    // tungstenite zeroes its whole read buffer (128 KiB by default) on every read: that would be
    // most of this client's time.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .expect("the sidecar accepts the socket");
    let join = json!({
        "join_ref": "1", "ref": "1", "topic": format!("realtime:{table}-{i}"), "event": "phx_join",
        "payload": {
            "access_token": sign(secret, json!({"role": "authenticated", "sub": uuid(i)})),
            "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table}]},
        },
    });
    socket
        .send(Message::text(join.to_string()))
        .await
        .expect("join sent");
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"phx_reply\"") => {
                assert!(text.contains("\"ok\""), "join refused: {text}");
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended before the join reply: {other:?}"),
        }
    }
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let now = Instant::now();
            if let Message::Text(text) = message {
                if let Some(id) = record_id(text.as_str()) {
                    samples.lock().expect("samples").push((id, now));
                }
            }
        }
    })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or(f64::NAN)
}

async fn latency(
    db: &tokio_postgres::Client,
    next_id: &mut i64,
    n: usize,
    rls: bool,
    events: usize,
) -> String {
    let base = env("SLUICE_WS", "ws://127.0.0.1:54371");
    let secret = env("SLUICE_JWT_SECRET", "");
    let table = if rls { "bench_rls" } else { "bench_open" };
    let samples: Samples = Arc::default();
    let mut readers = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let joins = chunk
            .iter()
            .map(|&i| subscribe(&base, &secret, table, i, Arc::clone(&samples)));
        readers.extend(futures_util::future::join_all(joins).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let insert = db
        .prepare(&format!(
            "INSERT INTO {table} (id, owner) VALUES ($1, $2::text::uuid)"
        ))
        .await
        .expect("insert prepared");
    let mut sent = std::collections::HashMap::new();
    let pause = Duration::from_millis((n as u64 / 20).max(10));
    for k in 0..events {
        let id = *next_id;
        *next_id += 1;
        // With RLS the row belongs to one subscriber; every subscriber is a distinct user.
        let owner = uuid(if rls { k % n } else { 0 });
        sent.insert(id, Instant::now());
        db.execute(&insert, &[&(id as i32), &owner])
            .await
            .expect("insert");
        tokio::time::sleep(pause).await;
    }
    let expected = if rls { events } else { events * n };
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples.lock().expect("samples").len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for reader in &readers {
        reader.abort();
    }
    let received: Vec<(i64, Instant)> = std::mem::take(&mut *samples.lock().expect("samples"));
    let mut ms: Vec<f64> = received
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|t0| (*at - *t0).as_secs_f64() * 1000.0))
        .collect();
    ms.sort_by(f64::total_cmp);
    format!(
        "{n} | {} | {}/{expected} | {:.2} | {:.2} | {:.2}",
        if rls { "on" } else { "off" },
        ms.len(),
        pct(&ms, 0.5),
        pct(&ms, 0.95),
        pct(&ms, 0.99)
    )
}

fn main() {
    let threads: usize = env("CLIENT_THREADS", "1").parse().expect("CLIENT_THREADS");
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    }
    .enable_all()
    .build()
    .expect("a runtime");
    runtime.block_on(async {
        let url = env("DATABASE_URL", "");
        let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("database reachable");
        tokio::spawn(connection);
        let subscribers: Vec<usize> = env("SUBSCRIBERS", "1 100 1000")
            .split_whitespace()
            .map(|s| s.parse().expect("SUBSCRIBERS"))
            .collect();
        let events: usize = env("EVENTS", "200").parse().expect("EVENTS");
        // Ids far from the Node client's.
        let mut next_id: i64 = db
            .query_one(
                "SELECT greatest((SELECT coalesce(max(id), 0) FROM bench_open), \
                 (SELECT coalesce(max(id), 0) FROM bench_rls))::int8 + 1",
                &[],
            )
            .await
            .expect("max id")
            .get(0);
        println!("latency, Rust client on {threads} thread(s) (ms, from just before the INSERT is sent until the event is read):");
        println!("subscribers | RLS | delivered | p50 | p95 | p99");
        for rls in [false, true] {
            for &n in &subscribers {
                println!("{}", latency(&db, &mut next_id, n, rls, events).await);
            }
        }
    });
}
