//! `sluice migration new|up|list`: the Supabase CLI's migration files and history table.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::apply::{self, Finding};
use super::project::{Migration, Project};
use super::{block_on, confirm, connect, history, parse_url, sqlfile, CliError, Target};

#[derive(Debug, Args)]
pub struct MigrationArgs {
    #[command(subcommand)]
    pub command: MigrationCommand,
}

#[derive(Debug, Subcommand)]
pub enum MigrationCommand {
    /// Create an empty migration file supabase/migrations/<UTC timestamp>_<NAME>.sql.
    New {
        /// What the migration does, in letters, digits, '_' and '-' (e.g. create_notes).
        name: String,
        /// The project folder, the one holding `supabase/` (default: the current directory).
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
    /// Apply the pending migrations, each in its own transaction.
    Up(UpArgs),
    /// Show each migration, local and applied.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub target: Target,

    /// Apply destructive statements (DROP TABLE, TRUNCATE, DELETE without WHERE...) and
    /// statements that could not be checked, without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// How long a statement waits for a lock before the migration fails (instead of queueing
    /// every other query behind it).
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lock_timeout: u64,

    /// Grant Supabase's default privileges first (as `db reset` does for a `supabase/` folder):
    /// every table, view, sequence and function created in `public` is granted to anon,
    /// authenticated and service_role, and RLS decides; a table without RLS is then open to
    /// anyone with the anon key.
    #[arg(long)]
    pub supabase_privileges: bool,
}

pub fn run(args: MigrationArgs) -> Result<(), CliError> {
    match args.command {
        MigrationCommand::New { name, workdir } => {
            let path = Project::new(workdir)?.new_migration(&name)?;
            println!("created {}", path.display());
            Ok(())
        }
        MigrationCommand::Up(args) => block_on(up(args)),
        MigrationCommand::List { target } => block_on(list(target)),
    }
}

/// `sluice migration up`, for `sluice start`.
pub(crate) fn run_up(args: UpArgs) -> Result<(), CliError> {
    block_on(up(args))
}

/// Local migrations compared with the history, or an error for an applied migration that has
/// no file (the history and the folder disagree: the Supabase CLI refuses too).
struct Plan {
    local: Vec<Migration>,
    applied: std::collections::BTreeMap<String, history::Applied>,
}

impl Plan {
    fn pending(&self) -> Vec<&Migration> {
        self.local
            .iter()
            .filter(|m| !self.applied.contains_key(&m.version))
            .collect()
    }

    /// Applied migrations whose file changed since: (file, what differs).
    fn edited(&self) -> Vec<String> {
        self.local
            .iter()
            .filter_map(|m| {
                let applied = self.applied.get(&m.version)?;
                let changed = match (&applied.sha256, &applied.statements) {
                    (Some(sha), _) => *sha != m.checksum(),
                    (None, Some(recorded)) => {
                        let now: Vec<String> =
                            sqlfile::split(&m.sql).into_iter().map(|s| s.text).collect();
                        *recorded != now
                    }
                    (None, None) => false,
                };
                changed.then(|| m.display())
            })
            .collect()
    }

    fn missing_locally(&self) -> Vec<String> {
        self.applied
            .keys()
            .filter(|v| !self.local.iter().any(|m| &m.version == *v))
            .cloned()
            .collect()
    }
}

async fn plan(target: &Target, client: &tokio_postgres::Client) -> Result<Plan, CliError> {
    let project = Project::new(target.workdir.clone())?;
    let local = project.migrations()?;
    let applied = history::applied(client).await?;
    Ok(Plan { local, applied })
}

/// Prints the findings and asks (or refuses) unless `yes`.
pub(crate) fn approve(findings: &[Finding], yes: bool) -> Result<(), CliError> {
    if findings.is_empty() {
        return Ok(());
    }
    eprintln!("These statements need a look before they run:");
    for finding in findings {
        eprintln!("  {finding}");
    }
    if yes {
        eprintln!("--yes given: applying them.");
        return Ok(());
    }
    confirm(
        "Apply them?",
        &format!(
            "refusing to apply {} destructive or unchecked statement(s)",
            findings.len()
        ),
    )
}

async fn up(args: UpArgs) -> Result<(), CliError> {
    let config = parse_url(&args.target.db_url)?;
    let mut client = connect(&config).await?;
    let plan = plan(&args.target, &client).await?;
    let missing = plan.missing_locally();
    if !missing.is_empty() {
        return Err(CliError::Refused(format!(
            "the database has applied migrations that are not in supabase/migrations: {}; \
             restore those files before applying more",
            missing.join(", ")
        )));
    }
    for file in plan.edited() {
        eprintln!("warning: {file} was edited after it was applied; the change is not applied");
    }
    let pending = plan.pending();
    if pending.is_empty() {
        println!("No pending migrations.");
        return Ok(());
    }
    approve(&apply::review(&pending), args.yes)?;
    history::ensure(&client).await?;
    if args.supabase_privileges {
        client.batch_execute(super::db::SUPABASE_PRIVILEGES).await?;
    }
    let timeout = Duration::from_secs(args.lock_timeout);
    for migration in pending {
        apply::apply(&mut client, migration, timeout).await?;
        println!("applied {}", migration.display());
    }
    Ok(())
}

async fn list(target: Target) -> Result<(), CliError> {
    let config = parse_url(&target.db_url)?;
    let client = connect(&config).await?;
    let plan = plan(&target, &client).await?;
    let edited = plan.edited();
    println!("{:<16} {:<16} NAME", "LOCAL", "APPLIED");
    let mut versions: Vec<&String> = plan
        .local
        .iter()
        .map(|m| &m.version)
        .chain(plan.applied.keys())
        .collect();
    versions.sort();
    versions.dedup();
    for version in versions {
        let local = plan.local.iter().find(|m| &m.version == version);
        let applied = plan.applied.get(version);
        let name = local
            .map(|m| m.name.clone())
            .or_else(|| applied.and_then(|a| a.name.clone()))
            .unwrap_or_default();
        let note = match local {
            Some(m) if edited.contains(&m.display()) => "  (edited after it was applied)",
            None => "  (no local file)",
            _ => "",
        };
        println!(
            "{:<16} {:<16} {name}{note}",
            local.map_or("", |m| m.version.as_str()),
            applied.map_or("", |_| version.as_str()),
        );
    }
    Ok(())
}
