//! The webhook benchmark's client (run by bench/webhooks.sh, which starts Postgres and the sidecars):
//! a local receiver (axum, answering 204 at once), and a writer.
//!
//! * saturation: N rows are inserted while the webhook is disabled, then it is enabled; deliveries per
//!   second = N / (time from enabling to the last delivery);
//! * latency: single-row INSERTs, one transaction each, paced; commit-to-delivery = the time the
//!   receiver got the row's delivery minus the time the writer's COMMIT returned (one process, one
//!   clock).
//!
//! Environment: DATABASE_URL (a superuser), RECEIVER_PORT, EVENTS (saturation, default 20000),
//! SINGLES (latency, default 500), PACE_MS (between single inserts, default 10), LABEL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use tokio_postgres::NoTls;

#[derive(Default)]
struct Seen {
    /// Arrival of each row id's first delivery.
    arrivals: HashMap<i64, Instant>,
    total: usize,
}

async fn receive(State(seen): State<Arc<Mutex<Seen>>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["record"]["id"].as_i64());
    let mut seen = seen.lock().unwrap();
    seen.total += 1;
    if let Some(id) = id {
        seen.arrivals.entry(id).or_insert(at);
    }
    StatusCode::NO_CONTENT
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn wait_for(seen: &Arc<Mutex<Seen>>, ids: usize, timeout: Duration) -> Instant {
    let started = Instant::now();
    loop {
        {
            let seen = seen.lock().unwrap();
            if seen.arrivals.len() >= ids {
                return *seen.arrivals.values().max().unwrap();
            }
            assert!(
                started.elapsed() < timeout,
                "only {} of {ids} deliveries within {timeout:?}",
                seen.arrivals.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let port: u16 = std::env::var("RECEIVER_PORT")
        .expect("RECEIVER_PORT")
        .parse()
        .unwrap();
    let events = env("EVENTS", 20_000);
    let singles = env("SINGLES", 500);
    let pace = Duration::from_millis(env("PACE_MS", 10) as u64);
    let label = std::env::var("LABEL").unwrap_or_default();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding the receiver");
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (db, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    db.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_hook; \
         CREATE TABLE bench_hook (id bigint PRIMARY KEY, payload text); \
         GRANT SELECT ON bench_hook TO service_role; \
         SELECT sluice.drop_webhook('bench'); \
         SELECT sluice.create_webhook('bench', 'http://127.0.0.1:{port}/hook', '{{bench_hook}}', '{{INSERT}}'); \
         SELECT sluice.disable_webhook('bench');"
    ))
    .await
    .unwrap();

    // Saturation: a backlog of `events`, delivered as fast as the dispatcher goes.
    for start in (0..events).step_by(1000) {
        let end = (start + 1000).min(events);
        db.execute(
            "INSERT INTO bench_hook SELECT g, 'event ' || g FROM generate_series($1::bigint, $2::bigint) g",
            &[&(start as i64), &(end as i64 - 1)],
        )
        .await
        .unwrap();
    }
    let enabled = Instant::now();
    db.batch_execute("SELECT sluice.enable_webhook('bench')")
        .await
        .unwrap();
    let last = wait_for(&seen, events, Duration::from_secs(600)).await;
    let seconds = last.duration_since(enabled).as_secs_f64();
    println!(
        "{label}saturation: {events} deliveries in {seconds:.2} s = {:.0} deliveries/s",
        events as f64 / seconds
    );

    // Latency: single inserts, each committed alone, paced.
    let insert = db
        .prepare("INSERT INTO bench_hook VALUES ($1, 'single')")
        .await
        .unwrap();
    let mut committed = HashMap::new();
    for i in 0..singles {
        let id = (events + i) as i64;
        db.execute(&insert, &[&id]).await.unwrap();
        committed.insert(id, Instant::now());
        tokio::time::sleep(pace).await;
    }
    wait_for(&seen, events + singles, Duration::from_secs(60)).await;
    let seen = seen.lock().unwrap();
    let mut latencies: Vec<f64> = committed
        .iter()
        .map(|(id, at)| {
            seen.arrivals[id]
                .saturating_duration_since(*at)
                .as_secs_f64()
                * 1000.0
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{label}commit-to-delivery over {singles} single inserts ({} ms apart): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pace.as_millis(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        latencies.last().unwrap()
    );
    println!(
        "{label}deliveries received: {} for {} events (duplicates: {})",
        seen.total,
        events + singles,
        seen.total - (events + singles)
    );
}
