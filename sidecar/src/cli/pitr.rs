//! Point-in-time recovery for a local cluster: `sluice db backup` turns WAL archiving on (into
//! `<backup dir>/wal`) and takes a base backup (`<backup dir>/base-<UTC timestamp>`) with
//! `pg_basebackup`; `sluice db restore --to TIME` stops the cluster, sets its data folder aside,
//! lays the newest base backup older than TIME in its place and replays the archived WAL up to
//! TIME (`recovery_target_time`), then promotes it.
//!
//! The cluster runs as the data folder's owner (`postgres` when run as root, as
//! scripts/pg-cluster.sh does), so the server-side programs run as that user.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{connect, parse_url, project, CliError};

/// A local cluster: its data folder, its programs and the user it runs as.
pub(crate) struct Cluster {
    data_dir: PathBuf,
    bindir: Option<PathBuf>,
    owner: Option<String>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |err| CliError::Io { what, err }
}

impl Cluster {
    pub(crate) fn new(data_dir: &Path, bindir: Option<PathBuf>) -> Result<Cluster, CliError> {
        let data_dir =
            std::fs::canonicalize(data_dir).map_err(io(data_dir.display().to_string()))?;
        if !data_dir.join("PG_VERSION").is_file() {
            return Err(CliError::Input(format!(
                "{} is not a Postgres data folder (no PG_VERSION)",
                data_dir.display()
            )));
        }
        // As root, act as the folder's owner: Postgres refuses to run as root.
        let owner = if effective_uid() == 0 {
            let uid = std::fs::metadata(&data_dir)
                .map_err(io(data_dir.display().to_string()))?
                .uid();
            let output = Command::new("id")
                .arg("-nu")
                .arg(uid.to_string())
                .output()
                .map_err(io("id -nu"))?;
            Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            None
        };
        Ok(Cluster {
            data_dir,
            bindir,
            owner,
        })
    }

