//! Where the bytes live: a directory on the local disk or an S3-compatible bucket, behind one
//! interface. Keys are `<bucket>/<name>/<version>`, built only from validated parts (see `key`), so
//! a key never climbs out of the backend's root.
//!
//! A key is invisible until a row of `storage.objects` names its version, so writing straight to
//! its final key is the "temporary key" of the crash-safety argument: bytes that no committed row
//! names are garbage the sweep removes (see `Storage::sweep`).
//!
//! S3 uploads larger than a part are multipart uploads, whose parts are not objects: a listing
//! never shows them. Their upload id is therefore recorded in `storage.sluice_multipart_uploads`
//! before the first part is sent and deleted once the upload is completed or aborted, so the sweep
//! can abort the uploads of a sidecar that died in between (`abort_multipart`).

use std::io;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, MultipartId, ObjectStore, PutPayload};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::db::Pool;

/// Parts of an S3 multipart upload; a file smaller than this is sent in one PUT.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// How many parts may be in flight at once (memory: about PART_BYTES times this).
const PARTS_IN_FLIGHT: usize = 2;
/// Read buffer of local downloads.
const READ_CHUNK: usize = 64 * 1024;
/// Write buffer of local uploads.
const WRITE_BUFFER: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the object's bytes are missing from the backend")]
    NotFound,
    /// The body went over the size limit; nothing was kept.
    #[error("the upload exceeded {0} bytes")]
    TooLarge(u64),
    /// Reading the client's body failed (the client went away, or sent a broken body).
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error("local storage: {0}")]
    Io(#[from] io::Error),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Recording a multipart upload in the database failed.
    #[error("recording a multipart upload: {0}")]
    Journal(String),
}

/// What an upload wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
}

/// A stream of the bytes of one object.
pub type ByteStream = BoxStream<'static, Result<Bytes, io::Error>>;

#[derive(Clone)]
pub enum Backend {
    Local(LocalBackend),
    S3(S3Backend),
}

/// An S3 bucket, and the database where its multipart uploads in flight are recorded.
#[derive(Clone)]
pub struct S3Backend {
    store: Arc<AmazonS3>,
    journal: Option<Pool>,
}

/// The record of multipart uploads in flight (run as the sidecar's login role, which alone may
/// reach the table).
const JOURNAL_BEGIN: &str =
    "INSERT INTO storage.sluice_multipart_uploads (upload_id, key) VALUES ($1, $2)";
const JOURNAL_END: &str = "DELETE FROM storage.sluice_multipart_uploads WHERE upload_id = $1";
/// Now and then while parts are sent: the upload is alive (the sweep aborts uploads untouched for
/// its grace period, however slowly their client sends).
const JOURNAL_TOUCH: &str =
    "UPDATE storage.sluice_multipart_uploads SET touched_at = now() WHERE upload_id = $1";

impl S3Backend {
    async fn journal(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), BackendError> {
        let Some(pool) = &self.journal else {
            return Ok(());
        };
        let client = pool
            .get()
            .await
            .map_err(|err| BackendError::Journal(err.to_string()))?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|err| BackendError::Journal(err.to_string()))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|err| BackendError::Journal(err.to_string()))?;
        Ok(())
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Local(local) => write!(f, "Local({})", local.root.display()),
            Backend::S3(_) => f.write_str("S3"),
        }
    }
}

