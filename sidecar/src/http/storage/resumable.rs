//! `/upload/resumable`: TUS 1.0.0 (core, creation, termination) as tus-js-client and Uppy use it
//! against Supabase. `Upload-Metadata` names the target: `bucketName`, `objectName`,
//! `contentType`, `cacheControl`, `metadata` (JSON). Errors carry their real HTTP status here (TUS
//! clients act on it: 409 means "ask for the offset again"), in Supabase's body shape.

use axum::body::Body;
use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::Value;

use super::body::SharedBody;
use super::error::with_real_status;
use super::{Call, StorageState};
use crate::storage::resumable::NewUpload;
use crate::storage::StorageError;

const TUS_VERSION: &str = "1.0.0";

fn tus_headers(headers: &mut HeaderMap) {
    headers.insert(
        HeaderName::from_static("tus-resumable"),
        HeaderValue::from_static(TUS_VERSION),
    );
}

fn reply(status: StatusCode, extra: &[(&'static str, String)]) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    tus_headers(headers);
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

fn failed(err: StorageError) -> Response {
    let mut response = with_real_status(err);
    tus_headers(response.headers_mut());
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// `Upload-Metadata`: `key base64value` pairs separated by commas.
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, StorageError> {
    let Some(raw) = header(headers, "upload-metadata") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let mut parts = pair.trim().splitn(2, ' ');
            let key = parts.next().unwrap_or("").to_owned();
            let value = match parts.next() {
                Some(encoded) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .map_err(|_| {
                            StorageError::InvalidRequest(format!(
                                "Upload-Metadata {key} is not base64"
                            ))
                        })?;
                    String::from_utf8(bytes).map_err(|_| {
                        StorageError::InvalidRequest(format!("Upload-Metadata {key} is not UTF-8"))
                    })?
                }
                None => String::new(),
            };
            Ok((key, value))
        })
        .collect()
}

/// `OPTIONS`: what this server speaks.
pub(super) async fn options() -> Response {
    reply(
        StatusCode::NO_CONTENT,
        &[
            ("tus-version", TUS_VERSION.to_owned()),
            ("tus-extension", "creation,termination".to_owned()),
        ],
    )
}

/// `POST`: creates an upload of `Upload-Length` bytes.
pub(super) async fn create(State(state): State<StorageState>, request: HttpRequest) -> Response {
    let (parts, _) = request.into_parts();
    let created = async {
        let call = Call::new(
            &state,
            parts.method.clone(),
            &parts.uri,
            parts.headers.clone(),
        )?;
        let length: u64 = header(&parts.headers, "upload-length")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| StorageError::InvalidRequest("Upload-Length is required".to_owned()))?;
        let fields = metadata(&parts.headers)?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let user_metadata =
            match field("metadata") {
                Some(text) => Some(serde_json::from_str::<Value>(&text).map_err(|_| {
                    StorageError::InvalidRequest("metadata must be JSON".to_owned())
                })?),
                None => None,
            };
        let cache_control = field("cacheControl").unwrap_or_else(|| "3600".to_owned());
        let upload = NewUpload {
            bucket: field("bucketName")
                .ok_or_else(|| StorageError::InvalidRequest("bucketName is required".to_owned()))?,
            name: field("objectName")
                .ok_or_else(|| StorageError::InvalidRequest("objectName is required".to_owned()))?,
            length,
            upsert: header(&parts.headers, "x-upsert")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            content_type: field("contentType")
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            cache_control: if cache_control.chars().all(|c| c.is_ascii_digit()) {
                format!("max-age={cache_control}")
            } else {
                cache_control
            },
            user_metadata,
        };
        state.storage.create_resumable(call.request(), upload).await
    }
    .await;
    match created {
        Ok(id) => reply(
            StatusCode::CREATED,
            &[("location", format!("/storage/v1/upload/resumable/{id}"))],
        ),
        Err(err) => failed(err),
    }
}

/// `HEAD`: the offset to resume from.
pub(super) async fn offset(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    request: HttpRequest,
) -> Response {
    let (parts, _) = request.into_parts();
    let found = async {
        let call = Call::new(
            &state,
            parts.method.clone(),
            &parts.uri,
            parts.headers.clone(),
        )?;
        state.storage.resumable(call.request(), &id).await
    }
    .await;
    match found {
        Ok(upload) => {
            let mut response = reply(
                StatusCode::OK,
                &[
                    ("upload-offset", upload.offset.to_string()),
                    ("upload-length", upload.length.to_string()),
                ],
            );
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        // HEAD answers carry no body; the status says it.
        Err(err) => {
            let status = with_real_status(err).status();
            reply(status, &[])
        }
    }
}

/// `PATCH`: bytes from `Upload-Offset`.
pub(super) async fn append(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    request: HttpRequest,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = SharedBody::new(body);
    let appended = async {
        let call = Call::new(
            &state,
            parts.method.clone(),
            &parts.uri,
            parts.headers.clone(),
        )?;
        if header(&parts.headers, CONTENT_TYPE.as_str()) != Some("application/offset+octet-stream")
        {
            return Err(StorageError::InvalidRequest(
                "Content-Type must be application/offset+octet-stream".to_owned(),
            ));
        }
        let offset: u64 = header(&parts.headers, "upload-offset")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| StorageError::InvalidRequest("Upload-Offset is required".to_owned()))?;
        state
            .storage
            .append(call.request(), &id, offset, body.clone())
            .await
    }
    .await;
    match appended {
        Ok(offset) => reply(
            StatusCode::NO_CONTENT,
            &[("upload-offset", offset.to_string())],
        ),
        Err(err) => {
            let refused = body.refuse(StorageError::NoSuchUpload).await;
            let mut response = failed(err);
            if let Some(close) = refused.headers().get(axum::http::header::CONNECTION) {
                response
                    .headers_mut()
                    .insert(axum::http::header::CONNECTION, close.clone());
            }
            response
        }
    }
}

/// `DELETE`: abandons the upload.
pub(super) async fn cancel(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    request: HttpRequest,
) -> Response {
    let (parts, _) = request.into_parts();
    let cancelled = async {
        let call = Call::new(
            &state,
            parts.method.clone(),
            &parts.uri,
            parts.headers.clone(),
        )?;
        state.storage.cancel_resumable(call.request(), &id).await
    }
    .await;
    match cancelled {
        Ok(()) => reply(StatusCode::NO_CONTENT, &[]),
        Err(err) => failed(err),
    }
}
