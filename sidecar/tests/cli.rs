//! The project commands of the `sluice` binary, run as a person runs them (a child process, no
//! terminal on stdin), against real databases:
//! - `migration new|up|list`: a round trip on a fresh database, the Supabase CLI's history table,
//!   a statement that cannot run in a transaction, an edited applied migration, a destructive
//!   migration refused without `--yes` and listed with its line, a missing extension named with
//!   its Debian package;
//! - `db reset` of postgrest-js's own test project (its `supabase/` folder, written by others, kept
//!   unchanged in tests/fixtures/postgrest-js) with a GoTrue-style seeded user whose bcrypt password
//!   signs in and is rehashed to Argon2id, the hash never reaching the change log;
//! - `db dump` and `db restore` into a new database: equal row counts table by table, and the
//!   restored user signs in.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::http;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, sign};
use support::sidecar::{serve_command, Sidecar, BINARY};
use support::{random_suffix, repo_root};

struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn sluice(args: &[&str], db_url: Option<&str>) -> Outcome {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null());
    if let Some(url) = db_url {
        command.arg("--db-url").arg(url);
    }
    let output = command.output().expect("running sluice");
    Outcome {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn workdir() -> PathBuf {
    let dir = repo_root()
        .join(".sluice")
        .join(format!("cli-test-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn new_migration(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let out = sluice(
        &["migration", "new", name, "--workdir", dir.to_str().unwrap()],
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    let path = PathBuf::from(out.stdout.trim().strip_prefix("created ").unwrap());
    std::fs::write(&path, sql).unwrap();
    path
}

fn up(dir: &Path, db: &TestDb, extra: &[&str]) -> Outcome {
    let mut args = vec!["migration", "up", "--workdir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    sluice(&args, Some(&db.url()))
}

#[test]
fn migrations_round_trip_with_the_supabase_history_table() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    let dir = workdir();

    let first = new_migration(
        &dir,
        "create_notes",
        "-- notes\nCREATE TABLE notes (id bigint PRIMARY KEY, body text);\n\
         INSERT INTO notes VALUES (1, 'a; b'), (2, $$c$$);\n",
    );
    new_migration(
        &dir,
        "index_notes",
        "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);\n\
         ALTER TABLE notes ADD COLUMN title text;\n",
    );
    let out = up(&dir, &db, &[]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout.matches("applied ").count(), 2, "{}", out.stdout);

    // The Supabase CLI's history: versions, names and the statements as split.
    let history = db.rows(
        "SELECT name, statements FROM supabase_migrations.schema_migrations ORDER BY version",
    );
    assert_eq!(
        history,
        json!([
            {"name": "create_notes", "statements": [
                "-- notes\nCREATE TABLE notes (id bigint PRIMARY KEY, body text)",
                "INSERT INTO notes VALUES (1, 'a; b'), (2, $$c$$)"]},
            {"name": "index_notes", "statements": [
                "CREATE INDEX CONCURRENTLY notes_body_idx ON notes (body)",
                "ALTER TABLE notes ADD COLUMN title text"]},
        ])
    );
    // The concurrent index was built outside a transaction, and is valid.
    assert_eq!(
        db.rows("SELECT indisvalid FROM pg_index WHERE indexrelid = 'notes_body_idx'::regclass"),
        json!([{"indisvalid": true}])
    );

    let out = up(&dir, &db, &[]);
    assert!(
        out.ok && out.stdout.contains("No pending migrations"),
        "{}",
        out.stdout
    );

    // An applied migration edited afterwards is reported by list and by up.
    std::fs::write(&first, "CREATE TABLE notes (id bigint PRIMARY KEY);\n").unwrap();
    let list = sluice(
        &["migration", "list", "--workdir", dir.to_str().unwrap()],
        Some(&db.url()),
    );
    assert!(list.ok, "{}", list.stderr);
    let line = list
        .stdout
        .lines()
        .find(|l| l.contains("create_notes"))
        .unwrap();
    assert!(
        line.contains("edited after it was applied"),
        "{}",
        list.stdout
    );
    assert!(list
        .stdout
        .lines()
        .any(|l| l.contains("index_notes") && !l.contains("edited")));

    // A destructive migration: listed with its file and line, refused without a terminal.
    let destructive = new_migration(
        &dir,
        "drop_notes",
        "ALTER TABLE notes ADD COLUMN extra int;\n\n-- gone\nDROP TABLE notes;\nDELETE FROM other;\n",
    );
    let file = format!(
        "supabase/migrations/{}",
        destructive.file_name().unwrap().to_str().unwrap()
    );
    let out = up(&dir, &db, &[]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("was edited after it was applied"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{file}:4: destructive: DROP TABLE notes")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{file}:5: destructive: DELETE without WHERE")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert_eq!(
        db.rows("SELECT count(*) AS n FROM notes"),
        json!([{"n": 2}]),
        "nothing ran"
    );
    std::fs::write(&destructive, "DROP TABLE notes;\n").unwrap();
    let out = up(&dir, &db, &["--yes"]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(
        db.rows("SELECT to_regclass('notes') IS NULL AS gone"),
        json!([{"gone": true}])
    );

    // A failing statement names its file and line, and the migration is not recorded; a missing
    // extension names the Debian package.
    let failing = new_migration(
        &dir,
        "vector",
        "CREATE TABLE t (id int);\nCREATE EXTENSION vector_made_up_here;\n",
    );
    let out = up(&dir, &db, &[]);
    assert!(!out.ok);
    let name = failing.file_name().unwrap().to_str().unwrap();
    assert!(
        out.stderr.contains(&format!("{name}:2: ERROR")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("vector_made_up_here"), "{}", out.stderr);
    assert!(
        out.stderr.contains("no known Debian package"),
        "{}",
        out.stderr
    );
    assert_eq!(
        db.rows("SELECT to_regclass('t') IS NULL AS gone"),
        json!([{"gone": true}])
    );
    std::fs::write(&failing, "CREATE EXTENSION vector;\n").unwrap();
    let out = up(&dir, &db, &[]);
    if !out.ok {
        // pgvector is not installed on the test server: the message names its package.
        assert!(
            out.stderr
                .contains("apt-get install postgresql-15-pgvector"),
            "{}",
            out.stderr
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let dir = workdir();
    let out = sluice(
        &[
            "migration",
            "new",
            "bad name!",
            "--workdir",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.ok);
    assert!(
        out.stderr.contains("error: a migration name is letters"),
        "{}",
        out.stderr
    );
    let out = sluice(&["migration", "up"], Some("not a url"));
    assert!(!out.ok);
    assert!(
        out.stderr.contains("is not a Postgres URL"),
        "{}",
        out.stderr
    );
    let out = sluice(
        &["db", "reset", "--workdir", dir.to_str().unwrap()],
        Some("postgres://u:p@db.example.com/app"),
    );
    assert!(!out.ok);
    assert!(
        out.stderr.contains("only runs on a local one"),
        "{}",
        out.stderr
    );
    let out = sluice(
        &["db", "restore", "/nonexistent/file.dump"],
        Some("postgres://u@127.0.0.1/x"),
    );
    assert!(!out.ok);
    assert!(out.stderr.contains("is not a file"), "{}", out.stderr);
    let out = sluice(&["migration", "up"], None);
    assert!(!out.ok);
    assert!(out.stderr.contains("--db-url"), "{}", out.stderr);
    for command in [
        &["migration", "--help"][..],
        &["db", "reset", "--help"],
        &["db", "dump", "--help"],
    ] {
        let out = sluice(command, None);
        assert!(
            out.ok && out.stdout.contains("Usage: sluice"),
            "{}",
            out.stdout
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A user written into auth.users as Supabase seed files do (GoTrue's columns, pgcrypto's bcrypt).
const SEEDED_USER: &str = "
INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password,
    email_confirmed_at, recovery_sent_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data,
    created_at, updated_at, confirmation_token, email_change, email_change_token_new, recovery_token)
VALUES ('00000000-0000-0000-0000-000000000000', 'd0c5a8a4-3a52-4d0e-9c52-0d6a3c1e2f10',
    'authenticated', 'authenticated', 'Seeded@Example.com', crypt('seeded-password-1', gen_salt('bf')),
    now(), now(), now(), '{\"provider\":\"email\",\"providers\":[\"email\"]}', '{\"name\":\"Seeded\"}',
    now(), now(), '', '', '', '');
INSERT INTO auth.identities (id, user_id, provider_id, identity_data, provider, last_sign_in_at,
    created_at, updated_at)
VALUES (gen_random_uuid(), 'd0c5a8a4-3a52-4d0e-9c52-0d6a3c1e2f10',
    'd0c5a8a4-3a52-4d0e-9c52-0d6a3c1e2f10',
    '{\"sub\":\"d0c5a8a4-3a52-4d0e-9c52-0d6a3c1e2f10\",\"email\":\"seeded@example.com\"}',
    'email', now(), now(), now());
";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The Supabase CLI's demo JWT secret and the anon key it signs, as `supabase start` prints them:
/// a test suite written against `supabase start` keeps its keys.
const DEMO_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
const DEMO_ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
    eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.\
    CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";

fn sign_in(sidecar: &Sidecar, email: &str, password: &str) -> (u16, Value) {
    sign_in_with(sidecar, &sign(json!({"role": "anon"})), email, password)
}

fn sign_in_with(sidecar: &Sidecar, anon: &str, email: &str, password: &str) -> (u16, Value) {
    let (status, body) = http::post(
        sidecar.addr(),
        "/auth/v1/token?grant_type=password",
        &[("apikey", anon), ("content-type", "application/json")],
        json!({"email": email, "password": password})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Every ordinary table of every schema with its row count, as one JSON object.
fn row_counts(db: &TestDb) -> Value {
    db.rows(
        "SELECT n.nspname || '.' || c.relname AS t,
                (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I',
                    n.nspname, c.relname), false, true, '')))[1]::text::bigint AS n
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg_toast%'
         ORDER BY 1",
    )
}

#[test]
fn postgrest_js_project_resets_its_seeded_user_signs_in_and_a_dump_restores() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    let dir = workdir();
    copy_dir(
        &repo_root().join("sidecar/tests/fixtures/postgrest-js"),
        &dir,
    );
    let seed = dir.join("supabase/seed.sql");
    let mut text = std::fs::read_to_string(&seed).unwrap();
    text.push_str(SEEDED_USER);
    std::fs::write(&seed, text).unwrap();

    let out = sluice(
        &["db", "reset", "--workdir", dir.to_str().unwrap()],
        Some(&db.url()),
    );
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(out
        .stdout
        .contains("applied supabase/migrations/00000000000000_schema.sql"));
    assert!(out.stdout.contains("seeded supabase/seed.sql"));
    assert_eq!(
        db.rows("SELECT version, name FROM supabase_migrations.schema_migrations"),
        json!([{"version": "00000000000000", "name": "schema"}])
    );
    assert_eq!(
        db.rows(
            "SELECT (SELECT count(*) FROM public.users) AS users, \
                    (SELECT count(*) FROM public.messages) AS messages, \
                    (SELECT count(*) FROM personal.users) AS personal, \
                    (SELECT count(*) FROM public.shops) AS shops"
        ),
        json!([{"users": 8, "messages": 4, "personal": 5, "shops": 1}])
    );
    // The bcrypt hash moved to auth.passwords; the row, the change log and history never hold it.
    assert_eq!(
        db.rows(
            "SELECT u.email, u.encrypted_password, left(p.hash, 4) AS scheme \
             FROM auth.users u JOIN auth.passwords p ON p.user_id = u.id"
        ),
        json!([{"email": "seeded@example.com", "encrypted_password": null, "scheme": "$2a$"}])
    );
    let leaks = "SELECT (SELECT count(*) FROM sluice.changes c WHERE to_jsonb(c)::text ~ '\\$2a\\$|argon2') \
                 + (SELECT count(*) FROM sluice.history_entries h WHERE to_jsonb(h)::text ~ '\\$2a\\$|argon2') AS n";
    assert_eq!(db.rows(leaks), json!([{"n": 0}]));
    assert_eq!(
        db.rows("SELECT count(*) AS n FROM sluice.changes c WHERE to_jsonb(c)::text LIKE '%seeded@example.com%'"),
        json!([{"n": 1}]),
        "the user's insert is in the change log (without its hash)"
    );

    let mut command = serve_command(&authenticator_url(&db));
    command.env("SLUICE_JWT_SECRET", DEMO_SECRET);
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(std::time::Duration::from_secs(30));
    // The demo anon key of `supabase start` calls the project's functions.
    let (status, body) = http::post(
        sidecar.addr(),
        "/rest/v1/rpc/get_status",
        &[
            ("apikey", DEMO_ANON_KEY),
            ("authorization", &format!("Bearer {DEMO_ANON_KEY}")),
            ("content-type", "application/json"),
        ],
        br#"{"name_param": "supabot"}"#,
    )
    .unwrap();
    assert_eq!((status, body.as_str()), (200, "\"ONLINE\""));
    // Supabase's default privileges: anon reads a table without RLS, as on Supabase.
    let users = sidecar
        .get("/rest/v1/users?select=username&order=username")
        .unwrap();
    assert_eq!(users.status, 200, "{}", users.body);
    assert_eq!(users.body.as_array().map(Vec::len), Some(8));

    let (status, session) = sign_in_with(
        &sidecar,
        DEMO_ANON_KEY,
        "seeded@example.com",
        "wrong-password",
    );
    assert_eq!(status, 400, "{session}");
    let (status, session) = sign_in_with(
        &sidecar,
        DEMO_ANON_KEY,
        "SEEDED@example.com",
        "seeded-password-1",
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["user_metadata"]["name"], "Seeded");
    assert_eq!(
        db.rows("SELECT left(hash, 10) AS scheme FROM auth.passwords"),
        json!([{"scheme": "$argon2id$"}]),
        "rehashed at the first sign-in"
    );
    assert_eq!(db.rows(leaks), json!([{"n": 0}]));
    let (status, _) = sign_in_with(
        &sidecar,
        DEMO_ANON_KEY,
        "seeded@example.com",
        "seeded-password-1",
    );
    assert_eq!(status, 200);
    drop(sidecar);

    // Dump, and restore into a new database: the same rows, and the user signs in there.
    let dump = dir.join("project.dump");
    let out = sluice(&["db", "dump", dump.to_str().unwrap()], Some(&db.url()));
    assert!(out.ok, "{}", out.stderr);
    let restored = TestDb::create(&server);
    let out = sluice(
        &["db", "restore", dump.to_str().unwrap()],
        Some(&restored.url()),
    );
    assert!(out.ok, "{}", out.stderr);
    let counts = row_counts(&db);
    assert!(counts.as_array().unwrap().len() > 20, "{counts}");
    assert_eq!(row_counts(&restored), counts);
    // Restoring again over the now full database is refused.
    let out = sluice(
        &["db", "restore", dump.to_str().unwrap()],
        Some(&restored.url()),
    );
    assert!(
        !out.ok && out.stderr.contains("is not empty"),
        "{}",
        out.stderr
    );

    let mut sidecar = Sidecar::spawn(serve_command(&authenticator_url(&restored)));
    sidecar.wait_listening(std::time::Duration::from_secs(30));
    let (status, session) = sign_in(&sidecar, "seeded@example.com", "seeded-password-1");
    assert_eq!(status, 200, "{session}");
    drop(sidecar);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_migration_waiting_for_a_lock_fails_after_its_lock_timeout() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.execute("CREATE TABLE locked (id int)");
    let dir = workdir();
    new_migration(
        &dir,
        "alter_locked",
        "ALTER TABLE locked ADD COLUMN x int;\n",
    );

    // Another session holds the table while the migration runs.
    let url = db.url();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let transaction = client.transaction().await.unwrap();
            transaction
                .batch_execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            locked_tx.send(()).unwrap();
            let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
            transaction.rollback().await.unwrap();
        });
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let out = up(&dir, &db, &["--lock-timeout", "1"]);
    let took = started.elapsed();
    release_tx.send(()).unwrap();
    holder.join().unwrap();

    assert!(!out.ok);
    assert!(out.stderr.contains("55P03"), "{}", out.stderr);
    assert!(
        out.stderr.contains("_alter_locked.sql:1:"),
        "{}",
        out.stderr
    );
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    assert_eq!(
        db.rows("SELECT count(*) AS n FROM supabase_migrations.schema_migrations"),
        json!([{"n": 0}])
    );
    // Once the lock is gone, the same migration applies.
    let out = up(&dir, &db, &[]);
    assert!(out.ok, "{}", out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failure_after_a_statement_run_alone_says_what_stays_applied() {
    let server = Server::shared();
    let db = TestDb::create(&server);
    let dir = workdir();
    new_migration(
        &dir,
        "half",
        "CREATE TABLE half (id int);\nCREATE INDEX CONCURRENTLY half_idx ON missing_table (id);\n",
    );
    let out = up(&dir, &db, &[]);
    assert!(!out.ok);
    assert!(out.stderr.contains("_half.sql:2: ERROR"), "{}", out.stderr);
    assert!(out.stderr.contains("they stay applied"), "{}", out.stderr);
    assert_eq!(
        db.rows(
            "SELECT to_regclass('half') IS NOT NULL AS kept, \
                 (SELECT count(*) FROM supabase_migrations.schema_migrations) AS recorded"
        ),
        json!([{"kept": true, "recorded": 0}])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