impl Backend {
    /// The local filesystem under `root` (created when missing).
    pub fn local(root: impl Into<PathBuf>) -> io::Result<Backend> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Backend::Local(LocalBackend {
            root: root.canonicalize()?,
        }))
    }

    /// An S3 bucket; endpoint, region and credentials come from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`), as object_store reads them.
    pub fn s3(bucket: &str) -> Result<Backend, BackendError> {
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()?;
        Ok(Backend::S3(S3Backend {
            store: Arc::new(store),
            journal: None,
        }))
    }

    /// Records S3 multipart uploads in flight in `pool`'s `storage.sluice_multipart_uploads`.
    pub fn with_journal(self, pool: Pool) -> Backend {
        match self {
            Backend::S3(s3) => Backend::S3(S3Backend {
                journal: Some(pool),
                ..s3
            }),
            local => local,
        }
    }

    /// Streams `body` to `key`, at most `limit` bytes, and makes it durable before returning.
    /// On any failure, what was written is removed.
    pub async fn put<S, E>(
        &self,
        key: &[&str],
        body: S,
        limit: u64,
    ) -> Result<Written, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let result = match self {
            Backend::Local(local) => local.put(key, body, limit).await,
            Backend::S3(s3) => put_s3(s3, &store_path(key), body, limit).await,
        };
        if result.is_err() {
            // A partial file is garbage either way; the sweep would find it too.
            let _ = self.delete(key).await;
        }
        result
    }

    /// The bytes of `key`, or of `range` of it.
    pub async fn get(
        &self,
        key: &[&str],
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, BackendError> {
        match self {
            Backend::Local(local) => local.get(key, range).await,
            Backend::S3(S3Backend { store, .. }) => {
                let options = GetOptions {
                    range: range.map(GetRange::Bounded),
                    ..GetOptions::default()
                };
                let result = store
                    .get_opts(&store_path(key), options)
                    .await
                    .map_err(not_found)?;
                Ok(result
                    .into_stream()
                    .map_err(|err| io::Error::other(err.to_string()))
                    .boxed())
            }
        }
    }

    /// Removes `key`; a key that is already gone is not an error.
    pub async fn delete(&self, key: &[&str]) -> Result<(), BackendError> {
        match self {
            Backend::Local(local) => local.delete(key).await,
            Backend::S3(S3Backend { store, .. }) => match store.delete(&store_path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(err.into()),
            },
        }
    }

    /// Copies `from` to `to` within the backend, durably.
    pub async fn copy(&self, from: &[&str], to: &[&str]) -> Result<(), BackendError> {
        match self {
            Backend::Local(local) => local.copy(from, to).await,
            Backend::S3(S3Backend { store, .. }) => Ok(store
                .copy(&store_path(from), &store_path(to))
                .await
                .map_err(not_found)?),
        }
    }

    /// The text form of `key` as `list` reports it.
    pub fn key_string(&self, key: &[&str]) -> String {
        match self {
            Backend::Local(_) => key.join("/"),
            Backend::S3(_) => store_path(key).to_string(),
        }
    }

    /// Removes a key `list_page` reported.
    pub async fn delete_listed(&self, key: &str) -> Result<(), BackendError> {
        match self {
            Backend::Local(local) => {
                let parts: Vec<&str> = key.split('/').collect();
                local.delete(&parts).await
            }
            // A listed key is already in the store's encoding: parsed, not encoded again.
            Backend::S3(S3Backend { store, .. }) => {
                let path = StorePath::parse(key).map_err(|err| BackendError::Store(err.into()))?;
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(err) => Err(err.into()),
                }
            }
        }
    }

    /// Removes keys `list_page` reported: on S3 in bulk (DeleteObjects, up to 1,000 a request).
    /// A key that is already gone is not an error.
    pub async fn delete_listed_many(&self, keys: &[&str]) -> Result<(), BackendError> {
        let Backend::S3(S3Backend { store, .. }) = self else {
            for key in keys {
                self.delete_listed(key).await?;
            }
            return Ok(());
        };
        let paths = keys
            .iter()
            .map(|key| StorePath::parse(key).map_err(object_store::Error::from))
            .collect::<Vec<_>>();
        let mut deleted = store.delete_stream(futures_util::stream::iter(paths).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// The parts of a key `list_page` reported, as they were given to `put` (S3 keys are
    /// percent-decoded); `None` for a key Sluice could not have written.
    pub fn parse_listed(&self, key: &str) -> Option<Vec<String>> {
        key.split('/')
            .map(|part| match self {
                Backend::Local(_) => Some(part.to_owned()),
                Backend::S3(_) => percent_encoding::percent_decode_str(part)
                    .decode_utf8()
                    .ok()
                    .map(|part| part.into_owned()),
            })
            .collect()
    }

    /// At most `limit` keys that come after `after` (a key an earlier page ended with; `None`:
    /// from the start), in the backend's order, with their last modification time: one page of
    /// the sweep. Fewer than `limit` keys: the listing is over.
    pub async fn list_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, SystemTime)>, BackendError> {
        match self {
            Backend::Local(local) => local.list_page(after, limit).await,
            Backend::S3(S3Backend { store, .. }) => {
                // S3 lists keys in byte order and starts after `after` (ListObjectsV2's
                // start-after), so a page costs one or two requests whatever the bucket's size.
                let mut listing = match after {
                    Some(after) => {
                        let offset = StorePath::parse(after)
                            .map_err(|err| BackendError::Store(err.into()))?;
                        store.list_with_offset(None, &offset)
                    }
                    None => store.list(None),
                };
                let mut keys = Vec::new();
                while keys.len() < limit {
                    let Some(meta) = listing.next().await else {
                        break;
                    };
                    let meta = meta?;
                    keys.push((meta.location.to_string(), meta.last_modified.into()));
                }
                Ok(keys)
            }
        }
    }

    /// Aborts the S3 multipart upload `upload_id` to `key` (as recorded by `put`) and forgets its
    /// record. An upload that is already gone (completed, or aborted) only loses its record.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BackendError> {
        let Backend::S3(s3) = self else {
            return Ok(());
        };
        let path = StorePath::parse(key).map_err(|err| BackendError::Store(err.into()))?;
        match s3.store.abort_multipart(&path, &upload_id.to_owned()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        s3.journal(JOURNAL_END, &[&upload_id]).await
    }
}

