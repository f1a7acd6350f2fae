//! `sluice db reset|dump|restore`: a local database rebuilt from the project's migrations and
//! seed, and whole-database backups in pg_dump's custom format.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use tokio_postgres::config::Host;
use tokio_postgres::Config;

use super::project::Project;
use super::{apply, pitr};
use super::{block_on, connect, history, parse_url, quote_ident, CliError, Target};

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Recreate a local database: drop it, create it with the sluice extension, apply every
    /// migration and run supabase/seed.sql. Refused for a database on another host.
    Reset(ResetArgs),
    /// Write the whole database (the extension's own data included: accounts, history, change
    /// log, collections) to FILE in pg_dump's custom format.
    Dump(DumpArgs),
    /// Load a file written by `sluice db dump` into a new or empty database; or, with --to,
    /// bring the local cluster back to a moment from a `sluice db backup`.
    Restore(RestoreArgs),
    /// Point-in-time recovery for the local cluster: switch WAL archiving on (into
    /// <BACKUP_DIR>/wal, restarting the cluster the first time) and take a base backup.
    Backup(BackupArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Postgres URL of a superuser of the local cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub db_url: String,

    /// The cluster's data folder.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// Where base backups and the WAL archive go.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: PathBuf,

    /// Folder of pg_basebackup and pg_ctl (default: PG_CONFIG's bindir, else PATH).
    #[arg(long, env = "SLUICE_PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
}

/// Whether Supabase's default privileges are granted (see `SUPABASE_PRIVILEGES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Privileges {
    /// On when the folder holds `supabase/`.
    Auto,
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub target: Target,

    /// Supabase's default privileges: every table, view, sequence and function created in
    /// `public` is granted to anon, authenticated and service_role, and RLS decides who sees
    /// what. A table without RLS is then readable and writable by anyone with the anon key.
    #[arg(long, value_enum, default_value_t = Privileges::Auto)]
    pub supabase_privileges: Privileges,

    /// Lock timeout of each migration's statements.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lock_timeout: u64,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The file to write.
    pub file: PathBuf,

    /// Postgres URL of a superuser or of the database's owner.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub db_url: String,

    /// Folder of pg_dump and pg_restore (default: PG_CONFIG's bindir, else PATH). They must be
    /// at least as new as the server.
    #[arg(long, env = "SLUICE_PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `sluice db dump` (or use --to for a point-in-time restore).
    #[arg(required_unless_present = "to", conflicts_with = "to")]
    pub file: Option<PathBuf>,

    /// Point-in-time restore of the local cluster: the moment to bring it back to, any Postgres
    /// timestamptz, e.g. '2026-12-04 12:00:00+00'. Needs --data-dir and --backup-dir.
    #[arg(long, value_name = "TIMESTAMP", requires_all = ["data_dir", "backup_dir"])]
    pub to: Option<String>,

    /// With --to: the cluster's data folder (it is stopped, set aside as
    /// <DIR>.before-restore-<time>, and replaced).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// With --to: the folder `sluice db backup` wrote to.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// Postgres URL of the database to restore into; it is created when it does not exist, and
    /// must be empty when it does.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub db_url: String,

    /// Folder of pg_dump and pg_restore (default: PG_CONFIG's bindir, else PATH).
    #[arg(long, env = "SLUICE_PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
}

pub fn run(args: DbArgs) -> Result<(), CliError> {
    match args.command {
        DbCommand::Reset(args) => block_on(reset(args)),
        DbCommand::Dump(args) => dump(&args),
        DbCommand::Restore(args) => block_on(restore(args)),
        DbCommand::Backup(args) => block_on(async move {
            if !is_local(&parse_url(&args.db_url)?) {
                return Err(CliError::Refused(
                    "db backup configures and restarts the cluster, so it only runs on a local one"
                        .into(),
                ));
            }
            let base = pitr::backup(
                &args.db_url,
                &args.data_dir,
                &args.backup_dir,
                args.pg_bindir,
            )
            .await?;
            println!(
                "base backup in {}; WAL is archived to {}",
                base.display(),
                args.backup_dir.join("wal").display()
            );
            Ok(())
        }),
    }
}

/// `sluice db reset`, for `sluice start`.
pub(crate) fn run_reset(args: ResetArgs) -> Result<(), CliError> {
    block_on(reset(args))
}

/// Supabase's default privileges for objects in `public` (created by the role that runs the
/// migrations), its `extensions` schema on the search path, and the extensions every Supabase
/// project has there (seeds call pgcrypto's `crypt` and `gen_salt`).
pub(crate) const SUPABASE_PRIVILEGES: &str = "
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA extensions;
CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" SCHEMA extensions;
GRANT USAGE ON SCHEMA public, extensions TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
SET search_path = \"$user\", public, extensions;";

/// Whether every host of the URL is this machine (a TCP loopback address or a Unix socket).
fn is_local(config: &Config) -> bool {
    !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|host| match host {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        })
}

/// The same server's maintenance database, to create and drop `dbname` from.
fn maintenance(config: &Config, dbname: &str) -> Config {
    let mut other = config.clone();
    other.dbname(if dbname == "postgres" {
        "template1"
    } else {
        "postgres"
    });
    other
}

fn dbname(config: &Config) -> Result<String, CliError> {
    config
        .get_dbname()
        .or(config.get_user())
        .map(str::to_owned)
        .ok_or_else(|| CliError::Input("--db-url names no database".into()))
}

