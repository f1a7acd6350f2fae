//! Point-in-time recovery of a local cluster with the `sluice` binary: `sluice db backup` switches
//! WAL archiving on (restarting the cluster) and takes a base backup; rows are committed before and
//! after a moment; `sluice db restore --to <moment>` brings back exactly the rows committed before
//! it, and the restored cluster takes writes again.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::postgres::{execute, query_text, Cluster};
use support::sidecar::BINARY;
use support::{random_suffix, repo_root};

fn sluice(args: &[&str]) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("running sluice");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_point_in_time_restore_brings_back_exactly_the_rows_committed_before_the_moment() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let datadir = cluster.datadir().to_str().unwrap().to_owned();
    let backups = repo_root()
        .join(".sluice")
        .join(format!("pitr-test-{}", random_suffix()));
    let backups_arg = backups.to_str().unwrap().to_owned();
    execute(
        &url,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3)",
    )
    .unwrap();

    let (ok, out) = sluice(&[
        "db",
        "backup",
        "--db-url",
        &url,
        "--data-dir",
        &datadir,
        "--backup-dir",
        &backups_arg,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("base backup in"), "{out}");
    assert_eq!(query_text(&url, "SHOW archive_mode").unwrap(), "on");

    execute(&url, "INSERT INTO t SELECT generate_series(4, 6)").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let moment = query_text(&url, "SELECT clock_timestamp()::text").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    execute(
        &url,
        "INSERT INTO t SELECT generate_series(7, 9); DELETE FROM t WHERE id = 1",
    )
    .unwrap();

    // A moment in the future, and bad input, are refused before anything is touched.
    let (ok, out) = sluice(&[
        "db",
        "restore",
        "--to",
        "2999-01-01 00:00:00+00",
        "--db-url",
        &url,
        "--data-dir",
        &datadir,
        "--backup-dir",
        &backups_arg,
    ]);
    assert!(!ok && out.contains("is in the future"), "{out}");
    let (ok, out) = sluice(&[
        "db",
        "restore",
        "--to",
        "not a time",
        "--db-url",
        &url,
        "--data-dir",
        &datadir,
        "--backup-dir",
        &backups_arg,
    ]);
    assert!(!ok && out.contains("--to \"not a time\""), "{out}");
    let (ok, out) = sluice(&["db", "restore", "--to", &moment, "--db-url", &url]);
    assert!(!ok && out.contains("--data-dir"), "{out}");

    let (ok, out) = sluice(&[
        "db",
        "restore",
        "--to",
        &moment,
        "--db-url",
        &url,
        "--data-dir",
        &datadir,
        "--backup-dir",
        &backups_arg,
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        query_text(&url, "SELECT array_agg(id ORDER BY id)::text FROM t").unwrap(),
        "{1,2,3,4,5,6}"
    );
    assert_eq!(
        query_text(&url, "SELECT pg_is_in_recovery()::text").unwrap(),
        "false"
    );
    execute(&url, "INSERT INTO t VALUES (10)").unwrap();
    // The recovery settings are gone from the configuration (they apply at the next start).
    let auto = std::fs::read_to_string(cluster.datadir().join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("recovery_target_time"), "{auto}");
    assert!(auto.contains("archive_mode = 'on'"), "{auto}");
    cluster.stop();
    cluster.start_again();
    assert_eq!(
        query_text(&url, "SELECT array_agg(id ORDER BY id)::text FROM t").unwrap(),
        "{1,2,3,4,5,6,10}",
        "a restart neither replays nor loses anything"
    );

    let _ = std::fs::remove_dir_all(&backups);
    if let Some(parent) = cluster.datadir().parent() {
        let name = cluster
            .datadir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for entry in std::fs::read_dir(parent).unwrap().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}.before-restore-"))
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
