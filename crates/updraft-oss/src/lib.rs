//! Updraft object storage: one [`ObjectStore`] trait for bundle zips and assets, and its backends.
//!
//! Backends: [`FsStore`] (the embedded default, a directory), [`S3Store`] (AWS S3, Cloudflare R2, MinIO and any
//! S3-compatible server) and [`MemoryStore`] (tests). Every backend passes the
//! same [`conformance`] suite. Which object lives under which key is decided by the server (its storage layout), not
//! here; this crate only moves bytes.
#![warn(missing_docs)]

pub mod conformance;
mod error;
mod fs;
mod key;
mod memory;
mod s3;
mod types;

pub use error::{Error, Result};
pub use fs::FsStore;
pub use key::ObjectKey;
pub use memory::MemoryStore;
pub use s3::{S3Config, S3Store};
pub use types::{ByteRange, ByteStream, GetOptions, GetResult, ObjectMeta, PutMode, PutOptions, PutResult};

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

/// A place to keep objects (bundle zips, assets) by key.
///
/// Invariant for every implementation: `put` is atomic, so a reader sees the whole object or nothing.
#[async_trait]
pub trait ObjectStore: fmt::Display + fmt::Debug + Send + Sync + 'static {
    /// Stores `body` under `key`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] with [`PutMode::Create`] when the key is taken; [`Error::Backend`] when the body
    /// stream or the backend fails (nothing is left visible then).
    async fn put(&self, key: &ObjectKey, body: ByteStream, options: PutOptions) -> Result<PutResult>;

    /// Reads an object, or a byte range of it.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::RangeNotSatisfiable`] when the range starts past the end.
    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult>;

    /// Reads an object's metadata.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta>;

    /// Deletes an object; deleting a missing object succeeds.
    ///
    /// # Errors
    /// [`Error::Backend`].
    async fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// Lists objects whose key starts with `prefix` (every object when `None`), in no particular order.
    fn list(&self, prefix: Option<&ObjectKey>) -> BoxStream<'static, Result<ObjectMeta>>;

    /// A URL that serves the object for `ttl` without credentials; `Ok(None)` when the backend cannot hand out URLs
    /// (the filesystem), in which case the server streams the object itself.
    ///
    /// # Errors
    /// [`Error::Backend`].
    async fn presigned_get(&self, key: &ObjectKey, ttl: Duration) -> Result<Option<String>>;

    /// A presigned URL whose answer carries `Content-Encoding: <content_encoding>` (S3's `response-content-encoding`
    /// override): how a pre-compressed copy, stored without that header so it can also be served as plain bytes, is
    /// handed out. `Ok(None)` when the backend cannot (the default): the server streams the copy.
    ///
    /// # Errors
    /// [`Error::Backend`].
    async fn presigned_get_encoded(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        content_encoding: &str,
    ) -> Result<Option<String>> {
        let _ = (key, ttl, content_encoding);
        Ok(None)
    }
}
