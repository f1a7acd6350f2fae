//! Where the bytes live: a directory on the local disk or an S3-compatible bucket, behind one
//! interface. Keys are `<bucket>/<name>/<version>`, built only from validated parts (see `key`), so
//! a key never climbs out of the backend's root.
//!
//! A key is invisible until a row of `storage.objects` names its version, so writing straight to
//! its final key is the "temporary key" of the crash-safety argument: bytes that no committed row
//! names are garbage the sweep removes (see `Storage::sweep`).

use std::io;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

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
    S3(Arc<AmazonS3>),
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
        Ok(Backend::S3(Arc::new(store)))
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
            Backend::S3(store) => put_s3(store.as_ref(), &store_path(key), body, limit).await,
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
            Backend::S3(store) => {
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
            Backend::S3(store) => match store.delete(&store_path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(err.into()),
            },
        }
    }

    /// Copies `from` to `to` within the backend, durably.
    pub async fn copy(&self, from: &[&str], to: &[&str]) -> Result<(), BackendError> {
        match self {
            Backend::Local(local) => local.copy(from, to).await,
            Backend::S3(store) => Ok(store
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

    /// Removes a key `list` reported.
    pub async fn delete_listed(&self, key: &str) -> Result<(), BackendError> {
        let parts: Vec<&str> = key.split('/').collect();
        match self {
            Backend::Local(local) => local.delete(&parts).await,
            Backend::S3(store) => match store.delete(&StorePath::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(err.into()),
            },
        }
    }

    /// Every key in the backend with its last modification time, for the sweep.
    pub async fn list(&self) -> Result<Vec<(String, SystemTime)>, BackendError> {
        match self {
            Backend::Local(local) => local.list().await,
            Backend::S3(store) => {
                let mut keys = Vec::new();
                let mut listing = store.list(None);
                while let Some(meta) = listing.next().await {
                    let meta = meta?;
                    keys.push((meta.location.to_string(), meta.last_modified.into()));
                }
                Ok(keys)
            }
        }
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

async fn put_s3<S, E>(
    store: &AmazonS3,
    path: &StorePath,
    mut body: S,
    limit: u64,
) -> Result<Written, BackendError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut meter = Meter::new(limit);
    // Up to one part is buffered; a body that ends within it is one PUT.
    let mut first = Vec::new();
    let mut upload: Option<WriteMultipart> = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| BackendError::Body(err.to_string()))?;
        meter.take(&chunk)?;
        match upload.as_mut() {
            Some(writer) => {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.write(&chunk);
            }
            None if first.len() + chunk.len() < PART_BYTES => first.extend_from_slice(&chunk),
            None => {
                let multipart = store.put_multipart(path).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(multipart, PART_BYTES);
                writer.write(&first);
                writer.write(&chunk);
                first = Vec::new();
                upload = Some(writer);
            }
        }
    }
    match upload {
        Some(writer) => {
            writer.finish().await?;
        }
        None => {
            store.put(path, PutPayload::from(first)).await?;
        }
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

    async fn list(&self) -> Result<Vec<(String, SystemTime)>, BackendError> {
        let root = self.root.clone();
        let keys = tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let mut pending = vec![root.clone()];
            while let Some(dir) = pending.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let entry = entry?;
                    let kind = entry.file_type()?;
                    if kind.is_dir() {
                        pending.push(entry.path());
                    } else if kind.is_file() {
                        let modified = entry.metadata()?.modified()?;
                        let path = entry.path();
                        let relative = path.strip_prefix(&root).unwrap_or(&path);
                        let key: Vec<String> = relative
                            .components()
                            .map(|part| part.as_os_str().to_string_lossy().into_owned())
                            .collect();
                        keys.push((key.join("/"), modified));
                    }
                }
            }
            Ok::<_, io::Error>(keys)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(keys)
    }
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
