//! Bounds on a request's head (its URL and headers), answered with the usual JSON error body.
//!
//! hyper refuses what it cannot buffer or represent itself: a request target over 65,534 bytes
//! (`MAX_URI_LEN` in hyper's `proto/h1/role.rs`, not configurable) with 414, more than 100 headers
//! or a head over its read buffer (about 400 KiB) with 431. It writes those answers itself, with an
//! empty body and before any handler runs, so a client cannot tell why. The bounds here are well
//! inside hyper's, so a request over them reaches this layer and gets `{code, message, details,
//! hint}`; only a head beyond hyper's own limits still gets hyper's bare status.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::{ready, Either, Ready};
use tower::{Layer, Service};

use crate::http::error::ApiError;

/// The longest request target (path and query string) served. A long filter list is the usual
/// reason for a long URL; 16 KiB holds hundreds of filters, and twice what most proxies pass.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// The most headers, and their total size (names and values), in one request.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The middleware: refuses a request whose head is over a bound before any route sees it. A
/// plain service around the router: a request within the bounds goes on with no clone and no
/// boxed future.
#[derive(Debug, Clone, Copy)]
pub(super) struct BoundRequestHeadLayer;

impl<S> Layer<S> for BoundRequestHeadLayer {
    type Service = BoundRequestHead<S>;

    fn layer(&self, inner: S) -> BoundRequestHead<S> {
        BoundRequestHead { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct BoundRequestHead<S> {
    inner: S,
}

impl<S> Service<Request> for BoundRequestHead<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match check(request.uri(), request.headers()) {
            Err(err) => Either::Right(ready(Ok(err.into_response()))),
            Ok(()) => Either::Left(self.inner.call(request)),
        }
    }
}

fn check(uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let target = uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong {
            length: target,
            limit: MAX_URI_BYTES,
        });
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            count: headers.len(),
            bytes,
        });
    }
    Ok(())
}
