//! One WebSocket: its channels, and the Phoenix events a realtime-js client sends (join, leave,
//! heartbeat, access_token, broadcast, presence). A send task drains the socket's bounded outbox;
//! this task reads and answers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::cluster::Member;
use super::filter::{self, Binding};
use super::hub::{ChangeSub, Frame, Outbox, SubKey, Subscriber};
use super::protocol::{self, Message, UserPayload, Vsn};
use super::resume;
use super::sql;
use super::Realtime;
use crate::auth::{Identity, Verifier};
use crate::error::describe;

/// Frames a socket may have queued before it is cut off as too slow.
pub(crate) const QUEUE: usize = 4096;
/// Close code for a client that could not keep up (1008: policy violation).
const CLOSE_TOO_SLOW: u16 = 1008;
/// Close code for a socket closed for silence (1000: normal closure; realtime-js reconnects).
const CLOSE_SILENT: u16 = 1000;
/// How long a cut-off client still gets to take a pending frame and the close frame.
const GRACE: Duration = Duration::from_secs(10);

/// Sends a close frame. A client that reads nothing may never take it: after `GRACE` the
/// connection is simply dropped.
async fn send_close(sink: &mut SplitSink<WebSocket, WsMessage>, code: u16, reason: String) {
    let close = WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(GRACE, sink.send(close)).await;
}

async fn close_too_slow(sink: &mut SplitSink<WebSocket, WsMessage>) {
    let reason =
        format!("sluice: the client did not keep up; more than {QUEUE} messages were queued");
    send_close(sink, CLOSE_TOO_SLOW, reason).await;
}

/// Drains a socket's outbox into it, one task per socket. Every event reaches every subscriber's
/// socket through here, so the usual case (the socket takes the frame at once) stays cheap: no
/// waiting on the cut-off signal unless a send actually blocks.
async fn write_frames(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut queue: mpsc::Receiver<Frame>,
    outbox: Arc<Outbox>,
) {
    while let Some(frame) = queue.recv().await {
        // An outbox is only cut off when its queue is full, so this loop never waits in `recv`
        // for a cut-off client: checking after each frame is enough.
        if outbox.overflowed() {
            return close_too_slow(&mut sink).await;
        }
        let message = match frame {
            Frame::Text(text) => WsMessage::Text(text.into()),
            Frame::Binary(bytes) => WsMessage::Binary(bytes.into()),
            Frame::Close { code, reason } => return send_close(&mut sink, code, reason).await,
        };
        let mut send = std::pin::pin!(sink.send(message));
        let sent = match std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await {
            Poll::Ready(sent) => sent.is_ok(),
            // The client's window is full: wait, unless it gets cut off meanwhile.
            Poll::Pending => tokio::select! {
                biased;
                sent = &mut send => sent.is_ok(),
                () = outbox.cut_off() => {
                    // A little grace to finish the frame, so that the close frame can follow
                    // it; else just drop the socket.
                    if let Ok(Ok(())) = tokio::time::timeout(GRACE, send).await {
                        close_too_slow(&mut sink).await;
                    }
                    return;
                }
            },
        };
        if !sent {
            return;
        }
    }
    let _ = sink.close().await;
}

struct Channel {
    join_ref: Option<String>,
    /// `exp` of the channel's token, in seconds since the epoch.
    expires: Option<u64>,
    presence_key: String,
    ack: bool,
    changes: Option<Arc<ChangeSub>>,
    catch_up: Option<JoinHandle<()>>,
}

pub(crate) struct Session {
    id: u64,
    rt: Realtime,
    verifier: Arc<Verifier>,
    outbox: Arc<Outbox>,
    /// Who the socket is, from its `apikey` parameter; a channel's `access_token` overrides it.
    identity: Identity,
    channels: HashMap<String, Channel>,
}

