//! Storage: files whose metadata lives in `storage.objects` under RLS and whose bytes live in a
//! backend (`backend`: a local directory or S3).
//!
//! Metadata decides, bytes follow. Every operation first runs its statement on storage.objects as
//! the caller (role and claims, with `storage.operation()` set), so the policies allow or refuse
//! it; bytes move only when they did. Bytes are addressed by `<bucket>/<name>/<version>`, and a
//! new version is written before the row that names it commits:
//!
//! - upload: check the statement in a rolled-back transaction (so a refused upload streams
//!   nothing), stream the bytes to a fresh version and make them durable, commit the row naming
//!   it, then remove the version it replaced. A crash before the commit leaves a version no row
//!   names; after it, an old version no row names. Never a row without its bytes.
//! - delete: commit the row's deletion, then remove the bytes; a crash in between leaves bytes no
//!   row names.
//! - `sweep` removes keys that no row names and that are older than a grace period (younger ones
//!   may be uploads whose row is about to commit).
//!
//! `http::storage` holds the routes; this module knows nothing of HTTP beyond the request's
//! identity, method, path and headers that the transaction records.

pub mod backend;
pub mod error;
pub mod key;
pub mod resumable;
pub mod sql;
pub mod token;
pub mod transform;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::auth::Identity;
use crate::db::tx::{self, Access, Caller, End, RequestContext, Statement};
use crate::db::Pool;

pub use backend::{Backend, BackendError, ByteStream};
pub use error::StorageError;
use token::Signer;

const SERVICE_ROLE: &str = "service_role";

/// The request an operation runs for: who, and what the transaction records of it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub identity: &'a Identity,
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl Request<'_> {
    /// The caller's `sub`, the owner of what they create.
    fn owner(&self) -> Option<String> {
        self.identity
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// How an upload treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// `POST`: a new object; an existing one is a conflict.
    Create,
    /// `POST` with `x-upsert: true`: create or replace.
    Upsert,
    /// `PUT`: replace an existing object.
    Update,
}

/// What an upload says about its bytes.
#[derive(Debug, Clone)]
pub struct UploadMeta {
    pub content_type: String,
    pub cache_control: String,
    pub user_metadata: Option<Value>,
    /// The declared length, when known: a body declared too large is refused before it is read.
    pub content_length: Option<u64>,
}

/// A stored object, as a download needs it.
#[derive(Debug, Clone)]
pub struct ObjectHead {
    pub version: String,
    /// Supabase's `metadata`: eTag, size, mimetype, cacheControl, lastModified...
    pub metadata: Value,
}

impl ObjectHead {
    pub fn size(&self) -> u64 {
        self.metadata
            .get("size")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.metadata.get(name).and_then(Value::as_str)
    }
}

/// A signed upload: who signed it and what it allows.
#[derive(Debug, Clone)]
pub struct SignedUpload {
    pub owner: Option<String>,
    pub upsert: bool,
    pub token_id: String,
    pub expires: u64,
}

/// The storage service: the backend, the URL signer, and the pool its statements run on.
pub struct Storage {
    backend: Backend,
    signer: Signer,
    pool: Pool,
    /// The largest upload accepted at all (a bucket may set less).
    pub max_file_bytes: u64,
    /// How many backend keys (and multipart records) one pass of the sweep reads.
    pub sweep_page: usize,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Keys no row names, removed.
    pub removed: usize,
    /// Interrupted S3 multipart uploads, aborted.
    pub aborted: usize,
    /// Passes (pages of keys and of multipart records) it took.
    pub passes: usize,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A fresh random id (uuid v4).
pub fn new_id() -> Result<String, StorageError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| StorageError::Internal(err.to_string()))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// The backend key of a version of an object.
pub(crate) fn object_key<'a>(bucket: &'a str, name: &'a str, version: &'a str) -> Vec<&'a str> {
    let mut key = Vec::with_capacity(3);
    key.push(bucket);
    key.extend(name.split('/'));
    key.push(version);
    key
}

