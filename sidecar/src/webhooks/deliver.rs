//! One webhook's delivery loop, run by the sidecar that holds its lock: follow the change log from
//! the webhook's cursor, POST each matching event (in position order, one at a time), retry what
//! failed, and move the cursor only past events that were delivered or given up as dead.
//!
//! Successes are written in groups (one statement per batch read, or every `FLUSH_EVERY`
//! deliveries): should the sidecar die before writing them, the next leader delivers those events
//! again, which at-least-once allows; receivers deduplicate on `webhook-id`, which is the same for
//! every attempt at one event (`msg_<webhook id>_<position>`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::retry::{self, Verdict};
use super::sign;
use super::sql::{self, Failure, Success, Webhook};
use crate::changelog::{Change, ChangeReader, Op};
use crate::db::Pool;
use crate::error::describe;
use crate::realtime::filter::{parse_filter, ColumnFilter};

/// Successes written at least this often during a long batch.
const FLUSH_EVERY: usize = 200;
/// A failed database step is retried after this long.
const DB_RETRY: Duration = Duration::from_millis(500);
/// The longest error text kept in the log.
const MAX_ERROR: usize = 500;

/// What every webhook's loop shares.
pub(super) struct Context {
    pub pool: Pool,
    pub changes: ChangeReader,
    pub http: reqwest::Client,
}

/// How a webhook's loop ends, or why it starts over.
enum Flow {
    /// Reload the definition and cursor (changed by hand, or a database step failed).
    Reload,
    /// The webhook is gone or disabled: the loop ends.
    Stop,
}

/// Runs until the webhook is dropped or disabled (the leader aborts it when it loses the lock).
pub(super) async fn run(context: Arc<Context>, id: i64, mut reload: watch::Receiver<u64>) {
    loop {
        reload.borrow_and_update();
        let webhook = match load(&context, id).await {
            Ok(Some(webhook)) if webhook.active => webhook,
            Ok(_) => return,
            Err(err) => {
                tracing::warn!("webhook {id}: could not load it ({err}); retrying");
                tokio::time::sleep(DB_RETRY).await;
                continue;
            }
        };
        match Delivery::new(&context, webhook).run(&mut reload).await {
            Flow::Reload => continue,
            Flow::Stop => return,
        }
    }
}

async fn load(context: &Context, id: i64) -> Result<Option<Webhook>, String> {
    let client = context.pool.get().await.map_err(|e| e.to_string())?;
    sql::load(&client, id).await.map_err(|e| describe(&e))
}

/// The state of one run of a webhook's loop (until it reloads).
struct Delivery<'a> {
    context: &'a Context,
    webhook: Webhook,
    keys: Vec<Vec<u8>>,
    filter: Option<ColumnFilter>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Events up to here are handled (delivered, dead, or not for this webhook).
    handled: i64,
    /// Failed attempts at the next event, and when the next may start.
    attempts: u32,
    not_before: Option<SystemTime>,
    /// Successes not yet written.
    successes: Vec<Success>,
}