fn not_found(err: object_store::Error) -> BackendError {
    match err {
        object_store::Error::NotFound { .. } => BackendError::NotFound,
        err => BackendError::Store(err),
    }
}

fn store_path(key: &[&str]) -> StorePath {
    StorePath::from_iter(key.iter().copied())
}

/// Counts what passes, and refuses more than the limit. (No content hash: the ETag is the
/// version id, see `Storage::upload`; hashing cost a third of an upload's CPU time.)
struct Meter {
    size: u64,
    limit: u64,
}

impl Meter {
    fn new(limit: u64) -> Meter {
        Meter { size: 0, limit }
    }

    fn take(&mut self, chunk: &[u8]) -> Result<(), BackendError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(BackendError::TooLarge(self.limit));
        }
        Ok(())
    }

    fn finish(self) -> Written {
        Written { size: self.size }
    }
}

/// A multipart upload in progress: its id, its parts so far, the parts being sent.
struct Multipart {
    id: MultipartId,
    parts: Vec<Option<PartId>>,
    sending: JoinSet<(usize, Result<PartId, object_store::Error>)>,
    touched: std::time::Instant,
}

/// How often an upload in progress touches its record: far below any sensible grace period, and
/// one small statement per this long, however fast the upload.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Multipart {
    /// Touches the record when it was last touched more than TOUCH_EVERY ago.
    async fn keep_alive(&mut self, s3: &S3Backend) -> Result<(), BackendError> {
        if self.touched.elapsed() >= TOUCH_EVERY {
            s3.journal(JOURNAL_TOUCH, &[&self.id]).await?;
            self.touched = std::time::Instant::now();
        }
        Ok(())
    }

    /// Waits for one part in flight.
    async fn wait_one(&mut self) -> Result<(), BackendError> {
        if let Some(joined) = self.sending.join_next().await {
            let (index, part) = joined.map_err(|err| BackendError::Body(err.to_string()))?;
            self.parts[index] = Some(part?);
        }
        Ok(())
    }

    /// Sends `data` as the next part, once fewer than PARTS_IN_FLIGHT are in flight.
    async fn send(
        &mut self,
        s3: &S3Backend,
        path: &StorePath,
        data: Bytes,
    ) -> Result<(), BackendError> {
        while self.sending.len() >= PARTS_IN_FLIGHT {
            self.wait_one().await?;
        }
        self.keep_alive(s3).await?;
        let index = self.parts.len();
        self.parts.push(None);
        let (store, path, id) = (Arc::clone(&s3.store), path.clone(), self.id.clone());
        self.sending.spawn(async move {
            let part = store
                .put_part(&path, &id, index, PutPayload::from(data))
                .await;
            (index, part)
        });
        Ok(())
    }
}

/// Streams `body` to `path`: one PUT when it fits in a part, else a multipart upload recorded in
/// the journal for its whole life. On failure the multipart upload is aborted.
async fn put_s3<S, E>(
    s3: &S3Backend,
    path: &StorePath,
    body: S,
    limit: u64,
) -> Result<Written, BackendError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut upload = None;
    let result = send_s3(s3, path, body, limit, &mut upload).await;
    if let (Err(_), Some(mut upload)) = (&result, upload) {
        upload.sending.abort_all();
        if let Err(err) = Backend::S3(s3.clone())
            .abort_multipart(path.as_ref(), &upload.id)
            .await
        {
            tracing::warn!("could not abort the multipart upload of {path}: {err}; the sweep will");
        }
    }
    result
}

