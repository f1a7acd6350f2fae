//! One run of a job: its statement as the job's role, in a transaction of its own, bounded by the
//! job's timeout; the outcome logged; retried as the job says.
//!
//! The command is one statement sent with the extended protocol, so it cannot end the transaction
//! and go on as the sidecar's login role (`COMMIT; ...` is two statements, refused).

use std::time::Duration;

use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

use std::sync::Arc;

use super::sql::{self, Run};
use super::Runner;
use crate::db::Pool;
use crate::error::describe;

/// The client-side bound beyond the job's own `statement_timeout`.
const GRACE: Duration = Duration::from_secs(5);
/// The longest return message kept.
const MAX_MESSAGE: usize = 1000;

struct Outcome {
    succeeded: bool,
    message: String,
    rows: Option<i64>,
}

pub(super) async fn run(runner: Arc<Runner>, mut run: Run) {
    let pool = &runner.pool;
    loop {
        let outcome = if is_url(&run.command) {
            call(pool, &runner.http, &run).await
        } else {
            execute(pool, &run).await
        };
        if !outcome.succeeded {
            tracing::info!("jobs: run {} failed: {}", run.runid, outcome.message);
        }
        let logged = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            sql::ended(
                &client,
                run.runid,
                outcome.succeeded,
                &outcome.message,
                outcome.rows,
            )
            .await
            .map_err(|e| describe(&e))
        }
        .await;
        if let Err(err) = logged {
            tracing::warn!("jobs: could not log the end of run {} ({err})", run.runid);
        }
        if outcome.succeeded || run.max_retries == 0 {
            return;
        }
        let delay = Duration::from_millis(u64::try_from(run.retry_delay_ms).unwrap_or(0));
        tokio::time::sleep(delay).await;
        let next = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            sql::retry(&client, run.runid, &runner.name)
                .await
                .map_err(|e| describe(&e))
        }
        .await;
        match next {
            Ok(Some(runid)) => run.runid = runid,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!("jobs: could not retry run {} ({err})", run.runid);
                return;
            }
        }
    }
}

async fn execute(pool: &Pool, run: &Run) -> Outcome {
    let failed = |message: String| Outcome {
        succeeded: false,
        message: truncate(message),
        rows: None,
    };
    let client = match pool.get().await {
        Ok(client) => client,
        Err(err) => return failed(format!("no database connection: {err}")),
    };
    if let Err(err) = sql::started(&client, run.runid).await {
        return failed(format!("could not start: {}", describe(&err)));
    }
    let timeout = Duration::from_millis(u64::try_from(run.timeout_ms).unwrap_or(0));
    let statement_timeout = format!("{}ms", run.timeout_ms);
    if let Err(err) = client.batch_execute("BEGIN").await {
        return failed(describe(&err));
    }
    let result = tokio::time::timeout(timeout + GRACE, async {
        client
            .query(
                "SELECT set_config('role', $1, true), set_config('statement_timeout', $2, true)",
                &[&run.username, &statement_timeout],
            )
            .await?;
        // Unnamed, never cached: the command is prepared as the job's role.
        let statement = client.prepare(&run.command).await?;
        if statement.columns().is_empty() {
            let rows = client.execute(&statement, &[]).await?;
            Ok::<_, tokio_postgres::Error>((format!("{rows} rows"), rows))
        } else {
            let rows = client.query(&statement, &[]).await?;
            let first = rows.first().and_then(first_value);
            let count = rows.len() as u64;
            Ok((first.unwrap_or_else(|| format!("{count} rows")), count))
        }
    })
    .await;
    match result {
        Ok(Ok((message, rows))) => match client.batch_execute("COMMIT").await {
            Ok(()) => Outcome {
                succeeded: true,
                message: truncate(message),
                rows: i64::try_from(rows).ok(),
            },
            Err(err) => failed(describe(&err)),
        },
        Ok(Err(err)) => {
            let _ = client.batch_execute("ROLLBACK").await;
            failed(describe(&err))
        }
        Err(_) => {
            // The server did not stop it: cancel it, and let this connection go rather than
            // return it to the pool in the middle of a transaction.
            let _ = client.cancel_token().cancel_query(NoTls).await;
            let _ = deadpool_postgres::Object::take(client);
            failed(format!("timed out after {timeout:?}"))
        }
    }
}

fn is_url(command: &str) -> bool {
    let command = command.trim_start();
    let lower = command.get(..8).unwrap_or(command).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A job whose command is a URL: POSTed `{"jobid", "runid"}` within the job's timeout; 2xx succeeds.
async fn call(pool: &Pool, http: &reqwest::Client, run: &Run) -> Outcome {
    let failed = |message: String| Outcome {
        succeeded: false,
        message: truncate(message),
        rows: None,
    };
    match pool.get().await {
        Ok(client) => {
            if let Err(err) = sql::started(&client, run.runid).await {
                return failed(format!("could not start: {}", describe(&err)));
            }
        }
        Err(err) => return failed(format!("no database connection: {err}")),
    }
    let timeout = Duration::from_millis(u64::try_from(run.timeout_ms).unwrap_or(0));
    let body = serde_json::json!({"jobid": run.jobid, "runid": run.runid}).to_string();
    let sent = http
        .post(run.command.trim())
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("sluice/", env!("CARGO_PKG_VERSION")),
        )
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Outcome {
            succeeded: true,
            message: format!("HTTP {}", response.status().as_u16()),
            rows: None,
        },
        Ok(response) => failed(format!("HTTP {}", response.status().as_u16())),
        Err(err) if err.is_timeout() => failed(format!("timed out after {timeout:?}")),
        Err(err) => failed(format!("request failed: {err}")),
    }
}

/// The first column of a row as text, when it is of a type that reads as text.
fn first_value(row: &tokio_postgres::Row) -> Option<String> {
    let column = row.columns().first()?;
    match *column.type_() {
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(0).ok().flatten()
        }
        Type::INT4 => row
            .try_get::<_, Option<i32>>(0)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(0)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(0)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        _ => None,
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
