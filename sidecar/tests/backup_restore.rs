//! Backups keep the data: a database with users (signed up through the sidecar), sessions, a
//! tracked table with history, change events and a pruned log is dumped with `pg_dump` and
//! restored into new databases, as a plain script with `psql -f` and as an archive with
//! `pg_restore`, with no special settings (loading `auth.users` must not record its rows' events
//! again). The restore's CREATE EXTENSION seeds its own rows; every extension table then holds
//! exactly the rows it held (no seeded row twice), positions and ids continue above the restored
//! ones, and a restored user signs in (and refreshes a restored session) through a sidecar on the
//! restored database.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use support::http;
use support::postgres::{Server, TestDb};
use support::realtime::{authenticator_url, sign};
use support::sidecar::{serve_command, Sidecar};
use support::{random_suffix, repo_root};

/// Every table of the extension that holds user data, with the order its rows are compared in.
const TABLES: &[&str] = &[
    "auth.users",
    "auth.passwords",
    "auth.sessions",
    "auth.refresh_tokens",
    "auth.one_time_tokens",
    "auth.mail_outbox",
    "sluice.collections",
    "sluice.changes",
    "sluice.change_log_state",
    "sluice.history_entries",
    "public.notes",
];

fn bindir() -> PathBuf {
    let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".to_owned());
    let output = Command::new(&pg_config)
        .arg("--bindir")
        .output()
        .unwrap_or_else(|err| panic!("{pg_config} --bindir: {err}"));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn command_output(mut command: Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("{command:?}: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn run(command: Command) {
    command_output(command).unwrap_or_else(|err| panic!("{err}"));
}

fn autoconfirming_sidecar(db: &TestDb) -> Sidecar {
    let mut command = serve_command(&authenticator_url(db));
    command.env("SLUICE_AUTH_AUTOCONFIRM", "true");
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(std::time::Duration::from_secs(30));
    sidecar
}

fn auth_post(sidecar: &Sidecar, path: &str, body: Value) -> (u16, Value) {
    let anon = sign(json!({"role": "anon"}));
    let (status, body) = http::post(
        sidecar.addr(),
        path,
        &[("apikey", &anon), ("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap();
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, body)
}

fn sign_in(sidecar: &Sidecar, email: &str, password: &str) -> (u16, Value) {
    auth_post(
        sidecar,
        "/auth/v1/token?grant_type=password",
        json!({"email": email, "password": password}),
    )
}

/// The whole table as the superuser sees it, in a stable order. The registration of auth.users
/// is the extension's own seed, made again by the restore's CREATE EXTENSION: its times differ.
fn contents(db: &TestDb, table: &str) -> Value {
    let row = if table == "sluice.collections" {
        "CASE WHEN t.relid = 'auth.users'::regclass \
              THEN to_jsonb(t) - 'created_at' - 'updated_at' ELSE to_jsonb(t) END"
    } else {
        "to_jsonb(t)"
    };
    db.rows(&format!(
        "SELECT {row} AS row FROM {table} AS t ORDER BY {row}::text"
    ))
}

/// Polls `sql` on `db` until it returns a row (at most 10 s).
fn wait_for_rows(db: &TestDb, sql: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.rows(sql).as_array().is_none_or(Vec::is_empty) {
        assert!(
            std::time::Instant::now() < deadline,
            "no rows after 10 s: {sql}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `pg_dump --format=<format>` of `original`, restored into a new database: a plain script with
/// `psql -f`, an archive with `pg_restore`, both stopping at the first error.
fn restore(server: &Server, original: &TestDb, format: &str) -> TestDb {
    let dump = repo_root()
        .join(".sluice")
        .join(format!("backup-test-{}.{format}", random_suffix()));
    let mut pg_dump = Command::new(bindir().join("pg_dump"));
    pg_dump
        .arg(format!("--format={format}"))
        .arg("--file")
        .arg(&dump)
        .arg(original.url());
    run(pg_dump);
    let restored = TestDb::create(server);
    let mut load = if format == "plain" {
        let mut psql = Command::new(bindir().join("psql"));
        psql.args([
            "-qX",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "--file",
        ]);
        psql
    } else {
        let mut pg_restore = Command::new(bindir().join("pg_restore"));
        pg_restore.args(["--exit-on-error", "--single-transaction", "--dbname"]);
        pg_restore
    };
    if format == "plain" {
        load.arg(&dump).arg(restored.url());
    } else {
        load.arg(restored.url()).arg(&dump);
    }
    let outcome = command_output(load);
    let _ = std::fs::remove_file(&dump);
    outcome.unwrap_or_else(|err| panic!("restoring the {format} dump: {err}"));
    restored
}

#[test]
fn dump_and_restore_keep_every_row_and_a_restored_user_signs_in() {
    let server = Server::shared();
    let original = TestDb::create(&server);
    original.install_extension();
    original.execute(
        "CREATE TABLE notes (id int PRIMARY KEY, body text); \
         SELECT sluice.enable_realtime('notes'); SELECT sluice.enable_history('notes'); \
         INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 5) g; \
         UPDATE notes SET body = body || ' (edited)' WHERE id <= 2; \
         DELETE FROM notes WHERE id = 5;",
    );

    let sidecar = autoconfirming_sidecar(&original);
    let mut refresh_tokens = Vec::new();
    for name in ["ann", "bob", "cy"] {
        let (status, session) = auth_post(
            &sidecar,
            "/auth/v1/signup",
            json!({"email": format!("{name}@example.com"), "password": format!("{name}-secret-1")}),
        );
        assert_eq!(status, 200, "{session}");
        refresh_tokens.push(session["refresh_token"].as_str().unwrap().to_owned());
    }
    let (status, _) = sign_in(&sidecar, "ann@example.com", "ann-secret-1");
    assert_eq!(status, 200);
    let (status, recovery) = auth_post(
        &sidecar,
        "/auth/v1/recover",
        json!({"email": "bob@example.com"}),
    );
    assert_eq!(status, 200, "{recovery}");
    // `/recover` answers before it makes and mails the link (so that its timing tells nothing):
    // wait for the link and its mail before stopping the sidecar.
    wait_for_rows(
        &original,
        "SELECT 1 FROM auth.mail_outbox m JOIN auth.one_time_tokens t ON true",
    );
    drop(sidecar);
    // A pruned log: the first two events are old and pruned, the state row records it.
    original.execute(
        "UPDATE sluice.changes SET at = now() - interval '1 day' WHERE position <= 2; \
         SELECT sluice.prune_changes('1 hour');",
    );

    let before: Vec<Value> = TABLES.iter().map(|t| contents(&original, t)).collect();
    for (table, rows) in TABLES.iter().zip(&before) {
        assert!(
            !rows.as_array().unwrap().is_empty(),
            "{table} has no rows to back up"
        );
    }

    let plain = restore(&server, &original, "plain");
    let archive = restore(&server, &original, "custom");
    for (table, rows) in TABLES.iter().zip(&before) {
        assert_eq!(
            &contents(&plain, table),
            rows,
            "{table} differs after psql -f"
        );
        assert_eq!(
            &contents(&archive, table),
            rows,
            "{table} differs after pg_restore"
        );
    }
    let restored = plain;

    // Positions continue above the restored ones; so do the identity sequences.
    let max_before = restored.rows("SELECT max(position) AS p FROM sluice.changes")[0]["p"]
        .as_i64()
        .unwrap();
    restored.execute("INSERT INTO notes VALUES (6, 'after the restore')");
    let new_event =
        restored.rows("SELECT position, op, pk FROM sluice.changes WHERE pk = '{\"id\": 6}'");
    assert_eq!(new_event[0]["op"], "INSERT");
    assert!(
        new_event[0]["position"].as_i64().unwrap() > max_before,
        "{new_event} after {max_before}"
    );
    let history = restored.rows("SELECT count(*) AS n FROM sluice.history('notes', '{\"id\": 1}')");
    assert_eq!(
        history,
        json!([{"n": 2}]),
        "history follows the table by name"
    );

    let sidecar = autoconfirming_sidecar(&restored);
    let (status, session) = sign_in(&sidecar, "ann@example.com", "ann-secret-1");
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["email"], "ann@example.com");
    let newest_id = |db: &TestDb| {
        db.rows("SELECT max(id) AS id FROM auth.refresh_tokens")[0]["id"]
            .as_i64()
            .unwrap()
    };
    let before_refresh = newest_id(&restored);
    let (status, refreshed) = auth_post(
        &sidecar,
        "/auth/v1/token?grant_type=refresh_token",
        json!({"refresh_token": refresh_tokens[2]}),
    );
    assert_eq!(status, 200, "a session from before the dump: {refreshed}");
    assert_eq!(refreshed["user"]["email"], "cy@example.com");
    assert!(
        newest_id(&restored) > before_refresh,
        "refresh token ids continue"
    );
    let (status, _) = sign_in(&sidecar, "bob@example.com", "wrong password");
    assert_eq!(status, 400);
}