async fn send_s3<S, E>(
    s3: &S3Backend,
    path: &StorePath,
    mut body: S,
    limit: u64,
    upload: &mut Option<Multipart>,
) -> Result<Written, BackendError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut meter = Meter::new(limit);
    // At most one part is buffered; a body that ends within it is one PUT.
    let mut buffer = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| BackendError::Body(err.to_string()))?;
        meter.take(&chunk)?;
        if let Some(upload) = upload.as_mut() {
            upload.keep_alive(s3).await?;
        }
        buffer.extend_from_slice(&chunk);
        while buffer.len() >= PART_BYTES {
            let part = buffer.split_to(PART_BYTES).freeze();
            if upload.is_none() {
                let id = s3.store.create_multipart(path).await?;
                // Recorded before any part is sent: from here on, a crash leaves a record the
                // sweep acts on.
                if let Err(err) = s3.journal(JOURNAL_BEGIN, &[&id, &path.as_ref()]).await {
                    let _ = s3.store.abort_multipart(path, &id).await;
                    return Err(err);
                }
                *upload = Some(Multipart {
                    id,
                    parts: Vec::new(),
                    sending: JoinSet::new(),
                    touched: std::time::Instant::now(),
                });
            }
            if let Some(upload) = upload.as_mut() {
                upload.send(s3, path, part).await?;
            }
        }
    }
    let Some(mut multipart) = upload.take() else {
        s3.store
            .put(path, PutPayload::from(buffer.freeze()))
            .await?;
        return Ok(meter.finish());
    };
    // Taken out of `upload` so that the caller does not abort it: put it back on failure.
    let completed = async {
        if !buffer.is_empty() {
            multipart.send(s3, path, buffer.freeze()).await?;
        }
        while !multipart.sending.is_empty() {
            multipart.wait_one().await?;
        }
        let parts = multipart
            .parts
            .iter()
            .map(|part| {
                part.clone()
                    .ok_or_else(|| BackendError::Body("a part is missing".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        s3.store
            .complete_multipart(path, &multipart.id, parts)
            .await?;
        Ok::<_, BackendError>(())
    }
    .await;
    if let Err(err) = completed {
        *upload = Some(multipart);
        return Err(err);
    }
    // Completed: the record goes. Should that fail, the sweep's abort finds the upload gone and
    // removes the record then.
    if let Err(err) = s3.journal(JOURNAL_END, &[&multipart.id]).await {
        tracing::warn!("could not forget the completed multipart upload of {path}: {err}");
    }
    Ok(meter.finish())
}

/// Files under a root directory; each key part is one path component.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    fn path(&self, key: &[&str]) -> PathBuf {
        let mut path = self.root.clone();
        for part in key {
            // `key` validated the parts; this is the last line of defence against a part that
            // would leave the root.
            debug_assert!(!part.is_empty() && *part != "." && *part != ".." && !part.contains('/'));
            path.push(part);
        }
        path
    }

    async fn put<S, E>(
        &self,
        key: &[&str],
        mut body: S,
        limit: u64,
    ) -> Result<Written, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&dir).await?;
        // Body chunks are small (tens of KiB); each write of a tokio File is a trip to the blocking
        // pool, so they are gathered into large writes.
        let mut file = tokio::io::BufWriter::with_capacity(
            WRITE_BUFFER,
            tokio::fs::File::create(&path).await?,
        );
        let mut meter = Meter::new(limit);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| BackendError::Body(err.to_string()))?;
            meter.take(&chunk)?;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        // Durable before the row that names it commits: the file's data, then its directory entry.
        file.get_ref().sync_all().await?;
        sync_dirs(&self.root, &dir).await?;
        Ok(meter.finish())
    }

    async fn get(
        &self,
        key: &[&str],
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, BackendError> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(BackendError::NotFound)
            }
            Err(err) => return Err(err.into()),
        };
        let stream = match range {
            Some(range) => {
                file.seek(io::SeekFrom::Start(range.start)).await?;
                tokio_util::io::ReaderStream::with_capacity(
                    file.take(range.end - range.start),
                    READ_CHUNK,
                )
                .boxed()
            }
            None => tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).boxed(),
        };
        Ok(stream)
    }

    async fn delete(&self, key: &[&str]) -> Result<(), BackendError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        // Empty directories are left behind by deletes; remove them up to the root (a directory
        // that is not empty, or that another upload just filled, stays).
        let mut dir = path.parent().map(FsPath::to_path_buf);
        while let Some(current) = dir {
            if current == self.root || tokio::fs::remove_dir(&current).await.is_err() {
                break;
            }
            dir = current.parent().map(FsPath::to_path_buf);
        }
        Ok(())
    }

    async fn copy(&self, from: &[&str], to: &[&str]) -> Result<(), BackendError> {
        let source = self.path(from);
        let target = self.path(to);
        let dir = target.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&dir).await?;
        match tokio::fs::copy(&source, &target).await {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(BackendError::NotFound)
            }
            Err(err) => return Err(err.into()),
        }
        tokio::fs::File::open(&target).await?.sync_all().await?;
        sync_dirs(&self.root, &dir).await?;
        Ok(())
    }

    async fn list_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, SystemTime)>, BackendError> {
        let root = self.root.clone();
        let after: Option<Vec<String>> =
            after.map(|key| key.split('/').map(str::to_owned).collect());
        let keys = tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            walk_sorted(&root, &mut Vec::new(), after.as_deref(), limit, &mut keys)?;
            Ok::<_, io::Error>(keys)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(keys)
    }
}

