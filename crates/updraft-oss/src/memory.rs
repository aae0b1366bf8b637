//! The in-memory backend, for unit tests of code that needs an `ObjectStore`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};

use crate::ObjectStore;
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::types::{ByteStream, GetOptions, GetResult, ObjectMeta, PutMode, PutOptions, PutResult};

/// Objects in a map in memory.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, ObjectMeta)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, ObjectMeta)>> {
        self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory")
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryStore")
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &ObjectKey, mut body: ByteStream, options: PutOptions) -> Result<PutResult> {
        if options.mode == PutMode::Create && self.objects().contains_key(key.as_str()) {
            return Err(Error::AlreadyExists { key: key.to_string() });
        }
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            buffer.extend_from_slice(&chunk.map_err(|e| Error::Backend { backend: "memory", source: Box::new(e) })?);
        }
        let bytes = buffer.freeze();
        let etag = format!("{:x}", bytes.len());
        let meta = ObjectMeta {
            key: key.to_string(),
            size: bytes.len() as u64,
            last_modified: chrono::Utc::now(),
            etag: Some(etag.clone()),
            content_type: options.content_type,
        };
        let mut objects = self.objects();
        if options.mode == PutMode::Create && objects.contains_key(key.as_str()) {
            return Err(Error::AlreadyExists { key: key.to_string() });
        }
        objects.insert(key.to_string(), (bytes, meta.clone()));
        Ok(PutResult { size: meta.size, etag: Some(etag) })
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let (bytes, meta) =
            self.objects().get(key.as_str()).cloned().ok_or_else(|| Error::NotFound { key: key.to_string() })?;
        let span = match options.range {
            None => 0..meta.size,
            Some(range) => range
                .resolve(meta.size)
                .ok_or_else(|| Error::RangeNotSatisfiable { key: key.to_string(), size: meta.size })?,
        };
        let body = bytes.slice(span.start as usize..span.end as usize);
        Ok(GetResult { meta, range: span, body: stream::iter([Ok(body)]).boxed() })
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.objects()
            .get(key.as_str())
            .map(|(_, meta)| meta.clone())
            .ok_or_else(|| Error::NotFound { key: key.to_string() })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.objects().remove(key.as_str());
        Ok(())
    }

    fn list(&self, prefix: Option<&ObjectKey>) -> BoxStream<'static, Result<ObjectMeta>> {
        let prefix = prefix.map(|p| p.as_str().to_owned()).unwrap_or_default();
        let items: Vec<_> =
            self.objects().values().filter(|(_, m)| m.key.starts_with(&prefix)).map(|(_, m)| Ok(m.clone())).collect();
        stream::iter(items).boxed()
    }

    async fn presigned_get(&self, _key: &ObjectKey, _ttl: Duration) -> Result<Option<String>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_conformance() {
        crate::conformance::run_all(&MemoryStore::new()).await;
    }
}
