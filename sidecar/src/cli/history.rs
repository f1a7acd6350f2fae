//! The migration history, in the Supabase CLI's table `supabase_migrations.schema_migrations
//! (version, statements, name)`, so that both tools agree on what is applied. Sluice keeps the
//! SHA-256 of each file it applied beside it (`supabase_migrations.sluice_checksums`), so that a
//! file edited after it was applied is reported; for a migration the Supabase CLI applied (no
//! checksum), the recorded statements are compared with the file's instead.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use super::CliError;

/// The Supabase CLI's definition (its later columns, if a project has them, are left alone).
const CREATE: &str = "
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY);
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[];
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text;
CREATE TABLE IF NOT EXISTS supabase_migrations.sluice_checksums (
    version text PRIMARY KEY
        REFERENCES supabase_migrations.schema_migrations (version) ON DELETE CASCADE,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);";

/// One applied migration.
#[derive(Clone, Debug)]
pub(crate) struct Applied {
    pub(crate) name: Option<String>,
    pub(crate) statements: Option<Vec<String>>,
    pub(crate) sha256: Option<String>,
}

pub(crate) async fn ensure(client: &impl GenericClient) -> Result<(), CliError> {
    client.batch_execute(CREATE).await?;
    Ok(())
}

/// Applied migrations by version, without creating anything (none when the table is absent).
pub(crate) async fn applied(
    client: &impl GenericClient,
) -> Result<BTreeMap<String, Applied>, CliError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL \
             AND to_regclass('supabase_migrations.sluice_checksums') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        let legacy: bool = client
            .query_one(
                "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        if !legacy {
            return Ok(BTreeMap::new());
        }
        // Applied by the Supabase CLI only: no checksums yet.
        let rows = client
            .query(
                "SELECT version, name, statements FROM supabase_migrations.schema_migrations",
                &[],
            )
            .await?;
        return Ok(rows
            .into_iter()
            .map(|row| {
                (
                    row.get(0),
                    Applied {
                        name: row.get(1),
                        statements: row.get(2),
                        sha256: None,
                    },
                )
            })
            .collect());
    }
    let rows = client
        .query(
            "SELECT m.version, m.name, m.statements, c.sha256 \
             FROM supabase_migrations.schema_migrations AS m \
             LEFT JOIN supabase_migrations.sluice_checksums AS c USING (version)",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.get(0),
                Applied {
                    name: row.get(1),
                    statements: row.get(2),
                    sha256: row.get(3),
                },
            )
        })
        .collect())
}

/// Records one applied migration, in the caller's transaction.
pub(crate) async fn record(
    client: &impl GenericClient,
    version: &str,
    name: &str,
    statements: &[String],
    sha256: &str,
) -> Result<(), CliError> {
    client
        .execute(
            "INSERT INTO supabase_migrations.schema_migrations (version, statements, name) \
             VALUES ($1, $2, $3)",
            &[&version, &statements, &name],
        )
        .await?;
    client
        .execute(
            "INSERT INTO supabase_migrations.sluice_checksums (version, sha256) VALUES ($1, $2)",
            &[&version, &sha256],
        )
        .await?;
    Ok(())
}
