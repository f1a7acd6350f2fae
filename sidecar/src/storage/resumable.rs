//! Resumable uploads (the TUS protocol, as tus-js-client and Uppy speak it): an upload is created
//! with its length and target, then sent in PATCHes from an offset. Its progress lives in
//! `storage.sluice_uploads` and each PATCH's bytes in a part of its own in the backend
//! (`tus~uploads/<id>/<n>`), so any sidecar can answer the next HEAD or PATCH. When the last byte
//! arrives, the parts become the object through the ordinary upload (the caller's INSERT policy
//! decides, as for any upload), and the parts and the progress row go.
//!
//! A PATCH that breaks off keeps nothing: its part is removed and the offset stays where the last
//! whole PATCH left it, which is what the client resumes from.

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{key, new_id, sql, Request, Storage, StorageError, UploadMeta, UploadMode};
use crate::db::tx::{Access, End, Statement};

/// The first key part of upload parts: not a valid bucket id, so never an object's key.
pub const PARTS_PREFIX: &str = "tus~uploads";

/// An upload in progress.
#[derive(Debug, Clone)]
pub struct Resumable {
    pub id: String,
    pub bucket: String,
    pub name: String,
    role: String,
    owner: Option<String>,
    pub length: u64,
    pub offset: u64,
    parts: i32,
    upsert: bool,
    content_type: String,
    cache_control: String,
    user_metadata: Option<Value>,
}

/// What creating an upload needs.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub bucket: String,
    pub name: String,
    pub length: u64,
    pub upsert: bool,
    pub content_type: String,
    pub cache_control: String,
    pub user_metadata: Option<Value>,
}

fn part_key<'a>(id: &'a str, part: &'a str) -> [&'a str; 3] {
    [PARTS_PREFIX, id, part]
}

fn part_name(index: i32) -> String {
    format!("{index:08}")
}

impl Storage {
    async fn service(
        &self,
        request: Request<'_>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StorageError> {
        let mut rows = self
            .run(
                request,
                true,
                "storage.object.upload_resumable",
                Access::ReadWrite,
                End::Commit,
                &[Statement { sql, params }],
            )
            .await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Creates an upload after the checks an upload of that object would pass now (the caller's
    /// policies, the bucket's rules); returns its id.
    pub async fn create_resumable(
        &self,
        request: Request<'_>,
        upload: NewUpload,
    ) -> Result<String, StorageError> {
        key::check_bucket(&upload.bucket)?;
        key::check_name(&upload.name)?;
        let mode = if upload.upsert {
            UploadMode::Upsert
        } else {
            UploadMode::Create
        };
        let statement = sql::insert_object(upload.upsert);
        let rules = self
            .check_upload(
                request,
                false,
                &upload.bucket,
                &upload.name,
                mode,
                &request.owner(),
                &statement,
            )
            .await?;
        self.apply_rules(rules, &upload.content_type, Some(upload.length))?;
        let id = new_id()?;
        let length = i64::try_from(upload.length).map_err(|_| StorageError::EntityTooLarge)?;
        let owner = request.owner();
        let params: [&(dyn ToSql + Sync); 10] = [
            &id,
            &upload.bucket,
            &upload.name,
            &request.identity.role,
            &owner,
            &length,
            &upload.upsert,
            &upload.content_type,
            &upload.cache_control,
            &upload.user_metadata,
        ];
        self.service(request, sql::CREATE_RESUMABLE, &params)
            .await?;
        Ok(id)
    }

    /// The upload `id`, if the caller is the one who created it.
    pub async fn resumable(
        &self,
        request: Request<'_>,
        id: &str,
    ) -> Result<Resumable, StorageError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(StorageError::NoSuchUpload);
        }
        let params: [&(dyn ToSql + Sync); 1] = [&id];
        let rows = self
            .service(request, sql::SELECT_RESUMABLE, &params)
            .await?;
        let row = rows.first().ok_or(StorageError::NoSuchUpload)?;
        let upload = Resumable {
            id: id.to_owned(),
            bucket: row.get(0),
            name: row.get(1),
            role: row.get(2),
            owner: row.get(3),
            length: u64::try_from(row.get::<_, i64>(4)).unwrap_or(0),
            offset: u64::try_from(row.get::<_, i64>(5)).unwrap_or(0),
            parts: row.get(6),
            upsert: row.get(7),
            content_type: row.get(8),
            cache_control: row.get(9),
            user_metadata: row.get(10),
        };
        if upload.role != request.identity.role || upload.owner != request.owner() {
            return Err(StorageError::AccessDenied(
                "the upload belongs to someone else".to_owned(),
            ));
        }
        Ok(upload)
    }

