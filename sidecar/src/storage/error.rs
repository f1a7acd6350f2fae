//! What can go wrong in a storage operation, with Supabase Storage's codes. `http::storage::error`
//! turns these into responses.

use crate::auth::TokenError;
use crate::db::tx::TxError;
use crate::db::DbError;

use super::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("Bucket not found")]
    NoSuchBucket,
    #[error("Object not found")]
    NoSuchKey,
    #[error("The resource already exists")]
    KeyAlreadyExists,
    #[error("The resource already exists")]
    BucketAlreadyExists,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    #[error("Bucket name invalid")]
    InvalidBucketName,
    #[error("Invalid key: {0}")]
    InvalidKey(String),
    #[error("The object exceeded the maximum allowed size")]
    EntityTooLarge,
    #[error("mime type {0} is not supported")]
    InvalidMimeType(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Invalid JWT: {0}")]
    InvalidJwt(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    /// RLS or a missing privilege refused the statement; the message is Postgres's.
    #[error("{0}")]
    AccessDenied(String),
    #[error("The signature does not match the object")]
    InvalidSignature,
    #[error("Upload not found")]
    NoSuchUpload,
    /// A TUS PATCH from another offset than the upload's.
    #[error("the upload is at offset {expected}")]
    OffsetMismatch { expected: u64 },
    #[error("invalid range provided")]
    InvalidRange,
    /// Postgres refused the statement for another reason; its message is shown as PostgREST would.
    #[error("{0}")]
    Database(String),
    #[error("the database is unavailable")]
    Unavailable(#[source] DbError),
    #[error("storage backend failed")]
    Backend(#[source] BackendError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<TxError> for StorageError {
    fn from(err: TxError) -> Self {
        StorageError::from(err.error)
    }
}

impl From<DbError> for StorageError {
    fn from(err: DbError) -> Self {
        if err.is_unavailable() {
            return StorageError::Unavailable(err);
        }
        let message = err
            .server_error()
            .map(|db| db.message.to_owned())
            .unwrap_or_else(|| "database error".to_owned());
        match err.sqlstate() {
            // insufficient_privilege: RLS (`new row violates row-level security policy`) or a
            // missing grant.
            Some("42501") => StorageError::AccessDenied(message),
            Some("23505") => StorageError::KeyAlreadyExists,
            // The bucket named by an object does not exist.
            Some("23503") => StorageError::NoSuchBucket,
            Some(code) if code.starts_with("22") || code.starts_with("23") => {
                StorageError::InvalidRequest(message)
            }
            Some(_) => StorageError::Database(message),
            // Not raised by Postgres and not an outage: a bug of ours (a parameter of the wrong
            // type, say).
            None => StorageError::Internal(crate::error::describe(&err)),
        }
    }
}

impl From<BackendError> for StorageError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::TooLarge(_) => StorageError::EntityTooLarge,
            BackendError::NotFound => StorageError::NoSuchKey,
            BackendError::Body(message) => StorageError::InvalidRequest(message),
            err => StorageError::Backend(err),
        }
    }
}
