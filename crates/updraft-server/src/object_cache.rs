//! A bounded in-memory cache of the objects downloads read, for the deliveries that send bytes through the gateway
//! (proxy, and presigned when it streams). Every object a download route serves is content-addressed (a bundle, a
//! delta file, an Expo asset, or a compressed copy of one of them), so a cached copy never goes stale: it is what
//! storage holds under that key for as long as the key exists.
//!
//! Why: streaming a stored file costs a blocking-pool round trip per 64 KiB read (tokio's files) and, on S3, a
//! storage request per download; a launch asset that a whole fleet downloads is the same few megabytes each time.
//! A hit is answered from memory in slices of the cached bytes (no copy, no storage call).
//!
//! Bounds (`UPDRAFT_OBJECT_CACHE_MB`, default [`DEFAULT_MB`]; 0 turns the cache off):
//! - Cached bytes plus the bytes being read in never exceed the capacity: room is made (least recently used first)
//!   before an object is read in, and that room is held for it until it is in or given up.
//! - An object larger than a quarter of the capacity is never cached (it streams).
//! - At most [`FILLS`] objects are read in at once, and one key only once at a time: any other request streams
//!   from storage meanwhile, as if there were no cache (never a wait).
//! - Only whole-object downloads read an object in; a `Range` request is answered from the cache when the object
//!   is there, else streamed.
//!
//! Bytes still being sent from an evicted entry live until those responses finish (they share its buffer).
//! Removing an object (`ops::objects::remove_unused`) forgets it here; other instances forget it when it is
//! evicted, which only matters for an object no release references any more.
//!
//! `/metrics`: `updraft_object_cache_{hits,misses,evictions}_total`, `updraft_object_cache_bytes`,
//! `updraft_object_cache_capacity_bytes`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use updraft_oss::{ByteRange, Error, GetOptions, GetResult, ObjectKey, ObjectMeta, ObjectStore};

/// The default capacity, in MiB.
pub(crate) const DEFAULT_MB: u64 = 256;

/// Objects read in at once, at most.
pub(crate) const FILLS: usize = 4;

/// A hit is sent in slices of this size (each one is copied once, into the connection's write buffer).
const SLICE: usize = 256 * 1024;

/// The cache (see the module documentation).
pub(crate) struct ObjectCache {
    capacity: u64,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Entries by last use (the oldest first).
    order: BTreeMap<u64, String>,
    tick: u64,
    /// Bytes of the entries.
    cached: u64,
    /// Room held for objects being read in.
    reserved: u64,
    /// Keys being read in.
    filling: HashMap<String, u64>,
}

struct Entry {
    bytes: Bytes,
    meta: ObjectMeta,
    used: u64,
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheFigures {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) evictions: u64,
    pub(crate) bytes: u64,
    pub(crate) capacity: u64,
}

