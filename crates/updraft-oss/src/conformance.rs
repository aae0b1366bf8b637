//! The backend conformance suite: behaviour every [`ObjectStore`] must show. Each backend's tests call
//! [`run_all`] against a fresh, empty store (the filesystem and memory backends here; the S3 backend against a real
//! S3-compatible server). Functions panic on a violation, like assertions.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::{ByteRange, Error, GetOptions, ObjectKey, ObjectStore, PutMode, PutOptions};

fn key(raw: &str) -> ObjectKey {
    ObjectKey::parse(raw).expect("test key is valid")
}

fn body(chunks: &[&'static [u8]]) -> crate::ByteStream {
    stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>()).boxed()
}

async fn read_all(store: &dyn ObjectStore, key: &ObjectKey, range: Option<ByteRange>) -> Vec<u8> {
    let result = store.get(key, GetOptions { range }).await.expect("get succeeds");
    let chunks: Vec<Bytes> = result.body.try_collect().await.expect("body streams");
    chunks.concat()
}

/// Runs every check, in order, on an empty store.
pub async fn run_all(store: &dyn ObjectStore) {
    put_get_round_trip(store).await;
    range_reads(store).await;
    head_reports_size(store).await;
    create_mode_refuses_existing(store).await;
    missing_objects_are_not_found(store).await;
    list_by_prefix(store).await;
    delete_is_idempotent(store).await;
    presign_or_none(store).await;
}

/// A multi-chunk body reads back byte for byte.
pub async fn put_get_round_trip(store: &dyn ObjectStore) {
    let k = key("conformance/round/trip.bin");
    let put = store.put(&k, body(&[b"hello ", b"world"]), PutOptions::default()).await.expect("put succeeds");
    assert_eq!(put.size, 11);
    assert_eq!(read_all(store, &k, None).await, b"hello world");
    store.put(&k, body(&[b"replaced"]), PutOptions::default()).await.expect("overwrite succeeds");
    assert_eq!(read_all(store, &k, None).await, b"replaced");
}

/// Ranges return exactly the requested bytes; a range past the end is refused.
pub async fn range_reads(store: &dyn ObjectStore) {
    let k = key("conformance/range.bin");
    store.put(&k, body(&[b"0123456789"]), PutOptions::default()).await.expect("put succeeds");
    assert_eq!(read_all(store, &k, Some(ByteRange::From(7))).await, b"789");
    assert_eq!(read_all(store, &k, Some(ByteRange::Bounded(2, 4))).await, b"234");
    assert_eq!(read_all(store, &k, Some(ByteRange::Suffix(2))).await, b"89");
    let ranged = store.get(&k, GetOptions { range: Some(ByteRange::From(3)) }).await.expect("get succeeds");
    assert_eq!((ranged.range, ranged.meta.size), (3..10, 10));
    let past_end = store.get(&k, GetOptions { range: Some(ByteRange::From(10)) }).await;
    assert!(matches!(past_end, Err(Error::RangeNotSatisfiable { size: 10, .. })), "{past_end:?}");
}

/// `head` gives the size without the body.
pub async fn head_reports_size(store: &dyn ObjectStore) {
    let k = key("conformance/head.bin");
    store.put(&k, body(&[b"12345"]), PutOptions::default()).await.expect("put succeeds");
    let meta = store.head(&k).await.expect("head succeeds");
    assert_eq!((meta.key.as_str(), meta.size), ("conformance/head.bin", 5));
}

/// `PutMode::Create` never replaces an object.
pub async fn create_mode_refuses_existing(store: &dyn ObjectStore) {
    let k = key("conformance/create-once.bin");
    let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    store.put(&k, body(&[b"first"]), create.clone()).await.expect("first create succeeds");
    let second = store.put(&k, body(&[b"second"]), create).await;
    assert!(matches!(second, Err(Error::AlreadyExists { .. })), "{second:?}");
    assert_eq!(read_all(store, &k, None).await, b"first");
}

/// Missing keys are `NotFound` for get and head.
pub async fn missing_objects_are_not_found(store: &dyn ObjectStore) {
    let k = key("conformance/never/written");
    assert!(matches!(store.get(&k, GetOptions::default()).await, Err(Error::NotFound { .. })));
    assert!(matches!(store.head(&k).await, Err(Error::NotFound { .. })));
}

/// Listing by prefix returns exactly the objects under it.
pub async fn list_by_prefix(store: &dyn ObjectStore) {
    for name in ["conformance/list/a", "conformance/list/sub/b", "conformance/other/c"] {
        store.put(&key(name), body(&[b"x"]), PutOptions::default()).await.expect("put succeeds");
    }
    let mut listed: Vec<String> =
        store.list(Some(&key("conformance/list"))).map_ok(|meta| meta.key).try_collect().await.expect("list succeeds");
    listed.sort();
    assert_eq!(listed, ["conformance/list/a", "conformance/list/sub/b"]);
}

/// Deleting removes the object; deleting again succeeds.
pub async fn delete_is_idempotent(store: &dyn ObjectStore) {
    let k = key("conformance/delete.bin");
    store.put(&k, body(&[b"x"]), PutOptions::default()).await.expect("put succeeds");
    store.delete(&k).await.expect("delete succeeds");
    assert!(matches!(store.head(&k).await, Err(Error::NotFound { .. })));
    store.delete(&k).await.expect("second delete succeeds");
}

/// A presigned URL is either absent (streaming backends) or an absolute http(s) URL.
pub async fn presign_or_none(store: &dyn ObjectStore) {
    let k = key("conformance/presign.bin");
    store.put(&k, body(&[b"x"]), PutOptions::default()).await.expect("put succeeds");
    if let Some(url) = store.presigned_get(&k, Duration::from_secs(60)).await.expect("presign succeeds") {
        assert!(url.starts_with("http://") || url.starts_with("https://"), "{url}");
    }
}
