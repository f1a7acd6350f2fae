//! Bounds on a request's head (its URL and headers), answered with the usual JSON error body.
//!
//! hyper refuses what it cannot buffer or represent itself: a request target over 65,534 bytes
//! (`MAX_URI_LEN` in hyper's `proto/h1/role.rs`, not configurable) with 414, more than 100 headers
//! or a head over its read buffer (about 400 KiB) with 431. It writes those answers itself, with an
//! empty body and before any handler runs, so a client cannot tell why. The bounds here are well
//! inside hyper's, so a request over them reaches this layer and gets `{code, message, details,
//! hint}`; only a head beyond hyper's own limits still gets hyper's bare status.

use axum::extract::Request;
use axum::http::{HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// The longest request target (path and query string) served. A long filter list is the usual
/// reason for a long URL; 16 KiB holds hundreds of filters, and twice what most proxies pass.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// The most headers, and their total size (names and values), in one request.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The middleware: refuses a request whose head is over a bound before any route sees it.
pub(super) async fn bound_request_head(request: Request, next: Next) -> Response {
    match check(request.uri(), request.headers()) {
        Err(err) => err.into_response(),
        Ok(()) => next.run(request).await,
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
