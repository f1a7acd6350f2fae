//! Broadcast and presence, across every sidecar on the same database, through NOTIFY on one
//! channel (`db::listen::CLUSTER_CHANNEL`, heard on the sidecar's one LISTEN connection): no
//! broker besides Postgres. Each instance keeps the members of its own sockets,
//! delivers to them directly, and tells the others with a NOTIFY, which they deliver to theirs.
//! Presence state is replicated the same way; an instance that (re)connects says `hello` and the
//! others re-announce their presences, so it learns the state it missed.
//!
//! NOTIFY payloads are limited to 8000 bytes, so a broadcast is limited to `MAX_NOTIFY` bytes
//! once framed; larger ones are refused with an error reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Map, Value};

use super::api::Outgoing;
use super::hub::{Frame, Outbox};
use super::protocol::{self, UserPayload, Vsn};
use super::sql;
use crate::db::{DbError, Pool};
use crate::error::describe;

pub(crate) const MAX_NOTIFY: usize = 7900;

/// One socket's membership of one channel.
#[derive(Clone)]
pub struct Member {
    pub join_ref: Option<String>,
    pub outbox: Arc<Outbox>,
    /// `config.broadcast.self`: the sender receives its own broadcasts.
    pub echo_self: bool,
    /// Receives presence_state / presence_diff.
    pub presence: bool,
}

#[derive(Clone)]
struct Meta {
    phx_ref: String,
    instance: String,
    session: u64,
    meta: Value,
}

#[derive(Default)]
struct State {
    members: HashMap<String, HashMap<u64, Member>>,
    /// topic → presence key → metas
    presence: HashMap<String, HashMap<String, Vec<Meta>>>,
}

pub struct Cluster {
    pool: Pool,
    pub instance: String,
    state: Mutex<State>,
    /// When each other instance was last heard from: one that falls silent (killed, cut off)
    /// has its presences removed after `SILENT_AFTER`.
    last_heard: Mutex<HashMap<String, Instant>>,
}

/// How often an instance says it is alive, and after how long without a word another instance
/// counts it as gone.
pub(crate) const ALIVE_EVERY: Duration = Duration::from_secs(5);
pub(crate) const SILENT_AFTER: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("the broadcast is too large: {0} bytes framed, at most {MAX_NOTIFY}")]
    TooLarge(usize),
}

/// Why a batch from the HTTP API was not sent.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("message {index} is too large: {size} bytes framed, at most {MAX_NOTIFY}")]
    TooLarge { index: usize, size: usize },
    #[error(transparent)]
    Database(#[from] DbError),
}

fn random_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

