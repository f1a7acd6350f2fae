//! The one LISTEN connection of a sidecar, shared by everything that waits for a NOTIFY.
//!
//! A LISTEN belongs to a session, and a pooled connection's session is lent to requests in turn,
//! so the listener has a connection of its own. It runs nothing but its one `LISTEN` statement:
//! the change log is read and the schema loaded on pooled connections, so a slow read never
//! holds up a wake-up, and `pg_stat_activity` shows this session's query as that `LISTEN`.
//!
//! Subscribers name the kinds of [`Notice`] they want and receive them, decoded, on a channel
//! of their own. Every subscriber also receives [`Notice::Listening`] each time the connection
//! (re)starts listening, and at once when it subscribes while the connection already listens:
//! from that notice on nothing is missed, and anything before it may have been, so it is the
//! subscriber's cue to catch up (reload the schema, read the log, re-announce presences). When the
//! connection drops, the listener reconnects with backoff (100 ms doubling to 5 s).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::error::describe;

/// `NOTIFY sluice_changes`: the extension numbered new change-log events (payload `{from, to}`).
pub const CHANGES_CHANNEL: &str = "sluice_changes";
/// `NOTIFY sluice_schema`: the extension's event triggers, after every DDL command.
pub const SCHEMA_CHANNEL: &str = "sluice_schema";
/// PostgREST's channel: tooling written for PostgREST (and Supabase's migrations, which end with
/// `NOTIFY pgrst, 'reload schema'`) works unchanged.
pub const POSTGREST_CHANNEL: &str = "pgrst";
/// Broadcast and presence between the sidecars of one database (`realtime::cluster`).
pub const CLUSTER_CHANNEL: &str = "sluice_realtime";
/// `NOTIFY sluice_webhooks`: a webhook was created, changed or dropped (payload: its name).
pub const WEBHOOKS_CHANNEL: &str = "sluice_webhooks";

/// How a DBA finds this session in `pg_stat_activity`, unless the URL names an application.
pub const APPLICATION_NAME: &str = "sluice listener";

/// A LISTEN connection sits idle between notifications, so a silently dead peer (a dropped NAT
/// entry, a host gone without a FIN) would otherwise be noticed only after the kernel's two-hour
/// keepalive default. With these it is noticed within about a minute, and we reconnect.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a subscriber can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Changes,
    Schema,
    Cluster,
    Webhooks,
}

/// A notification, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The connection listens (again): notifications before this one may have been lost.
    Listening,
    /// New events in the change log: a wake-up only, the log itself says what they are.
    Changes,
    /// The schema changed, or someone asked for a reload; the reason is for the log.
    Schema { reason: String },
    /// A message from another sidecar (or this one) on the cluster channel, as sent.
    Cluster(String),
    /// A webhook's definition changed: the dispatcher looks again.
    Webhooks,
}

impl Notice {
    fn topic(&self) -> Option<Topic> {
        match self {
            Notice::Listening => None,
            Notice::Changes => Some(Topic::Changes),
            Notice::Schema { .. } => Some(Topic::Schema),
            Notice::Cluster(_) => Some(Topic::Cluster),
            Notice::Webhooks => Some(Topic::Webhooks),
        }
    }
}

/// Decodes a notification; `None` for one that asks nothing of us (PostgREST's `reload config`).
pub fn decode(channel: &str, payload: &str) -> Option<Notice> {
    match channel {
        CHANGES_CHANNEL => Some(Notice::Changes),
        SCHEMA_CHANNEL => {
            let tag = serde_json::from_str::<serde_json::Value>(payload)
                .ok()
                .and_then(|value| value.get("tag")?.as_str().map(str::to_owned));
            let reason = tag.unwrap_or_else(|| "a schema change".to_owned());
            Some(Notice::Schema { reason })
        }
        // As in PostgREST: `reload schema` or an empty payload reloads; `reload config` (and
        // anything else) is ignored, since the sidecar takes no configuration from the database.
        POSTGREST_CHANNEL => match payload.trim() {
            "" | "reload schema" => Some(Notice::Schema {
                reason: format!("NOTIFY {POSTGREST_CHANNEL}"),
            }),
            _ => None,
        },
        CLUSTER_CHANNEL => Some(Notice::Cluster(payload.to_owned())),
        WEBHOOKS_CHANNEL => Some(Notice::Webhooks),
        _ => None,
    }
}

/// The receiving end of a subscription.
pub struct Subscription {
    notices: mpsc::UnboundedReceiver<Notice>,
}

impl Subscription {
    /// The next notice. Never ends while the listener runs (it runs as long as the runtime).
    pub async fn recv(&mut self) -> Notice {
        match self.notices.recv().await {
            Some(notice) => notice,
            None => std::future::pending().await,
        }
    }

    /// A notice already queued, if any.
    pub fn try_recv(&mut self) -> Option<Notice> {
        self.notices.try_recv().ok()
    }
}

struct Subscriber {
    topics: Vec<Topic>,
    tx: mpsc::UnboundedSender<Notice>,
}

#[derive(Default)]
struct Registry {
    subscribers: Vec<Subscriber>,
    listening: bool,
}

/// A handle on the listener; cheap to clone.
#[derive(Clone)]
pub struct Listener {
    registry: Arc<Mutex<Registry>>,
}

impl Listener {
    /// Starts the connection task; it connects (and reconnects) by itself.
    pub fn start(database: &Config) -> Listener {
        let listener = Listener {
            registry: Arc::default(),
        };
        tokio::spawn(listener.clone().run(listener_config(database)));
        listener
    }

