//! Scheduled jobs end to end: real sidecars (the `sluice` binary) run `sluice.schedule`d jobs on a
//! real Postgres; the tests read what the jobs did and the run log.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::postgres::{Server, TestDb};
use support::realtime::authenticator_url;
use support::sidecar::Sidecar;

fn database() -> TestDb {
    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db
}

fn count(rows: &Value) -> usize {
    rows.as_array().unwrap().len()
}

#[test]
fn a_job_every_second_runs_on_time_once_per_tick_with_two_sidecars() {
    let db = database();
    db.execute(
        "CREATE TABLE ticks (n serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp()); \
         GRANT INSERT ON ticks TO service_role; GRANT USAGE ON SEQUENCE ticks_n_seq TO service_role; \
         SELECT sluice.schedule('tick', '1 seconds', 'INSERT INTO ticks DEFAULT VALUES', \
                                timezone => NULL, username => 'service_role');",
    );
    let url = authenticator_url(&db);
    let (a, b) = (Sidecar::serve(&url), Sidecar::serve(&url));
    // Ticks from before both sidecars ran are caught up late (start-up takes seconds on a loaded
    // machine); punctuality is measured from here.
    let serving = db.rows("SELECT now() AS at")[0]["at"]
        .as_str()
        .unwrap()
        .to_owned();

    let runs = db.rows_until(
        &format!(
            "SELECT scheduled_time, status, extract(epoch FROM start_time - scheduled_time) AS late, runner \
             FROM sluice.job_runs r JOIN sluice.jobs j USING (jobid) WHERE j.jobname = 'tick' \
             AND status = 'succeeded' AND scheduled_time > '{serving}' ORDER BY scheduled_time"
        ),
        Duration::from_secs(30),
        |rows| count(rows) >= 8,
    );
    let ticks: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scheduled_time"].as_str().unwrap())
        .collect();
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(ticks, distinct, "one run per tick");
    for run in runs.as_array().unwrap() {
        let late = run["late"].as_f64().unwrap();
        // Within the second of its tick on a quiet machine; the bound allows a loaded one.
        assert!(
            (0.0..2.0).contains(&late),
            "a run started {late} s after its tick; logs:\n{}\n{}",
            a.log(),
            b.log()
        );
    }
    // Every tick's run did its work exactly once: as many rows as runs (none in flight counted).
    let totals = db.rows(
        "SELECT (SELECT count(*) FROM ticks) AS rows, \
                (SELECT count(*) FROM sluice.job_runs r JOIN sluice.jobs j USING (jobid) \
                 WHERE j.jobname = 'tick' AND r.status <> 'failed') AS runs, \
                (SELECT count(*) FROM sluice.job_runs r JOIN sluice.jobs j USING (jobid) \
                 WHERE j.jobname = 'tick' AND r.status = 'failed') AS failed",
    );
    let rows = totals[0]["rows"].as_i64().unwrap();
    let claimed = totals[0]["runs"].as_i64().unwrap();
    assert!(rows == claimed || rows + 1 == claimed, "{totals}");
    assert_eq!(totals[0]["failed"], 0, "{totals}");
    // Consecutive ticks, one second apart: nothing skipped while both sidecars ran.
    let gaps = db.rows(
        "SELECT extract(epoch FROM scheduled_time - lag(scheduled_time) OVER (ORDER BY scheduled_time)) AS gap \
         FROM sluice.job_runs r JOIN sluice.jobs j USING (jobid) WHERE j.jobname = 'tick'",
    );
    for gap in gaps.as_array().unwrap().iter().skip(1) {
        assert_eq!(gap["gap"].as_f64(), Some(1.0), "{gaps}");
    }
}