impl<'a> Delivery<'a> {
    fn new(context: &'a Context, webhook: Webhook) -> Self {
        let keys = webhook
            .secrets
            .iter()
            .filter_map(|secret| match sign::key(secret) {
                Ok(key) => Some(key),
                Err(err) => {
                    tracing::warn!("webhook {}: a secret is unusable ({err})", webhook.name);
                    None
                }
            })
            .collect();
        let filter = webhook
            .filter
            .as_deref()
            .and_then(|text| match parse_filter(text) {
                Ok(filter) => Some(filter),
                Err(err) => {
                    tracing::warn!(
                        "webhook {}: its filter {text:?} is ignored ({err})",
                        webhook.name
                    );
                    None
                }
            });
        let headers = webhook
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value),
                ) {
                    // The signature, the body's type and length are ours to set.
                    (Ok(name), Ok(_)) if reserved(&name) => {
                        tracing::warn!(
                            "webhook {}: header {name} is set by the dispatcher; not sent",
                            webhook.name
                        );
                        None
                    }
                    (Ok(name), Ok(value)) => Some((name, value)),
                    _ => {
                        tracing::warn!(
                            "webhook {}: header {name:?} is not a valid HTTP header; not sent",
                            webhook.name
                        );
                        None
                    }
                }
            })
            .collect();
        Delivery {
            context,
            handled: webhook.cursor.position,
            attempts: webhook.cursor.attempts,
            not_before: webhook.cursor.next_attempt_at,
            webhook,
            keys,
            filter,
            headers,
            successes: Vec::new(),
        }
    }

    async fn run(mut self, reload: &mut watch::Receiver<u64>) -> Flow {
        tracing::info!(
            "webhook {}: delivering to {} after position {}",
            self.webhook.name,
            self.webhook.target,
            self.handled
        );
        let mut follower = self.context.changes.follow(self.handled);
        loop {
            let batch = tokio::select! {
                batch = follower.next() => batch,
                _ = reload.changed() => return Flow::Reload,
            };
            for change in &batch.events {
                if !self.wants(change) {
                    continue;
                }
                if let Err(flow) = self.deliver(change, reload).await {
                    return flow;
                }
            }
            let through = batch.through.unwrap_or(self.handled).max(self.handled);
            if let Err(flow) = self.flush(through).await {
                return flow;
            }
            follower.advance(through);
        }
    }

    fn wants(&self, change: &Change) -> bool {
        if !self
            .webhook
            .tables
            .iter()
            .any(|(schema, table)| *schema == change.schema && *table == change.table)
        {
            return false;
        }
        if !self.webhook.events.iter().any(|e| e == change.op.as_str()) {
            return false;
        }
        match (&self.filter, change.op) {
            (None, _) | (_, Op::Truncate) => true,
            (Some(filter), op) => {
                let row = if op == Op::Delete {
                    change.old_record.as_ref()
                } else {
                    change.record.as_ref()
                };
                row.and_then(|row| row.get(&filter.column))
                    .is_some_and(|value| filter.accepts(value))
            }
        }
    }

    /// Delivers one event, retrying as its webhook says; `Err` when the loop must stop or reload.
    async fn deliver(
        &mut self,
        change: &Change,
        reload: &mut watch::Receiver<u64>,
    ) -> Result<(), Flow> {
        let body = body(change);
        let id = format!("msg_{}_{}", self.webhook.id, change.position);
        loop {
            if let Some(at) = self.not_before.take() {
                if let Ok(wait) = at.duration_since(SystemTime::now()) {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = reload.changed() => return Err(Flow::Reload),
                    }
                }
            }
            let attempt = self.attempts + 1;
            let outcome = self.send(&id, &body).await;
            let verdict = retry::classify(outcome.status);
            if verdict == Verdict::Delivered {
                self.successes.push(Success {
                    position: change.position,
                    attempt: attempt as i32,
                    status: i32::from(outcome.status.unwrap_or(200)),
                    duration_ms: outcome.duration_ms,
                    at: SystemTime::now(),
                });
                self.handled = change.position;
                self.attempts = 0;
                if self.successes.len() >= FLUSH_EVERY {
                    self.flush(self.handled).await?;
                }
                return Ok(());
            }
            // A failure: what was delivered before it is written first, so the log stays in order.
            self.flush(self.handled).await?;
            match verdict {
                Verdict::Gone => {
                    self.fail(change, attempt, "failed", &outcome, 0, None)
                        .await?;
                    self.disable("the receiver answered 410 Gone").await?;
                    return Err(Flow::Stop);
                }
                Verdict::Retry if attempt < self.webhook.max_attempts => {
                    let wait = retry::delay(
                        self.webhook.retry_delay,
                        attempt,
                        retry::random_unit(),
                        outcome.retry_after,
                    );
                    let at = SystemTime::now() + wait;
                    self.fail(change, attempt, "failed", &outcome, attempt, Some(at))
                        .await?;
                    self.attempts = attempt;
                    self.not_before = Some(at);
                }
                _ => {
                    // Dead: given up after the last attempt, or refused outright.
                    if self.webhook.pause_on_dead {
                        self.fail(change, attempt, "dead", &outcome, 0, None)
                            .await?;
                        let reason = format!(
                            "paused after the delivery of position {} died",
                            change.position
                        );
                        self.disable(&reason).await?;
                        return Err(Flow::Stop);
                    }
                    self.handled = change.position;
                    self.fail(change, attempt, "dead", &outcome, 0, None)
                        .await?;
                    self.attempts = 0;
                    return Ok(());
                }
            }
        }
    }

    async fn send(&self, id: &str, body: &[u8]) -> Outcome {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let signature = sign::header(&self.keys, id, timestamp, body);
        let mut request = self
            .context
            .http
            .post(&self.webhook.target)
            .timeout(self.webhook.timeout);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec());
        let started = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::retry_after(v, SystemTime::now()));
            // Read to the end, so the connection is kept for the next delivery.
            response.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after))
        }
        .await;
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match result {
            Ok((status, retry_after)) => Outcome {
                status: Some(status),
                error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
                retry_after,
                duration_ms,
            },
            Err(err) => Outcome {
                status: err.status().map(|s| s.as_u16()),
                error: Some(error_text(&err)),
                retry_after: None,
                duration_ms,
            },
        }
    }

    /// Writes the successes so far and moves the cursor to `through`.
    async fn flush(&mut self, through: i64) -> Result<(), Flow> {
        if self.successes.is_empty() && through == self.webhook.cursor.position {
            return Ok(());
        }
        let client = self.client().await?;
        match sql::record_successes(&client, &self.webhook, &self.successes, through).await {
            Ok(true) => {
                self.successes.clear();
                self.webhook.cursor.position = through;
                Ok(())
            }
            Ok(false) => Err(Flow::Reload),
            Err(err) => {
                tracing::warn!(
                    "webhook {}: could not record deliveries ({}); they will be made again",
                    self.webhook.name,
                    describe(&err)
                );
                tokio::time::sleep(DB_RETRY).await;
                Err(Flow::Reload)
            }
        }
    }

    /// Logs a failed attempt (`status` failed or dead) and where the cursor stands after it:
    /// `attempts` failed so far at the next event, the next not before `next_attempt_at`.
    async fn fail(
        &mut self,
        change: &Change,
        attempt: u32,
        status: &'static str,
        outcome: &Outcome,
        attempts: u32,
        next_attempt_at: Option<SystemTime>,
    ) -> Result<(), Flow> {
        let error = outcome.error.as_deref();
        tracing::info!(
            "webhook {}: position {} attempt {attempt} {status} ({})",
            self.webhook.name,
            change.position,
            error.unwrap_or("")
        );
        let client = self.client().await?;
        let failure = Failure {
            position: change.position,
            attempt: attempt as i32,
            status,
            response_status: outcome.status.map(i32::from),
            error,
            duration_ms: outcome.duration_ms,
            cursor: self.handled,
            attempts: attempts as i32,
            next_attempt_at,
        };
        match sql::record_failure(&client, &self.webhook, &failure).await {
            Ok(true) => {
                self.webhook.cursor.position = self.handled;
                Ok(())
            }
            Ok(false) => Err(Flow::Reload),
            Err(err) => {
                tracing::warn!(
                    "webhook {}: could not record an attempt ({})",
                    self.webhook.name,
                    describe(&err)
                );
                tokio::time::sleep(DB_RETRY).await;
                Err(Flow::Reload)
            }
        }
    }

    async fn disable(&self, reason: &str) -> Result<(), Flow> {
        tracing::warn!("webhook {}: disabled: {reason}", self.webhook.name);
        let client = self.client().await?;
        sql::disable(&client, self.webhook.id, reason)
            .await
            .map_err(|err| {
                tracing::warn!(
                    "webhook {}: could not disable it ({})",
                    self.webhook.name,
                    describe(&err)
                );
                Flow::Reload
            })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, Flow> {
        match self.context.pool.get().await {
            Ok(client) => Ok(client),
            Err(err) => {
                tracing::warn!(
                    "webhook {}: no database connection ({err})",
                    self.webhook.name
                );
                tokio::time::sleep(DB_RETRY).await;
                Err(Flow::Reload)
            }
        }
    }
}

struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    retry_after: Option<Duration>,
    duration_ms: i32,
}

/// Headers a webhook's own `headers` may not set.
fn reserved(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("webhook-")
        || matches!(
            name,
            "content-type" | "content-length" | "host" | "transfer-encoding"
        )
}

/// The body Supabase's database webhooks send, plus where the event stands in the log.
pub(super) fn body(change: &Change) -> Vec<u8> {
    let body = json!({
        "type": change.op.as_str(),
        "table": change.table,
        "schema": change.schema,
        "record": change.record,
        "old_record": change.old_record,
        "position": change.position,
        "commit_timestamp": change.commit_timestamp,
    });
    serde_json::to_vec(&body).expect("JSON values serialize")
}

fn error_text(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if text.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn a_webhooks_headers_cannot_replace_the_signature_or_the_body_type() {
        for name in ["webhook-signature", "webhook-id", "content-type", "host"] {
            assert!(reserved(&HeaderName::from_static(name)), "{name}");
        }
        assert!(!reserved(&HeaderName::from_static("authorization")));
        assert!(!reserved(&HeaderName::from_static("x-app")));
    }

    #[test]
    fn the_body_is_supabases_with_the_position() {
        let mut record = Map::new();
        record.insert("id".into(), json!(1));
        let change = Change {
            position: 42,
            commit_timestamp: "2026-12-06T10:00:00+00:00".into(),
            schema: "public".into(),
            table: "orders".into(),
            op: Op::Insert,
            pk: Map::new(),
            record: Some(record),
            old_record: None,
        };
        let body: Value = serde_json::from_slice(&body(&change)).unwrap();
        assert_eq!(
            body,
            json!({"type": "INSERT", "table": "orders", "schema": "public", "record": {"id": 1},
                   "old_record": null, "position": 42, "commit_timestamp": "2026-12-06T10:00:00+00:00"})
        );
    }
}