    /// Appends `body` at `offset`; returns the new offset. The last bytes complete the object.
    pub async fn append<S, E>(
        &self,
        request: Request<'_>,
        id: &str,
        offset: u64,
        body: S,
    ) -> Result<u64, StorageError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let upload = self.resumable(request, id).await?;
        if offset != upload.offset {
            return Err(StorageError::OffsetMismatch {
                expected: upload.offset,
            });
        }
        let part = part_name(upload.parts);
        let key = part_key(id, &part);
        let written = self
            .backend
            .put(&key, body, upload.length - upload.offset)
            .await?;
        let new_offset = upload.offset + written.size;
        let params: [&(dyn ToSql + Sync); 3] = [&id, &(upload.offset as i64), &(new_offset as i64)];
        let moved = self.service(request, sql::ADVANCE_RESUMABLE, &params).await;
        if !matches!(&moved, Ok(rows) if !rows.is_empty()) {
            // Another PATCH got there first (or the upload went): this part is not counted.
            self.remove_bytes(&key).await;
            moved?;
            return Err(StorageError::OffsetMismatch {
                expected: upload.offset,
            });
        }
        if new_offset == upload.length {
            self.complete(request, upload, new_offset).await?;
        }
        Ok(new_offset)
    }

    /// The parts, in order, become the object.
    async fn complete(
        &self,
        request: Request<'_>,
        upload: Resumable,
        length: u64,
    ) -> Result<(), StorageError> {
        let parts = upload.parts + 1;
        let names: Vec<String> = (0..parts).map(part_name).collect();
        let backend = self.backend.clone();
        let id = upload.id.clone();
        let body = stream::iter(names.clone())
            .then(move |part| {
                let backend = backend.clone();
                let id = id.clone();
                async move { backend.get(&part_key(&id, &part), None).await }
            })
            .map_err(|err| std::io::Error::other(err.to_string()))
            .try_flatten()
            .boxed();
        let mode = if upload.upsert {
            UploadMode::Upsert
        } else {
            UploadMode::Create
        };
        let meta = UploadMeta {
            content_type: upload.content_type.clone(),
            cache_control: upload.cache_control.clone(),
            user_metadata: upload.user_metadata.clone(),
            content_length: Some(length),
        };
        self.upload(
            request,
            &upload.bucket,
            &upload.name,
            mode,
            meta,
            None,
            body,
        )
        .await?;
        self.discard_resumable(request, &upload.id, parts).await
    }

    /// Removes the upload's progress, then its parts.
    async fn discard_resumable(
        &self,
        request: Request<'_>,
        id: &str,
        parts: i32,
    ) -> Result<(), StorageError> {
        let params: [&(dyn ToSql + Sync); 1] = [&id];
        self.service(request, sql::DELETE_RESUMABLE, &params)
            .await?;
        for index in 0..parts {
            let part = part_name(index);
            self.remove_bytes(&part_key(id, &part)).await;
        }
        Ok(())
    }

    /// `DELETE`: the upload is abandoned.
    pub async fn cancel_resumable(
        &self,
        request: Request<'_>,
        id: &str,
    ) -> Result<(), StorageError> {
        let upload = self.resumable(request, id).await?;
        self.discard_resumable(request, id, upload.parts).await
    }
}
