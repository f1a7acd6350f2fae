//! All SQL of the job runner. Claims and retries go through the extension's SECURITY DEFINER
//! functions (`sluice.claim_job_tick`, `sluice.retry_job_run`), which lock the job's row, so a tick
//! is claimed once however many sidecars ask; the run log is written by the sidecar's login role,
//! which may update a run's outcome and nothing else.

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;

const ACTIVE: &str = "\
    SELECT jobid, jobname, schedule, timezone, coalesce(last_tick, created_at), last_tick IS NULL \
    FROM sluice.jobs WHERE active";
const CLAIM: &str = "\
    SELECT runid, command, username, timeout_ms, max_retries, retry_delay_ms, $1 \
    FROM sluice.claim_job_tick($1, $2, $3)";
const RETRY: &str = "SELECT sluice.retry_job_run($1, $2)";
const STARTED: &str =
    "UPDATE sluice.job_runs SET status = 'running', start_time = now() WHERE runid = $1";
const ENDED: &str = "\
    UPDATE sluice.job_runs SET status = $2, return_message = $3, rows_affected = $4, end_time = now() \
    WHERE runid = $1";
/// A job as the scheduler sees it.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub jobid: i64,
    pub jobname: String,
    pub schedule: String,
    pub timezone: Option<String>,
    /// Ticks up to here are taken (or before the job existed).
    pub after: DateTime<Utc>,
    /// No tick was ever claimed.
    pub fresh: bool,
}

/// A claimed run.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub jobid: i64,
    pub runid: i64,
    pub command: String,
    pub username: String,
    pub timeout_ms: i64,
    pub max_retries: i32,
    pub retry_delay_ms: i64,
}

pub(super) async fn active(client: &Client) -> Result<Vec<Job>, tokio_postgres::Error> {
    let statement = client.prepare_cached(ACTIVE).await?;
    Ok(client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| Job {
            jobid: row.get(0),
            jobname: row.get(1),
            schedule: row.get(2),
            timezone: row.get(3),
            after: row.get(4),
            fresh: row.get(5),
        })
        .collect())
}

pub(super) async fn claim(
    client: &Client,
    jobid: i64,
    tick: DateTime<Utc>,
    runner: &str,
) -> Result<Option<Run>, tokio_postgres::Error> {
    let statement = client.prepare_cached(CLAIM).await?;
    let row = client
        .query_opt(&statement, &[&jobid, &tick, &runner])
        .await?;
    Ok(row.map(|row| Run {
        jobid: row.get(6),
        runid: row.get(0),
        command: row.get(1),
        username: row.get(2),
        timeout_ms: row.get(3),
        max_retries: row.get(4),
        retry_delay_ms: row.get(5),
    }))
}

/// A run whose schedule this sidecar cannot read: claimed, and logged as failed with `message`.
pub(super) async fn unreadable(
    client: &Client,
    jobid: i64,
    tick: DateTime<Utc>,
    runner: &str,
    message: &str,
) -> Result<(), tokio_postgres::Error> {
    if let Some(run) = claim(client, jobid, tick, runner).await? {
        ended(client, run.runid, false, message, None).await?;
    }
    Ok(())
}

pub(super) async fn retry(
    client: &Client,
    runid: i64,
    runner: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let statement = client.prepare_cached(RETRY).await?;
    Ok(client
        .query_one(&statement, &[&runid, &runner])
        .await?
        .get(0))
}

pub(super) async fn started(client: &Client, runid: i64) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(STARTED).await?;
    client.execute(&statement, &[&runid]).await?;
    Ok(())
}

pub(super) async fn ended(
    client: &Client,
    runid: i64,
    succeeded: bool,
    message: &str,
    rows: Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(ENDED).await?;
    let status = if succeeded { "succeeded" } else { "failed" };
    client
        .execute(&statement, &[&runid, &status, &message, &rows])
        .await?;
    Ok(())
}
