//! The shared state of one sidecar's realtime service: who is subscribed to what, and the fan-out
//! of change events to them in position order.
//!
//! Ordering and resume: `delivered` (behind an async lock) is the position the feed has fanned
//! out through. The feed holds that lock while it delivers a batch (visibility checks, delivery),
//! and a subscription only goes live while holding it too, with its own cursor at or past
//! `delivered`; fan-out skips events at or below a subscription's cursor. So a live subscription
//! sees every event after its cursor exactly once, and a resuming one first reads the log itself
//! (`resume`) until it has reached `delivered`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use super::filter::{Binding, Op};
use super::protocol::{self, Vsn};
use super::sql::{self, TableAccess};
use crate::changelog::Change;
use crate::db::Pool;

/// A frame queued for one socket.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// The last frame: the writer sends it and stops.
    Close {
        code: u16,
        reason: String,
    },
}

/// The sending side of one socket: a bounded queue. A client that lets it fill up is cut off
/// (`overflowed`), so one slow reader never holds up the others or grows memory without bound.
#[derive(Debug)]
pub struct Outbox {
    pub vsn: Vsn,
    tx: mpsc::Sender<Frame>,
    overflowed: AtomicBool,
    /// Turns true once the queue overflowed; the socket's tasks watch it to close the socket.
    kicked: watch::Sender<bool>,
}

impl Outbox {
    pub fn new(vsn: Vsn, capacity: usize) -> (Arc<Outbox>, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(capacity);
        let outbox = Outbox {
            vsn,
            tx,
            overflowed: AtomicBool::new(false),
            kicked: watch::channel(false).0,
        };
        (Arc::new(outbox), rx)
    }

    /// Queues a frame; never waits. Returns false if the socket is gone or was cut off.
    pub fn send(&self, frame: Frame) -> bool {
        if self.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Relaxed);
                self.kicked.send_replace(true);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn send_message(&self, message: &protocol::Message) -> bool {
        self.send(Frame::Text(protocol::encode(self.vsn, message)))
    }

    /// Resolves once the client has been cut off for not keeping up.
    pub async fn cut_off(&self) {
        let _ = self.kicked.subscribe().wait_for(|kicked| *kicked).await;
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// Who a subscriber is, as Postgres will see it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub role: String,
    /// `request.jwt.claims`, serialized once: also the key that groups identical subscribers.
    pub claims: String,
}

/// One channel's postgres_changes subscription.
#[derive(Debug)]
pub struct ChangeSub {
    pub topic: String,
    pub join_ref: Option<String>,
    /// This subscription's frame around a change payload (`protocol::shell`).
    pub shell: (String, &'static str),
    pub bindings: Vec<Binding>,
    /// Replaced when the client sends a new access token.
    pub subscriber: Mutex<Subscriber>,
    pub outbox: Arc<Outbox>,
    /// Events at or below this position were (or will be, by catch-up) delivered already. Set
    /// before the subscription goes live, under the `delivered` lock.
    pub cursor: AtomicI64,
}

pub(crate) type SubKey = (u64, String);

#[derive(Default)]
struct Registry {
    live: HashMap<SubKey, Arc<ChangeSub>>,
}

pub struct Hub {
    pub pool: Pool,
    registry: Mutex<Registry>,
    delivered: tokio::sync::Mutex<i64>,
    tables: Mutex<HashMap<(String, String), Arc<TableAccess>>>,
    next_session: AtomicU64,
    /// Set once the feed has read the log's head; joins wait for it.
    pub ready: tokio::sync::watch::Sender<bool>,
}

impl Hub {
    pub fn new(pool: Pool) -> Hub {
        Hub {
            pool,
            registry: Mutex::default(),
            delivered: tokio::sync::Mutex::new(0),
            tables: Mutex::default(),
            next_session: AtomicU64::new(1),
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    pub fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub fn forget_tables(&self) {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub async fn delivered_lock(&self) -> tokio::sync::MutexGuard<'_, i64> {
        self.delivered.lock().await
    }

    /// Adds (or replaces) a live subscription. Call with the `delivered` lock held and
    /// `sub.cursor >= *delivered`.
    pub fn insert_live(&self, key: SubKey, sub: Arc<ChangeSub>) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .insert(key, sub);
    }

    pub fn remove(&self, key: &SubKey) -> Option<Arc<ChangeSub>> {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .remove(key)
    }

    async fn access(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Arc<TableAccess>>, DeliveryError> {
        let key = (schema.to_owned(), table.to_owned());
        if let Some(found) = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Some(Arc::clone(found)));
        }
        let client = self.pool.get().await?;
        let Some(access) = sql::table_access(&**client, schema, table).await? else {
            return Ok(None);
        };
        let access = Arc::new(access);
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::clone(&access));
        Ok(Some(access))
    }

    /// Fans out one batch read by the feed; the caller holds the `delivered` lock and passes
    /// it in. It moves past each event once that event is fully delivered, so a failure (the
    /// database gone during a visibility check) leaves it where a retry must start.
    pub async fn fan_out(
        &self,
        batch: &[Change],
        delivered: &mut i64,
    ) -> Result<(), DeliveryError> {
        for change in batch {
            let candidates: Vec<Arc<ChangeSub>> = self
                .registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .live
                .values()
                .filter(|sub| sub.cursor.load(Ordering::Relaxed) < change.position)
                .cloned()
                .collect();
            if !candidates.is_empty() {
                self.deliver(change, &candidates).await?;
            }
            *delivered = change.position;
        }
        Ok(())
    }

