//! Scheduled jobs (`sluice.schedule`), run by the sidecars.
//!
//! Every second each sidecar reads the active jobs, computes each one's latest tick (`schedule`),
//! and asks Postgres to claim it (`sluice.claim_job_tick`): the job's row is locked and its
//! `last_tick` moved, so one sidecar gets the tick and the others get nothing. Only the latest tick
//! is claimed, so ticks missed while no sidecar ran (a restart) run once, not once each. A tick is
//! not claimed while a run of the job is still going: a job never overlaps itself.
//!
//! A run (`run`) executes the job's one statement on a pooled connection as the job's role (`SET
//! LOCAL ROLE` from the sidecar's login: a role the login may not become, a superuser say, fails
//! the run), with the job's timeout as `statement_timeout`, and logs the outcome in
//! `sluice.job_runs`; a failed run is tried again as the job's `max_retries` says.

mod run;
pub(crate) mod schedule;
mod sql;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::db::Pool;
use crate::error::describe;
use schedule::Schedule;

/// Starts the scheduler; it runs as long as the runtime.
pub(crate) fn start(pool: Pool) {
    let runner = format!("sluice pid {}", std::process::id());
    tokio::spawn(schedule(pool, runner));
}

async fn schedule(pool: Pool, runner: String) {
    // Parsed schedules by (schedule, time zone): most ticks parse nothing.
    let mut parsed: HashMap<(String, Option<String>), Result<Schedule, String>> = HashMap::new();
    loop {
        let now = Utc::now();
        if let Err(err) = look(&pool, &runner, now, &mut parsed).await {
            tracing::warn!("jobs: could not look for due jobs ({err})");
        }
        // Just after the next whole second, when second-interval ticks fall.
        let into_second = u64::from(Utc::now().timestamp_subsec_millis());
        tokio::time::sleep(Duration::from_millis(1000 - into_second.min(999) + 5)).await;
    }
}

async fn look(
    pool: &Pool,
    runner: &str,
    now: DateTime<Utc>,
    parsed: &mut HashMap<(String, Option<String>), Result<Schedule, String>>,
) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let jobs = sql::active(&client).await.map_err(|e| describe(&e))?;
    for job in jobs {
        let key = (job.schedule.clone(), job.timezone.clone());
        let schedule = parsed.entry(key).or_insert_with(|| {
            Schedule::parse(&job.schedule, job.timezone.as_deref()).map_err(|e| e.to_string())
        });
        match schedule {
            Ok(schedule) => {
                let Some(tick) = schedule.latest(now) else {
                    continue;
                };
                if tick <= job.after {
                    continue;
                }
                match sql::claim(&client, job.jobid, tick, runner).await {
                    Ok(Some(claimed)) => {
                        tracing::debug!("jobs: {} runs for {tick}", job.jobname);
                        tokio::spawn(run::run(pool.clone(), claimed, runner.to_owned()));
                    }
                    Ok(None) => {}
                    Err(err) => tracing::warn!(
                        "jobs: could not claim {} at {tick} ({})",
                        job.jobname,
                        describe(&err)
                    ),
                }
            }
            Err(message) => {
                // Logged as a failed run once a minute, so that the run log says why nothing runs.
                let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
                if minute > job.after {
                    if let Err(err) =
                        sql::unreadable(&client, job.jobid, minute, runner, message).await
                    {
                        tracing::warn!("jobs: {}: {}", job.jobname, describe(&err));
                    }
                }
            }
        }
    }
    Ok(())
}
