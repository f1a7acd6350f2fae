//! `/render/image/{authenticated|public|sign}/{bucket}/{name}`: an image object transformed
//! (`crate::storage::transform`), with the same access rules as the matching download route.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{open_signed, Call, StorageState};
use crate::storage::transform::Transform;
use crate::storage::{ObjectHead, StorageError};

type Params = Query<HashMap<String, String>>;

async fn respond(
    state: &StorageState,
    bucket: &str,
    name: &str,
    head: ObjectHead,
    transform: &Transform,
) -> Result<Response, StorageError> {
    let (stream, content_type) = state.storage.render(bucket, name, &head, transform).await?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(cache) = head
        .field("cacheControl")
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(CACHE_CONTROL, cache);
    }
    Ok((StatusCode::OK, headers, Body::from_stream(stream)).into_response())
}

pub(super) async fn authenticated(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let transform = Transform::from_query(&query)?;
    let call = Call::new(&state, method, &uri, headers)?;
    let head = state
        .storage
        .head(call.request(), &bucket, &name, false)
        .await?;
    respond(&state, &bucket, &name, head, &transform).await
}

pub(super) async fn public(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let transform = Transform::from_query(&query)?;
    let call = Call::new(&state, method, &uri, headers)?;
    let head = state
        .storage
        .head(call.request(), &bucket, &name, true)
        .await?;
    respond(&state, &bucket, &name, head, &transform).await
}

/// A signed URL made with a transformation: the token carries it.
pub(super) async fn signed(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Params,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let (claims, _, head) =
        open_signed(&state, &bucket, &name, &query, method, &uri, headers).await?;
    let transform = claims.transform.unwrap_or_default().check()?;
    respond(&state, &bucket, &name, head, &transform).await
}
