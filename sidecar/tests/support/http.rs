//! A minimal HTTP/1.1 client: enough to GET a JSON endpoint and POST a body (from a chosen local
//! address if need be), with no dependency on a client library.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub body: serde_json::Value,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one raw request on a fresh connection (`Connection: close`) and returns the status, the
/// response head and the body.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<(u16, String, String), String> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    exchange_on(stream, request)
}

/// A connection to `addr` from the local address `local` (any port), e.g. 127.0.0.2 to be
/// another client than 127.0.0.1 (Linux routes all of 127.0.0.0/8 to the loopback device). std
/// cannot bind before connecting; tokio's `TcpSocket` can.
fn connect_from(local: IpAddr, addr: SocketAddr) -> Result<TcpStream, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let socket = match local {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::new(local, 0))
            .map_err(|e| format!("bind {local}: {e}"))?;
        let stream = tokio::time::timeout(TIMEOUT, socket.connect(addr))
            .await
            .map_err(|_| "connect: timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        let stream = stream.into_std().map_err(|e| e.to_string())?;
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        Ok(stream)
    })
}

fn exchange_on(mut stream: TcpStream, request: &[u8]) -> Result<(u16, String, String), String> {
    let timeout = TIMEOUT;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end in {raw:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, head.to_owned(), body.to_owned()))
}

/// `GET path`; `Err` if the server cannot be reached or answers with something that is not HTTP+JSON.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (status, head, body) = exchange(addr, request.as_bytes())?;
    // `application/json`, or a JSON suffix type such as the root's `application/openapi+json`.
    let content_type = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|line| line.strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !(media == "application/json"
        || media.starts_with("application/") && media.ends_with("+json"))
    {
        return Err(format!("not JSON: {head:?}"));
    }
    let body = serde_json::from_str(&body).map_err(|e| format!("body {body:?}: {e}"))?;
    Ok(Response { status, body })
}

/// `POST path` with `headers` and `body`: the status and the raw body (any content type).
pub fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    let (status, _, body) = exchange(addr, &post_request(addr, path, headers, body))?;
    Ok((status, body))
}

/// `post` from the local address `local`.
pub fn post_from(
    local: IpAddr,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    let stream = connect_from(local, addr)?;
    let (status, _, body) = exchange_on(stream, &post_request(addr, path, headers, body))?;
    Ok((status, body))
}

fn post_request(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