/// Collects, into `keys`, up to `limit` files under `dir` (whose parts below the root are
/// `parts`) that come after `after`, in the order of their parts (each directory read sorted),
/// skipping directories whose files all come before `after`.
fn walk_sorted(
    dir: &FsPath,
    parts: &mut Vec<String>,
    after: Option<&[String]>,
    limit: usize,
    keys: &mut Vec<(String, SystemTime)>,
) -> io::Result<()> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((entry.file_name().to_string_lossy().into_owned(), entry));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, entry) in entries {
        if keys.len() >= limit {
            break;
        }
        let kind = entry.file_type()?;
        parts.push(name);
        if kind.is_dir() {
            // Files below have `parts` as their first parts: all before `after` when those
            // compare below `after`'s first parts.
            let before = after.is_some_and(|after| {
                let n = parts.len().min(after.len());
                parts[..n] < after[..n]
            });
            if !before {
                walk_sorted(&entry.path(), parts, after, limit, keys)?;
            }
        } else if kind.is_file() && after.is_none_or(|after| parts.as_slice() > after) {
            keys.push((parts.join("/"), entry.metadata()?.modified()?));
        }
        parts.pop();
    }
    Ok(())
}

/// fsyncs `dir` and its parents up to `root`, so new directory entries survive a crash.
async fn sync_dirs(root: &FsPath, dir: &FsPath) -> io::Result<()> {
    let mut current = Some(dir);
    while let Some(dir) = current {
        tokio::fs::File::open(dir).await?.sync_all().await?;
        if dir == root {
            break;
        }
        current = dir.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of the local listing, however small, together list every key once, in order, even
    /// where part-by-part order and string order differ (`a/b` before `a-c/x`).
    #[tokio::test]
    async fn local_pages_list_every_key_once() {
        let root = std::env::temp_dir().join(format!("sluice-list-page-{}", std::process::id()));
        let backend = Backend::local(&root).unwrap();
        let keys: [&[&str]; 7] = [
            &["a", "b", "v1"],
            &["a-c", "x", "v1"],
            &["a", "b", "v2"],
            &["b", "deep", "er", "v1"],
            &["tus~uploads", "id", "00000001"],
            &["a", "v3"],
            &["z", "v1"],
        ];
        for key in keys {
            let body = futures_util::stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"x"))]);
            backend.put(key, body, 10).await.unwrap();
        }
        let mut expected: Vec<Vec<&str>> = keys.iter().map(|key| key.to_vec()).collect();
        expected.sort();
        for limit in [1, 2, 3, 100] {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = backend.list_page(after.as_deref(), limit).await.unwrap();
                seen.extend(page.iter().map(|(key, _)| key.clone()));
                if page.len() < limit {
                    break;
                }
                after = page.last().map(|(key, _)| key.clone());
            }
            let seen: Vec<Vec<&str>> = seen.iter().map(|key| key.split('/').collect()).collect();
            assert_eq!(seen, expected, "pages of {limit}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
