//! The filesystem backend, the embedded default: objects are files under a root directory.
//!
//! Writes go to a temp file under `<root>/.staging`, are fsynced, then renamed (overwrite) or hard-linked
//! (create-only, atomic "fail if exists") into place, so a reader never sees a partial object.

use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::ObjectStore;
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::types::{ByteStream, GetOptions, GetResult, ObjectMeta, PutMode, PutOptions, PutResult};

const BACKEND: &str = "fs";
const STAGING_DIR: &str = ".staging";

/// Objects as files under a root directory.
#[derive(Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens (creating it if needed) a store rooted at `root`.
    ///
    /// # Errors
    /// [`Error::Backend`] when the directory cannot be created.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join(STAGING_DIR)).map_err(backend)?;
        Ok(Self { root: root.to_path_buf() })
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

impl fmt::Display for FsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fs:{}", self.root.display())
    }
}

impl fmt::Debug for FsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsStore").field("root", &self.root).finish()
    }
}

fn backend(source: std::io::Error) -> Error {
    Error::Backend { backend: BACKEND, source: Box::new(source) }
}

fn not_found_or_backend(key: &ObjectKey, error: std::io::Error) -> Error {
    if error.kind() == std::io::ErrorKind::NotFound { Error::NotFound { key: key.to_string() } } else { backend(error) }
}

fn meta_of(key: &str, metadata: &std::fs::Metadata) -> ObjectMeta {
    let modified = metadata.modified().map(chrono::DateTime::<chrono::Utc>::from).unwrap_or_default();
    ObjectMeta {
        key: key.to_owned(),
        size: metadata.len(),
        last_modified: modified,
        etag: Some(format!("{:x}-{:x}", metadata.len(), modified.timestamp_micros())),
        content_type: None,
    }
}

#[async_trait]
impl ObjectStore for FsStore {
    async fn put(&self, key: &ObjectKey, mut body: ByteStream, options: PutOptions) -> Result<PutResult> {
        let target = self.path_of(key);
        if options.mode == PutMode::Create && tokio::fs::try_exists(&target).await.map_err(backend)? {
            return Err(Error::AlreadyExists { key: key.to_string() });
        }
        let staging = self.root.join(STAGING_DIR).join(uuid::Uuid::new_v4().to_string());
        let written = async {
            let mut file = tokio::fs::File::create(&staging).await?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            std::io::Result::Ok(size)
        }
        .await;
        let size = match written {
            Ok(size) => size,
            Err(error) => {
                let _ = tokio::fs::remove_file(&staging).await;
                return Err(backend(error));
            }
        };
        let placed = match options.mode {
            PutMode::Overwrite => tokio::fs::rename(&staging, &target).await,
            PutMode::Create => {
                let linked = tokio::fs::hard_link(&staging, &target).await;
                let _ = tokio::fs::remove_file(&staging).await;
                linked
            }
        };
        match placed {
            Ok(()) => {
                let metadata = tokio::fs::metadata(&target).await.map_err(backend)?;
                Ok(PutResult { size, etag: meta_of(key.as_str(), &metadata).etag })
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists { key: key.to_string() })
            }
            Err(error) => {
                let _ = tokio::fs::remove_file(&staging).await;
                Err(backend(error))
            }
        }
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let mut file = tokio::fs::File::open(self.path_of(key)).await.map_err(|e| not_found_or_backend(key, e))?;
        let metadata = file.metadata().await.map_err(backend)?;
        if metadata.is_dir() {
            return Err(Error::NotFound { key: key.to_string() });
        }
        let meta = meta_of(key.as_str(), &metadata);
        let span = match options.range {
            None => 0..meta.size,
            Some(range) => range
                .resolve(meta.size)
                .ok_or_else(|| Error::RangeNotSatisfiable { key: key.to_string(), size: meta.size })?,
        };
        file.seek(SeekFrom::Start(span.start)).await.map_err(backend)?;
        let body = ReaderStream::with_capacity(file.take(span.end - span.start), 64 * 1024).boxed();
        Ok(GetResult { meta, range: span, body })
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let metadata = tokio::fs::metadata(self.path_of(key)).await.map_err(|e| not_found_or_backend(key, e))?;
        if metadata.is_dir() {
            return Err(Error::NotFound { key: key.to_string() });
        }
        Ok(meta_of(key.as_str(), &metadata))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(backend(error)),
        }
    }

    fn list(&self, prefix: Option<&ObjectKey>) -> BoxStream<'static, Result<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.map(|p| p.as_str().to_owned()).unwrap_or_default();
        let listing = tokio::task::spawn_blocking(move || walk(&root, &prefix));
        stream::once(async move {
            match listing.await {
                Ok(Ok(items)) => stream::iter(items.into_iter().map(Ok)).boxed(),
                Ok(Err(error)) => stream::iter([Err(backend(error))]).boxed(),
                Err(join) => stream::iter([Err(backend(std::io::Error::other(join)))]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn presigned_get(&self, _key: &ObjectKey, _ttl: Duration) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Every file under `root` whose key starts with `prefix`, skipping the staging directory.
fn walk(root: &Path, prefix: &str) -> std::io::Result<Vec<ObjectMeta>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if relative == STAGING_DIR {
                continue;
            }
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(path);
            } else if relative.starts_with(prefix) {
                found.push(meta_of(&relative, &metadata));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[tokio::test]
    async fn fs_store_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        conformance::run_all(&store).await;
    }

    #[tokio::test]
    async fn failed_body_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let key = ObjectKey::parse("a/broken").unwrap();
        let body =
            stream::iter([Ok(bytes::Bytes::from_static(b"part")), Err(std::io::Error::other("client went away"))])
                .boxed();
        assert!(store.put(&key, body, PutOptions::default()).await.is_err());
        assert!(matches!(store.head(&key).await, Err(Error::NotFound { .. })));
        let staged: Vec<_> = std::fs::read_dir(dir.path().join(STAGING_DIR)).unwrap().collect();
        assert!(staged.is_empty(), "staging leftovers: {staged:?}");
    }
}
