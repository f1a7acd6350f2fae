//! A request answered without its body (an unknown route, a method the route does not take, a
//! body over `--max-body-bytes`) has that body read and thrown away first, up to a bound. Answered while the client is still
//! sending, the connection would be closed under the upload and clients such as undici (Node's
//! `fetch`, postgrest-js) report "fetch failed" instead of the JSON error. Past the bound (bytes
//! or time) the answer goes out with `Connection: close`.

use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::header::{HeaderValue, CONNECTION};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;

/// The most bytes read and discarded (far above `--max-body-bytes`' default, so that an upload
/// sent to a wrong path is still answered).
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long the discarding may take.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The body, if it has at most `limit` bytes. A longer one is read on and discarded (within the
/// bounds above) so that the 413 reaches the client; `None` for it and for a body that failed.
pub(super) async fn read_at_most(body: Body, limit: usize) -> Option<Bytes> {
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        read = read.saturating_add(chunk.len());
        if read > limit {
            drain_stream(stream).await;
            return None;
        }
        chunks.push(chunk);
    }
    // One chunk (the usual case of a small body) is passed on without a copy.
    Some(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => {
            let mut whole = BytesMut::with_capacity(read);
            for chunk in &chunks {
                whole.extend_from_slice(chunk);
            }
            whole.freeze()
        }
    })
}

/// Whether `body` was read to its end within the bounds.
pub(super) async fn drain(body: Body) -> bool {
    drain_stream(body.into_data_stream()).await
}

async fn drain_stream(mut stream: BodyDataStream) -> bool {
    let mut read = 0usize;
    let reading = async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    read = read.saturating_add(bytes.len());
                    if read > DRAIN_LIMIT {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, reading)
        .await
        .unwrap_or(false)
}

/// `answer`, once the body is discarded; closing the connection if it could not be.
pub(super) async fn after_draining(body: Body, answer: impl IntoResponse) -> Response {
    let drained = drain(body).await;
    let mut response = answer.into_response();
    if !drained {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
