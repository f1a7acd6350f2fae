//! The schema cache's own connection: it LISTENs for schema changes and runs the catalog queries.
//!
//! Two channels:
//! - `sluice_schema`: the extension's event triggers NOTIFY it at the end of every DDL command
//!   (payload `{"tag": "ALTER TABLE"}`). Any notification reloads.
//! - `pgrst`: PostgREST's channel, so that tooling written for PostgREST (and Supabase's own
//!   migrations, which end with `NOTIFY pgrst, 'reload schema'`) works unchanged. As in PostgREST,
//!   the payload `reload schema` or an empty payload reloads the schema cache; `reload config` (and
//!   anything else) is ignored, since the sidecar takes no configuration from the database.
//!
//! This is a connection of its own, not a pooled one: a LISTEN belongs to a session, and a pooled
//! connection's session is lent to requests in turn.

use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::SchemaError;
use crate::error::describe;

pub const SCHEMA_CHANNEL: &str = "sluice_schema";
pub const POSTGREST_CHANNEL: &str = "pgrst";

/// How a DBA finds this session in `pg_stat_activity`, unless the URL names an application.
pub const APPLICATION_NAME: &str = "sluice schema cache";

/// A LISTEN connection sits idle between notifications, so a silently dead peer (a dropped NAT
/// entry, a host gone without a FIN) would otherwise be noticed only after the kernel's two-hour
/// keepalive default. With these it is noticed within about a minute, and we reconnect.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection settings for the listener: the sidecar's database settings plus the above.
pub fn listener_config(database: &Config) -> Config {
    let mut config = database.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    config
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES);
    config
}

/// A connected, listening session.
pub struct Listener {
    pub client: Client,
    /// Changes each time a notification asks for a reload; the value says why (for the log). The
    /// sender is dropped when the connection ends, which `changed()` reports as an error.
    pub changes: watch::Receiver<String>,
}

impl Listener {
    /// Connects and LISTENs. Notifications are only delivered once LISTEN has run, so a load that
    /// starts after this returns cannot miss a change: any DDL committed later notifies us.
    pub async fn connect(config: &Config) -> Result<Listener, SchemaError> {
        let (client, mut connection) = config.connect(NoTls).await.map_err(SchemaError::Connect)?;
        let (changes_tx, changes) = watch::channel(String::new());
        // Drives the connection: every query's I/O happens here, and notifications come out here.
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        let channel = notification.channel();
                        let payload = notification.payload();
                        match reload_reason(channel, payload) {
                            Some(reason) => {
                                tracing::debug!("schema change notified on {channel}: {payload}");
                                changes_tx.send_replace(reason);
                            }
                            None => tracing::debug!(
                                "ignoring notification on {channel} with payload {payload:?}"
                            ),
                        }
                    }
                    Some(Ok(_notice)) => {}
                    Some(Err(err)) => {
                        tracing::warn!(
                            "the schema cache's database connection failed: {}",
                            describe(&err)
                        );
                        break;
                    }
                    None => break,
                }
            }
        });
        let listen = format!("LISTEN {SCHEMA_CHANNEL}; LISTEN {POSTGREST_CHANNEL}");
        client
            .batch_execute(&listen)
            .await
            .map_err(SchemaError::Listen)?;
        Ok(Listener { client, changes })
    }
}

/// Whether a notification asks for a reload, and a short reason for the log if so.
pub fn reload_reason(channel: &str, payload: &str) -> Option<String> {
    match channel {
        SCHEMA_CHANNEL => {
            let tag = serde_json::from_str::<serde_json::Value>(payload)
                .ok()
                .and_then(|value| value.get("tag")?.as_str().map(str::to_owned));
            Some(tag.unwrap_or_else(|| "a schema change".to_owned()))
        }
        POSTGREST_CHANNEL => match payload.trim() {
            "" | "reload schema" => Some(format!("NOTIFY {POSTGREST_CHANNEL}")),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ddl_notification_reloads_and_names_its_command() {
        assert_eq!(
            reload_reason("sluice_schema", r#"{"tag" : "ALTER TABLE"}"#).as_deref(),
            Some("ALTER TABLE")
        );
        assert_eq!(
            reload_reason("sluice_schema", "").as_deref(),
            Some("a schema change")
        );
    }

    #[test]
    fn postgrest_channel_reloads_on_reload_schema_or_empty_only() {
        assert!(reload_reason("pgrst", "reload schema").is_some());
        assert!(reload_reason("pgrst", "").is_some());
        assert!(reload_reason("pgrst", "reload config").is_none());
        assert!(reload_reason("pgrst", "something else").is_none());
        assert!(reload_reason("sluice_changes", "").is_none());
    }

    #[test]
    fn listener_settings_keep_the_database_and_add_keepalives() {
        let database: Config = "postgres://app@db:5432/shop".parse().unwrap();
        let config = listener_config(&database);
        assert_eq!(config.get_dbname(), Some("shop"));
        assert_eq!(config.get_application_name(), Some(APPLICATION_NAME));
        assert_eq!(config.get_keepalives_idle(), KEEPALIVE_IDLE);
        let named: Config = "postgres://app@db/shop?application_name=mine"
            .parse()
            .unwrap();
        assert_eq!(listener_config(&named).get_application_name(), Some("mine"));
    }
}
