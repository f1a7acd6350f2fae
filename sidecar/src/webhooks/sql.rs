//! All SQL of the dispatcher. It runs as the sidecar's login role (authenticator), which the
//! extension grants exactly this: read definitions, secrets and cursors, move cursors, log
//! attempts, disable a webhook. Writes commit with `synchronous_commit = off`: a cursor lost in a
//! Postgres crash only means events delivered again, which at-least-once allows, and it saves a
//! disk flush per write.

use std::time::{Duration, SystemTime};

use deadpool_postgres::Client;
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;

/// The leader's statements (on its own connection): which webhooks exist, and their locks.
pub(super) const ACTIVE: &str = "SELECT id FROM sluice.webhooks WHERE active";
/// Whether the lock connection is needed at all (asked on a pooled connection).
pub(super) const ANY_ACTIVE: &str = "SELECT EXISTS (SELECT 1 FROM sluice.webhooks WHERE active)";
/// Session-level advisory locks in a space of their own ("slwh"), one per webhook.
pub(super) const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(1936488296, $1::int4)";
pub(super) const UNLOCK: &str = "SELECT pg_advisory_unlock(1936488296, $1::int4)";

const LOAD: &str = "\
    SELECT w.name, w.target, w.events, w.headers::text, w.filter, \
           (extract(epoch FROM w.timeout) * 1000)::int8, w.max_attempts, \
           (extract(epoch FROM w.retry_delay) * 1000)::int8, w.on_dead = 'pause', w.active, \
           c.position, c.attempts, c.next_attempt_at, c.generation, \
           ARRAY(SELECT n.nspname FROM unnest(w.tables) WITH ORDINALITY t(relid, i) \
                 JOIN pg_class r ON r.oid = t.relid JOIN pg_namespace n ON n.oid = r.relnamespace ORDER BY i), \
           ARRAY(SELECT r.relname FROM unnest(w.tables) WITH ORDINALITY t(relid, i) \
                 JOIN pg_class r ON r.oid = t.relid ORDER BY i), \
           ARRAY(SELECT s.secret FROM sluice.webhook_secrets s \
                 WHERE s.webhook_id = w.id AND (s.expires_at IS NULL OR s.expires_at > now()) \
                 ORDER BY s.created_at DESC, s.secret) \
    FROM sluice.webhooks w JOIN sluice.webhook_cursors c ON c.webhook_id = w.id \
    WHERE w.id = $1";

/// Successful deliveries since the last write, and the cursor moved past them (and past events
/// that did not match) in one statement.
const SUCCEEDED: &str = "\
    WITH logged AS ( \
        INSERT INTO sluice.webhook_deliveries (webhook, position, attempt, status, response_status, duration_ms, at) \
        SELECT $2, p, a, 'succeeded', s, d, t \
        FROM unnest($3::int8[], $4::int4[], $5::int4[], $6::int4[], $7::timestamptz[]) AS u(p, a, s, d, t) \
    ) \
    UPDATE sluice.webhook_cursors SET position = $8, attempts = 0, next_attempt_at = NULL, updated_at = now() \
    WHERE webhook_id = $1 AND generation = $9";

/// One failed attempt, and the cursor's state after it.
const FAILED: &str = "\
    WITH logged AS ( \
        INSERT INTO sluice.webhook_deliveries (webhook, position, attempt, status, response_status, error, duration_ms) \
        VALUES ($2, $3, $4, $5, $6, $7, $8) \
    ) \
    UPDATE sluice.webhook_cursors SET position = $9, attempts = $10, next_attempt_at = $11, updated_at = now() \
    WHERE webhook_id = $1 AND generation = $12";

const DISABLE: &str = "\
    UPDATE sluice.webhooks SET active = false, disabled_reason = $2, updated_at = now() WHERE id = $1";

/// A webhook as its dispatcher needs it.
#[derive(Debug, Clone)]
pub(super) struct Webhook {
    pub id: i64,
    pub name: String,
    pub target: String,
    pub events: Vec<String>,
    pub headers: Map<String, Value>,
    pub filter: Option<String>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_delay: Duration,
    pub pause_on_dead: bool,
    pub active: bool,
    /// (schema, table) of each watched table.
    pub tables: Vec<(String, String)>,
    /// Valid secrets, newest first.
    pub secrets: Vec<String>,
    pub cursor: Cursor,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    pub position: i64,
    pub attempts: u32,
    pub next_attempt_at: Option<SystemTime>,
    pub generation: i64,
}