async fn reset(args: ResetArgs) -> Result<(), CliError> {
    let config = parse_url(&args.target.db_url)?;
    if !is_local(&config) {
        return Err(CliError::Refused(
            "db reset drops the database, so it only runs on a local one (localhost, a loopback \
             address or a Unix socket); use `sluice migration up` elsewhere"
                .into(),
        ));
    }
    let project = Project::new(args.target.workdir.clone())?;
    let migrations = project.migrations()?;
    let name = dbname(&config)?;
    {
        let admin = connect(&maintenance(&config, &name)).await?;
        // Two round trips: a multi-statement query runs as one transaction, which DROP
        // DATABASE refuses.
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await?;
    }
    eprintln!("recreated database {name}");
    let mut client = connect(&config).await?;
    client
        .batch_execute("SET client_min_messages = warning; CREATE EXTENSION sluice")
        .await
        .map_err(|err| {
            CliError::Db(format!(
                "CREATE EXTENSION sluice: {} (is the extension installed on the server? \
                 scripts/install-extension.sh)",
                super::describe_pg(&err)
            ))
        })?;
    let privileges = match args.supabase_privileges {
        Privileges::Auto => project.is_supabase(),
        Privileges::On => true,
        Privileges::Off => false,
    };
    if privileges {
        client.batch_execute(SUPABASE_PRIVILEGES).await?;
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} SET search_path = \"$user\", public, extensions",
                quote_ident(&name)
            ))
            .await?;
        eprintln!("granted Supabase's default privileges in public");
    }
    history::ensure(&client).await?;
    let timeout = Duration::from_secs(args.lock_timeout);
    for migration in &migrations {
        apply::apply(&mut client, migration, timeout).await?;
        println!("applied {}", migration.display());
    }
    let seed = project.seed_path();
    if seed.is_file() {
        let count = apply::seed(&mut client, &seed).await?;
        println!("seeded supabase/seed.sql ({count} statements)");
    }
    Ok(())
}

/// The path of a Postgres client program: `--pg-bindir`, else PG_CONFIG's bindir, else PATH.
pub(crate) fn pg_tool(bindir: Option<&Path>, name: &str) -> PathBuf {
    if let Some(dir) = bindir {
        return dir.join(name);
    }
    if let Ok(pg_config) = std::env::var("PG_CONFIG") {
        if let Ok(output) = Command::new(&pg_config).arg("--bindir").output() {
            if output.status.success() {
                let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                return Path::new(&dir).join(name);
            }
        }
    }
    PathBuf::from(name)
}

fn run_tool(mut command: Command, what: &str) -> Result<(), CliError> {
    let status = command.status().map_err(|err| CliError::Io {
        what: format!("running {}", command.get_program().to_string_lossy()),
        err,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Db(format!(
            "{what} failed ({status}); its messages are above"
        )))
    }
}

fn dump(args: &DumpArgs) -> Result<(), CliError> {
    parse_url(&args.db_url)?;
    let mut command = Command::new(pg_tool(args.pg_bindir.as_deref(), "pg_dump"));
    command
        .arg("--format=custom")
        .arg("--file")
        .arg(&args.file)
        .arg("--dbname")
        .arg(&args.db_url);
    if std::io::stderr().is_terminal() {
        // Progress: one line per object dumped.
        command.arg("--verbose");
    }
    run_tool(command, "pg_dump")?;
    println!("wrote {}", args.file.display());
    Ok(())
}

async fn restore(args: RestoreArgs) -> Result<(), CliError> {
    let config = parse_url(&args.db_url)?;
    if let (Some(time), Some(data_dir), Some(backup_dir)) =
        (&args.to, &args.data_dir, &args.backup_dir)
    {
        if !is_local(&config) {
            return Err(CliError::Refused(
                "db restore --to replaces the cluster's data folder, so it only runs on a local one"
                    .into(),
            ));
        }
        let aside = pitr::restore_to(
            &args.db_url,
            time,
            data_dir,
            backup_dir,
            args.pg_bindir.clone(),
        )
        .await?;
        println!(
            "the cluster is back at {time}; its data folder before the restore is in {}",
            aside.display()
        );
        return Ok(());
    }
    let Some(file) = args.file.clone() else {
        return Err(CliError::Input("give a FILE to restore, or --to".into()));
    };
    if !file.is_file() {
        return Err(CliError::Input(format!("{} is not a file", file.display())));
    }
    let name = dbname(&config)?;
    let admin = connect(&maintenance(&config, &name)).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if exists {
        let client = connect(&config).await?;
        let objects: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
                &[],
            )
            .await?
            .get(0);
        if objects > 0 {
            return Err(CliError::Refused(format!(
                "database {name} is not empty; restore into a new database (it is created) or drop this one first"
            )));
        }
    } else {
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await?;
    }
    let mut command = Command::new(pg_tool(args.pg_bindir.as_deref(), "pg_restore"));
    command
        .arg("--exit-on-error")
        .arg("--single-transaction")
        .arg("--dbname")
        .arg(&args.db_url)
        .arg(&file);
    if std::io::stderr().is_terminal() {
        command.arg("--verbose");
    }
    run_tool(command, "pg_restore")?;
    println!("restored {} into {name}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn only_local_databases_are_local() {
        for url in [
            "postgres://u@localhost/db",
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@[::1]:5432/db",
            "host=/var/run/postgresql dbname=db",
        ] {
            assert!(is_local(&Config::from_str(url).unwrap()), "{url}");
        }
        for url in ["postgres://u@db.example.com/db", "postgres://u@10.0.0.5/db"] {
            assert!(!is_local(&Config::from_str(url).unwrap()), "{url}");
        }
    }
}
