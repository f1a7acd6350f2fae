//! Signed URLs: `/object/sign/...` (download, one or many, expiring) and `/object/upload/sign/...`
//! (an upload URL, usable once). Signing needs what the URL will allow: read access to the object,
//! or the right to upload it.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request as HttpRequest, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::SharedBody;
use super::objects::store_request;
use super::{Call, StorageState};
use crate::storage::transform::Transform;
use crate::storage::{SignedUpload, StorageError, UploadMode};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignBody {
    expires_in: Option<i64>,
    paths: Option<Vec<String>>,
    /// A transformation: the URL then opens `/render/image/sign/...` with it.
    transform: Option<Transform>,
}

fn expires_in(body: &SignBody) -> Result<u64, StorageError> {
    match body.expires_in {
        Some(seconds) if seconds > 0 => Ok(seconds as u64),
        _ => Err(StorageError::InvalidRequest(
            "expiresIn must be a positive number of seconds".to_owned(),
        )),
    }
}

fn parse(body: &Bytes) -> Result<SignBody, StorageError> {
    serde_json::from_slice(body)
        .map_err(|err| StorageError::InvalidRequest(format!("invalid body: {err}")))
}

/// `POST /object/sign/{bucket}/{name}` `{expiresIn}` → `{signedURL}`.
pub(super) async fn sign_one(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let body = parse(&body)?;
    let seconds = expires_in(&body)?;
    state
        .storage
        .head(call.request(), &bucket, &name, false)
        .await?;
    let url = format!("{bucket}/{name}");
    let transform = body.transform.map(Transform::check).transpose()?;
    let route = if transform.is_some() {
        "render/image/sign"
    } else {
        "object/sign"
    };
    let token = state
        .storage
        .signer()
        .sign_download(&url, seconds, transform)?;
    Ok(Json(
        json!({ "signedURL": format!("/{route}/{url}?token={token}") }),
    ))
}

/// `POST /object/sign/{bucket}` `{expiresIn, paths}` → one entry per path, with an error for
/// those the caller cannot read.
pub(super) async fn sign_many(
    State(state): State<StorageState>,
    Path(bucket): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, StorageError> {
    let call = Call::new(&state, method, &uri, headers)?;
    let body = parse(&body)?;
    let seconds = expires_in(&body)?;
    let paths = body.paths.clone().unwrap_or_default();
    if paths.is_empty() || paths.len() > 1000 {
        return Err(StorageError::InvalidRequest(
            "paths must list 1 to 1000 names".to_owned(),
        ));
    }
    let readable = state
        .storage
        .readable(call.request(), &bucket, &paths)
        .await?;
    let mut signed = Vec::with_capacity(paths.len());
    for path in paths {
        if readable.contains(&path) {
            let url = format!("{bucket}/{path}");
            let token = state.storage.signer().sign_download(&url, seconds, None)?;
            signed.push(json!({
                "error": null,
                "path": path,
                "signedURL": format!("/object/sign/{url}?token={token}"),
            }));
        } else {
            signed.push(json!({
                "error": "Either the object does not exist or you do not have access to it",
                "path": path,
                "signedURL": null,
            }));
        }
    }
    Ok(Json(Value::Array(signed)))
}

/// `POST /object/upload/sign/{bucket}/{name}` → `{url, token}`; `x-upsert: true` lets it replace.
pub(super) async fn sign_upload(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let upsert = headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let call = Call::new(&state, method, &uri, headers)?;
    state
        .storage
        .may_upload(call.request(), &bucket, &name, upsert)
        .await?;
    let owner = call
        .identity
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let url = format!("{bucket}/{name}");
    let token = state.storage.signer().sign_upload(&url, owner, upsert)?;
    Ok(Json(json!({
        "url": format!("/object/upload/sign/{url}?token={token}"),
        "token": token,
    })))
}

/// `PUT /object/upload/sign/{bucket}/{name}?token=`: the upload the token allows, once.
pub(super) async fn upload_signed(
    State(state): State<StorageState>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    request: HttpRequest,
) -> Result<Json<Value>, Response> {
    let signed = match signed_upload(&state, &bucket, &name, &query) {
        Ok(signed) => signed,
        Err(err) => {
            let (_, body) = request.into_parts();
            return Err(SharedBody::new(body).refuse(err).await);
        }
    };
    let mode = if signed.upsert {
        UploadMode::Upsert
    } else {
        UploadMode::Create
    };
    store_request(&state, &bucket, &name, mode, Some(signed), request).await?;
    Ok(Json(json!({ "Key": format!("{bucket}/{name}") })))
}

/// What the request's token allows, if it is genuine, current and for this object.
fn signed_upload(
    state: &StorageState,
    bucket: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<SignedUpload, StorageError> {
    let token = query
        .get("token")
        .ok_or_else(|| StorageError::InvalidRequest("Missing token".to_owned()))?;
    let claims = state
        .storage
        .signer()
        .verify_upload(token, &format!("{bucket}/{name}"))?;
    Ok(SignedUpload {
        owner: claims.owner,
        upsert: claims.upsert,
        token_id: claims.jti.ok_or(StorageError::InvalidSignature)?,
        expires: claims.exp,
    })
}
