//! The body of an upload, shared between the upload and the handler, so that an upload refused
//! before or while its body is read can still read (and discard) the rest: HTTP clients that are
//! still sending when the answer comes tend to fail with a broken pipe instead of reading it.
//! Up to `DRAIN_BYTES` are discarded; beyond that the answer closes the connection, so the rest is
//! never read as a next request.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use crate::storage::StorageError;

/// The most a refused upload's remaining body is read for nothing.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub(super) struct SharedBody(Arc<Mutex<BodyDataStream>>);

impl SharedBody {
    pub(super) fn new(body: Body) -> SharedBody {
        SharedBody(Arc::new(Mutex::new(body.into_data_stream())))
    }

    /// A body reading from the same stream (for the multipart parser).
    pub(super) fn body(&self) -> Body {
        Body::from_stream(self.clone())
    }

    /// The refusal, after discarding what is left of the body (or with `Connection: close` when
    /// that is more than `DRAIN_BYTES`, or unreadable).
    pub(super) async fn refuse(self, error: StorageError) -> Response {
        let mut drained = 0usize;
        let mut rest = self;
        let finished = loop {
            match rest.next().await {
                None => break true,
                Some(Ok(chunk)) => {
                    drained += chunk.len();
                    if drained > DRAIN_BYTES {
                        break false;
                    }
                }
                Some(Err(_)) => break false,
            }
        };
        let mut response = error.into_response();
        if !finished {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut stream = match self.0.lock() {
            Ok(stream) => stream,
            Err(poisoned) => poisoned.into_inner(),
        };
        stream.poll_next_unpin(cx)
    }
}
