//! Reads pipelined on shared connections (`db/shared.rs`), against a real cluster: many concurrent
//! GETs share two connections and still each see only their own rows and settings; an erroring
//! read fails alone; an abandoned read is never cancelled (a cancel would hit another client's
//! query); fast reads keep answering while slow ones run; a terminated backend fails only the
//! reads on it and is replaced; schema reloads reach the shared connections.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use sluice_sidecar::db::pool::PIPELINE_APPLICATION_NAME;
use sluice_sidecar::db::shared::{Pipeline, PipelineSettings, PipelineStats};
use sluice_sidecar::http::app;
use support::app::{app_state, test_database, AppOptions, Reply};
use support::postgres::TestDb;
use support::rest::{authenticator_config, encode, token};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const SECRET: &str = "rest-pipeline-test-secret-0123456789abcdef";

/// Eight owners with ten notes each, visible to their owner only; a function that sleeps; one
/// that answers who the request runs as.
const SCHEMA: &str = "
    CREATE TABLE notes (id integer PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL);
    ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_notes ON notes FOR SELECT USING (owner = auth.uid());
    GRANT SELECT ON notes TO anon, authenticated;
    INSERT INTO notes
        SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 8)::text, 12, '0'))::uuid, 'note ' || i
        FROM generate_series(1, 80) i;
    CREATE FUNCTION nap(seconds float8) RETURNS integer LANGUAGE sql VOLATILE
        AS $$ SELECT 1 FROM pg_sleep(seconds) $$;
    -- Calls of PL functions are counted in pg_stat_user_functions (a read-only transaction has
    -- no other way to leave a trace that a rollback keeps).
    DO $$ BEGIN
        EXECUTE format('ALTER DATABASE %I SET track_functions = ''pl''', current_database());
    END $$;
    CREATE FUNCTION counted() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
    CREATE FUNCTION fails_after_counting() RETURNS integer LANGUAGE plpgsql
        AS $$ BEGIN PERFORM counted(); RETURN 1 / 0; END $$;
    CREATE FUNCTION pay() RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT sluice.raise_error('PT402', 'pay up', 'the detail', 'a hint') $$;
    CREATE FUNCTION whoami() RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT current_user || ' ' || coalesce(auth.uid()::text, '-') || ' '
                     || current_setting('request.method') $$;";

fn owner(n: usize) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

/// The router over a fresh database, its pool with `connections` shared connections, on a
/// runtime of two worker threads so that requests really run concurrently.
struct Pipelined {
    app: Router,
    pipeline: Arc<Pipeline>,
    runtime: Runtime,
    db: TestDb,
}