    /// `program` run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let path = super::db::pg_tool(self.bindir.as_deref(), program);
        match &self.owner {
            Some(owner) => {
                let mut command = Command::new("runuser");
                command.arg("-u").arg(owner).arg("--").arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn run(&self, mut command: Command, what: &str) -> Result<(), CliError> {
        let output = command.output().map_err(io(format!("running {what}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(CliError::Db(format!(
                "{what} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), CliError> {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(&self.data_dir).args(args);
        self.run(command, &format!("pg_ctl {}", args.join(" ")))
    }

    /// `pg_ctl start` or `restart`. The server's output goes to its log file: a server started
    /// without `-l` would hold this command's pipes open for as long as it runs.
    pub(crate) fn start(&self, how: &str) -> Result<(), CliError> {
        let log = self.data_dir.join("postgres.log");
        let log = log.to_string_lossy();
        let outcome = if how == "restart" {
            self.pg_ctl(&[how, "-m", "fast", "-w", "-t", "300", "-l", &log])
        } else {
            self.pg_ctl(&[how, "-w", "-t", "300", "-l", &log])
        };
        outcome.map_err(|err| {
            let text =
                std::fs::read_to_string(self.data_dir.join("postgres.log")).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            CliError::Db(format!(
                "{err}\nthe server's log ends with:\n{}",
                tail.join("\n")
            ))
        })
    }

    /// Stops the cluster (fast: sessions are ended); a cluster already stopped is fine.
    pub(crate) fn stop(&self) -> Result<(), CliError> {
        match self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "120"]) {
            Ok(()) => Ok(()),
            Err(err) => {
                let mut status = self.command("pg_ctl");
                status.arg("status").arg("-D").arg(&self.data_dir);
                // pg_ctl status exits with 3 when no server runs.
                match status.output() {
                    Ok(output) if output.status.code() == Some(3) => Ok(()),
                    _ => Err(err),
                }
            }
        }
    }

    /// A folder the cluster's owner can write (the archive and base backups are written by it).
    fn own(&self, dir: &Path) -> Result<(), CliError> {
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
        if let Some(owner) = &self.owner {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{owner}:")).arg(dir);
            self.run(chown, "chown")?;
        }
        Ok(())
    }
}

/// The effective user id, read from /proc (no `unsafe` call to geteuid).
pub(crate) fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2))
                .and_then(|uid| uid.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// `'text'` as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn checked_path(path: &Path) -> Result<String, CliError> {
    let text = path.to_string_lossy().into_owned();
    if text.contains('\'') || text.contains('"') || text.contains('%') {
        return Err(CliError::Input(format!(
            "{text}: a backup folder's path may not contain quotes or '%'"
        )));
    }
    Ok(text)
}

fn archive_command(wal: &str) -> String {
    format!("test ! -f \"{wal}/%f\" && cp \"%p\" \"{wal}/%f\"")
}

/// `sluice db backup`.
pub(crate) async fn backup(
    db_url: &str,
    data_dir: &Path,
    backup_dir: &Path,
    bindir: Option<PathBuf>,
) -> Result<PathBuf, CliError> {
    let config = parse_url(db_url)?;
    let cluster = Cluster::new(data_dir, bindir)?;
    let wal_dir = backup_dir.join("wal");
    std::fs::create_dir_all(&wal_dir).map_err(io(wal_dir.display().to_string()))?;
    cluster.own(backup_dir)?;
    let backup_dir =
        std::fs::canonicalize(backup_dir).map_err(io(backup_dir.display().to_string()))?;
    let wal = checked_path(&backup_dir.join("wal"))?;
    let wanted = archive_command(&wal);

    let client = connect(&config).await?;
    let row = client
        .query_one(
            "SELECT current_setting('archive_mode'), current_setting('archive_command'), \
                    current_setting('wal_level')",
            &[],
        )
        .await?;
    let (mode, command, level): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    if command != wanted {
        client
            .batch_execute(&format!(
                "ALTER SYSTEM SET archive_command = {}",
                literal(&wanted)
            ))
            .await?;
    }
    let restart = mode == "off" || level == "minimal";
    if restart {
        // One statement a round trip: ALTER SYSTEM refuses the implicit transaction of a batch.
        for sql in [
            "ALTER SYSTEM SET archive_mode = 'on'",
            "ALTER SYSTEM SET wal_level = 'replica'",
        ] {
            client.batch_execute(sql).await?;
        }
        drop(client);
        eprintln!(
            "WAL archiving needs a restart: restarting the cluster in {}",
            cluster.data_dir.display()
        );
        cluster.start("restart")?;
    } else {
        client.batch_execute("SELECT pg_reload_conf()").await?;
    }

    let base = backup_dir.join(format!(
        "base-{}",
        project::utc_timestamp(std::time::SystemTime::now())
    ));
    let mut basebackup = cluster.command("pg_basebackup");
    basebackup
        .arg("--dbname")
        .arg(db_url)
        .arg("--pgdata")
        .arg(&base)
        .args(["--format=plain", "--wal-method=stream", "--checkpoint=fast"]);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        basebackup.arg("--progress");
    }
    cluster.run(basebackup, "pg_basebackup")?;
    Ok(base)
}