    /// Receives the notices of `topics` from now on, and every `Listening`.
    pub fn subscribe(&self, topics: &[Topic]) -> Subscription {
        let (tx, notices) = mpsc::unbounded_channel();
        let mut registry = self.registry();
        if registry.listening {
            let _ = tx.send(Notice::Listening);
        }
        registry.subscribers.push(Subscriber {
            topics: topics.to_vec(),
            tx,
        });
        Subscription { notices }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a notice to those who asked for it, forgetting subscribers that are gone.
    fn publish(&self, notice: Notice) {
        let topic = notice.topic();
        self.registry().subscribers.retain(|sub| {
            let wanted = topic.is_none_or(|topic| sub.topics.contains(&topic));
            !wanted || sub.tx.send(notice.clone()).is_ok()
        });
    }

    fn set_listening(&self, listening: bool) {
        self.registry().listening = listening;
        if listening {
            self.publish(Notice::Listening);
        }
    }

    async fn run(self, config: Config) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let err = self.session(&config, &mut backoff).await;
            self.set_listening(false);
            tracing::warn!("the LISTEN connection failed ({err}); reconnecting in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = next_backoff(backoff);
        }
    }

    /// One connection's life: returns why it ended.
    async fn session(&self, config: &Config, backoff: &mut Duration) -> ListenError {
        let (client, mut connection) = match config.connect(NoTls).await {
            Ok(connected) => connected,
            Err(err) => return err.into(),
        };
        // Drives the connection: the LISTEN's I/O happens here, and notifications come out here.
        let listener = self.clone();
        let mut driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        match decode(n.channel(), n.payload()) {
                            Some(notice) => listener.publish(notice),
                            None => tracing::debug!(
                                "ignoring notification on {} with payload {:?}",
                                n.channel(),
                                n.payload()
                            ),
                        }
                    }
                    Some(Ok(_notice)) => {}
                    Some(Err(err)) => return ListenError::Db(err),
                    None => return ListenError::Closed,
                }
            }
        });
        let statement = listen_statement();
        tokio::select! {
            listened = client.batch_execute(&statement) => {
                if let Err(err) = listened {
                    driver.abort();
                    return err.into();
                }
            }
            ended = &mut driver => return ended.unwrap_or(ListenError::Closed),
        }
        tracing::info!("listening for changes, schema changes and other sidecars");
        *backoff = BACKOFF_FIRST;
        self.set_listening(true);
        // The client must live as long as the connection: dropping it would end the session.
        let ended = driver.await.unwrap_or(ListenError::Closed);
        drop(client);
        ended
    }
}

#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("{}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("the connection closed")]
    Closed,
}

/// The statement the session runs once connected (and nothing else). The channel names are our
/// own constants, never input.
fn listen_statement() -> String {
    [
        CHANGES_CHANNEL,
        SCHEMA_CHANNEL,
        POSTGREST_CHANNEL,
        CLUSTER_CHANNEL,
        WEBHOOKS_CHANNEL,
    ]
    .map(|channel| format!("LISTEN {channel};"))
    .join(" ")
}

fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_MAX)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ddl_notification_reloads_and_names_its_command() {
        let reason = |payload| match decode(SCHEMA_CHANNEL, payload) {
            Some(Notice::Schema { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(r#"{"tag" : "ALTER TABLE"}"#), "ALTER TABLE");
        assert_eq!(reason(""), "a schema change");
    }

    #[test]
    fn postgrest_channel_reloads_on_reload_schema_or_empty_only() {
        assert!(decode("pgrst", "reload schema").is_some());
        assert!(decode("pgrst", "").is_some());
        assert!(decode("pgrst", "reload config").is_none());
        assert!(decode("pgrst", "something else").is_none());
        assert!(decode("elsewhere", "").is_none());
    }

    #[test]
    fn changes_and_cluster_messages_are_typed() {
        assert_eq!(
            decode(CHANGES_CHANNEL, r#"{"from": 1, "to": 3}"#),
            Some(Notice::Changes)
        );
        assert_eq!(
            decode(CLUSTER_CHANNEL, r#"{"k":"hello"}"#),
            Some(Notice::Cluster(r#"{"k":"hello"}"#.into()))
        );
    }

    #[test]
    fn the_statement_listens_on_every_channel() {
        assert_eq!(
            listen_statement(),
            "LISTEN sluice_changes; LISTEN sluice_schema; LISTEN pgrst; LISTEN sluice_realtime; \
             LISTEN sluice_webhooks;"
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let mut delays = vec![BACKOFF_FIRST];
        for _ in 0..8 {
            delays.push(next_backoff(*delays.last().unwrap()));
        }
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[4], Duration::from_millis(1600));
        assert_eq!(delays[8], BACKOFF_MAX);
    }

    #[tokio::test]
    async fn subscribers_get_what_they_asked_for_and_every_listening() {
        let listener = Listener {
            registry: Arc::default(),
        };
        let mut schema = listener.subscribe(&[Topic::Schema]);
        let mut all = listener.subscribe(&[Topic::Changes, Topic::Schema, Topic::Cluster]);
        listener.set_listening(true);
        listener.publish(Notice::Changes);
        listener.publish(Notice::Schema { reason: "x".into() });
        assert_eq!(schema.recv().await, Notice::Listening);
        assert_eq!(schema.recv().await, Notice::Schema { reason: "x".into() });
        assert_eq!(schema.try_recv(), None);
        assert_eq!(all.recv().await, Notice::Listening);
        assert_eq!(all.recv().await, Notice::Changes);
        // A late subscriber learns at once that the connection already listens.
        let mut late = listener.subscribe(&[Topic::Cluster]);
        assert_eq!(late.try_recv(), Some(Notice::Listening));
        // A subscriber that is gone is forgotten, not an error.
        drop(all);
        listener.publish(Notice::Changes);
        assert_eq!(listener.registry().subscribers.len(), 2);
    }
}
