//! A real HTTP server receiving webhooks for tests: it records every request (path, headers, body,
//! when it arrived) and answers as its path says:
//!
//! * `/ok/...`: 200 at once;
//! * `/flaky/N/...`: 500 to the first N requests, then 200;
//! * `/gone/...`: 410;
//! * `/sleep/MS/...`: waits MS milliseconds, then 200;
//! * `/hold-first/MS/...`: waits MS milliseconds on the first request only, then 200;
//! * `/retry-after/S/...`: 429 with `Retry-After: S` to the first request, then 200.
//!
//! Each test gets its own server on its own port (and its own runtime thread).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::repo_root;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Requests seen per path, counting those still being answered.
    counts: HashMap<String, usize>,
}

pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding the receiver");
        let addr = listener.local_addr().expect("its address");
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&inner));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            addr,
            inner,
            _runtime: runtime,
        }
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests whose path starts with `prefix`, answered or not yet, in arrival order.
    pub fn received(&self, prefix: &str) -> Vec<Received> {
        let inner = self.inner.lock().unwrap();
        inner
            .received
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until `count` requests to `prefix` arrived; panics after `timeout`.
    pub fn wait_for(&self, prefix: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received(prefix);
            if received.len() >= count {
                return received;
            }
            assert!(
                started.elapsed() < timeout,
                "{prefix}: {} of {count} requests within {timeout:?}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let seen = {
        let mut inner = inner.lock().unwrap();
        let count = inner.counts.entry(path.clone()).or_default();
        *count += 1;
        let seen = *count;
        inner.received.push(Received {
            path: path.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        seen
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match parts[0] {
        "flaky" if seen as u64 <= number(1) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "gone" => StatusCode::GONE.into_response(),
        "sleep" => {
            tokio::time::sleep(Duration::from_millis(number(1))).await;
            StatusCode::OK.into_response()
        }
        "hold-first" if seen == 1 => {
            tokio::time::sleep(Duration::from_millis(number(1))).await;
            StatusCode::OK.into_response()
        }
        "retry-after" if seen == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", number(1).to_string())],
        )
            .into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

/// Verifies deliveries with the npm `standardwebhooks` library (sidecar/tests/js), so that our
/// signatures are checked by code that is not ours. Returns the webhook-ids it verified.
pub fn verify_with_standardwebhooks(secret: &str, deliveries: &[Received]) -> Vec<String> {
    let js = repo_root().join("sidecar/tests/js");
    if !js.join("node_modules/standardwebhooks").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&js)
            .status()
            .expect("running npm ci (Node.js is needed for this test)");
        assert!(status.success(), "npm ci failed in {}", js.display());
    }
    let file =
        std::env::temp_dir().join(format!("sluice-webhooks-{}.json", super::random_suffix()));
    let input = json!({
        "secret": secret,
        "deliveries": deliveries
            .iter()
            .map(|d| json!({"headers": d.headers, "body": d.body}))
            .collect::<Vec<_>>(),
    });
    std::fs::write(&file, input.to_string()).expect("writing the deliveries");
    let output = Command::new("node")
        .arg(js.join("webhook_verify.mjs"))
        .arg(&file)
        .current_dir(&js)
        .output()
        .expect("running node (Node.js is needed for this test)");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "standardwebhooks rejected a delivery: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("the verifier's JSON");
    result["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("an id").to_owned())
        .collect()
}
