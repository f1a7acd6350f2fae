//! A minimal HTTP/1.1 client: enough to GET a JSON endpoint and POST a body, with no dependency on a
//! client library.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Sends one raw request on a fresh connection (`Connection: close`) and returns the status, the
/// response head and the body.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<(u16, String, String), String> {
    let timeout = Duration::from_secs(10);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
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
    if !head
        .to_ascii_lowercase()
        .contains("content-type: application/json")
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
    let (status, _, body) = exchange(addr, &bytes)?;
    Ok((status, body))
}
