//! All SQL of the change log: its events after a position, its head and how far it was pruned.
//! Only service_role (among the request roles) may read the log, so each statement runs as
//! service_role in a read-only transaction of its own, on a pooled connection.

use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::event::{Batch, Change, Op};

const AS_READER: &str = "BEGIN READ ONLY; SET LOCAL ROLE service_role";
const END: &str = "COMMIT";

const READ_AFTER: &str = "SELECT position, to_json(at) #>> '{}', schema_name, table_name, op, \
                                 pk::text, record::text, old_record::text \
                          FROM sluice.changes_after($1, $2) ORDER BY position";
const HEAD: &str =
    "SELECT coalesce(max(position), 0) FROM sluice.changes WHERE position IS NOT NULL";
const PRUNED_THROUGH: &str = "SELECT pruned_through FROM sluice.change_log_state";

/// Runs one statement as the log's reader, in one round trip: tokio-postgres sends a request
/// when its future is first polled and `join!` polls them in order, so BEGIN, the statement and
/// COMMIT leave back to back instead of waiting for each other. All three are awaited, so the
/// connection never returns to the pool inside a transaction (after a failed statement, COMMIT
/// ends the aborted transaction as a rollback).
async fn as_reader(
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    let (begun, rows, ended) = tokio::join!(
        client.batch_execute(AS_READER),
        client.query(&statement, params),
        client.batch_execute(END),
    );
    begun?;
    let rows = rows?;
    ended?;
    Ok(rows)
}

/// Up to `limit` committed events after `after`, in position order.
pub(super) async fn read_after(
    client: &deadpool_postgres::Client,
    after: i64,
    limit: i32,
) -> Result<Batch, tokio_postgres::Error> {
    let rows = as_reader(client, READ_AFTER, &[&after, &limit]).await?;
    let mut batch = Batch {
        events: Vec::with_capacity(rows.len()),
        through: None,
    };
    for row in rows {
        let position: i64 = row.get(0);
        batch.through = Some(position);
        let op: &str = row.get(4);
        let Some(op) = Op::parse(op) else {
            // Not one the extension writes today; skipped, and the cursor moves past it.
            tracing::warn!("change log: event {position} has an unknown op {op:?}; skipped");
            continue;
        };
        batch.events.push(Change {
            position,
            commit_timestamp: row.get(1),
            schema: row.get(2),
            table: row.get(3),
            op,
            pk: object(row.get(5)).unwrap_or_default(),
            record: object(row.get(6)),
            old_record: object(row.get(7)),
        });
    }
    Ok(batch)
}

fn object(text: Option<&str>) -> Option<Map<String, Value>> {
    match serde_json::from_str(text?) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The highest position committed so far (0 for an empty log).
pub(super) async fn head(client: &deadpool_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    let rows = as_reader(client, HEAD, &[]).await?;
    Ok(rows.first().map_or(0, |row| row.get(0)))
}

/// Positions up to this one have been pruned: resuming from below it would skip events. The state
/// row exists only once something was pruned (extension 0.4.0 no longer seeds it, for backups): 0.
pub(super) async fn pruned_through(
    client: &deadpool_postgres::Client,
) -> Result<i64, tokio_postgres::Error> {
    let rows = as_reader(client, PRUNED_THROUGH, &[]).await?;
    Ok(rows.first().map_or(0, |row| row.get(0)))
}
