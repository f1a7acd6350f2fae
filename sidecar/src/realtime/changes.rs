//! Reading the change log and the facts about a table that delivery needs. All SQL of the realtime
//! module is here, with bound parameters only.

use serde_json::{Map, Value};
use tokio_postgres::GenericClient;

use super::filter::Op;

/// One committed row event from `sluice.changes`.
#[derive(Debug, Clone)]
pub struct Change {
    pub position: i64,
    pub commit_timestamp: String,
    pub schema: String,
    pub table: String,
    pub op: Op,
    pub pk: Map<String, Value>,
    pub record: Option<Map<String, Value>>,
    pub old_record: Option<Map<String, Value>>,
}

/// What delivery needs to know about a table; cached until the next schema change.
#[derive(Debug)]
pub struct TableAccess {
    pub oid: u32,
    /// Row level security is enabled: visibility depends on each subscriber's claims.
    pub rls: bool,
    /// `REPLICA IDENTITY FULL`: old records may be sent whole, as Supabase does.
    pub replica_full: bool,
    /// `[{name, type}]` as Supabase sends it, serialized once.
    pub columns: String,
    /// The roles (among those the sidecar can switch to) with SELECT on the table.
    pub select_roles: Vec<String>,
}

/// Up to `limit` events after `after`. The caller's session must be allowed to read the log
/// (service_role). Returns the events and the highest position read, TRUNCATE events included (so
/// that the cursor moves past them).
pub async fn read_after(
    client: &impl GenericClient,
    after: i64,
    limit: i32,
) -> Result<(Vec<Change>, Option<i64>), tokio_postgres::Error> {
    // The highest position is read in the same statement as the events, so one snapshot decides
    // both: the log is a prefix at every snapshot, so nothing below it can appear later.
    let rows = client
        .query(
            "WITH batch AS (SELECT * FROM sluice.changes_after($1, $2)) \
             SELECT b.position, to_json(b.at) #>> '{}', b.schema_name, b.table_name, b.op, \
                    b.pk::text, b.record::text, b.old_record::text, \
                    (SELECT max(position) FROM batch) \
             FROM batch b ORDER BY b.position",
            &[&after, &limit],
        )
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    let mut highest = None;
    for row in rows {
        highest = row.get::<_, Option<i64>>(8);
        let Some(op) = Op::parse(row.get::<_, &str>(4)) else {
            continue; // TRUNCATE: realtime-js has no such event; the cursor still moves past it.
        };
        let object = |text: Option<&str>| -> Option<Map<String, Value>> {
            match serde_json::from_str(text?) {
                Ok(Value::Object(map)) => Some(map),
                _ => None,
            }
        };
        changes.push(Change {
            position: row.get(0),
            commit_timestamp: row.get(1),
            schema: row.get(2),
            table: row.get(3),
            op,
            pk: object(row.get(5)).unwrap_or_default(),
            record: object(row.get(6)),
            old_record: object(row.get(7)),
        });
    }
    Ok((changes, highest))
}

/// The highest position committed so far (0 for an empty log).
pub async fn head(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce(max(position), 0) FROM sluice.changes WHERE position IS NOT NULL",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Positions up to this one have been pruned: resuming from below it would skip events. The state
/// row exists only once something was pruned (extension 0.4.0 no longer seeds it, for backups).
pub async fn pruned_through(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce((SELECT pruned_through FROM sluice.change_log_state), 0)",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Whether `schema.table` has realtime switched on; with no table (a binding to a whole schema),
/// whether any table of `schema` has.
pub async fn realtime_enabled(
    client: &impl GenericClient,
    schema: &str,
    table: Option<&str>,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT 1 FROM sluice.collections c \
             JOIN pg_class r ON r.oid = c.relid JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE c.realtime AND n.nspname = $1 AND ($2::text IS NULL OR r.relname = $2) LIMIT 1",
            &[&schema, &table],
        )
        .await?;
    Ok(row.is_some())
}

pub async fn table_access(
    client: &impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<Option<TableAccess>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT c.oid, c.relrowsecurity, c.relreplident = 'f', \
                    coalesce((SELECT json_agg(json_build_object('name', a.attname, 'type', t.typname) \
                                              ORDER BY a.attnum) \
                              FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), \
                             '[]')::text, \
                    ARRAY(SELECT r.rolname::text FROM pg_roles r \
                          WHERE pg_has_role(session_user, r.oid, 'MEMBER') \
                            AND has_table_privilege(r.oid, c.oid, 'SELECT')) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await?;
    Ok(row.map(|row| TableAccess {
        oid: row.get(0),
        rls: row.get(1),
        replica_full: row.get(2),
        columns: row.get(3),
        select_roles: row.get(4),
    }))
}

/// Which of `claim_sets` (each a JSON claims object with a role) the table's SELECT policies
/// admit for `version`, one version of a row: one round trip to `sluice.policies_admit`, whatever
/// the number of claim sets.
pub async fn policies_admit(
    client: &impl GenericClient,
    table_oid: u32,
    version: &Map<String, Value>,
    claim_sets: &[&str],
) -> Result<Vec<usize>, tokio_postgres::Error> {
    let version = Value::Object(version.clone()).to_string();
    let sets = format!("[{}]", claim_sets.join(","));
    let rows = client
        .query(
            "SELECT sluice.policies_admit($1::oid::regclass, $2::text::jsonb, $3::text::jsonb)",
            &[&table_oid, &version, &sets],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| usize::try_from(row.get::<_, i32>(0)).ok())
        .collect())
}
