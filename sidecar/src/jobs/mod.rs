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
//! `sluice.job_runs`; a failed run is tried again as the job's `max_retries` says. A command that is
//! an `http://` or `https://` URL is called instead (POST, `{"jobid", "runid"}`; 2xx succeeds).

mod run;
pub(crate) mod schedule;
mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::db::Pool;
use crate::error::describe;
use schedule::Schedule;

/// What the scheduler and its runs share.
pub(crate) struct Runner {
    pool: Pool,
    /// Calls the jobs whose command is a URL.
    http: reqwest::Client,
    /// Who claimed a run, in `sluice.job_runs.runner`.
    name: String,
}

/// Starts the scheduler; it runs as long as the runtime.
pub(crate) fn start(pool: Pool) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's settings are valid");
    let runner = Arc::new(Runner {
        pool,
        http,
        name: format!("sluice pid {}", std::process::id()),
    });
    tokio::spawn(schedule(runner));
}

async fn schedule(runner: Arc<Runner>) {
    // Parsed schedules by (schedule, time zone): most ticks parse nothing.
    let mut parsed: HashMap<(String, Option<String>), Result<Schedule, String>> = HashMap::new();
    loop {
        let now = Utc::now();
        if let Err(err) = look(&runner, now, &mut parsed).await {
            tracing::warn!("jobs: could not look for due jobs ({err})");
        }
        // Just after the next whole second, when second-interval ticks fall.
        let into_second = u64::from(Utc::now().timestamp_subsec_millis());
        tokio::time::sleep(Duration::from_millis(1000 - into_second.min(999) + 5)).await;
    }
}

async fn look(
    runner: &Arc<Runner>,
    now: DateTime<Utc>,
    parsed: &mut HashMap<(String, Option<String>), Result<Schedule, String>>,
) -> Result<(), String> {
    let client = runner.pool.get().await.map_err(|e| e.to_string())?;
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
                match sql::claim(&client, job.jobid, tick, &runner.name).await {
                    Ok(Some(claimed)) => {
                        tracing::debug!("jobs: {} runs for {tick}", job.jobname);
                        tokio::spawn(run::run(Arc::clone(runner), claimed));
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
                        sql::unreadable(&client, job.jobid, minute, &runner.name, message).await
                    {
                        tracing::warn!("jobs: {}: {}", job.jobname, describe(&err));
                    }
                }
            }
        }
    }
    Ok(())
}
