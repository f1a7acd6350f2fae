//! A raw realtime client for tests: a WebSocket speaking the Phoenix protocol with the 1.0.0 (JSON
//! object) serializer, as realtime-js does with `vsn: '1.0.0'`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::postgres::TestDb;
use super::rest::{allow_authenticator_login, AUTHENTICATOR_PASSWORD};

/// The database URL the sidecar uses: the `authenticator` login, as in production.
pub fn authenticator_url(db: &TestDb) -> String {
    allow_authenticator_login(db);
    let url = db.url();
    let rest = url
        .split_once('@')
        .map(|(_, rest)| rest)
        .expect("a URL with credentials");
    format!("postgres://authenticator:{AUTHENTICATOR_PASSWORD}@{rest}")
}

pub struct Socket {
    ws: WebSocketStream<TcpStream>,
    next_ref: u64,
}

/// Why a socket ended.
#[derive(Debug)]
pub enum Ended {
    Closed(Option<(u16, String)>),
    Broken(String),
    TimedOut,
}

impl Socket {
    pub async fn connect(addr: SocketAddr, apikey: &str) -> Socket {
        Socket::connect_with_buffer(addr, apikey, None).await
    }

    /// With a small receive buffer, a client that does not read fills up quickly.
    pub async fn connect_with_buffer(
        addr: SocketAddr,
        apikey: &str,
        recv_buffer: Option<u32>,
    ) -> Socket {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let stream = socket.connect(addr).await.unwrap();
        let url = format!("ws://{addr}/realtime/v1/websocket?vsn=1.0.0&apikey={apikey}");
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        Socket { ws, next_ref: 1 }
    }

    pub async fn push(&mut self, topic: &str, event: &str, payload: Value) -> String {
        let msg_ref = self.next_ref.to_string();
        self.next_ref += 1;
        let frame = json!({"join_ref": msg_ref, "ref": msg_ref, "topic": topic, "event": event, "payload": payload});
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        msg_ref
    }

    /// The next message, or why there is none.
    pub async fn next(&mut self, timeout: Duration) -> Result<Value, Ended> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Err(Ended::TimedOut),
                Ok(None) => return Err(Ended::Closed(None)),
                Ok(Some(Err(err))) => return Err(Ended::Broken(err.to_string())),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(serde_json::from_str(text.as_str()).unwrap())
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Err(Ended::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    ))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next text frame as it came, unparsed (for readers that must be fast).
    pub async fn next_text(&mut self, timeout: Duration) -> Result<String, Ended> {
        match tokio::time::timeout(timeout, self.ws.next()).await {
            Err(_) => Err(Ended::TimedOut),
            Ok(None) => Err(Ended::Closed(None)),
            Ok(Some(Err(err))) => Err(Ended::Broken(err.to_string())),
            Ok(Some(Ok(Message::Text(text)))) => Ok(text.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(frame)))) => Err(Ended::Closed(
                frame.map(|f| (u16::from(f.code), f.reason.to_string())),
            )),
            Ok(Some(Ok(_))) => Ok(String::new()),
        }
    }

    /// Sends a push and waits for its reply, keeping other messages for later.
    pub async fn call(
        &mut self,
        topic: &str,
        event: &str,
        payload: Value,
        kept: &mut Vec<Value>,
    ) -> Value {
        let msg_ref = self.push(topic, event, payload).await;
        loop {
            let message = self.next(Duration::from_secs(10)).await.expect("a reply");
            if message["event"] == "phx_reply" && message["ref"] == msg_ref.as_str() {
                return message["payload"].clone();
            }
            kept.push(message);
        }
    }

    pub async fn join(&mut self, topic: &str, payload: Value) -> Value {
        let mut kept = Vec::new();
        self.call(topic, "phx_join", payload, &mut kept).await
    }
}

/// A join payload subscribing to every change of `public.table`.
pub fn changes_of(table: &str) -> Value {
    json!({"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": table}]}})
}

/// An HS256 token with `claims` (plus `exp` an hour ahead unless given) for the test secret.
pub fn sign(mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        claims["exp"] = json!(now + 3600);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(super::JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Runs SQL from async test code (the synchronous `TestDb::execute` starts a runtime of its own).
pub async fn sql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    drop(client);
    let _ = connection.await;
}

/// A runtime for the async part of a test whose set-up is synchronous.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}
