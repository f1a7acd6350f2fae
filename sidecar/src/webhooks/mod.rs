//! The webhook dispatcher: another consumer of the change log (`changelog`), with a durable cursor
//! per webhook in `sluice.webhook_cursors`.
//!
//! Several sidecars may serve one database; each webhook is delivered by exactly one of them at a
//! time. The leader of a webhook is the sidecar holding its session-level advisory lock, taken on a
//! connection of the dispatcher's own (`application_name` "sluice webhooks"). A sidecar that dies
//! (even by SIGKILL) loses its connection, Postgres releases its locks, and another sidecar takes
//! the webhooks over at its next look (every `LOOK_EVERY`) from their stored cursors. The connection
//! is open only while some webhook is active. Each webhook
//! has a task of its own (`deliver`), so a receiver that hangs holds up only its own webhook.
//!
//! Definitions change through the SQL functions, which `NOTIFY sluice_webhooks`: on that (and each
//! time the shared LISTEN connection listens again) the leader looks at once, and the tasks reload.

pub(crate) mod admin;
mod deliver;
pub(crate) mod retry;
pub(crate) mod sign;
mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{Config, NoTls};

use crate::changelog::ChangeReader;
use crate::db::listen::{Listener, Notice, Topic};
use crate::db::Pool;
use crate::error::describe;

/// How often a sidecar looks for webhooks nobody leads (one that died, one created unnoticed).
const LOOK_EVERY: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How `pg_stat_activity` shows the dispatcher's lock connection.
pub(crate) const APPLICATION_NAME: &str = "sluice webhooks";

/// Starts the dispatcher; it runs as long as the runtime.
pub(crate) fn start(database: &Config, pool: Pool, changes: ChangeReader, listener: &Listener) {
    let http = reqwest::Client::builder()
        // A redirect is an answer like any other non-2xx: not followed.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()
        .expect("the HTTP client's settings are valid");
    let context = Arc::new(deliver::Context {
        pool,
        changes,
        http,
    });
    let mut config = database.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    let notices = listener.subscribe(&[Topic::Webhooks]);
    tokio::spawn(lead(config, context, notices));
}

/// One webhook this sidecar leads.
struct Led {
    task: JoinHandle<()>,
    reload: watch::Sender<u64>,
}

async fn lead(
    config: Config,
    context: Arc<deliver::Context>,
    mut notices: crate::db::listen::Subscription,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        // No connection of our own while there is nothing to deliver.
        wait_for_webhooks(&context.pool, &mut notices).await;
        let (client, connection) = match config.connect(NoTls).await {
            Ok(connected) => connected,
            Err(err) => {
                tracing::warn!(
                    "webhooks: could not connect ({}); retrying in {backoff:?}",
                    describe(&err)
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut connection = tokio::spawn(connection);
        let mut led: HashMap<i64, Led> = HashMap::new();
        let ended = loop {
            match look(&client, &context, &mut led).await {
                Err(err) => break Some(describe(&err)),
                Ok(0) if led.is_empty() => break None,
                Ok(_) => {}
            }
            backoff = BACKOFF_FIRST;
            tokio::select! {
                notice = notices.recv() => {
                    // A definition changed (or notices may have been lost): every task reloads.
                    if matches!(notice, Notice::Webhooks | Notice::Listening) {
                        for webhook in led.values() {
                            webhook.reload.send_modify(|n| *n = n.wrapping_add(1));
                        }
                    }
                }
                () = tokio::time::sleep(LOOK_EVERY) => {}
                _ = &mut connection => break Some("the connection closed".to_owned()),
            }
        };
        // The locks go with the connection: another sidecar may lead these webhooks now.
        for (_, webhook) in led.drain() {
            webhook.task.abort();
        }
        drop(client);
        connection.abort();
        match ended {
            Some(ended) => {
                tracing::warn!(
                    "webhooks: lost the lock connection ({ended}); reconnecting in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            None => tracing::info!("webhooks: none active; the lock connection is closed"),
        }
    }
}

/// Returns once some webhook is active (checked on a pooled connection, at each definition change
/// and every `LOOK_EVERY`).
async fn wait_for_webhooks(pool: &Pool, notices: &mut crate::db::listen::Subscription) {
    loop {
        let any = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let row = client
                .query_one(sql::ANY_ACTIVE, &[])
                .await
                .map_err(|e| describe(&e))?;
            Ok::<bool, String>(row.get(0))
        }
        .await;
        match any {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => tracing::warn!("webhooks: could not look for webhooks ({err})"),
        }
        tokio::select! {
            _ = notices.recv() => {}
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// Takes the webhooks nobody leads, lets go of those that are gone or disabled; returns how many
/// webhooks are active.
async fn look(
    client: &tokio_postgres::Client,
    context: &Arc<deliver::Context>,
    led: &mut HashMap<i64, Led>,
) -> Result<usize, tokio_postgres::Error> {
    let active: Vec<i64> = client
        .query(sql::ACTIVE, &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let active_count = active.len();
    let mut finished = Vec::new();
    for (id, webhook) in led.iter() {
        if webhook.task.is_finished() || !active.contains(id) {
            finished.push(*id);
        }
    }
    for id in finished {
        if let Some(webhook) = led.remove(&id) {
            webhook.task.abort();
        }
        if let Ok(key) = i32::try_from(id) {
            client.query(sql::UNLOCK, &[&key]).await?;
        }
    }
    for id in active {
        if led.contains_key(&id) {
            continue;
        }
        let Ok(key) = i32::try_from(id) else {
            tracing::warn!("webhooks: webhook {id} has an id beyond the lock space; skipped");
            continue;
        };
        let locked: bool = client.query_one(sql::TRY_LOCK, &[&key]).await?.get(0);
        if locked {
            let (reload, reloads) = watch::channel(0);
            let task = tokio::spawn(deliver::run(Arc::clone(context), id, reloads));
            led.insert(id, Led { task, reload });
        }
    }
    Ok(active_count)
}
