//! `sluice start` in a Supabase project's folder (postgrest-js's own `supabase/`, unchanged): a new
//! local cluster gets the migrations and seed, the API serves it with the Supabase CLI's demo
//! secret, and SIGTERM stops the API and then the cluster. A second start reuses the cluster.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::sidecar::{Sidecar, BINARY};
use support::{free_port, random_suffix, repo_root};

const DEMO_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
const DEMO_ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
    eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.\
    CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";

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

fn start(dir: &Path, db_port: u16) -> Sidecar {
    let mut command = Command::new(BINARY);
    command
        .arg("start")
        .arg("--workdir")
        .arg(dir)
        .arg("--db-port")
        .arg(db_port.to_string())
        .env("SLUICE_LISTEN", "127.0.0.1:0")
        .env("SLUICE_JWT_SECRET", DEMO_SECRET)
        .env("RUST_LOG", "info");
    let mut sidecar = Sidecar::spawn(command);
    sidecar.wait_listening(Duration::from_secs(120));
    sidecar
}

fn call_rpc(sidecar: &Sidecar) -> (u16, String) {
    support::http::post(
        sidecar.addr(),
        "/rest/v1/rpc/get_status",
        &[
            ("apikey", DEMO_ANON_KEY),
            ("authorization", &format!("Bearer {DEMO_ANON_KEY}")),
            ("content-type", "application/json"),
        ],
        br#"{"name_param": "kiwicopple"}"#,
    )
    .unwrap()
}

#[test]
fn sluice_start_runs_a_supabase_project_and_stops_its_cluster() {
    let dir = repo_root()
        .join(".sluice")
        .join(format!("start-test-{}", random_suffix()));
    copy_dir(
        &repo_root().join("sidecar/tests/fixtures/postgrest-js"),
        &dir,
    );
    let db_port = free_port();

    let mut sidecar = start(&dir, db_port);
    assert!(sidecar
        .log()
        .contains("applied supabase/migrations/00000000000000_schema.sql"));
    assert_eq!(call_rpc(&sidecar), (200, "\"OFFLINE\"".to_owned()));
    let users = sidecar.get("/rest/v1/users?select=username").unwrap();
    assert_eq!(
        users.body.as_array().map(Vec::len),
        Some(8),
        "{}",
        users.body
    );
    sidecar.signal(libc::SIGTERM);
    assert!(
        sidecar.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        sidecar.log()
    );
    let data = dir.join(".sluice/data");
    assert!(
        !data.join("postmaster.pid").exists(),
        "the cluster is stopped"
    );

    // Again: the same cluster and data, no reset (a row written now survives).
    let mut sidecar = start(&dir, db_port);
    assert!(
        !sidecar.log().contains("recreated database"),
        "{}",
        sidecar.log()
    );
    assert_eq!(call_rpc(&sidecar), (200, "\"OFFLINE\"".to_owned()));
    sidecar.signal(libc::SIGTERM);
    assert!(
        sidecar.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        sidecar.log()
    );
    assert!(!data.join("postmaster.pid").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