impl ObjectCache {
    /// A cache holding at most `megabytes` MiB (0: none).
    pub(crate) fn new(megabytes: u64) -> Self {
        Self {
            capacity: megabytes.saturating_mul(1024 * 1024),
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The largest object that is cached.
    fn largest(&self) -> u64 {
        self.capacity / 4
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The figures `/metrics` shows.
    pub(crate) fn figures(&self) -> CacheFigures {
        CacheFigures {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes: self.lock().cached,
            capacity: self.capacity,
        }
    }

    /// Reads `range` of `key` (all of it when `None`), from memory when cached; a whole-object read of an object
    /// that fits is read into the cache first. Errors are storage's (`NotFound`, `RangeNotSatisfiable`, ...).
    pub(crate) async fn get(
        &self,
        objects: &dyn ObjectStore,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> updraft_oss::Result<GetResult> {
        if self.capacity == 0 {
            return objects.get(key, GetOptions { range }).await;
        }
        if let Some((bytes, meta)) = self.lookup(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return answer(key, bytes, meta, range);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        if range.is_some() {
            return objects.get(key, GetOptions { range }).await;
        }
        let result = objects.get(key, GetOptions { range: None }).await?;
        let size = result.meta.size;
        let Some(fill) = self.begin_fill(key, size) else { return Ok(result) };
        let GetResult { meta, body, .. } = result;
        let bytes = read_all(body, size).await?;
        fill.finish(bytes.clone(), meta.clone());
        answer(key, bytes, meta, None)
    }

    /// Forgets `key` (its object was removed).
    pub(crate) fn forget(&self, key: &ObjectKey) {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.remove(key.as_str()) {
            inner.order.remove(&entry.used);
            inner.cached -= entry.bytes.len() as u64;
        }
    }

    fn lookup(&self, key: &ObjectKey) -> Option<(Bytes, ObjectMeta)> {
        let mut inner = self.lock();
        let tick = inner.tick + 1;
        let entry = inner.entries.get_mut(key.as_str())?;
        let previous = std::mem::replace(&mut entry.used, tick);
        let found = (entry.bytes.clone(), entry.meta.clone());
        inner.tick = tick;
        inner.order.remove(&previous);
        inner.order.insert(tick, key.as_str().to_owned());
        Some(found)
    }

    /// Holds room for reading in `size` bytes of `key`, evicting the least recently used entries as needed; `None`
    /// when it is not to be cached (too large, already being read in, too many being read in).
    fn begin_fill(&self, key: &ObjectKey, size: u64) -> Option<Fill<'_>> {
        if size > self.largest() {
            return None;
        }
        let mut inner = self.lock();
        if inner.filling.len() >= FILLS || inner.filling.contains_key(key.as_str()) {
            return None;
        }
        while inner.cached + inner.reserved + size > self.capacity {
            let (_, oldest) = inner.order.pop_first()?;
            if let Some(entry) = inner.entries.remove(&oldest) {
                inner.cached -= entry.bytes.len() as u64;
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        inner.reserved += size;
        inner.filling.insert(key.as_str().to_owned(), size);
        Some(Fill { cache: self, key: key.as_str().to_owned(), size, done: false })
    }
}

/// Room held for one object being read in; given back when dropped (also when the request is abandoned).
struct Fill<'a> {
    cache: &'a ObjectCache,
    key: String,
    size: u64,
    done: bool,
}

impl Fill<'_> {
    fn finish(mut self, bytes: Bytes, meta: ObjectMeta) {
        let mut inner = self.cache.lock();
        release(&mut inner, &self.key, self.size);
        self.done = true;
        if inner.entries.contains_key(&self.key) {
            return;
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.cached += bytes.len() as u64;
        inner.order.insert(used, self.key.clone());
        inner.entries.insert(std::mem::take(&mut self.key), Entry { bytes, meta, used });
    }
}

impl Drop for Fill<'_> {
    fn drop(&mut self) {
        if !self.done {
            release(&mut self.cache.lock(), &self.key, self.size);
        }
    }
}

fn release(inner: &mut Inner, key: &str, size: u64) {
    inner.reserved -= size;
    inner.filling.remove(key);
}

/// Reads a whole body of `size` bytes; a body of another length is a storage failure.
async fn read_all(mut body: updraft_oss::ByteStream, size: u64) -> updraft_oss::Result<Bytes> {
    let failed = |message: String| Error::Backend { backend: "object cache", source: message.into() };
    let mut buffer = BytesMut::with_capacity(usize::try_from(size).map_err(|_| failed("object too large".into()))?);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::Backend { backend: "object cache", source: Box::new(e) })?;
        if buffer.len() + chunk.len() > buffer.capacity() {
            return Err(failed(format!("storage sent more than the {size} bytes the object has")));
        }
        buffer.extend_from_slice(&chunk);
    }
    if buffer.len() as u64 != size {
        return Err(failed(format!("storage sent {} of the {size} bytes the object has", buffer.len())));
    }
    Ok(buffer.freeze())
}

/// A `get` answer from cached bytes: `range` of them, in slices.
fn answer(key: &ObjectKey, bytes: Bytes, meta: ObjectMeta, range: Option<ByteRange>) -> updraft_oss::Result<GetResult> {
    let size = bytes.len() as u64;
    let span = match range {
        None => 0..size,
        Some(range) => range.resolve(size).ok_or_else(|| Error::RangeNotSatisfiable { key: key.to_string(), size })?,
    };
    let (start, end) = (span.start as usize, span.end as usize);
    let slices = (start..end).step_by(SLICE).map(move |at| Ok(bytes.slice(at..(at + SLICE).min(end))));
    Ok(GetResult { meta, range: span, body: futures::stream::iter(slices).boxed() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_oss::{MemoryStore, PutOptions};

    async fn store_with(objects: &[(&str, usize)]) -> MemoryStore {
        let store = MemoryStore::new();
        for (key, size) in objects {
            let body = futures::stream::iter([Ok(Bytes::from(vec![b'x'; *size]))]).boxed();
            store.put(&ObjectKey::parse(key).unwrap(), body, PutOptions::default()).await.unwrap();
        }
        store
    }

    async fn read(cache: &ObjectCache, store: &MemoryStore, key: &str, range: Option<ByteRange>) -> Vec<u8> {
        let result = cache.get(store, &ObjectKey::parse(key).unwrap(), range).await.unwrap();
        let chunks: Vec<_> = result.body.collect().await;
        chunks.into_iter().flat_map(|chunk| chunk.unwrap().to_vec()).collect()
    }

    #[tokio::test]
    async fn hits_after_one_whole_read_and_stays_within_its_capacity() {
        const MIB: usize = 1024 * 1024;
        let store = store_with(&[("a", MIB), ("b", MIB), ("c", MIB), ("d", MIB), ("e", MIB), ("big", MIB + 1)]).await;
        let cache = ObjectCache::new(4);
        assert_eq!(read(&cache, &store, "a", None).await.len(), MIB);
        assert_eq!(read(&cache, &store, "a", None).await.len(), MIB);
        assert_eq!((cache.figures().hits, cache.figures().misses, cache.figures().bytes), (1, 1, MIB as u64));
        // A range of a cached object comes from memory, the right bytes.
        assert_eq!(read(&cache, &store, "a", Some(ByteRange::Bounded(10, 19))).await.len(), 10);
        assert_eq!(cache.figures().hits, 2);
        // Larger than a quarter of the capacity: streamed, never cached.
        assert_eq!(read(&cache, &store, "big", None).await.len(), MIB + 1);
        assert_eq!(cache.figures().bytes, MIB as u64);
        for key in ["b", "c", "a", "d"] {
            read(&cache, &store, key, None).await;
        }
        assert_eq!((cache.figures().bytes, cache.figures().evictions), (4 * MIB as u64, 0));
        // A fifth object evicts the least recently used one, "b".
        read(&cache, &store, "e", None).await;
        let figures = cache.figures();
        assert_eq!((figures.bytes, figures.evictions), (4 * MIB as u64, 1));
        let hits = figures.hits;
        read(&cache, &store, "a", None).await;
        read(&cache, &store, "b", None).await;
        assert_eq!(cache.figures().hits, hits + 1, "a stayed, b was evicted");
    }

    #[tokio::test]
    async fn ranges_past_the_end_and_forgotten_objects_behave_as_storage_does() {
        let store = store_with(&[("a", 100)]).await;
        let cache = ObjectCache::new(1);
        read(&cache, &store, "a", None).await;
        let key = ObjectKey::parse("a").unwrap();
        let past = cache.get(&store, &key, Some(ByteRange::From(100))).await;
        assert!(matches!(past, Err(Error::RangeNotSatisfiable { size: 100, .. })), "{past:?}");
        cache.forget(&key);
        store.delete(&key).await.unwrap();
        assert!(matches!(cache.get(&store, &key, None).await, Err(Error::NotFound { .. })));
        assert_eq!(cache.figures().bytes, 0);
    }

    #[tokio::test]
    async fn a_zero_capacity_cache_is_storage_itself() {
        let store = store_with(&[("a", 100)]).await;
        let cache = ObjectCache::new(0);
        assert_eq!(read(&cache, &store, "a", Some(ByteRange::Suffix(5))).await.len(), 5);
        assert_eq!(cache.figures(), CacheFigures { hits: 0, misses: 0, evictions: 0, bytes: 0, capacity: 0 });
    }
}