    /// Delivers one change to those of `subs` whose bindings match and who may see the row.
    pub async fn deliver(
        &self,
        change: &Change,
        subs: &[Arc<ChangeSub>],
    ) -> Result<(), DeliveryError> {
        let Some(access) = self.access(&change.schema, &change.table).await? else {
            return Ok(()); // Dropped since: nobody can read it.
        };
        // Old records go out whole only with REPLICA IDENTITY FULL, as Supabase does; else the key.
        let old_whole = access.replica_full && change.op != Op::Insert;
        let shaped = Shaped::new(change, &access, old_whole);
        // With RLS, Postgres decides per claims, on the row version the event carries. A TRUNCATE
        // carries none and says only that the table was emptied: it goes to every subscriber
        // whose role may read the table.
        let check = access.rls && change.op != Op::Truncate;
        let mut matched: Vec<(&Arc<ChangeSub>, Option<String>, Vec<u32>)> = Vec::new();
        for sub in subs {
            let claims = {
                let subscriber = sub.subscriber.lock().unwrap_or_else(|e| e.into_inner());
                if !access.select_roles.contains(&subscriber.role) {
                    continue;
                }
                check.then(|| subscriber.claims.clone())
            };
            let ids: Vec<u32> = sub
                .bindings
                .iter()
                .filter(|b| {
                    b.matches(
                        &change.schema,
                        &change.table,
                        change.op,
                        shaped.filter_row(),
                    )
                })
                .map(|b| b.id)
                .collect();
            if !ids.is_empty() {
                matched.push((sub, claims, ids));
            }
        }
        if matched.is_empty() {
            return Ok(());
        }
        // Claim sets that may see the change but not the row's old version: they get its key.
        let mut old_hidden: HashSet<String> = HashSet::new();
        if check {
            // One round trip for every distinct (role, claims) among the matched.
            let mut groups: Vec<&str> = matched
                .iter()
                .filter_map(|(_, c, _)| c.as_deref())
                .collect();
            groups.sort_unstable();
            groups.dedup();
            let client = self.pool.get().await?;
            // The row as this event shows it is judged, not the table's current row: a deleted
            // row can no longer be probed, and a row changed since must not decide who gets this
            // version of it.
            let version = match change.op {
                Op::Delete => change.old_record.as_ref(),
                _ => change.record.as_ref(),
            };
            let visible = match version {
                Some(row) => sql::policies_admit(&**client, access.oid, row, &groups).await?,
                None => Vec::new(),
            };
            let allowed: HashSet<String> = visible
                .iter()
                .filter_map(|&i| groups.get(i).map(|c| (*c).to_owned()))
                .collect();
            matched.retain(|(_, c, _)| c.as_ref().is_some_and(|c| allowed.contains(c)));
            // An updated row's whole old version goes only to those who could read it.
            if let (Op::Update, true, Some(old)) = (change.op, old_whole, &change.old_record) {
                let readers: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let admitted = sql::policies_admit(&**client, access.oid, old, &readers).await?;
                old_hidden = readers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !admitted.contains(i))
                    .map(|(_, c)| (*c).to_owned())
                    .collect();
            }
        }
        let keyed = (!old_hidden.is_empty()).then(|| Shaped::new(change, &access, false));
        for (sub, claims, ids) in matched {
            let data = match (&keyed, &claims) {
                (Some(keyed), Some(claims)) if old_hidden.contains(claims) => &keyed.data,
                _ => &shaped.data,
            };
            let (head, tail) = &sub.shell;
            let mut frame = String::with_capacity(head.len() + data.len() + 32);
            frame.push_str(head);
            frame.push_str("{\"ids\":[");
            for (n, id) in ids.iter().enumerate() {
                if n > 0 {
                    frame.push(',');
                }
                frame.push_str(&id.to_string());
            }
            frame.push_str("],\"data\":");
            frame.push_str(data);
            frame.push('}');
            frame.push_str(tail);
            sub.outbox.send(Frame::Text(frame));
        }
        Ok(())
    }
}

/// A change as subscribers receive it, serialized once.
struct Shaped {
    data: String,
    filter_row: Option<Map<String, Value>>,
}

impl Shaped {
    /// `old_whole`: the old record goes out whole (else only its key).
    fn new(change: &Change, access: &TableAccess, old_whole: bool) -> Shaped {
        let old = match change.op {
            Op::Insert | Op::Truncate => None,
            _ if old_whole => change
                .old_record
                .clone()
                .or_else(|| Some(change.pk.clone())),
            Op::Update | Op::Delete => Some(change.pk.clone()),
        };
        let mut data = json!({
            "schema": change.schema,
            "table": change.table,
            "commit_timestamp": change.commit_timestamp,
            "type": change.op.as_str(),
            "errors": null,
            "position": change.position,
        });
        let map = data.as_object_mut().expect("an object");
        if matches!(change.op, Op::Insert | Op::Update) {
            map.insert(
                "record".into(),
                Value::Object(change.record.clone().unwrap_or_default()),
            );
        }
        if let Some(old) = &old {
            map.insert("old_record".into(), Value::Object(old.clone()));
        }
        let mut data = data.to_string();
        // Splice in the pre-serialized column list.
        data.pop();
        data.push_str(",\"columns\":");
        data.push_str(&access.columns);
        data.push('}');
        let filter_row = match change.op {
            Op::Delete => old,
            Op::Insert | Op::Update => change.record.clone(),
            Op::Truncate => None,
        };
        Shaped { data, filter_row }
    }

    fn filter_row(&self) -> Option<&Map<String, Value>> {
        self.filter_row.as_ref()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
}