fn millis(value: i64) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

pub(super) async fn load(
    client: &Client,
    id: i64,
) -> Result<Option<Webhook>, tokio_postgres::Error> {
    let statement = client.prepare_cached(LOAD).await?;
    let Some(row) = client.query_opt(&statement, &[&id]).await? else {
        return Ok(None);
    };
    let schemas: Vec<String> = row.get(14);
    let tables: Vec<String> = row.get(15);
    let headers: String = row.get(3);
    Ok(Some(Webhook {
        id,
        name: row.get(0),
        target: row.get(1),
        events: row.get(2),
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        filter: row.get(4),
        timeout: millis(row.get(5)),
        max_attempts: u32::try_from(row.get::<_, i32>(6)).unwrap_or(1).max(1),
        retry_delay: millis(row.get(7)),
        pause_on_dead: row.get(8),
        active: row.get(9),
        tables: schemas.into_iter().zip(tables).collect(),
        secrets: row.get(16),
        cursor: Cursor {
            position: row.get(10),
            attempts: u32::try_from(row.get::<_, i32>(11)).unwrap_or(0),
            next_attempt_at: row.get(12),
            generation: row.get(13),
        },
    }))
}

/// Runs one write in its own transaction with `synchronous_commit = off`, in one round trip;
/// returns the rows it changed.
async fn write(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    let (begun, changed, ended) = tokio::join!(
        client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
        client.execute(&statement, params),
        client.batch_execute("COMMIT"),
    );
    begun?;
    let changed = changed?;
    ended?;
    Ok(changed)
}

/// One successful attempt, waiting to be written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Success {
    pub position: i64,
    pub attempt: i32,
    pub status: i32,
    pub duration_ms: i32,
    pub at: SystemTime,
}

/// Logs `successes` and moves the cursor to `through`; false when the cursor was moved by hand
/// (or the webhook dropped) meanwhile, and the dispatcher must reload.
pub(super) async fn record_successes(
    client: &Client,
    webhook: &Webhook,
    successes: &[Success],
    through: i64,
) -> Result<bool, tokio_postgres::Error> {
    let positions: Vec<i64> = successes.iter().map(|s| s.position).collect();
    let attempts: Vec<i32> = successes.iter().map(|s| s.attempt).collect();
    let statuses: Vec<i32> = successes.iter().map(|s| s.status).collect();
    let durations: Vec<i32> = successes.iter().map(|s| s.duration_ms).collect();
    let ats: Vec<SystemTime> = successes.iter().map(|s| s.at).collect();
    let changed = write(
        client,
        SUCCEEDED,
        &[
            &webhook.id,
            &webhook.name,
            &positions,
            &attempts,
            &statuses,
            &durations,
            &ats,
            &through,
            &webhook.cursor.generation,
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// A failed attempt (`failed` or `dead`) and the cursor after it.
pub(super) struct Failure<'a> {
    pub position: i64,
    pub attempt: i32,
    pub status: &'static str,
    pub response_status: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
    /// Where the cursor goes (unchanged, or past a dead event).
    pub cursor: i64,
    pub attempts: i32,
    pub next_attempt_at: Option<SystemTime>,
}

pub(super) async fn record_failure(
    client: &Client,
    webhook: &Webhook,
    failure: &Failure<'_>,
) -> Result<bool, tokio_postgres::Error> {
    let changed = write(
        client,
        FAILED,
        &[
            &webhook.id,
            &webhook.name,
            &failure.position,
            &failure.attempt,
            &failure.status,
            &failure.response_status,
            &failure.error,
            &failure.duration_ms,
            &failure.cursor,
            &failure.attempts,
            &failure.next_attempt_at,
            &webhook.cursor.generation,
        ],
    )
    .await?;
    Ok(changed == 1)
}

pub(super) async fn disable(
    client: &Client,
    id: i64,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    write(client, DISABLE, &[&id, &reason]).await?;
    Ok(())
}
