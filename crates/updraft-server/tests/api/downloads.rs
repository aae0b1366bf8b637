//! Bundle downloads: full, ranged (206), past the end (416), conditional (304), HEAD, and unknown files.

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG};

use crate::helpers::{APP_ID, TestApp, sha256_hex, small_zip};

async fn uploaded() -> (TestApp, String, Vec<u8>) {
    let app = TestApp::with_app().await;
    let zip = small_zip(&"payload ".repeat(2000));
    let (status, body) = app.upload("1.0.1", zip.clone(), &[]).await;
    assert_eq!(status, 200, "{body}");
    let url = app.url(&format!("/files/bundles/{APP_ID}/{}.zip", body["checksum"].as_str().unwrap()));
    (app, url, zip)
}

#[tokio::test]
async fn full_download_has_length_and_etag() {
    let (app, url, zip) = uploaded().await;
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_LENGTH], zip.len().to_string().as_str());
    assert_eq!(response.headers()[ETAG], format!("\"{}\"", sha256_hex(&zip)).as_str());
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert_eq!(response.bytes().await.unwrap().as_ref(), zip.as_slice());
}

#[tokio::test]
async fn resumed_download_appends_to_the_same_bytes() {
    let (app, url, zip) = uploaded().await;
    let split = zip.len() / 3;
    let response = app.client.get(&url).header("range", format!("bytes={split}-")).send().await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()[CONTENT_RANGE], format!("bytes {split}-{}/{}", zip.len() - 1, zip.len()).as_str());
    let tail = response.bytes().await.unwrap();
    let mut resumed = zip[..split].to_vec();
    resumed.extend_from_slice(&tail);
    assert_eq!(sha256_hex(&resumed), sha256_hex(&zip));

    let response = app.client.get(&url).header("range", "bytes=0-9").send().await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap().as_ref(), &zip[..10]);
    let response = app.client.get(&url).header("range", "bytes=-4").send().await.unwrap();
    assert_eq!(response.bytes().await.unwrap().as_ref(), &zip[zip.len() - 4..]);
}

#[tokio::test]
async fn range_past_the_end_is_416() {
    let (app, url, zip) = uploaded().await;
    let response = app.client.get(&url).header("range", format!("bytes={}-", zip.len())).send().await.unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(response.headers()[CONTENT_RANGE], format!("bytes */{}", zip.len()).as_str());
}

#[tokio::test]
async fn conditional_and_head_requests() {
    let (app, url, zip) = uploaded().await;
    let etag = format!("\"{}\"", sha256_hex(&zip));
    let response = app.client.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(response.status(), 304);
    let response = app.client.head(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_LENGTH], zip.len().to_string().as_str());
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_and_unsafe_files_are_404() {
    let (app, _, _) = uploaded().await;
    for path in [
        format!("/files/bundles/{APP_ID}/{}.zip", "0".repeat(64)),
        "/files/bundles/x/y.zip".to_owned(),
        "/files/updraft.db".to_owned(),
        "/files/../updraft.db".to_owned(),
        "/files/bundles/%2e%2e/updraft.db".to_owned(),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

/// A metric's value from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|line| line.split(' ').next() == Some(name));
    line.unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}")).split(' ').nth(1).unwrap().parse().unwrap()
}

/// Downloads answered from the object cache are the same answers: full bytes, ranges, 416, and the object store is
/// read once; removing the object's file from storage does not change what a cached object serves, and a gateway
/// with the cache off reads storage every time.
#[tokio::test]
async fn cached_downloads_answer_as_storage_does() {
    let (app, url, zip) = uploaded().await;
    assert_eq!(metric(&app, "updraft_object_cache_capacity_bytes").await, 256 * 1024 * 1024);
    for _ in 0..3 {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CONTENT_LENGTH], zip.len().to_string().as_str());
        assert_eq!(response.headers()[ETAG], format!("\"{}\"", sha256_hex(&zip)).as_str());
        assert_eq!(response.bytes().await.unwrap().as_ref(), zip.as_slice());
    }
    assert_eq!(metric(&app, "updraft_object_cache_misses_total").await, 1);
    assert_eq!(metric(&app, "updraft_object_cache_hits_total").await, 2);
    assert_eq!(metric(&app, "updraft_object_cache_bytes").await, zip.len() as u64);

    let split = zip.len() / 3;
    let response = app.client.get(&url).header("range", format!("bytes={split}-")).send().await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()[CONTENT_RANGE], format!("bytes {split}-{}/{}", zip.len() - 1, zip.len()).as_str());
    assert_eq!(response.bytes().await.unwrap().as_ref(), &zip[split..]);
    let response = app.client.get(&url).header("range", format!("bytes={}-", zip.len())).send().await.unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(response.headers()[CONTENT_RANGE], format!("bytes */{}", zip.len()).as_str());
    assert_eq!(metric(&app, "updraft_object_cache_hits_total").await, 4, "the ranges came from the cache");

    // Served from memory: the file in storage is not read again.
    let checksum = sha256_hex(&zip);
    let stored = app.data_path().join("objects").join(format!("bundles/{APP_ID}/{checksum}.zip"));
    assert!(stored.exists(), "{} is where the fs store keeps the bundle", stored.display());
    std::fs::remove_file(&stored).unwrap();
    assert_eq!(app.client.get(&url).send().await.unwrap().bytes().await.unwrap().as_ref(), zip.as_slice());

    let off = TestApp::spawn_with(&[("UPDRAFT_OBJECT_CACHE_MB", "0")]).await;
    off.create_app(APP_ID).await;
    assert_eq!(off.upload("1.0.1", zip.clone(), &[]).await.0, 200);
    let url = off.url(&format!("/files/bundles/{APP_ID}/{checksum}.zip"));
    for _ in 0..2 {
        assert_eq!(off.client.get(&url).send().await.unwrap().bytes().await.unwrap().as_ref(), zip.as_slice());
    }
    assert_eq!(metric(&off, "updraft_object_cache_capacity_bytes").await, 0);
    assert_eq!(metric(&off, "updraft_object_cache_hits_total").await, 0);
}
