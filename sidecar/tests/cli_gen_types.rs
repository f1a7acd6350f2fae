//! `sluice gen types typescript` against the Supabase CLI's own generator: npm's
//! `@supabase/postgres-meta` (what `supabase gen types typescript` runs) and ours read the same
//! database (tests/typegen/schema.sql, with the extension installed) and must print the same text,
//! byte for byte; then `tsc --strict` type-checks a supabase-js program (tests/typegen/app.ts)
//! against our output. Needs node and npm; the npm packages are pinned by
//! tests/typegen/package-lock.json and installed here on first use. The same comparison runs on
//! postgrest-js's own test project.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::postgres::{Server, TestDb};
use support::sidecar::BINARY;
use support::{random_suffix, repo_root};

fn typegen_dir() -> PathBuf {
    repo_root().join("sidecar/tests/typegen")
}

/// `npm ci` when node_modules is missing or older than the lockfile. The tests of this file run
/// on threads of one process and each calls this: one at a time, or two `npm ci` in one folder
/// (a fresh clone has no node_modules) race and one fails.
fn install_npm_packages() {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = typegen_dir();
    let modules = dir.join("node_modules");
    let stale = match (modules.metadata(), dir.join("package-lock.json").metadata()) {
        (Ok(m), Ok(l)) => m.modified().unwrap() < l.modified().unwrap(),
        _ => true,
    };
    if stale {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is required (apt-get install nodejs npm)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
}

fn stdout_of(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// What `supabase gen types typescript --schema <schemas>` prints: postgres-meta run as the CLI
/// runs it (one-to-one detection on, the PostgREST version given).
fn oracle(db_url: &str, schemas: &str) -> String {
    oracle_with(db_url, schemas, Some("12"))
}

fn oracle_with(db_url: &str, schemas: &str, postgrest_version: Option<&str>) -> String {
    let mut command = Command::new("node");
    command.env_remove("PG_META_POSTGREST_VERSION");
    if let Some(version) = postgrest_version {
        command.env("PG_META_POSTGREST_VERSION", version);
    }
    let output = command
        .arg("node_modules/@supabase/postgres-meta/dist/server/server.js")
        .current_dir(typegen_dir())
        .env("PG_META_DB_URL", db_url)
        .env("PG_META_GENERATE_TYPES", "typescript")
        .env("PG_META_GENERATE_TYPES_INCLUDED_SCHEMAS", schemas)
        .env(
            "PG_META_GENERATE_TYPES_DETECT_ONE_TO_ONE_RELATIONSHIPS",
            "true",
        )
        .output()
        .expect("node is required");
    stdout_of(output, "postgres-meta")
}

fn sluice(args: &[&str], db_url: Option<&str>) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("DATABASE_URL");
    if let Some(url) = db_url {
        command.env("DATABASE_URL", url);
    }
    command.output().unwrap()
}

fn ours(db_url: &str, schemas: &str) -> String {
    let output = sluice(
        &["gen", "types", "typescript", "--schema", schemas],
        Some(db_url),
    );
    stdout_of(output, "sluice gen types typescript")
}

/// A unified diff of the two texts (for the failure message).
fn diff(expected: &str, actual: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sluice-typegen-diff-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("postgres-meta.ts"), expected).unwrap();
    std::fs::write(dir.join("sluice.ts"), actual).unwrap();
    let output = Command::new("diff")
        .args(["-u", "postgres-meta.ts", "sluice.ts"])
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn type_check(types: &str) {
    let source = typegen_dir();
    let dir = std::env::temp_dir().join(format!("sluice-typegen-tsc-{}", random_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["app.ts", "tsconfig.json"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    std::fs::write(dir.join("database.types.ts"), types).unwrap();
    std::os::unix::fs::symlink(source.join("node_modules"), dir.join("node_modules")).unwrap();
    let output = Command::new("node")
        .arg(source.join("node_modules/typescript/bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let keep = !output.status.success();
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(
        output.status.success(),
        "tsc rejects app.ts against our types (kept in {}):\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// postgres-meta and sluice print the same bytes for `schemas`.
fn assert_same_types(url: &str, schemas: &str) {
    let expected = oracle(url, schemas);
    let actual = ours(url, schemas);
    assert!(
        expected == actual,
        "--schema {schemas}: our types differ from postgres-meta's:\n{}",
        diff(&expected, &actual)
    );
    assert!(actual.contains("export type Database = {"), "{actual}");
}

fn schema_sql() -> String {
    std::fs::read_to_string(typegen_dir().join("schema.sql")).unwrap()
}

#[test]
fn types_equal_the_supabase_cli_generator_and_type_check() {
    install_npm_packages();
    let server = Server::shared();
    let db = TestDb::create(&server);
    db.install_extension();
    db.execute(&schema_sql());
    let url = db.url();

    for schemas in [
        "public",
        "public,other",
        "other,public,Weird Schema,empty",
        "missing,other",
    ] {
        assert_same_types(&url, schemas);
    }
    // Another PostgREST version, and none (the Supabase CLI's --postgrest-v9-compat).
    for (flag, env) in [("12.2.3", Some("12.2.3")), ("none", None)] {
        let output = sluice(
            &["gen", "types", "typescript", "--postgrest-version", flag],
            Some(&url),
        );
        let actual = stdout_of(output, "sluice gen types typescript --postgrest-version");
        let expected = oracle_with(&url, "public", env);
        assert!(
            expected == actual,
            "--postgrest-version {flag}:\n{}",
            diff(&expected, &actual)
        );
    }
    type_check(&ours(&url, "public,other"));
}

/// A real project written by others: postgrest-js's own test schema (`sluice db reset` of
/// tests/fixtures/postgrest-js), with the extension's schemas and `extensions` (PostGIS: hundreds
/// of overloaded functions) too.
#[test]
fn postgrest_js_project_types_equal_the_supabase_cli_generator() {
    install_npm_packages();
    let server = Server::shared();
    let db = TestDb::create(&server);
    let url = db.url();
    let project = repo_root().join("sidecar/tests/fixtures/postgrest-js");
    let reset = sluice(
        &["db", "reset", "--workdir", project.to_str().unwrap()],
        Some(&url),
    );
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    for schemas in ["public,personal", "public,personal,auth,sluice,extensions"] {
        assert_same_types(&url, schemas);
    }
}

#[test]
fn bad_input_gets_a_clear_message() {
    let help = sluice(&["gen", "types", "--help"], None);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--schema"));

    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (
            &["gen", "types", "typescript", "--postgrest-version", "x"],
            Some("postgres://x@127.0.0.1:1/x"),
            "--postgrest-version",
        ),
        (&["gen", "types", "typescript"], None, "--db-url"),
        (
            &["gen", "types", "typescript"],
            Some("not a url"),
            "not a Postgres URL",
        ),
        (
            &["gen", "types", "swift"],
            Some("postgres://x@127.0.0.1:1/x"),
            "typescript",
        ),
        (
            &["gen", "types", "typescript", "--schema", ","],
            Some("postgres://x@127.0.0.1:1/x"),
            "no schema",
        ),
        (
            &["gen", "types", "typescript"],
            Some("postgres://x@127.0.0.1:1/x"),
            "could not connect",
        ),
    ];
    for (args, url, message) in cases {
        let output = sluice(args, url);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
