//! Downloads: `/object/{bucket}/{name}` and `/object/authenticated/...` (the caller's SELECT
//! policy decides), `/object/public/...` (public buckets), `/object/sign/...?token=` (a signed
//! URL). `Range` (206, 416), `If-None-Match` (304), the stored Content-Type, Cache-Control and ETag,
//! and `?download=` for an attachment.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{open_signed, Call, StorageState};
use crate::storage::{ObjectHead, StorageError};

type Params = Query<HashMap<String, String>>;

pub(super) async fn authenticated(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let head = state
        .storage
        .head(call.request(), &bucket, &name, false)
        .await?;
    respond(&state, &call, &bucket, &name, head, &query).await
}

pub(super) async fn public(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let head = state
        .storage
        .head(call.request(), &bucket, &name, true)
        .await?;
    respond(&state, &call, &bucket, &name, head, &query).await
}

pub(super) async fn signed(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let (_, call, head) =
        open_signed(&state, &bucket, &name, &query, method, &uri, headers).await?;
    respond(&state, &call, &bucket, &name, head, &query).await
}

/// A `Range: bytes=...` header against an object of `size` bytes: `Ok(None)` serves it whole (no
/// header, or one we do not serve, such as several ranges); `Err` is unsatisfiable.
fn range(headers: &HeaderMap, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(value) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let suffix: u64 = end.parse().map_err(|_| ())?;
            if suffix == 0 {
                return Err(());
            }
            size.saturating_sub(suffix)..size
        }
        (false, _) => {
            let start: u64 = start.parse().map_err(|_| ())?;
            let end = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                end.parse::<u64>()
                    .map_err(|_| ())?
                    .min(size.saturating_sub(1))
            };
            if start > end {
                return Err(());
            }
            start..end + 1
        }
        (true, true) => return Ok(None),
    };
    if parsed.start >= size {
        return Err(());
    }
    Ok(Some(parsed))
}

fn value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

/// RFC 6266's `filename*` for any name, plus a plain ASCII fallback.
fn disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn respond(
    state: &StorageState,
    call: &Call,
    bucket: &str,
    name: &str,
    head: ObjectHead,
    query: &HashMap<String, String>,
) -> Result<Response, StorageError> {
    let size = head.size();
    let mut response_headers = HeaderMap::new();
    let etag = head.field("eTag").map(str::to_owned);
    if let Some(etag) = etag.as_deref().and_then(value) {
        response_headers.insert(ETAG, etag);
    }
    if let Some(cache) = head.field("cacheControl").and_then(value) {
        response_headers.insert(CACHE_CONTROL, cache);
    }
    if let Some(modified) = head.field("lastModified").and_then(value) {
        response_headers.insert(LAST_MODIFIED, modified);
    }
    response_headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let content_type = head.field("mimetype").unwrap_or("application/octet-stream");
    response_headers.insert(
        CONTENT_TYPE,
        value(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Some(download) = query.get("download") {
        let filename = if download.is_empty() {
            name.rsplit('/').next().unwrap_or(name)
        } else {
            download.as_str()
        };
        if let Some(header) = value(&disposition(filename)) {
            response_headers.insert(CONTENT_DISPOSITION, header);
        }
    }

    // A cached copy that is still current.
    if let (Some(etag), Some(wanted)) = (etag.as_deref(), call.headers.get(IF_NONE_MATCH)) {
        let wanted = wanted.to_str().unwrap_or("");
        let matches = wanted
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag);
        if matches {
            return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
        }
    }

    let range = match range(&call.headers, size) {
        Ok(range) => range,
        Err(()) => {
            let mut headers = HeaderMap::new();
            if let Some(header) = value(&format!("bytes */{size}")) {
                headers.insert(CONTENT_RANGE, header);
            }
            let body = serde_json::json!({
                "statusCode": "416",
                "code": "InvalidRange",
                "error": "invalid_range",
                "message": "invalid range provided",
            });
            return Ok(
                (StatusCode::RANGE_NOT_SATISFIABLE, headers, axum::Json(body)).into_response(),
            );
        }
    };
    let (status, length) = match &range {
        Some(range) => {
            if let Some(header) = value(&format!("bytes {}-{}/{size}", range.start, range.end - 1))
            {
                response_headers.insert(CONTENT_RANGE, header);
            }
            (StatusCode::PARTIAL_CONTENT, range.end - range.start)
        }
        None => (StatusCode::OK, size),
    };
    response_headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    if call.method == Method::HEAD {
        return Ok((status, response_headers).into_response());
    }
    let stream = state.storage.open(bucket, name, &head, range).await?;
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_range(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(range(&with_range("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(range(&with_range("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(range(&with_range("bytes=-5"), 100), Ok(Some(95..100)));
        assert_eq!(range(&with_range("bytes=95-200"), 100), Ok(Some(95..100)));
        assert_eq!(range(&with_range("bytes=100-"), 100), Err(()));
        assert_eq!(range(&with_range("bytes=5-1"), 100), Err(()));
        assert_eq!(range(&with_range("bytes=0-1,3-4"), 100), Ok(None));
        assert_eq!(range(&HeaderMap::new(), 100), Ok(None));
    }
}