/// A database failure during a join: logged in full, reported to the client in general terms.
fn internal(err: &(dyn std::error::Error + 'static)) -> String {
    tracing::warn!("realtime: {}", describe(err));
    "internal error: the server log has the details".to_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn expiry(identity: &Identity) -> Option<u64> {
    identity.claims.get("exp").and_then(Value::as_u64)
}

pub(crate) async fn run(
    socket: WebSocket,
    rt: Realtime,
    verifier: Arc<Verifier>,
    vsn: Vsn,
    identity: Identity,
) {
    let (outbox, queue) = Outbox::new(vsn, QUEUE);
    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(write_frames(sink, queue, Arc::clone(&outbox)));
    let mut session = Session {
        id: rt.hub.session_id(),
        rt,
        verifier,
        outbox,
        identity,
        channels: HashMap::new(),
    };
    let heartbeat_timeout = session.rt.heartbeat_timeout;
    let mut last_heard = Instant::now();
    let mut silent = false;
    loop {
        let next_expiry = session.channels.values().filter_map(|c| c.expires).min();
        let sleep = match next_expiry {
            Some(exp) => Duration::from_secs(exp.saturating_sub(now())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            incoming = stream.next() => {
                // Any frame counts as a sign of life, a ping or a pong too.
                last_heard = Instant::now();
                let message = match incoming {
                    Some(Ok(WsMessage::Text(text))) => protocol::decode_text(vsn, text.as_str()).map(|m| (m, None)),
                    Some(Ok(WsMessage::Binary(bytes))) => protocol::decode_binary(&bytes).map(|(m, u)| (m, Some(u))),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue, // ping/pong: axum answers pings itself
                };
                match message {
                    Ok((message, user)) => session.handle(message, user).await,
                    Err(err) => {
                        session.outbox.send_message(&protocol::push(None, "phoenix", "phx_error", json!({"reason": err.to_string()})));
                    }
                }
                if session.outbox.overflowed() {
                    break;
                }
            }
            () = tokio::time::sleep(sleep) => session.expire().await,
            // The client vanished without closing (network gone, laptop lid shut), or stopped
            // heartbeating: as Phoenix does, the socket and everything it holds go.
            () = tokio::time::sleep_until((last_heard + heartbeat_timeout).into()) => {
                silent = true;
                break;
            }
            // The writer sends the reason and closes.
            () = session.outbox.cut_off() => break,
        }
    }
    session.close().await;
    if silent {
        session.outbox.send(Frame::Close {
            code: CLOSE_SILENT,
            reason: format!(
                "sluice: heartbeat timeout: nothing received for {} s",
                heartbeat_timeout.as_secs()
            ),
        });
    }
    // Let the writer finish sending a close frame, then stop it.
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(1), &mut writer)
        .await
        .is_err()
        && silent
    {
        // A vanished peer may never take the frames before the close frame: don't wait for
        // TCP to give up on it.
        writer.abort();
    }
}

impl Session {
    async fn close(&mut self) {
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for topic in topics {
            self.drop_channel(&topic).await;
        }
    }

    async fn drop_channel(&mut self, topic: &str) {
        if let Some(channel) = self.channels.remove(topic) {
            if let Some(task) = channel.catch_up {
                task.abort();
            }
            self.rt.hub.remove(&(self.id, topic.to_owned()));
            self.rt.cluster.leave(topic, self.id).await;
        }
    }

    fn reply(&self, request: &Message, status: &str, response: Value) {
        self.outbox
            .send_message(&protocol::reply(request, status, response));
    }

    fn error(&self, request: &Message, reason: impl std::fmt::Display) {
        self.reply(request, "error", json!({"reason": reason.to_string()}));
    }

    async fn handle(&mut self, message: Message, user: Option<UserPayload>) {
        match (message.topic.as_str(), message.event.as_str()) {
            ("phoenix", "heartbeat") => self.reply(&message, "ok", json!({})),
            (_, "phx_join") => self.join(message).await,
            (topic, "phx_leave") => {
                let topic = topic.to_owned();
                self.drop_channel(&topic).await;
                self.reply(&message, "ok", json!({}));
            }
            (topic, _) if !self.channels.contains_key(topic) => {
                self.error(&message, "unmatched topic")
            }
            (_, "access_token") => self.access_token(message).await,
            (_, "broadcast") => self.broadcast(message, user).await,
            (_, "presence") => self.presence(message).await,
            _ => self.error(&message, format!("unknown event {:?}", message.event)),
        }
    }

    fn verify(&self, payload: &Value) -> Result<Identity, String> {
        match payload.get("access_token").and_then(Value::as_str) {
            Some(token) => self.verifier.identify(token).map_err(|e| e.to_string()),
            None => Ok(self.identity.clone()),
        }
    }

    async fn join(&mut self, message: Message) {
        let topic = message.topic.clone();
        if self.channels.contains_key(&topic) {
            self.drop_channel(&topic).await;
        }
        let identity = match self.verify(&message.payload) {
            Ok(identity) => identity,
            Err(reason) => return self.error(&message, reason),
        };
        if expiry(&identity).is_some_and(|exp| exp <= now()) {
            return self.error(&message, "Token has expired");
        }
        let config = &message.payload["config"];
        // Supabase authorizes private channels with policies on `realtime.messages`, which Sluice
        // does not have: refusing is better than serving them as public.
        if config["private"].as_bool() == Some(true) {
            return self.error(
                &message,
                "private channels are not supported by Sluice yet (they need realtime authorization policies); join with config.private false",
            );
        }
        let mut entries = config["postgres_changes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let subtopic = topic.strip_prefix("realtime:").unwrap_or(&topic);
        if entries.is_empty() {
            entries.extend(filter::shorthand(subtopic));
        }
        let bindings = match filter::parse_bindings(&entries, 1) {
            Ok(bindings) => bindings,
            Err(err) => return self.error(&message, err),
        };
        if let Err(reason) = self.check_tables(&bindings).await {
            return self.error(&message, reason);
        }
        let resume_after = message.payload.get("resume_after").and_then(Value::as_i64);
        if let Some(after) = resume_after {
            match self.pruned_through().await {
                Ok(pruned) if after < pruned => {
                    return self.reply(&message, "error", json!({
                        "reason": format!("resume position {after} has been pruned from the change log (pruned through {pruned}); reload the data and join without resume_after"),
                        "code": "resume_pruned",
                        "pruned_through": pruned,
                    }));
                }
                Ok(_) => {}
                Err(reason) => return self.error(&message, reason),
            }
        }
        let presence = &config["presence"];
        let presence_enabled = presence
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let presence_key = match presence["key"].as_str() {
            Some(key) if !key.is_empty() => key.to_owned(),
            _ => format!("{}-{}", self.rt.cluster.instance, self.id),
        };
        let ack = config["broadcast"]["ack"].as_bool().unwrap_or(false);
        let echo_self = config["broadcast"]["self"].as_bool().unwrap_or(false);
        let response: Vec<Value> = bindings
            .iter()
            .map(|b| {
                let mut entry = b.config.clone();
                entry["id"] = Value::from(b.id);
                entry
            })
            .collect();
        let sub = (!bindings.is_empty()).then(|| {
            Arc::new(ChangeSub {
                topic: topic.clone(),
                join_ref: message.join_ref.clone(),
                shell: protocol::shell(
                    self.outbox.vsn,
                    message.join_ref.as_deref(),
                    &topic,
                    "postgres_changes",
                ),
                bindings,
                subscriber: Mutex::new(Subscriber {
                    role: identity.role.clone(),
                    claims: identity.claims_text.to_string(),
                }),
                outbox: Arc::clone(&self.outbox),
                cursor: AtomicI64::new(resume_after.unwrap_or(0)),
            })
        });
        let key: SubKey = (self.id, topic.clone());
        let mut catch_up = None;
        match (&sub, resume_after) {
            (Some(sub), None) => {
                // Live from the position the feed has delivered through.
                let _ = self.rt.hub.ready.subscribe().wait_for(|ready| *ready).await;
                let delivered = self.rt.hub.delivered_lock().await;
                self.reply(&message, "ok", json!({"postgres_changes": response}));
                sub.cursor.store(*delivered, Ordering::Relaxed);
                self.rt.hub.insert_live(key, Arc::clone(sub));
            }
            (Some(sub), Some(_)) => {
                self.reply(&message, "ok", json!({"postgres_changes": response}));
                catch_up = Some(tokio::spawn(resume::catch_up_then_live(
                    self.rt.clone(),
                    key,
                    Arc::clone(sub),
                )));
            }
            (None, _) => self.reply(&message, "ok", json!({"postgres_changes": response})),
        }
        if sub.is_some() {
            self.outbox.send_message(&protocol::push(
                message.join_ref.as_deref(),
                &topic,
                "system",
                json!({"message": "Subscribed to PostgreSQL", "status": "ok", "extension": "postgres_changes", "channel": subtopic}),
            ));
        }
        let member = Member {
            join_ref: message.join_ref.clone(),
            outbox: Arc::clone(&self.outbox),
            echo_self,
            presence: presence_enabled,
        };
        if let Some(state) = self.rt.cluster.join(&topic, self.id, member) {
            self.outbox.send_message(&protocol::push(
                message.join_ref.as_deref(),
                &topic,
                "presence_state",
                state,
            ));
        }
        self.channels.insert(
            topic,
            Channel {
                join_ref: message.join_ref,
                expires: expiry(&identity),
                presence_key,
                ack,
                changes: sub,
                catch_up,
            },
        );
    }

    async fn check_tables(&self, bindings: &[Binding]) -> Result<(), String> {
        if bindings.is_empty() {
            return Ok(());
        }
        let client = self.rt.hub.pool.get().await.map_err(|e| internal(&e))?;
        for binding in bindings {
            let enabled =
                sql::realtime_enabled(&**client, &binding.schema, binding.table.as_deref())
                    .await
                    .map_err(|e| internal(&e))?;
            if !enabled {
                return Err(format!(
                    "Unable to subscribe to changes of {}.{}: realtime is not enabled for it (sluice.enable_realtime)",
                    binding.schema,
                    binding.table.as_deref().unwrap_or("*")
                ));
            }
        }
        Ok(())
    }

    async fn pruned_through(&self) -> Result<i64, String> {
        self.rt
            .changes
            .pruned_through()
            .await
            .map_err(|e| internal(&e))
    }

    async fn access_token(&mut self, message: Message) {
        match self.verify(&message.payload) {
            Ok(identity) if expiry(&identity).is_none_or(|exp| exp > now()) => {
                let channel = self
                    .channels
                    .get_mut(&message.topic)
                    .expect("checked by handle");
                channel.expires = expiry(&identity);
                if let Some(sub) = &channel.changes {
                    *sub.subscriber.lock().unwrap_or_else(|e| e.into_inner()) = Subscriber {
                        role: identity.role.clone(),
                        claims: identity.claims_text.to_string(),
                    };
                }
                self.reply(&message, "ok", json!({}));
            }
            Ok(_) => {
                self.refuse_channel(&message.topic, "Token has expired")
                    .await
            }
            Err(reason) => {
                self.refuse_channel(&message.topic, &format!("Invalid token: {reason}"))
                    .await
            }
        }
    }

    /// Tells the client why a channel stops, then closes it.
    async fn refuse_channel(&mut self, topic: &str, reason: &str) {
        let join_ref = self.channels.get(topic).and_then(|c| c.join_ref.clone());
        self.outbox.send_message(&protocol::push(
            join_ref.as_deref(),
            topic,
            "system",
            json!({"message": reason, "status": "error", "extension": "system", "channel": topic.strip_prefix("realtime:").unwrap_or(topic)}),
        ));
        self.drop_channel(topic).await;
        self.outbox.send_message(&protocol::push(
            join_ref.as_deref(),
            topic,
            "phx_close",
            json!({}),
        ));
    }

    async fn expire(&mut self) {
        let expired: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.expires.is_some_and(|exp| exp <= now()))
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in expired {
            self.refuse_channel(&topic, "Token has expired").await;
        }
    }

    async fn broadcast(&mut self, message: Message, user: Option<UserPayload>) {
        let event = message.payload["event"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let user = user.unwrap_or_else(|| {
            UserPayload::Json(
                message
                    .payload
                    .get("payload")
                    .cloned()
                    .unwrap_or(Value::Null),
            )
        });
        let ack = self.channels.get(&message.topic).is_some_and(|c| c.ack);
        match self
            .rt
            .cluster
            .broadcast(&message.topic, self.id, &event, user)
            .await
        {
            Ok(()) if ack => self.reply(&message, "ok", json!({})),
            Ok(()) => {}
            Err(err) => self.error(&message, err),
        }
    }

    async fn presence(&mut self, message: Message) {
        let key = self
            .channels
            .get(&message.topic)
            .map(|c| c.presence_key.clone())
            .unwrap_or_default();
        match message.payload["event"].as_str() {
            Some("track") => {
                let meta = message
                    .payload
                    .get("payload")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                self.rt
                    .cluster
                    .track(&message.topic, self.id, &key, meta)
                    .await;
                self.reply(&message, "ok", json!({}));
            }
            Some("untrack") => {
                self.rt.cluster.untrack(&message.topic, self.id).await;
                self.reply(&message, "ok", json!({}));
            }
            other => self.error(&message, format!("unknown presence event {other:?}")),
        }
    }
}