#[test]
fn failures_and_timeouts_are_in_the_run_log_and_retried_per_the_job() {
    let db = database();
    db.execute(
        "SELECT sluice.schedule('divide', '1 seconds', 'SELECT 1/0', timezone => NULL, \
                                max_retries => 1, retry_delay => '100 ms', username => 'service_role'); \
         SELECT sluice.schedule('slow', '2 seconds', 'SELECT pg_sleep(5)', timezone => NULL, \
                                timeout => '300 ms', username => 'service_role'); \
         SELECT sluice.schedule('as-postgres', '1 seconds', 'SELECT 1'); \
         SELECT sluice.schedule('bad-fields', '99 * * * *', 'SELECT 1', timezone => NULL, \
                                username => 'service_role');",
    );
    let sidecar = Sidecar::serve(&authenticator_url(&db));
    let log = |job: &str| {
        format!(
            "SELECT r.attempt, r.status, r.return_message FROM sluice.job_runs r \
             JOIN sluice.jobs j USING (jobid) WHERE j.jobname = '{job}' AND r.status = 'failed' \
             ORDER BY r.runid"
        )
    };
    let divide = db.rows_until(&log("divide"), Duration::from_secs(20), |rows| {
        rows.as_array().unwrap().iter().any(|r| r["attempt"] == 2)
    });
    assert!(
        divide[0]["return_message"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{divide}; log:\n{}",
        sidecar.log()
    );
    let slow = db.rows_until(&log("slow"), Duration::from_secs(20), |rows| {
        count(rows) >= 1
    });
    assert!(
        slow[0]["return_message"]
            .as_str()
            .unwrap()
            .contains("statement timeout"),
        "{slow}"
    );
    // A schedule of five fields that cron cannot read: the run log says so, at once.
    let unreadable = db.rows_until(&log("bad-fields"), Duration::from_secs(20), |rows| {
        count(rows) >= 1
    });
    assert!(
        unreadable[0]["return_message"]
            .as_str()
            .unwrap()
            .contains("invalid schedule"),
        "{unreadable}"
    );
    // A job of a superuser is never run by the sidecar as that superuser.
    let postgres = db.rows_until(&log("as-postgres"), Duration::from_secs(20), |rows| {
        count(rows) >= 1
    });
    assert!(
        postgres[0]["return_message"]
            .as_str()
            .unwrap()
            .contains("permission denied to set role"),
        "{postgres}"
    );
}

#[test]
fn a_job_scheduled_by_authenticated_runs_as_authenticated_and_no_more() {
    let db = database();
    db.execute(
        "CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('the formula'); \
         CREATE TABLE notes (note text); GRANT INSERT ON notes TO authenticated; \
         GRANT EXECUTE ON FUNCTION sluice.schedule(text, text, text) TO authenticated; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON sluice.jobs TO authenticated; \
         SET ROLE authenticated; \
         SELECT sluice.schedule('steal', '1 seconds', 'INSERT INTO notes SELECT s FROM secrets'); \
         SELECT sluice.schedule('whoami', '1 seconds', 'INSERT INTO notes VALUES (current_user)'); \
         RESET ROLE;",
    );
    let _sidecar = Sidecar::serve(&authenticator_url(&db));
    let steal = db.rows_until(
        "SELECT r.status, r.return_message FROM sluice.job_runs r JOIN sluice.jobs j USING (jobid) \
         WHERE j.jobname = 'steal' AND r.status IN ('succeeded', 'failed')",
        Duration::from_secs(20),
        |rows| count(rows) >= 2,
    );
    for run in steal.as_array().unwrap() {
        assert_eq!(run["status"], "failed", "{steal}");
        assert!(
            run["return_message"]
                .as_str()
                .unwrap()
                .contains("permission denied for table secrets"),
            "{steal}"
        );
    }
    let notes = db.rows_until(
        "SELECT DISTINCT note FROM notes",
        Duration::from_secs(20),
        |rows| count(rows) >= 1,
    );
    assert_eq!(notes, serde_json::json!([{"note": "authenticated"}]));
}

#[test]
fn ticks_missed_while_no_sidecar_ran_run_once() {
    let db = database();
    db.execute(
        "CREATE TABLE ticks (n serial PRIMARY KEY); \
         GRANT INSERT ON ticks TO service_role; GRANT USAGE ON SEQUENCE ticks_n_seq TO service_role; \
         SELECT sluice.schedule('catch-up', '5 seconds', 'INSERT INTO ticks DEFAULT VALUES', \
                                timezone => NULL, username => 'service_role'); \
         UPDATE sluice.jobs SET last_tick = now() - interval '10 minutes', \
                                created_at = now() - interval '1 hour' WHERE jobname = 'catch-up';",
    );
    let started = db.rows("SELECT now() AS at")[0]["at"].clone();
    let _sidecar = Sidecar::serve(&authenticator_url(&db));
    db.rows_until(
        "SELECT 1 FROM sluice.job_runs WHERE status = 'succeeded'",
        Duration::from_secs(20),
        |rows| count(rows) >= 1,
    );
    std::thread::sleep(Duration::from_secs(1));
    // 120 ticks were missed: none of the old ones ran, only the latest (one tick before the
    // sidecar started, or one after if its start-up took longer), then the ticks as they come.
    let runs = db.rows(&format!(
        "SELECT count(*) FILTER (WHERE scheduled_time < timestamptz '{at}' - interval '5 seconds') AS old, \
                count(*) AS all, \
                ceil(extract(epoch FROM now() - timestamptz '{at}') / 5) AS ticks_since \
         FROM sluice.job_runs",
        at = started.as_str().unwrap()
    ));
    assert_eq!(runs[0]["old"], 0, "{runs}");
    let all = runs[0]["all"].as_f64().unwrap();
    let ticks_since = runs[0]["ticks_since"].as_f64().unwrap();
    assert!(all >= 1.0 && all <= ticks_since + 1.0, "{runs}");
}

#[test]
fn a_job_whose_command_is_a_url_is_called() {
    use support::receiver::Receiver;

    let db = database();
    let receiver = Receiver::start();
    db.execute(&format!(
        "SELECT sluice.schedule('ping', '1 seconds', '{}', timezone => NULL, username => 'service_role'); \
         SELECT sluice.schedule('refused', '1 seconds', '{}', timezone => NULL, username => 'service_role');",
        receiver.url("/ok/ping"),
        receiver.url("/gone/refused"),
    ));
    let _sidecar = Sidecar::serve(&authenticator_url(&db));
    let calls = receiver.wait_for("/ok/ping", 2, Duration::from_secs(20));
    let body = calls[0].json();
    assert!(body["jobid"].is_i64() && body["runid"].is_i64(), "{body}");
    let runs = db.rows_until(
        "SELECT j.jobname, r.status, r.return_message FROM sluice.job_runs r JOIN sluice.jobs j USING (jobid) \
         WHERE r.status IN ('succeeded', 'failed') ORDER BY j.jobname, r.runid",
        Duration::from_secs(20),
        |rows| {
            let rows = rows.as_array().unwrap();
            rows.iter().any(|r| r["jobname"] == "ping") && rows.iter().any(|r| r["jobname"] == "refused")
        },
    );
    for run in runs.as_array().unwrap() {
        let expected = if run["jobname"] == "ping" {
            ("succeeded", "HTTP 200")
        } else {
            ("failed", "HTTP 410")
        };
        assert_eq!(
            (
                run["status"].as_str().unwrap(),
                run["return_message"].as_str().unwrap()
            ),
            expected,
            "{runs}"
        );
    }
}