/// `sluice db restore --to TIME`.
pub(crate) async fn restore_to(
    db_url: &str,
    time: &str,
    data_dir: &Path,
    backup_dir: &Path,
    bindir: Option<PathBuf>,
) -> Result<PathBuf, CliError> {
    let config = parse_url(db_url)?;
    let cluster = Cluster::new(data_dir, bindir)?;
    let backup_dir =
        std::fs::canonicalize(backup_dir).map_err(io(backup_dir.display().to_string()))?;
    let wal = checked_path(&backup_dir.join("wal"))?;

    // The moment, read by Postgres itself (so any timestamptz input works), and every WAL up to
    // now in the archive: the current segment is switched out and waited for.
    let client = connect(&config).await?;
    let target = client
        .query_one("SELECT $1::text::timestamptz <= now()", &[&time])
        .await
        .map_err(|err| CliError::Input(format!("--to {time:?}: {}", super::describe_pg(&err))))?;
    if !target.get::<_, bool>(0) {
        return Err(CliError::Input(format!("--to {time:?} is in the future")));
    }
    let bases = base_backups(&backup_dir)?;
    let mut chosen = None;
    for (name, path) in bases.iter().rev() {
        let before: bool = client
            .query_one(
                "SELECT (to_timestamp($1, 'YYYYMMDDHH24MISS')::timestamp AT TIME ZONE 'UTC') \
                 < $2::text::timestamptz",
                &[name, &time],
            )
            .await?
            .get(0);
        if before {
            chosen = Some(path.clone());
            break;
        }
    }
    let base = chosen.ok_or_else(|| {
        CliError::Input(format!(
            "no base backup in {} was taken before {time}; `sluice db backup` takes one",
            backup_dir.display()
        ))
    })?;
    let segment: String = client
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await?
        .get(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let archived: Option<String> = client
            .query_one("SELECT last_archived_wal FROM pg_stat_archiver", &[])
            .await?
            .get(0);
        if archived.is_some_and(|last| last >= segment) {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::Db(format!(
                "WAL segment {segment} was not archived within 60 s; is archiving on (`sluice db backup`)?"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);

    cluster.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "120"])?;
    let aside = cluster.data_dir.with_file_name(format!(
        "{}.before-restore-{}",
        cluster
            .data_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        project::utc_timestamp(std::time::SystemTime::now())
    ));
    std::fs::rename(&cluster.data_dir, &aside)
        .map_err(io(format!("moving {} aside", cluster.data_dir.display())))?;
    lay_in_place(&cluster, &config, &base, time, &wal)
        .await
        .map_err(|err| {
            CliError::Db(format!(
                "{err}\n(the data folder as it was before the restore is in {})",
                aside.display()
            ))
        })?;
    Ok(aside)
}

/// The base backup copied into the data folder, set to recover up to `time`, and started;
/// returns once the cluster is promoted and the recovery settings are gone.
async fn lay_in_place(
    cluster: &Cluster,
    config: &tokio_postgres::Config,
    base: &Path,
    time: &str,
    wal: &str,
) -> Result<(), CliError> {
    // As the invoking user (who can write the parent folder), then handed to the owner.
    let mut copy = Command::new("cp");
    copy.arg("-a").arg(base).arg(&cluster.data_dir);
    cluster.run(copy, "copying the base backup")?;
    cluster.own(&cluster.data_dir)?;
    // The backup copied the socket's lock file (the socket lives in the data folder when the
    // cluster is scripts/pg-cluster.sh's); it names a postmaster that is gone.
    for entry in std::fs::read_dir(&cluster.data_dir)
        .map_err(io(cluster.data_dir.display().to_string()))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    std::fs::set_permissions(
        &cluster.data_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(io(cluster.data_dir.display().to_string()))?;

    let recovery = format!(
        "\n# sluice db restore --to: removed once recovery is over\nrestore_command = {}\n\
         recovery_target_time = {}\nrecovery_target_action = 'promote'\n",
        literal(&format!("cp \"{wal}/%f\" \"%p\"")),
        literal(time)
    );
    let auto = cluster.data_dir.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&auto).map_err(io(auto.display().to_string()))?;
    text.push_str(&recovery);
    std::fs::write(&auto, text).map_err(io(auto.display().to_string()))?;
    let signal = cluster.data_dir.join("recovery.signal");
    std::fs::write(&signal, "").map_err(io(signal.display().to_string()))?;
    if let Some(owner) = &cluster.owner {
        let mut chown = Command::new("chown");
        chown.arg(format!("{owner}:")).arg(&auto).arg(&signal);
        cluster.run(chown, "chown")?;
    }
    cluster.start("start")?;

    let client = connect(config).await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let recovering: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await?
            .get(0);
        if !recovering {
            break;
        }
        if Instant::now() > deadline {
            return Err(CliError::Db("recovery did not finish within 300 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for sql in [
        "ALTER SYSTEM RESET restore_command",
        "ALTER SYSTEM RESET recovery_target_time",
        "ALTER SYSTEM RESET recovery_target_action",
        "SELECT pg_reload_conf()",
    ] {
        client.batch_execute(sql).await?;
    }
    Ok(())
}

/// The base backups in `dir`, oldest first: (UTC timestamp of the name, path).
fn base_backups(dir: &Path) -> Result<Vec<(String, PathBuf)>, CliError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir.display().to_string()))? {
        let path = entry.map_err(io(dir.display().to_string()))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(stamp) = name.strip_prefix("base-") {
            if path.join("PG_VERSION").is_file() {
                found.push((stamp.to_owned(), path));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_commands_never_overwrite_an_archived_segment() {
        assert_eq!(
            archive_command("/b/wal"),
            "test ! -f \"/b/wal/%f\" && cp \"%p\" \"/b/wal/%f\""
        );
        assert_eq!(literal("it's"), "'it''s'");
        assert!(checked_path(Path::new("/a/it's")).is_err());
        assert!(checked_path(Path::new("/a/100%")).is_err());
    }
}