/// Whether `mime` is one of `allowed` (entries may end with `/*`).
pub fn mime_allowed(allowed: &[String], mime: &str) -> bool {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    allowed.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_suffix("/*") {
            Some(kind) => essence.split('/').next() == Some(kind),
            None => pattern == "*/*" || pattern == "*" || pattern == essence,
        }
    })
}

impl Storage {
    pub fn new(backend: Backend, jwt_secret: &[u8], pool: Pool) -> Storage {
        Storage {
            backend: backend.with_journal(pool.clone()),
            signer: Signer::new(jwt_secret),
            pool,
            max_file_bytes: 50 * 1024 * 1024 * 1024,
            sweep_page: 1000,
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Runs `sql` as the request's caller (or as service_role when `service`), with
    /// `storage.operation()` set to `operation`; returns its rows.
    pub async fn run(
        &self,
        request: Request<'_>,
        service: bool,
        operation: &str,
        access: Access,
        end: End,
        statements: &[Statement<'_>],
    ) -> Result<Vec<Vec<Row>>, StorageError> {
        let service_claims = json!({"role": SERVICE_ROLE}).to_string();
        let caller = if service {
            Caller {
                role: SERVICE_ROLE,
                claims: &service_claims,
                anonymous: false,
            }
        } else {
            Caller {
                role: &request.identity.role,
                claims: &request.identity.claims_text,
                anonymous: request.identity.is_anonymous(),
            }
        };
        let mut context =
            RequestContext::new(caller, request.method, request.path, request.headers);
        context.access = access;
        context.end = end;
        let set: [&(dyn ToSql + Sync); 1] = [&operation];
        let mut all = Vec::with_capacity(statements.len() + 1);
        all.push(Statement {
            sql: sql::SET_OPERATION,
            params: &set,
        });
        all.extend_from_slice(statements);
        let client = self.pool.get().await.map_err(crate::db::DbError::from)?;
        let mut rows = tx::run(&client, &context, &all).await?;
        rows.remove(0);
        Ok(rows)
    }

    /// One statement; its rows.
    pub async fn run_one(
        &self,
        request: Request<'_>,
        operation: &str,
        access: Access,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StorageError> {
        let mut rows = self
            .run(
                request,
                false,
                operation,
                access,
                End::Commit,
                &[Statement { sql, params }],
            )
            .await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Uploads `body` as `bucket`/`name`; returns the object's id. `signed`: an upload through a
    /// signed URL, which runs as service_role with the signer as owner, once.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload<S, E>(
        &self,
        request: Request<'_>,
        bucket: &str,
        name: &str,
        mode: UploadMode,
        meta: UploadMeta,
        signed: Option<SignedUpload>,
        body: S,
    ) -> Result<String, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        key::check_bucket(bucket)?;
        key::check_name(name)?;
        let operation = match mode {
            UploadMode::Update => "storage.object.upload_update",
            _ => "storage.object.upload",
        };
        let service = signed.is_some();
        let owner = match &signed {
            Some(signed) => signed.owner.clone(),
            None => request.owner(),
        };
        let statement = match mode {
            UploadMode::Create => sql::insert_object(false),
            UploadMode::Upsert => sql::insert_object(true),
            UploadMode::Update => sql::update_object(),
        };

        let rules = self
            .check_upload(request, service, bucket, name, mode, &owner, &statement)
            .await?;
        let limit = self.apply_rules(rules, &meta.content_type, meta.content_length)?;

        // The bytes, to a version no row names yet.
        let version = new_id()?;
        let key = object_key(bucket, name, &version);
        let written = self.backend.put(&key, body, limit).await?;
        let metadata = json!({
            // A strong validator that changes with every write: the version id (32 hex digits,
            // the shape of S3's MD5 ETags), not a hash of the content, which would cost a third
            // of an upload's CPU time for what If-None-Match needs no more than this.
            "eTag": format!("\"{}\"", version.replace('-', "")),
            "size": written.size,
            "mimetype": meta.content_type,
            "cacheControl": meta.cache_control,
            "lastModified": httpdate::fmt_http_date(SystemTime::now()),
            "contentLength": written.size,
            "httpStatusCode": 200,
        });
        let user_metadata = meta.user_metadata.unwrap_or(Value::Null);
        let id = new_id()?;
        let params: [&(dyn ToSql + Sync); 7] = [
            &bucket,
            &name,
            &owner,
            &version,
            &metadata,
            &user_metadata,
            &id,
        ];
        let (token_id, expires) = match &signed {
            Some(signed) => (signed.token_id.clone(), signed.expires as f64),
            None => (String::new(), 0.0),
        };
        let token_params: [&(dyn ToSql + Sync); 2] = [&token_id, &expires];
        let mut statements = vec![Statement {
            sql: &statement,
            params: &params,
        }];
        if signed.is_some() {
            statements.push(Statement {
                sql: sql::USE_UPLOAD_TOKEN,
                params: &token_params,
            });
        }
        let committed = self
            .run(
                request,
                service,
                operation,
                Access::ReadWrite,
                End::Commit,
                &statements,
            )
            .await;
        let rows = match committed {
            Ok(rows) => rows,
            Err(err) => {
                self.remove_bytes(&key).await;
                // A second use of a signed upload URL.
                if signed.is_some() && matches!(err, StorageError::KeyAlreadyExists) {
                    return Err(match mode {
                        UploadMode::Create => StorageError::KeyAlreadyExists,
                        _ => StorageError::InvalidSignature,
                    });
                }
                return Err(err);
            }
        };
        // A plain insert returns nothing (see `sql::insert_object`); the others return the row's
        // id and the version they replaced.
        let Some(row) = rows[0].first() else {
            return match mode {
                UploadMode::Create => Ok(id),
                _ => {
                    self.remove_bytes(&key).await;
                    Err(StorageError::NoSuchKey)
                }
            };
        };
        let id: uuid::Uuid = row.get(0);
        let old_version: Option<String> = row.get(1);
        if let Some(old) = old_version.filter(|old| *old != version) {
            self.remove_bytes(&object_key(bucket, name, &old)).await;
        }
        Ok(id.to_string())
    }

    /// Whether the upload's statement would be allowed (run and rolled back), and the bucket's
    /// size limit and allowed types.
    #[allow(clippy::too_many_arguments)]
    async fn check_upload(
        &self,
        request: Request<'_>,
        service: bool,
        bucket: &str,
        name: &str,
        mode: UploadMode,
        owner: &Option<String>,
        statement: &str,
    ) -> Result<(Option<i64>, Option<Vec<String>>), StorageError> {
        let operation = match mode {
            UploadMode::Update => "storage.object.upload_update",
            _ => "storage.object.upload",
        };
        let pending = "pending";
        let empty = json!({});
        let null = Value::Null;
        let probe_id = new_id()?;
        let probe: [&(dyn ToSql + Sync); 7] =
            [&bucket, &name, owner, &pending, &empty, &null, &probe_id];
        let rules_params: [&(dyn ToSql + Sync); 1] = [&bucket];
        let checked = self
            .run(
                request,
                service,
                operation,
                Access::ReadWrite,
                End::Rollback,
                &[
                    Statement {
                        sql: sql::BUCKET_RULES,
                        params: &rules_params,
                    },
                    Statement {
                        sql: statement,
                        params: &probe,
                    },
                ],
            )
            .await?;
        let rules = checked[0].first().ok_or(StorageError::NoSuchBucket)?;
        if mode == UploadMode::Update && checked[1].is_empty() {
            return Err(StorageError::NoSuchKey);
        }
        Ok((rules.get(1), rules.get(2)))
    }

    /// The bucket's rules applied to an upload of `content_type` and (when known) `length`: the
    /// most bytes it may have.
    fn apply_rules(
        &self,
        (size_limit, allowed): (Option<i64>, Option<Vec<String>>),
        content_type: &str,
        length: Option<u64>,
    ) -> Result<u64, StorageError> {
        if let Some(allowed) = allowed.filter(|allowed| !allowed.is_empty()) {
            if !mime_allowed(&allowed, content_type) {
                return Err(StorageError::InvalidMimeType(content_type.to_owned()));
            }
        }
        let limit = size_limit
            .map(|limit| u64::try_from(limit).unwrap_or(0).min(self.max_file_bytes))
            .unwrap_or(self.max_file_bytes);
        if length.is_some_and(|length| length > limit) {
            return Err(StorageError::EntityTooLarge);
        }
        Ok(limit)
    }

    /// Whether the caller may upload `bucket`/`name` (for a signed upload URL, checked when it is
    /// made, as Supabase does).
    pub async fn may_upload(
        &self,
        request: Request<'_>,
        bucket: &str,
        name: &str,
        upsert: bool,
    ) -> Result<(), StorageError> {
        key::check_bucket(bucket)?;
        key::check_name(name)?;
        let mode = if upsert {
            UploadMode::Upsert
        } else {
            UploadMode::Create
        };
        let statement = sql::insert_object(upsert);
        self.check_upload(
            request,
            false,
            bucket,
            name,
            mode,
            &request.owner(),
            &statement,
        )
        .await
        .map(|_| ())
    }

    /// Which of `names` the caller may read.
    pub async fn readable(
        &self,
        request: Request<'_>,
        bucket: &str,
        names: &[String],
    ) -> Result<HashSet<String>, StorageError> {
        key::check_bucket(bucket)?;
        let params: [&(dyn ToSql + Sync); 2] = [&bucket, &names];
        let rows = self
            .run_one(
                request,
                "storage.object.sign",
                Access::ReadOnly,
                sql::READABLE_NAMES,
                &params,
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The object as the caller may read it (SELECT policy), or of a public bucket (`public`).
    pub async fn head(
        &self,
        request: Request<'_>,
        bucket: &str,
        name: &str,
        public: bool,
    ) -> Result<ObjectHead, StorageError> {
        key::check_bucket(bucket)?;
        key::check_name(name)?;
        let params: [&(dyn ToSql + Sync); 2] = [&bucket, &name];
        let (sql, version_col, metadata_col) = if public {
            (sql::SELECT_PUBLIC_OBJECT, 0, 1)
        } else {
            (sql::SELECT_OBJECT, 1, 2)
        };
        let rows = self
            .run_one(
                request,
                "storage.object.get",
                Access::ReadOnly,
                sql,
                &params,
            )
            .await?;
        let row = rows.first().ok_or(StorageError::NoSuchKey)?;
        Ok(ObjectHead {
            version: row
                .get::<_, Option<String>>(version_col)
                .ok_or(StorageError::NoSuchKey)?,
            metadata: row
                .get::<_, Option<Value>>(metadata_col)
                .unwrap_or(Value::Null),
        })
    }

    /// The object's head without any policy: for signed URLs, whose signature is the permission.
    pub async fn head_signed(
        &self,
        request: Request<'_>,
        bucket: &str,
        name: &str,
    ) -> Result<ObjectHead, StorageError> {
        let params: [&(dyn ToSql + Sync); 2] = [&bucket, &name];
        let statement = Statement {
            sql: sql::SELECT_OBJECT,
            params: &params,
        };
        let mut rows = self
            .run(
                request,
                true,
                "storage.object.get_signed",
                Access::ReadOnly,
                End::Commit,
                &[statement],
            )
            .await?;
        let rows = rows.pop().unwrap_or_default();
        let row = rows.first().ok_or(StorageError::NoSuchKey)?;
        Ok(ObjectHead {
            version: row
                .get::<_, Option<String>>(1)
                .ok_or(StorageError::NoSuchKey)?,
            metadata: row.get::<_, Option<Value>>(2).unwrap_or(Value::Null),
        })
    }

    /// The bytes of a version (all, or a range).
    pub async fn open(
        &self,
        bucket: &str,
        name: &str,
        head: &ObjectHead,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ByteStream, StorageError> {
        Ok(self
            .backend
            .get(&object_key(bucket, name, &head.version), range)
            .await?)
    }

    /// Deletes the named objects the caller may delete; returns them as Supabase does. Bytes go
    /// after the commit.
    pub async fn remove(
        &self,
        request: Request<'_>,
        bucket: &str,
        names: &[String],
    ) -> Result<Vec<Value>, StorageError> {
        key::check_bucket(bucket)?;
        let statement = sql::delete_objects();
        let params: [&(dyn ToSql + Sync); 2] = [&bucket, &names];
        let rows = self
            .run_one(
                request,
                "storage.object.delete_many",
                Access::ReadWrite,
                &statement,
                &params,
            )
            .await?;
        let mut removed = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.get(1);
            if let Some(version) = row.get::<_, Option<String>>(2) {
                self.remove_bytes(&object_key(bucket, &name, &version))
                    .await;
            }
            removed.push(row.get::<_, Value>(3));
        }
        Ok(removed)
    }

    /// Deletes every object of `bucket` the caller may delete.
    pub async fn empty_bucket(
        &self,
        request: Request<'_>,
        bucket: &str,
    ) -> Result<(), StorageError> {
        let params: [&(dyn ToSql + Sync); 1] = [&bucket];
        let rows = self
            .run(
                request,
                false,
                "storage.bucket.empty",
                Access::ReadWrite,
                End::Commit,
                &[
                    Statement {
                        sql: sql::BUCKET_VISIBLE,
                        params: &params,
                    },
                    Statement {
                        sql: sql::EMPTY_BUCKET,
                        params: &params,
                    },
                ],
            )
            .await?;
        if rows[0].is_empty() {
            // Nothing was deleted: the bucket is not visible, so neither are its objects.
            return Err(StorageError::NoSuchBucket);
        }
        for row in &rows[1] {
            let name: String = row.get(1);
            if let Some(version) = row.get::<_, Option<String>>(2) {
                self.remove_bytes(&object_key(bucket, &name, &version))
                    .await;
            }
        }
        Ok(())
    }

    /// Moves or copies `from` to `to` (possibly across buckets); returns the new object's id.
    pub async fn relocate(
        &self,
        request: Request<'_>,
        from: (&str, &str),
        to: (&str, &str),
        copy: bool,
    ) -> Result<String, StorageError> {
        for (bucket, name) in [from, to] {
            key::check_bucket(bucket)?;
            key::check_name(name)?;
        }
        let operation = if copy {
            "storage.object.copy"
        } else {
            "storage.object.move"
        };
        let params: [&(dyn ToSql + Sync); 2] = [&from.0, &from.1];
        let source = self
            .run_one(
                request,
                operation,
                Access::ReadOnly,
                sql::SELECT_OBJECT,
                &params,
            )
            .await?;
        let source = source.first().ok_or(StorageError::NoSuchKey)?;
        let old_version: String = source
            .get::<_, Option<String>>(1)
            .ok_or(StorageError::NoSuchKey)?;
        let metadata: Value = source.get::<_, Option<Value>>(2).unwrap_or(Value::Null);
        let user_metadata: Value = source.get::<_, Option<Value>>(3).unwrap_or(Value::Null);

        let version = new_id()?;
        let new_key = object_key(to.0, to.1, &version);
        self.backend
            .copy(&object_key(from.0, from.1, &old_version), &new_key)
            .await?;
        let new_object_id = new_id()?;
        let result = if copy {
            let owner = request.owner();
            let mut metadata = metadata;
            if let Some(fields) = metadata.as_object_mut() {
                fields.insert(
                    "lastModified".into(),
                    json!(httpdate::fmt_http_date(SystemTime::now())),
                );
            }
            let statement = sql::copy_object();
            let params: [&(dyn ToSql + Sync); 7] = [
                &to.0,
                &to.1,
                &owner,
                &version,
                &metadata,
                &user_metadata,
                &new_object_id,
            ];
            self.run_one(request, operation, Access::ReadWrite, &statement, &params)
                .await
                .map(|_| vec![])
        } else {
            let params: [&(dyn ToSql + Sync); 6] =
                [&from.0, &from.1, &to.0, &to.1, &version, &old_version];
            self.run_one(
                request,
                operation,
                Access::ReadWrite,
                sql::MOVE_OBJECT,
                &params,
            )
            .await
        };
        let rows = match result {
            // A copy is an insert, which returns nothing.
            Ok(_) if copy => {
                return Ok(new_object_id);
            }
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => {
                self.remove_bytes(&new_key).await;
                return Err(StorageError::NoSuchKey);
            }
            Err(err) => {
                self.remove_bytes(&new_key).await;
                return Err(err);
            }
        };
        if !copy {
            self.remove_bytes(&object_key(from.0, from.1, &old_version))
                .await;
        }
        let id: uuid::Uuid = rows[0].get(0);
        Ok(id.to_string())
    }

    /// Removes bytes that no row names any more. A failure is logged: the sweep removes them later.
    async fn remove_bytes(&self, key: &[&str]) {
        if let Err(err) = self.backend.delete(key).await {
            tracing::warn!("could not remove {}: {err}; the sweep will", key.join("/"));
        }
    }

    /// `sweep` outside any request (the periodic task).
    pub async fn sweep_now(&self, grace: Duration) -> Result<Swept, StorageError> {
        let identity = Identity::new(SERVICE_ROLE.to_owned(), json!({"role": SERVICE_ROLE}));
        let headers = HeaderMap::new();
        let request = Request {
            identity: &identity,
            method: &Method::POST,
            path: "storage.sweep",
            headers: &headers,
        };
        self.sweep(request, grace).await
    }

    /// Removes every key that no row of storage.objects names and that is older than `grace`
    /// (younger ones may belong to an upload whose row is about to commit), and aborts the S3
    /// multipart uploads untouched for `grace`. Works in passes of `sweep_page` keys (keyset
    /// pagination over the backend's listing), each reading only the rows of the keys it listed,
    /// so no pass reads the whole table nor holds the whole listing.
    pub async fn sweep(
        &self,
        request: Request<'_>,
        grace: Duration,
    ) -> Result<Swept, StorageError> {
        self.run(
            request,
            true,
            "storage.sweep",
            Access::ReadWrite,
            End::Commit,
            &[Statement {
                sql: sql::EXPIRE_RESUMABLES,
                params: &[],
            }],
        )
        .await?;
        let mut swept = Swept::default();
        let mut cursor: Option<String> = None;
        loop {
            let (removed, next) = self.sweep_pass(request, grace, cursor.as_deref()).await?;
            swept.removed += removed;
            swept.passes += 1;
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let (aborted, passes) = self.abort_stale_multiparts(grace).await?;
        swept.aborted = aborted;
        swept.passes += passes;
        Ok(swept)
    }

    /// One page of the sweep: the keys after `after`; returns how many were removed and where the
    /// next page starts (`None`: the listing is over).
    async fn sweep_pass(
        &self,
        request: Request<'_>,
        grace: Duration,
        after: Option<&str>,
    ) -> Result<(usize, Option<String>), StorageError> {
        // Listed before the rows are read: a key written after the listing is not considered, and
        // a row committed before the read protects its key.
        let listed = self.backend.list_page(after, self.sweep_page).await?;
        // The last key in the backend's own order (byte order on S3, part by part on disk).
        let next = if listed.len() < self.sweep_page {
            None
        } else {
            listed.last().map(|(key, _)| key.clone())
        };
        let now = SystemTime::now();
        let old: Vec<&String> = listed
            .iter()
            .filter(|(_, modified)| now.duration_since(*modified).is_ok_and(|age| age >= grace))
            .map(|(key, _)| key)
            .collect();
        if old.is_empty() {
            return Ok((0, next));
        }
        let (mut keys, mut buckets, mut names, mut versions) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for key in &old {
            // A key of fewer than three parts is nothing Sluice wrote: garbage too.
            if let Some(parts) = self.backend.parse_listed(key).filter(|p| p.len() >= 3) {
                keys.push(key.to_string());
                buckets.push(parts[0].clone());
                names.push(parts[1..parts.len() - 1].join("/"));
                versions.push(parts[parts.len() - 1].clone());
            }
        }
        let prefix = resumable::PARTS_PREFIX;
        let params: [&(dyn ToSql + Sync); 5] = [&keys, &buckets, &names, &versions, &prefix];
        let rows = self
            .run(
                request,
                true,
                "storage.sweep",
                Access::ReadOnly,
                End::Commit,
                &[Statement {
                    sql: sql::LIVE_KEYS,
                    params: &params,
                }],
            )
            .await?;
        let live: HashSet<String> = rows
            .first()
            .map(|rows| rows.iter().map(|row| row.get(0)).collect())
            .unwrap_or_default();
        let garbage: Vec<&str> = old
            .into_iter()
            .filter(|key| !live.contains(*key))
            .map(String::as_str)
            .collect();
        self.backend.delete_listed_many(&garbage).await?;
        Ok((garbage.len(), next))
    }

    /// Aborts the S3 multipart uploads whose record was not touched for `grace` (their sidecar
    /// died), a page at a time; returns how many, and the pages it read.
    async fn abort_stale_multiparts(
        &self,
        grace: Duration,
    ) -> Result<(usize, usize), StorageError> {
        if !matches!(self.backend, Backend::S3(_)) {
            return Ok((0, 0));
        }
        let client = self.pool.get().await.map_err(crate::db::DbError::from)?;
        let statement = client
            .prepare_cached(sql::STALE_MULTIPARTS)
            .await
            .map_err(crate::db::DbError::from)?;
        let grace_secs = grace.as_secs_f64();
        let page = i64::try_from(self.sweep_page).unwrap_or(i64::MAX);
        let mut cursor = (SystemTime::UNIX_EPOCH, String::new());
        let (mut aborted, mut passes) = (0, 0);
        loop {
            let rows = client
                .query(&statement, &[&grace_secs, &cursor.0, &cursor.1, &page])
                .await
                .map_err(crate::db::DbError::from)?;
            passes += 1;
            for row in &rows {
                let (upload_id, key): (String, String) = (row.get(0), row.get(1));
                match self.backend.abort_multipart(&key, &upload_id).await {
                    Ok(()) => aborted += 1,
                    Err(err) => {
                        tracing::warn!("could not abort the multipart upload of {key}: {err}")
                    }
                }
                cursor = (row.get(2), upload_id);
            }
            if rows.len() < self.sweep_page {
                return Ok((aborted, passes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_match_with_wildcards() {
        let allowed = vec!["image/*".to_owned(), "text/plain".to_owned()];
        assert!(mime_allowed(&allowed, "image/png"));
        assert!(mime_allowed(&allowed, "text/plain;charset=UTF-8"));
        assert!(!mime_allowed(&allowed, "text/html"));
        assert!(!mime_allowed(&allowed, "application/json"));
    }

    #[test]
    fn keys_are_bucket_segments_and_version() {
        assert_eq!(
            object_key("b", "a/c.png", "v"),
            vec!["b", "a", "c.png", "v"]
        );
    }
}
