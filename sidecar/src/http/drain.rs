//! A request answered without its body (an unknown route, a method the route does not take, a
//! body over `--max-body-bytes`) has that body read and thrown away first, up to a bound. Answered while the client is still
//! sending, the connection would be closed under the upload and clients such as undici (Node's
//! `fetch`, postgrest-js) report "fetch failed" instead of the JSON error. Past the bound (bytes
//! or time) the answer goes out with `Connection: close`.
//!
//! The REST routes also answer before reading the body when the token or the query string is
//! refused (401, 400): [`DrainUnreadLayer`] wraps them and discards what the handler left unread.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header::{HeaderValue, CONNECTION};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::future::{BoxFuture, Either};
use futures_util::Stream;
use futures_util::StreamExt;
use tower::{Layer, Service};

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
            drain_stream(stream, 0).await;
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
    drain_stream(body.into_data_stream(), 0).await
}

/// Reads `stream` to its end and discards it, counting from `read` bytes already taken from it;
/// `false` past `DRAIN_LIMIT`, `DRAIN_TIME`, or on a read error.
async fn drain_stream(mut stream: BodyDataStream, mut read: usize) -> bool {
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

/// Middleware (`DrainUnreadLayer`): the handler gets the body through a shared handle, and
/// whatever it left unread (an extractor or a check refused the request first) is discarded
/// before the answer goes out, within the bounds above, so that the client reads the error rather
/// than a reset connection. A request without a body (every GET by key) goes straight to the
/// handler: no clone of the route, no boxed future.
#[derive(Debug, Clone, Copy)]
pub(super) struct DrainUnreadLayer;

impl<S> Layer<S> for DrainUnreadLayer {
    type Service = DrainUnread<S>;

    fn layer(&self, inner: S) -> DrainUnread<S> {
        DrainUnread { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct DrainUnread<S> {
    inner: S,
}

impl<S> Service<Request> for DrainUnread<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.body().is_end_stream() {
            return Either::Left(self.inner.call(request));
        }
        // The ready service goes into the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(drain_unread(request, ready)))
    }
}

async fn drain_unread<S>(request: Request, mut inner: S) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(Unread {
        stream: Some(body.into_data_stream()),
        read: 0,
    }));
    let handed = Body::from_stream(SharedStream(Arc::clone(&shared)));
    let mut response = inner.call(Request::from_parts(parts, handed)).await?;
    let (unread, read) = {
        let mut unread = shared.lock().unwrap_or_else(PoisonError::into_inner);
        (unread.stream.take(), unread.read)
    };
    if let Some(stream) = unread {
        // Counted from what the handler already read: a handler that gave up draining at the
        // bound is not followed by a second full drain here.
        if !drain_stream(stream, read).await {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
    Ok(response)
}

/// The request body: the stream, and how many bytes the handler has taken from it.
struct Unread {
    stream: Option<BodyDataStream>,
    read: usize,
}

/// The request body as the handler reads it, while [`drain_unread`] keeps a hold on the rest.
struct SharedStream(Arc<Mutex<Unread>>);

impl Stream for SharedStream {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let unread = &mut *guard;
        let Some(stream) = unread.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(stream).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &polled {
            unread.read = unread.read.saturating_add(bytes.len());
        }
        polled
    }
}
