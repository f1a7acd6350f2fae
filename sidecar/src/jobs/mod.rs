//! Scheduled jobs (`sluice.schedule`), run by the sidecars.
//!
//! Every second each sidecar reads the active jobs, computes each one's due tick (`schedule`), and
//! asks Postgres to claim it (`sluice.claim_job_tick`): the job's row is locked and its `last_tick`
//! moved, so one sidecar gets the tick and the others get nothing. A job a few seconds behind runs
//! its ticks in turn; further behind (ticks missed while no sidecar ran) only the latest tick is
//! claimed, so they run once, not once each. A tick is not claimed while a run of the job is still
//! going: a job never overlaps itself.
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

/// A job less than this far behind runs each tick in turn (a look that came late, a run that
/// outlived a tick); further behind, only its latest tick runs.
const CATCH_UP: TimeDelta = TimeDelta::seconds(10);
/// How soon a scheduler that is catching up looks again.
const CATCH_UP_LOOK: Duration = Duration::from_millis(100);

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
        let behind = match look(&runner, now, &mut parsed).await {
            Ok(behind) => behind,
            Err(err) => {
                tracing::warn!("jobs: could not look for due jobs ({err})");
                false
            }
        };
        // A job that ran a tick older than its latest looks again soon, to catch up; otherwise
        // just after the next whole second, when second-interval ticks fall.
        let into_second = u64::from(Utc::now().timestamp_subsec_millis());
        let wait = if behind {
            CATCH_UP_LOOK
        } else {
            Duration::from_millis(1000 - into_second.min(999) + 5)
        };
        tokio::time::sleep(wait).await;
    }
}

/// Claims and starts the due runs; returns whether some job ran a tick older than its latest.
async fn look(
    runner: &Arc<Runner>,
    now: DateTime<Utc>,
    parsed: &mut HashMap<(String, Option<String>), Result<Schedule, String>>,
) -> Result<bool, String> {
    let mut behind = false;
    let client = runner.pool.get().await.map_err(|e| e.to_string())?;
    let jobs = sql::active(&client).await.map_err(|e| describe(&e))?;
    for job in jobs {
        let key = (job.schedule.clone(), job.timezone.clone());
        let schedule = parsed.entry(key).or_insert_with(|| {
            Schedule::parse(&job.schedule, job.timezone.as_deref()).map_err(|e| e.to_string())
        });
        match schedule {
            Ok(schedule) => {
                let Some(tick) = schedule.due(job.after, now, CATCH_UP) else {
                    continue;
                };
                match sql::claim(&client, job.jobid, tick, &runner.name).await {
                    Ok(Some(claimed)) => {
                        tracing::debug!("jobs: {} runs for {tick}", job.jobname);
                        behind |= schedule.latest(now).is_some_and(|latest| latest > tick);
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
                // At once, then once a minute: the log says why nothing runs without filling up.
                let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
                let tick = if job.fresh {
                    job.after + TimeDelta::seconds(1)
                } else {
                    minute
                };
                if tick > job.after && tick <= now {
                    if let Err(err) =
                        sql::unreadable(&client, job.jobid, tick, &runner.name, message).await
                    {
                        tracing::warn!("jobs: {}: {}", job.jobname, describe(&err));
                    }
                }
            }
        }
    }
    Ok(behind)
}
