//! All SQL of the realtime module, with bound parameters only: the facts about a table that
//! delivery needs, the policy check of a row version, and the NOTIFYs that carry broadcast and
//! presence to the other sidecars. (The change log itself is read by `changelog`.)

use serde_json::{Map, Value};
use tokio_postgres::GenericClient;

use crate::db::listen::CLUSTER_CHANNEL;

/// What delivery needs to know about a table; cached until the next schema change.
#[derive(Debug)]
pub(crate) struct TableAccess {
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

/// Whether `schema.table` has realtime switched on; with no table (a binding to a whole schema),
/// whether any table of `schema` has.
pub(crate) async fn realtime_enabled(
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

pub(crate) async fn table_access(
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
pub(crate) async fn policies_admit(
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

/// Sends one message to the other sidecars.
pub(crate) async fn notify_cluster(
    client: &impl GenericClient,
    message: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CLUSTER_CHANNEL, &message])
        .await?;
    Ok(())
}

/// Sends several messages to the other sidecars in one statement: all of them or none.
pub(crate) async fn notify_cluster_all(
    client: &impl GenericClient,
    messages: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_notify($1, notice) FROM unnest($2::text[]) AS notice",
            &[&CLUSTER_CHANNEL, &messages],
        )
        .await?;
    Ok(())
}
