-- Scheduled jobs in pg_cron's shape: schedule (an upsert by name), unschedule, alter_job; schedules are
-- five cron fields, @shortcuts or 'N seconds'; a tick is claimed once (by the sidecar that asks first),
-- never while a run of the job is going; failed runs retried per the job; runs as the scheduling role.
-- After each statement that fails, its SQLSTATE is echoed.

-- The built-in maintenance job.
SELECT jobname, schedule, command, username, active FROM sluice.jobs;

SELECT sluice.schedule('nightly', '0 3 * * *', 'SELECT 1') AS nightly \gset
SELECT sluice.schedule('nightly', '0  4 * *  *', 'SELECT 2') = :nightly AS same_job;
SELECT jobname, schedule, command, username, active, timezone FROM sluice.jobs WHERE jobid = :nightly;
SELECT sluice.schedule('hourly', '@Hourly', 'SELECT 1') IS NOT NULL AS hourly;
SELECT sluice.schedule('often', '30 secs', 'SELECT 1') IS NOT NULL AS often;
SELECT sluice.schedule('berlin', '0 9 * * *', 'SELECT 1', timezone => 'Europe/Berlin', max_retries => 2) IS NOT NULL AS berlin;
SELECT jobname, schedule, timezone, max_retries FROM sluice.jobs WHERE jobname IN ('hourly', 'often', 'berlin') ORDER BY jobname;
SELECT sluice.schedule('bad', '61 seconds', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.schedule('bad', 'every minute', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.schedule('bad', '0 9 * * *', 'SELECT 1', timezone => 'Mars/Olympus');
\echo :LAST_ERROR_SQLSTATE

-- alter_job and unschedule.
SELECT sluice.alter_job(:nightly, active => false, command => 'SELECT 3');
SELECT command, active FROM sluice.jobs WHERE jobid = :nightly;
SELECT sluice.alter_job(-1, active => false);
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.unschedule('hourly'), sluice.unschedule('hourly'), sluice.unschedule(:nightly);

-- Claims, as the sidecar makes them: a tick once; not one already passed; not while a run is going.
SET ROLE authenticator;
SELECT jobid AS often FROM sluice.jobs WHERE jobname = 'often' \gset
SELECT runid AS first_run, username, command, timeout_ms, max_retries
FROM sluice.claim_job_tick(:often, '2030-01-01 00:00:00+00', 'test') \gset
SELECT :'username' AS username, :'command' AS command, :timeout_ms AS timeout_ms;
SELECT count(*) AS again FROM sluice.claim_job_tick(:often, '2030-01-01 00:00:00+00', 'test');
SELECT count(*) AS earlier FROM sluice.claim_job_tick(:often, '2029-12-31 23:59:30+00', 'test');
SELECT count(*) AS while_running FROM sluice.claim_job_tick(:often, '2030-01-01 00:00:30+00', 'test');
UPDATE sluice.job_runs SET status = 'succeeded', end_time = now() WHERE runid = :first_run;
SELECT count(*) AS after_it_ended FROM sluice.claim_job_tick(:often, '2030-01-01 00:01:00+00', 'test');
SELECT scheduled_time, attempt, status FROM sluice.job_runs WHERE jobid = :often ORDER BY runid;
-- The sidecar's login cannot change what a job is.
UPDATE sluice.jobs SET command = 'SELECT 4' WHERE jobid = :often;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Retries: a failed run gets attempts up to 1 + max_retries.
SELECT jobid AS berlin FROM sluice.jobs WHERE jobname = 'berlin' \gset
SELECT runid AS run1 FROM sluice.claim_job_tick(:berlin, '2030-01-01 08:00:00+00', 'test') \gset
UPDATE sluice.job_runs SET status = 'failed' WHERE runid = :run1;
SELECT sluice.retry_job_run(:run1, 'test') AS run2 \gset
UPDATE sluice.job_runs SET status = 'failed' WHERE runid = :run2;
SELECT sluice.retry_job_run(:run2, 'test') AS run3 \gset
UPDATE sluice.job_runs SET status = 'failed' WHERE runid = :run3;
SELECT sluice.retry_job_run(:run3, 'test') IS NULL AS no_fourth_attempt;
SELECT attempt, status FROM sluice.job_runs WHERE jobid = :berlin ORDER BY attempt;

-- A role granted scheduling schedules jobs that run as itself, sees only its own, and cannot schedule
-- as another role.
GRANT EXECUTE ON FUNCTION sluice.schedule(text, text, text), sluice.unschedule(text) TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON sluice.jobs TO authenticated;
SET ROLE authenticated;
SELECT sluice.schedule('mine', '@daily', 'SELECT 1') IS NOT NULL AS scheduled;
SELECT jobname, username FROM sluice.jobs;
SELECT sluice.schedule('often', '@daily', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO sluice.jobs (jobname, schedule, command, username) VALUES ('sneaky', '@daily', 'SELECT 1', 'service_role');
\echo :LAST_ERROR_SQLSTATE
SELECT sluice.unschedule('often');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION sluice.schedule(text, text, text), sluice.unschedule(text) FROM authenticated;
REVOKE SELECT, INSERT, UPDATE, DELETE ON sluice.jobs FROM authenticated;

-- The maintenance job's function prunes and says what it did; runs are kept per their retention.
SET ROLE authenticator;
SELECT sluice.run_maintenance() LIKE 'pruned % change-log events, % delivery attempts, 0 job runs, % used refresh tokens; 0 stale runs failed' AS maintained;
RESET ROLE;
UPDATE sluice.job_runs SET start_time = now() - interval '30 days', end_time = now() - interval '30 days';
SELECT sluice.prune_job_runs('7 days') AS pruned_runs;

SELECT sluice.unschedule('often'), sluice.unschedule('berlin'), sluice.unschedule('mine');
SELECT count(*) AS jobs_left FROM sluice.jobs;
