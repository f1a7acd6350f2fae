//! Running migration files: each in its own transaction with a lock timeout, statement by
//! statement so that an error names its file and line. A statement Postgres refuses inside a
//! transaction (`CREATE INDEX CONCURRENTLY`...) ends the transaction before it, runs alone, and
//! a new transaction carries on; the history row is written in the file's last transaction.

use std::time::Duration;

use tokio_postgres::Client;

use super::classify::{self, Placement, Verdict};
use super::project::Migration;
use super::sqlfile::{self, Statement};
use super::{describe_pg, extensions, history, CliError};

/// A statement worth the user's attention before anything runs.
#[derive(Clone, Debug)]
pub(crate) struct Finding {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) verdict: Verdict,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Destructive(what) => {
                write!(f, "{}:{}: destructive: {what}", self.file, self.line)
            }
            Verdict::Unparsable(err) => write!(
                f,
                "{}:{}: not checked (sqlparser cannot parse it: {err})",
                self.file, self.line
            ),
            Verdict::Safe => write!(f, "{}:{}: safe", self.file, self.line),
        }
    }
}

/// The destructive and unparsable statements of `migrations`.
pub(crate) fn review(migrations: &[&Migration]) -> Vec<Finding> {
    migrations
        .iter()
        .flat_map(|migration| {
            sqlfile::split(&migration.sql)
                .into_iter()
                .filter_map(move |statement| match classify::review(&statement.text) {
                    Verdict::Safe => None,
                    verdict => Some(Finding {
                        file: migration.display(),
                        line: statement.line,
                        verdict,
                    }),
                })
        })
        .collect()
}

/// `10s` → `10s` for `SET lock_timeout` (Postgres reads the unit itself).
fn lock_timeout_setting(timeout: Duration) -> String {
    format!("{}ms", timeout.as_millis())
}

/// Applies one migration file and records it in the history.
pub(crate) async fn apply(
    client: &mut Client,
    migration: &Migration,
    lock_timeout: Duration,
) -> Result<(), CliError> {
    let statements = sqlfile::split(&migration.sql);
    let texts: Vec<String> = statements.iter().map(|s| s.text.clone()).collect();
    let file = migration.display();
    let lock = lock_timeout_setting(lock_timeout);
    let mut pending: Vec<&Statement> = Vec::new();
    // Whether part of the file is already committed: a later failure leaves it applied (and
    // the migration unrecorded), which the message must say.
    let mut committed = false;
    let partly = |err: CliError, committed: bool| match err {
        CliError::Db(message) if committed => CliError::Db(format!(
            "{message}\n(the statements of this file before it were committed, because a \
             statement that cannot run in a transaction came after them; they stay applied and \
             the migration is not recorded)"
        )),
        other => other,
    };
    for statement in &statements {
        match classify::placement(&statement.text) {
            Placement::TransactionControl => {}
            Placement::InTransaction => pending.push(statement),
            Placement::Alone => {
                run_in_transaction(client, &file, &pending, &lock, None)
                    .await
                    .map_err(|err| partly(err, committed))?;
                committed |= !pending.is_empty();
                pending.clear();
                client
                    .batch_execute(&format!("SET lock_timeout = '{lock}'"))
                    .await?;
                let outcome = client.batch_execute(&statement.text).await;
                client.batch_execute("RESET lock_timeout").await?;
                outcome.map_err(|err| partly(failure_text(&file, statement, &err), committed))?;
                committed = true;
            }
        }
    }
    let record = (migration, texts.as_slice());
    run_in_transaction(client, &file, &pending, &lock, Some(record))
        .await
        .map_err(|err| partly(err, committed))
}

async fn run_in_transaction(
    client: &mut Client,
    file: &str,
    statements: &[&Statement],
    lock: &str,
    record: Option<(&Migration, &[String])>,
) -> Result<(), CliError> {
    if statements.is_empty() && record.is_none() {
        return Ok(());
    }
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&format!("SET LOCAL lock_timeout = '{lock}'"))
        .await?;
    for statement in statements {
        if let Err(err) = transaction.batch_execute(&statement.text).await {
            return Err(failure_text(file, statement, &err));
        }
    }
    if let Some((migration, texts)) = record {
        history::record(
            &transaction,
            &migration.version,
            &migration.name,
            texts,
            &migration.checksum(),
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// `file:line: ERROR: ...`, with a hint naming the Debian package for a missing extension.
fn failure_text(file: &str, statement: &Statement, err: &tokio_postgres::Error) -> CliError {
    let mut text = format!("{file}:{}: {}", statement.line, describe_pg(err));
    if let Some(extension) = err
        .as_db_error()
        .and_then(|db| extensions::missing_extension(db.message()))
    {
        let major = server_major(err);
        text.push_str(&format!("\nHINT: {}", extensions::hint(&extension, major)));
    }
    CliError::Db(text)
}

/// The server's major version, read from the control file path of a PG15-style error
/// (`/usr/share/postgresql/15/extension/x.control`); 15 when it is not there.
fn server_major(err: &tokio_postgres::Error) -> u32 {
    err.as_db_error()
        .and_then(|db| {
            db.message()
                .split('/')
                .find_map(|part| part.parse::<u32>().ok())
        })
        .unwrap_or(15)
}

/// Runs the seed file (`supabase/seed.sql`) in one transaction.
pub(crate) async fn seed(client: &mut Client, path: &std::path::Path) -> Result<usize, CliError> {
    let sql = std::fs::read_to_string(path).map_err(|err| CliError::Io {
        what: path.display().to_string(),
        err,
    })?;
    let statements = sqlfile::split(&sql);
    let file = "supabase/seed.sql";
    let transaction = client.transaction().await?;
    for statement in &statements {
        if classify::placement(&statement.text) == Placement::TransactionControl {
            continue;
        }
        if let Err(err) = transaction.batch_execute(&statement.text).await {
            return Err(failure_text(file, statement, &err));
        }
    }
    transaction.commit().await?;
    Ok(statements.len())
}