impl Pipelined {
    fn start(connections: usize) -> Pipelined {
        let db = test_database(&[SCHEMA]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut options = AppOptions::new(&[], SECRET);
        options.pool_size = 8;
        let mut state = app_state(&db, &runtime, &options);
        let config = authenticator_config(&db);
        let settings = PipelineSettings {
            connections,
            depth: 16,
        };
        // Inside the runtime: the shared connections start opening at once.
        state.pool = runtime.block_on(async { state.pool.clone().pipelined(&config, settings) });
        let pipeline = Arc::clone(state.pool.pipeline().expect("pipelining is on"));
        let started = Instant::now();
        while pipeline.stats().open < connections {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "shared connections not open: {:?}",
                pipeline.stats()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Pipelined {
            app: app(state),
            pipeline,
            runtime,
            db,
        }
    }

    fn stats(&self) -> PipelineStats {
        self.pipeline.stats()
    }

    /// The backends of the shared connections and what they are doing.
    fn shared_backends(&self) -> Value {
        self.db.rows(&format!(
            "SELECT pid, state FROM pg_stat_activity \
             WHERE application_name = '{PIPELINE_APPLICATION_NAME}' AND datname = current_database() \
             ORDER BY pid"
        ))
    }
}

/// One GET through the router, read whole; `bearer` is a user's token (anon without one).
async fn get(app: &Router, path: &str, bearer: Option<&str>) -> Reply {
    let mut request = Request::builder().method(Method::GET).uri(encode(path));
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    let request = request.body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// Runs `reads` (path, token) all at once, each in its own task; their replies in order.
fn all_at_once(test: &Pipelined, reads: Vec<(String, Option<String>)>) -> Vec<Reply> {
    test.runtime.block_on(async {
        let tasks: Vec<_> = reads
            .into_iter()
            .map(|(path, bearer)| {
                let app = test.app.clone();
                tokio::spawn(async move { get(&app, &path, bearer.as_deref()).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            replies.push(task.await.unwrap());
        }
        replies
    })
}

#[test]
fn concurrent_reads_of_different_users_each_see_only_their_own_rows_and_settings() {
    let test = Pipelined::start(2);
    let tokens: Vec<String> = (0..8).map(|n| token(Some(&owner(n)), SECRET)).collect();
    let before = test.stats();
    // Twelve waves of 24 reads (below the two connections' 2 x 16 places): notes and whoami for
    // each of eight users and for anon, interleaved.
    for _ in 0..12 {
        let mut reads = Vec::new();
        for bearer in &tokens {
            reads.push((
                "/rest/v1/notes?select=id,owner&order=id".to_owned(),
                Some(bearer.clone()),
            ));
            reads.push(("/rest/v1/rpc/whoami".to_owned(), Some(bearer.clone())));
        }
        for _ in 0..8 {
            reads.push(("/rest/v1/notes?select=id,owner".to_owned(), None));
        }
        let replies = all_at_once(&test, reads.clone());
        for ((path, bearer), reply) in reads.iter().zip(&replies) {
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            let n = tokens.iter().position(|t| Some(t) == bearer.as_ref());
            let body = reply.json();
            match (path.starts_with("/rest/v1/rpc"), n) {
                (true, Some(n)) => {
                    assert_eq!(body, json!(format!("authenticated {} GET", owner(n))))
                }
                (false, Some(n)) => {
                    let ids = reply.ids();
                    let want: Vec<i64> = (1..=80).filter(|i| i % 8 == n as i64).collect();
                    assert_eq!(ids, want, "{path}");
                    assert!(body
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|row| row["owner"] == json!(owner(n))));
                }
                (_, None) => assert_eq!(body, json!([]), "anon sees no note"),
            }
        }
    }
    let after = test.stats();
    let pipelined = after.pipelined - before.pipelined;
    // Most of the 288 reads went to the shared connections (some may have met a connection
    // that looked stalled on this busy machine and taken the pool instead), many of them
    // together in one call of `sluice.run_reads`, each still as its own user.
    assert!(pipelined >= 100, "{before:?} → {after:?}");
    assert!(after.batches > before.batches, "{before:?} → {after:?}");
}

#[test]
fn erroring_reads_among_concurrent_ones_fail_alone_with_their_own_errors() {
    let test = Pipelined::start(1);
    let bearer = token(Some(&owner(3)), SECRET);
    let before = test.stats();
    for _ in 0..6 {
        let mut reads = Vec::new();
        for i in 0..12 {
            let path = match i % 4 {
                1 => "/rest/v1/notes?id=eq.not-a-number".to_owned(),
                3 => "/rest/v1/rpc/pay".to_owned(),
                _ => "/rest/v1/notes?select=id&id=lt.12".to_owned(),
            };
            reads.push((path, Some(bearer.clone())));
        }
        let replies = all_at_once(&test, reads.clone());
        for ((path, _), reply) in reads.iter().zip(&replies) {
            if path.contains("not-a-number") {
                assert_eq!(reply.error(StatusCode::BAD_REQUEST), "22P02", "{path}");
            } else if path.contains("pay") {
                // A code of the function's own, with its detail and hint, and its status.
                assert_eq!(reply.error(StatusCode::PAYMENT_REQUIRED), "PT402");
                assert_eq!(
                    reply.json(),
                    json!({"code": "PT402", "message": "pay up", "details": "the detail", "hint": "a hint"})
                );
            } else {
                assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
                assert_eq!(reply.ids(), vec![3, 11], "{path}");
            }
        }
    }
    let after = test.stats();
    assert!(
        after.pipelined - before.pipelined >= 24,
        "{before:?} → {after:?}"
    );
    assert!(
        after.batches > before.batches,
        "erroring reads were sent together with others: {before:?} → {after:?}"
    );
    assert_eq!(
        after.open, 1,
        "an error in a query leaves its connection up"
    );
}

#[test]
fn a_failing_read_sent_together_with_others_runs_once() {
    let test = Pipelined::start(1);
    let bearer = token(Some(&owner(2)), SECRET);
    let before = test.stats();
    let mut failing = 0;
    for _ in 0..4 {
        let reads: Vec<(String, Option<String>)> = (0..16)
            .map(|i| match i % 2 {
                0 => ("/rest/v1/rpc/fails_after_counting".to_owned(), None),
                _ => (
                    "/rest/v1/notes?select=id&id=lt.12".to_owned(),
                    Some(bearer.clone()),
                ),
            })
            .collect();
        let replies = all_at_once(&test, reads.clone());
        for ((path, _), reply) in reads.iter().zip(&replies) {
            if path.contains("fails") {
                assert_eq!(reply.error(StatusCode::BAD_REQUEST), "22012", "{path}");
                failing += 1;
            } else {
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                assert_eq!(reply.ids(), vec![2, 10]);
            }
        }
    }
    let after = test.stats();
    assert!(after.batches > before.batches, "{before:?} → {after:?}");
    // Each failing read ran `counted()` once before it failed: 32 calls, not one more. Backends
    // report their counts once idle for a second or so.
    let calls = "SELECT coalesce(sum(calls), 0)::int AS calls FROM pg_stat_user_functions \
                 WHERE funcname = 'counted'";
    test.db.rows_until(calls, Duration::from_secs(30), |rows| {
        rows[0]["calls"].as_i64() >= Some(failing)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(test.db.rows(calls)[0]["calls"], json!(failing));
}

#[test]
fn an_abandoned_read_is_not_cancelled_and_does_not_fail_the_read_beside_it() {
    // One shared connection: both reads queue on it, one behind the other.
    let test = Pipelined::start(1);
    let before = test.stats();
    let started = Instant::now();
    let (abandoned, kept, busy) = test.runtime.block_on(async {
        let abandoned = tokio::time::timeout(
            Duration::from_millis(300),
            get(&test.app, "/rest/v1/rpc/nap?seconds=1.5", None),
        );
        let kept = get(&test.app, "/rest/v1/rpc/nap?seconds=1.5", None);
        // Well after the abandoned read's client left, and before a read that had been
        // cancelled then (and the other one after it) could have finished.
        let busy = async {
            tokio::time::sleep(Duration::from_millis(2300)).await;
            let db = test.db.url();
            let sql = format!(
                "SELECT state FROM pg_stat_activity WHERE application_name = \
                 '{PIPELINE_APPLICATION_NAME}' AND datname = current_database()"
            );
            tokio::task::spawn_blocking(move || support::postgres::query_text(&db, &sql))
                .await
                .unwrap()
        };
        tokio::join!(abandoned, kept, busy)
    });
    assert!(abandoned.is_err(), "the first read was abandoned at 300 ms");
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(kept.json(), json!(1));
    let after = test.stats();
    assert_eq!(after.pipelined - before.pipelined, 2, "{after:?}");
    assert_eq!(after.passed_over, before.passed_over, "{after:?}");
    // Both naps ran in full, one after the other, on the one backend: still busy at 2.3 s (had
    // the abandoned one been cancelled at 0.3 s, the backend would have been idle from ~1.8 s).
    assert_eq!(busy.unwrap().trim(), "active");
    let took = started.elapsed();
    // Whichever went first, the kept read answered after one nap (first) or two (second).
    assert!(took >= Duration::from_millis(2300), "{took:?}");
    // The connection is still the same one and still works.
    let reply = test
        .runtime
        .block_on(get(&test.app, "/rest/v1/rpc/whoami", None));
    assert_eq!(reply.json(), json!("anon - GET"));
}

#[test]
fn an_abandoned_read_keeps_its_place_until_it_has_ended() {
    // One shared connection. A read abandoned by its client still runs on the backend; until it
    // has ended, a new read must not queue behind it on that connection.
    let test = Pipelined::start(1);
    let before = test.stats();
    test.runtime.block_on(async {
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            get(&test.app, "/rest/v1/rpc/nap?seconds=1", None),
        )
        .await;
        assert!(abandoned.is_err(), "abandoned at 100 ms");
        let started = Instant::now();
        let during = get(&test.app, "/rest/v1/rpc/whoami", None).await;
        assert_eq!(during.json(), json!("anon - GET"));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "answered at once, not behind the nap: {:?}",
            started.elapsed()
        );
        let mid = test.stats();
        assert_eq!(mid.pipelined - before.pipelined, 1, "{mid:?}");
        assert_eq!(mid.passed_over - before.passed_over, 1, "{mid:?}");
        // The nap has ended: its place is given back and reads share the connection again.
        tokio::time::sleep(Duration::from_millis(1400)).await;
        let after_nap = get(&test.app, "/rest/v1/rpc/whoami", None).await;
        assert_eq!(after_nap.json(), json!("anon - GET"));
        let after = test.stats();
        assert_eq!(after.pipelined - before.pipelined, 2, "{after:?}");
        assert_eq!(after.passed_over - before.passed_over, 1, "{after:?}");
    });
}

#[test]
fn fast_reads_keep_answering_while_slow_ones_run() {
    let test = Pipelined::start(2);
    let bearer = token(Some(&owner(5)), SECRET);
    test.runtime.block_on(async {
        // A slow read on each shared connection: the second one, 100 ms after the first, passes
        // over the first one's connection.
        let mut slow = Vec::new();
        for _ in 0..2 {
            let app = test.app.clone();
            slow.push(tokio::spawn(async move {
                let started = Instant::now();
                let reply = get(&app, "/rest/v1/rpc/nap?seconds=2", None).await;
                (reply, started.elapsed())
            }));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = test.pipeline.stats();
        assert_eq!(before.pipelined, 2, "{before:?}");
        // Both connections are behind a query running for 100 ms or more: fast reads take the pool.
        for _ in 0..3 {
            let started = Instant::now();
            let fast: Vec<_> = (0..12)
                .map(|_| {
                    let app = test.app.clone();
                    let bearer = bearer.clone();
                    tokio::spawn(async move {
                        get(&app, "/rest/v1/notes?select=id&id=lt.20", Some(&bearer)).await
                    })
                })
                .collect();
            for task in fast {
                let reply = task.await.unwrap();
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                assert_eq!(reply.ids(), vec![5, 13]);
            }
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(1200),
                "fast reads took {took:?}"
            );
        }
        let during = test.pipeline.stats();
        assert_eq!(during.pipelined, before.pipelined, "{during:?}");
        assert!(during.passed_over >= before.passed_over + 36, "{during:?}");
        for task in slow {
            let (reply, took) = task.await.unwrap();
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert!(took >= Duration::from_secs(2), "{took:?}");
        }
        // Once the slow reads have answered, reads are pipelined again.
        let reply = get(
            &test.app,
            "/rest/v1/notes?select=id&id=lt.20",
            Some(&bearer),
        )
        .await;
        assert_eq!(reply.ids(), vec![5, 13]);
        let after = test.pipeline.stats();
        assert_eq!(after.pipelined, during.pipelined + 1, "{after:?}");
    });
}

#[test]
fn a_terminated_backend_fails_only_its_reads_and_is_replaced() {
    let test = Pipelined::start(2);
    let backends = test.shared_backends();
    assert_eq!(backends.as_array().unwrap().len(), 2, "{backends}");
    let bearer = token(Some(&owner(1)), SECRET);
    let (victim, fast) = test.runtime.block_on(async {
        // A slow read on one shared connection...
        let victim = {
            let app = test.app.clone();
            tokio::spawn(async move { get(&app, "/rest/v1/rpc/nap?seconds=2.5", None).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // ...whose backend is terminated while fast reads keep coming.
        let db = test.db.url();
        let kill = tokio::task::spawn_blocking(move || {
            support::postgres::query_text(
                &db,
                &format!(
                    "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity \
                     WHERE application_name = '{PIPELINE_APPLICATION_NAME}' \
                     AND datname = current_database() AND wait_event = 'PgSleep'"
                ),
            )
        });
        let mut fast = Vec::new();
        for _ in 0..20 {
            fast.push(
                get(
                    &test.app,
                    "/rest/v1/notes?select=id&id=lt.10",
                    Some(&bearer),
                )
                .await,
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(kill.await.unwrap().unwrap().trim(), "1");
        for _ in 0..20 {
            fast.push(
                get(
                    &test.app,
                    "/rest/v1/notes?select=id&id=lt.10",
                    Some(&bearer),
                )
                .await,
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (victim.await.unwrap(), fast)
    });
    assert_eq!(
        victim.error(StatusCode::SERVICE_UNAVAILABLE),
        "SLUICE000",
        "{}",
        victim.body
    );
    for reply in &fast {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.ids(), vec![1, 9]);
    }
    // The next reads find the dead connection and open a new one in its place.
    let started = Instant::now();
    while test.stats().open < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not replaced: {:?}",
            test.stats()
        );
        let reply = test.runtime.block_on(get(
            &test.app,
            "/rest/v1/notes?select=id&id=lt.10",
            Some(&bearer),
        ));
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        std::thread::sleep(Duration::from_millis(20));
    }
    let replaced = test.shared_backends();
    assert_eq!(replaced.as_array().unwrap().len(), 2, "{replaced}");
    assert_ne!(replaced, backends, "one backend is new");
    // Both connections serve reads again.
    let before = test.stats();
    let replies = all_at_once(
        &test,
        (0..16)
            .map(|_| ("/rest/v1/rpc/whoami".to_owned(), Some(bearer.clone())))
            .collect(),
    );
    for reply in &replies {
        assert_eq!(
            reply.json(),
            json!(format!("authenticated {} GET", owner(1)))
        );
    }
    assert!(
        test.stats().pipelined > before.pipelined,
        "{:?}",
        test.stats()
    );
}

#[test]
fn a_schema_reload_reaches_reads_on_shared_connections() {
    let test = Pipelined::start(2);
    let warm = test
        .runtime
        .block_on(get(&test.app, "/rest/v1/later", None));
    assert_eq!(warm.status, StatusCode::NOT_FOUND, "{}", warm.body);
    test.db.execute(
        "CREATE TABLE later (id integer PRIMARY KEY, label text);
         INSERT INTO later VALUES (1, 'one');
         GRANT SELECT ON later TO anon;
         ALTER TABLE notes ADD COLUMN extra text DEFAULT 'x'",
    );
    let before = test.stats();
    let started = Instant::now();
    let bearer = token(Some(&owner(2)), SECRET);
    loop {
        let (later, notes) = test.runtime.block_on(async {
            tokio::join!(
                get(&test.app, "/rest/v1/later?select=id,label", None),
                get(
                    &test.app,
                    "/rest/v1/notes?select=id,extra&id=eq.2",
                    Some(&bearer)
                )
            )
        });
        if later.status == StatusCode::OK && notes.status == StatusCode::OK {
            assert_eq!(later.json(), json!([{"id": 1, "label": "one"}]));
            assert_eq!(notes.json(), json!([{"id": 2, "extra": "x"}]));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not reloaded: {} {}",
            later.body,
            notes.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        test.stats().pipelined > before.pipelined,
        "{:?}",
        test.stats()
    );
}

/// The real binary (pipelining on by default; two shared connections here) rides out a Postgres
/// restart: reads answer 503 while the database is down, 200 once it is back, and both shared
/// connections are open again.
#[test]
fn the_binarys_shared_connections_come_back_after_postgres_restarts() {
    use support::postgres::{Cluster, Server};
    use support::sidecar::Sidecar;

    let cluster = Arc::new(Cluster::start());
    let db = TestDb::create(&Server::Cluster(cluster.clone()));
    db.install_extension();
    db.execute(
        "CREATE FUNCTION ping_read() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'pong' $$",
    );
    let mut command = support::sidecar::serve_command(&db.url());
    command.env("SLUICE_DB_PIPELINE_CONNECTIONS", "2");
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));
    let shared = format!(
        "SELECT count(*) AS open FROM pg_stat_activity \
         WHERE application_name = '{PIPELINE_APPLICATION_NAME}' AND datname = current_database()"
    );
    let read = "/rest/v1/rpc/ping_read";
    let reply = sidecar.get_until(read, Duration::from_secs(10), |r| r.status == 200);
    assert_eq!(reply.body, json!("pong"));
    db.rows_until(&shared, Duration::from_secs(10), |rows| {
        rows == &json!([{"open": 2}])
    });

    cluster.stop();
    let down = sidecar.get_until(read, Duration::from_secs(10), |r| r.status == 503);
    assert_eq!(down.body["code"], "SLUICE000");

    cluster.start_again();
    let started = Instant::now();
    loop {
        // Reads reopen the shared connections they find closed (and retry failed ones after 1 s).
        let reply = sidecar.get(read).unwrap();
        let open = if reply.status == 200 {
            assert_eq!(reply.body, json!("pong"));
            db.rows(&shared)
        } else {
            json!(null)
        };
        if open == json!([{"open": 2}]) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not back: {} {} {open}",
            reply.status,
            reply.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(sidecar);
    drop(db);
}

#[test]
fn one_worker_thread_serves_concurrent_reads_and_a_slow_read_holds_none_of_them() {
    use support::postgres::Server;
    use support::sidecar::Sidecar;

    let db = TestDb::create(&Server::shared());
    db.install_extension();
    db.execute(SCHEMA);
    let mut command = support::sidecar::serve_command(&db.url());
    command.env("SLUICE_WORKER_THREADS", "1");
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(30));
    let whoami = "/rest/v1/rpc/whoami";
    let reply = sidecar.get_until(whoami, Duration::from_secs(10), |r| r.status == 200);
    assert_eq!(reply.body, json!("anon - GET"));
    assert!(
        sidecar
            .log()
            .contains("serving requests on 1 worker thread"),
        "{}",
        sidecar.log()
    );
    let addr = sidecar.addr();
    let get = |path: &str| support::http::get(addr, path).unwrap();

    std::thread::scope(|scope| {
        // A read that sleeps for 1.5 s on the database...
        let slow = scope.spawn(|| get("/rest/v1/rpc/nap?seconds=1.5"));
        // (on its backend before the others come: reads that arrive together go to Postgres in
        // one call, and then wait for each other)
        db.rows_until(
            "SELECT count(*)::int AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event = 'PgSleep'",
            Duration::from_secs(10),
            |rows| rows[0]["n"] == json!(1),
        );
        std::thread::sleep(Duration::from_millis(20));
        // ...while 24 others, from 8 clients at once, each answer at once and right.
        let started = Instant::now();
        let readers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| (0..3).map(|_| get(whoami)).collect::<Vec<_>>()))
            .collect();
        for reader in readers {
            for reply in reader.join().unwrap() {
                assert_eq!(reply.status, 200, "{}", reply.body);
                assert_eq!(reply.body, json!("anon - GET"));
            }
        }
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "the fast reads waited for the slow one: {:?}",
            started.elapsed()
        );
        let slow = slow.join().unwrap();
        assert_eq!(slow.status, 200, "{}", slow.body);
        assert_eq!(slow.body, json!(1));
    });
}