fn metas_json(metas: &[Meta]) -> Value {
    let list: Vec<Value> = metas
        .iter()
        .map(|m| {
            let mut object = match &m.meta {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            object.insert("phx_ref".into(), Value::from(m.phx_ref.clone()));
            Value::Object(object)
        })
        .collect();
    json!({ "metas": list })
}

impl Cluster {
    pub fn new(pool: Pool) -> Cluster {
        Cluster {
            pool,
            instance: random_id(),
            state: Mutex::default(),
            last_heard: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn notify(&self, message: Value) {
        self.notify_text(&message.to_string()).await;
    }

    async fn notify_text(&self, text: &str) {
        let sent = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            sql::notify_cluster(&**client, text)
                .await
                .map_err(|e| describe(&e))
        };
        if let Err(err) = sent.await {
            tracing::warn!("realtime: could not notify other instances: {err}");
        }
    }

    /// Joins a socket to a channel; returns the channel's presence state if it wants presence.
    pub fn join(&self, topic: &str, session: u64, member: Member) -> Option<Value> {
        let mut state = self.state();
        let wants = member.presence;
        state
            .members
            .entry(topic.to_owned())
            .or_default()
            .insert(session, member);
        wants.then(|| {
            let mut snapshot = Map::new();
            if let Some(keys) = state.presence.get(topic) {
                for (key, metas) in keys {
                    if !metas.is_empty() {
                        snapshot.insert(key.clone(), metas_json(metas));
                    }
                }
            }
            Value::Object(snapshot)
        })
    }

    pub async fn leave(&self, topic: &str, session: u64) {
        let removed = {
            let mut state = self.state();
            if let Some(members) = state.members.get_mut(topic) {
                members.remove(&session);
                if members.is_empty() {
                    state.members.remove(topic);
                }
            }
            self.remove_presence(&mut state, topic, |m| {
                m.instance == self.instance && m.session == session
            })
        };
        for (key, meta) in removed {
            self.notify(json!({"i": self.instance, "k": "leave", "t": topic, "key": key, "ref": meta.phx_ref})).await;
        }
    }

    pub async fn leave_session(&self, session: u64) {
        let topics: Vec<String> = self
            .state()
            .members
            .iter()
            .filter(|(_, members)| members.contains_key(&session))
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in topics {
            self.leave(&topic, session).await;
        }
    }

    /// Removes matching presences of a topic and tells local members; returns what was removed.
    fn remove_presence(
        &self,
        state: &mut State,
        topic: &str,
        which: impl Fn(&Meta) -> bool,
    ) -> Vec<(String, Meta)> {
        let mut removed = Vec::new();
        if let Some(keys) = state.presence.get_mut(topic) {
            for (key, metas) in keys.iter_mut() {
                let (gone, kept): (Vec<Meta>, Vec<Meta>) = metas.drain(..).partition(|m| which(m));
                *metas = kept;
                removed.extend(gone.into_iter().map(|m| (key.clone(), m)));
            }
            keys.retain(|_, metas| !metas.is_empty());
        }
        if !removed.is_empty() {
            let mut leaves = Map::new();
            for (key, meta) in &removed {
                let entry = leaves
                    .entry(key.clone())
                    .or_insert_with(|| json!({"metas": []}));
                if let Some(list) = entry["metas"].as_array_mut() {
                    list.extend(
                        metas_json(std::slice::from_ref(meta))["metas"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
            }
            Self::presence_diff(state, topic, Map::new(), leaves);
        }
        removed
    }

    fn presence_diff(
        state: &State,
        topic: &str,
        joins: Map<String, Value>,
        leaves: Map<String, Value>,
    ) {
        let payload = json!({"joins": joins, "leaves": leaves});
        if let Some(members) = state.members.get(topic) {
            for member in members.values().filter(|m| m.presence) {
                member.outbox.send_message(&protocol::push(
                    member.join_ref.as_deref(),
                    topic,
                    "presence_diff",
                    payload.clone(),
                ));
            }
        }
    }

    fn add_presence(&self, state: &mut State, topic: &str, key: &str, meta: Meta) {
        let mut joins = Map::new();
        joins.insert(key.to_owned(), metas_json(std::slice::from_ref(&meta)));
        state
            .presence
            .entry(topic.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default()
            .push(meta);
        Self::presence_diff(state, topic, joins, Map::new());
    }

    /// `track` from a local socket: replaces its earlier presence on the topic.
    pub async fn track(&self, topic: &str, session: u64, key: &str, payload: Value) {
        let meta = Meta {
            phx_ref: random_id(),
            instance: self.instance.clone(),
            session,
            meta: payload,
        };
        let removed = {
            let mut state = self.state();
            let removed = self.remove_presence(&mut state, topic, |m| {
                m.instance == self.instance && m.session == session
            });
            self.add_presence(&mut state, topic, key, meta.clone());
            removed
        };
        for (key, old) in removed {
            self.notify(json!({"i": self.instance, "k": "leave", "t": topic, "key": key, "ref": old.phx_ref})).await;
        }
        self.notify(json!({"i": self.instance, "k": "join", "t": topic, "key": key, "ref": meta.phx_ref, "s": session, "meta": meta.meta})).await;
    }

    pub async fn untrack(&self, topic: &str, session: u64) {
        let removed = {
            let mut state = self.state();
            self.remove_presence(&mut state, topic, |m| {
                m.instance == self.instance && m.session == session
            })
        };
        for (key, old) in removed {
            self.notify(json!({"i": self.instance, "k": "leave", "t": topic, "key": key, "ref": old.phx_ref})).await;
        }
    }

    /// The NOTIFY payload that carries a broadcast to the other instances; refused when it would
    /// not fit in one notification.
    fn broadcast_notice(
        &self,
        topic: &str,
        event: &str,
        user: &UserPayload,
    ) -> Result<String, BroadcastError> {
        let mut message = json!({"i": self.instance, "k": "broadcast", "t": topic, "e": event});
        match user {
            UserPayload::Json(value) => message["p"] = value.clone(),
            UserPayload::Binary(bytes) => {
                message["b"] = Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
        let text = message.to_string();
        if text.len() > MAX_NOTIFY {
            return Err(BroadcastError::TooLarge(text.len()));
        }
        Ok(text)
    }

    /// A broadcast from a local socket: to the other local members, then to the other instances.
    pub async fn broadcast(
        &self,
        topic: &str,
        sender: u64,
        event: &str,
        user: UserPayload,
    ) -> Result<(), BroadcastError> {
        let notice = self.broadcast_notice(topic, event, &user)?;
        self.deliver_broadcast(topic, Some(sender), event, &user);
        self.notify_text(&notice).await;
        Ok(())
    }

    /// Broadcasts from outside any socket (the HTTP API), to every member of each topic. All
    /// the notices go out in one statement, so the other instances get the whole batch or none
    /// of it; only then is it delivered here, so a failure delivers nothing anywhere.
    pub async fn publish(&self, batch: &[Outgoing]) -> Result<(), PublishError> {
        let notices = batch
            .iter()
            .enumerate()
            .map(|(index, m)| {
                self.broadcast_notice(&m.topic, &m.event, &m.payload)
                    .map_err(|BroadcastError::TooLarge(size)| PublishError::TooLarge {
                        index,
                        size,
                    })
            })
            .collect::<Result<Vec<String>, PublishError>>()?;
        let client = self.pool.get().await.map_err(DbError::from)?;
        sql::notify_cluster_all(&**client, &notices)
            .await
            .map_err(DbError::from)?;
        for message in batch {
            self.deliver_broadcast(&message.topic, None, &message.event, &message.payload);
        }
        Ok(())
    }

    fn deliver_broadcast(&self, topic: &str, sender: Option<u64>, event: &str, user: &UserPayload) {
        let state = self.state();
        let Some(members) = state.members.get(topic) else {
            return;
        };
        let mut binary = None;
        let mut text: [Option<String>; 2] = [None, None];
        for (session, member) in members {
            if Some(*session) == sender && !member.echo_self {
                continue;
            }
            let vsn = member.outbox.vsn;
            if vsn == Vsn::V2 {
                let frame = binary
                    .get_or_insert_with(|| protocol::encode_binary_broadcast(topic, event, user));
                if let Some(frame) = frame {
                    member.outbox.send(Frame::Binary(frame.clone()));
                    continue;
                }
            }
            // JSON: for 1.0.0 sockets, and for frames too long for the binary format.
            let UserPayload::Json(value) = user else {
                continue; // Raw bytes have no JSON form.
            };
            let slot = &mut text[usize::from(vsn == Vsn::V2)];
            let frame = slot.get_or_insert_with(|| {
                protocol::encode(
                    vsn,
                    &protocol::push(
                        None,
                        topic,
                        "broadcast",
                        json!({"type": "broadcast", "event": event, "payload": value}),
                    ),
                )
            });
            member.outbox.send(Frame::Text(frame.clone()));
        }
    }

    /// A notification from the cluster channel.
    pub async fn receive(&self, payload: &str) {
        let Ok(message) = serde_json::from_str::<Value>(payload) else {
            return;
        };
        let instance = message["i"].as_str().unwrap_or_default();
        if instance == self.instance {
            return;
        }
        self.last_heard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(instance.to_owned(), Instant::now());
        let topic = message["t"].as_str().unwrap_or_default();
        match message["k"].as_str() {
            Some("broadcast") => {
                let user = match (&message.get("p"), message["b"].as_str()) {
                    (_, Some(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                        Ok(bytes) => UserPayload::Binary(bytes),
                        Err(_) => return,
                    },
                    (Some(value), None) => UserPayload::Json((*value).clone()),
                    (None, None) => UserPayload::Json(Value::Null),
                };
                self.deliver_broadcast(
                    topic,
                    None,
                    message["e"].as_str().unwrap_or_default(),
                    &user,
                );
            }
            Some("join") => {
                let key = message["key"].as_str().unwrap_or_default();
                let meta = Meta {
                    phx_ref: message["ref"].as_str().unwrap_or_default().to_owned(),
                    instance: instance.to_owned(),
                    session: message["s"].as_u64().unwrap_or_default(),
                    meta: message["meta"].clone(),
                };
                let mut state = self.state();
                let known = state
                    .presence
                    .get(topic)
                    .and_then(|keys| keys.get(key))
                    .is_some_and(|metas| metas.iter().any(|m| m.phx_ref == meta.phx_ref));
                if !known {
                    self.add_presence(&mut state, topic, key, meta);
                }
            }
            Some("leave") => {
                let phx_ref = message["ref"].as_str().unwrap_or_default();
                let mut state = self.state();
                self.remove_presence(&mut state, topic, |m| m.phx_ref == phx_ref);
            }
            Some("hello") => self.reannounce().await,
            _ => {}
        }
    }

    /// Runs for the life of the sidecar: says it is alive, and drops the presences of instances
    /// that have gone silent (their sockets are gone with them).
    pub async fn keep_alive(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(ALIVE_EVERY);
        loop {
            ticks.tick().await;
            self.notify(json!({"i": self.instance, "k": "alive"})).await;
            let silent: Vec<String> = {
                let mut heard = self.last_heard.lock().unwrap_or_else(|e| e.into_inner());
                let silent = heard
                    .iter()
                    .filter(|(_, at)| at.elapsed() > SILENT_AFTER)
                    .map(|(instance, _)| instance.clone())
                    .collect::<Vec<_>>();
                for instance in &silent {
                    heard.remove(instance);
                }
                silent
            };
            for instance in silent {
                tracing::info!("realtime: instance {instance} went silent; dropping its presences");
                let mut state = self.state();
                let topics: Vec<String> = state.presence.keys().cloned().collect();
                for topic in topics {
                    self.remove_presence(&mut state, &topic, |m| m.instance == instance);
                }
            }
        }
    }

    /// After (re)connecting: ask the others for their presences, and offer ours.
    pub async fn announce(&self) {
        self.notify(json!({"i": self.instance, "k": "hello"})).await;
        self.reannounce().await;
    }

    async fn reannounce(&self) {
        let mine: Vec<(String, String, Meta)> = {
            let state = self.state();
            state
                .presence
                .iter()
                .flat_map(|(topic, keys)| {
                    keys.iter().flat_map(move |(key, metas)| {
                        metas
                            .iter()
                            .map(move |m| (topic.clone(), key.clone(), m.clone()))
                    })
                })
                .filter(|(_, _, m)| m.instance == self.instance)
                .collect()
        };
        for (topic, key, meta) in mine {
            self.notify(json!({"i": self.instance, "k": "join", "t": topic, "key": key, "ref": meta.phx_ref, "s": meta.session, "meta": meta.meta})).await;
        }
    }
}
