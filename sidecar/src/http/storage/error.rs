//! Storage errors as Supabase Storage answers them: `{statusCode, code, error, message}` where
//! `statusCode` is the real status as a string, and the HTTP status is 400 for every client error
//! (500 for server errors), which storage-js relies on (`exists()` treats 400 and 404 as "no").
//! The exceptions are HTTP-level answers that are not errors of the API: 416 for a range past the
//! end (with `Content-Range`), handled by the download route itself.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::TokenError;
use crate::error::describe;
use crate::storage::StorageError;

/// The status Supabase puts in the body, its code, and its `error` text.
fn classify(err: &StorageError) -> (u16, &'static str, &'static str) {
    match err {
        StorageError::NoSuchBucket => (404, "NoSuchBucket", "Bucket not found"),
        StorageError::NoSuchKey => (404, "NoSuchKey", "not_found"),
        StorageError::KeyAlreadyExists => (409, "KeyAlreadyExists", "Duplicate"),
        StorageError::BucketAlreadyExists => (409, "BucketAlreadyExists", "Duplicate"),
        StorageError::BucketNotEmpty => (409, "ResourceNotEmpty", "ResourceNotEmpty"),
        StorageError::InvalidBucketName => (400, "InvalidBucketName", "Invalid Input"),
        StorageError::InvalidKey(_) => (400, "InvalidKey", "InvalidKey"),
        StorageError::EntityTooLarge => (413, "EntityTooLarge", "Payload too large"),
        StorageError::InvalidMimeType(_) => (415, "InvalidMimeType", "invalid_mime_type"),
        StorageError::InvalidRequest(_) => (400, "InvalidRequest", "InvalidRequest"),
        StorageError::InvalidJwt(_) => (400, "InvalidJWT", "InvalidJWT"),
        StorageError::Token(TokenError::TokenRequired) => (400, "InvalidJWT", "InvalidJWT"),
        StorageError::Token(_) => (400, "InvalidJWT", "InvalidJWT"),
        StorageError::InvalidSignature => (400, "InvalidSignature", "InvalidSignature"),
        StorageError::AccessDenied(_) => (403, "AccessDenied", "Unauthorized"),
        StorageError::InvalidRange => (400, "InvalidRange", "invalid_range"),
        StorageError::NoSuchUpload => (404, "NoSuchUpload", "not_found"),
        StorageError::OffsetMismatch { .. } => (409, "TusError", "Conflict"),
        StorageError::Database(_) => (400, "DatabaseError", "DatabaseError"),
        StorageError::Unavailable(_) => (503, "DatabaseError", "DatabaseError"),
        StorageError::Backend(_) | StorageError::Internal(_) => (500, "InternalError", "internal"),
    }
}

/// The HTTP status of a body status, as Supabase's error handler chooses it.
fn http_status(status: u16) -> StatusCode {
    if status >= 500 {
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        StatusCode::BAD_REQUEST
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        respond(self, false)
    }
}

/// The error with its real status as the HTTP status (the TUS routes: TUS clients act on it).
pub(super) fn with_real_status(err: StorageError) -> Response {
    respond(err, true)
}

fn respond(err: StorageError, real_status: bool) -> Response {
    {
        let this = err;
        let (status, code, error) = classify(&this);
        let message = if status >= 500 {
            tracing::error!("storage: {}", describe(&this));
            match this {
                StorageError::Unavailable(_) => "The database is unavailable".to_owned(),
                _ => "Internal server error".to_owned(),
            }
        } else {
            this.to_string()
        };
        let body = json!({
            "statusCode": status.to_string(),
            "code": code,
            "error": error,
            "message": message,
        });
        let http = if real_status {
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST)
        } else {
            http_status(status)
        };
        (http, Json(body)).into_response()
    }
}
