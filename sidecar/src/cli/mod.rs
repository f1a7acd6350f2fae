//! The `sluice` commands that manage a project's database, one module per subcommand (as cargo's
//! `src/bin/cargo/commands/`): `migration` (new, up, list) and `db` (reset, dump, restore). They
//! share the project folder (`project`), the statement splitter (`sqlfile`), the classifier
//! (`classify`), the history table (`history`) and the applier (`apply`).

pub(crate) mod apply;
pub(crate) mod classify;
pub mod db;
pub(crate) mod extensions;
pub mod gen_types;
pub(crate) mod history;
pub mod migration;
pub(crate) mod pitr;
pub(crate) mod project;
pub(crate) mod sqlfile;
pub mod start;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;
use tokio_postgres::{Client, Config, NoTls};

/// Where a command works: the database and the project folder.
#[derive(Debug, Args)]
pub struct Target {
    /// Postgres URL of a superuser or of the database's owner, e.g.
    /// postgres://postgres:pw@127.0.0.1:54322/postgres
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub db_url: String,

    /// The project folder, the one holding `supabase/` (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
}

/// Everything a command can fail with; each is one clear line for the user.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    #[error("database: {0}")]
    Db(String),
    #[error("{0}")]
    Refused(String),
}

impl From<tokio_postgres::Error> for CliError {
    fn from(err: tokio_postgres::Error) -> CliError {
        CliError::Db(describe_pg(&err))
    }
}

/// A Postgres error as psql shows it: severity, message, SQLSTATE, detail and hint.
pub(crate) fn describe_pg(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("\nDETAIL: {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("\nHINT: {hint}"));
            }
            text
        }
        None => crate::error::describe(err),
    }
}

/// The URL parsed, with a message naming the flag when it is not a Postgres URL.
pub(crate) fn parse_url(url: &str) -> Result<Config, CliError> {
    Config::from_str(url).map_err(|err| {
        CliError::Input(format!(
            "--db-url (DATABASE_URL) is not a Postgres URL: {err}"
        ))
    })
}

/// One connection; its driver runs on the current runtime.
pub(crate) async fn connect(config: &Config) -> Result<Client, CliError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|err| {
        CliError::Db(format!(
            "could not connect: {}",
            crate::error::describe(&err)
        ))
    })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("connection closed: {err}");
        }
    });
    Ok(client)
}

/// Runs `work` on a small single-threaded runtime: the commands are sequential.
pub(crate) fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::Io {
            what: "starting the runtime".into(),
            err,
        })?
        .block_on(work)
}

/// Asks `question` on the terminal; without a terminal, refuses with `refusal` (the caller
/// passes `--yes` to proceed without asking).
pub(crate) fn confirm(question: &str, refusal: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Refused(format!(
            "{refusal}; there is no terminal to ask on, so pass --yes to proceed"
        )));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| CliError::Io {
            what: "reading the answer".into(),
            err,
        })?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Refused(format!("{refusal}; nothing was applied")))
    }
}

/// `"name"`, with embedded quotes doubled (an identifier for SQL text).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\0', "").replace('"', "\"\""))
}
