//! The S3 backend against a real S3-compatible server (s3s-fs, which checks SigV4 signatures and presigned-URL
//! expiry), started by `tests/run.sh`: the shared conformance suite, multipart uploads, aborts, presigned URLs and
//! credential errors.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use updraft_oss::{Error, GetOptions, ObjectKey, ObjectStore, PutMode, PutOptions, S3Config, S3Store, conformance};

struct Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
}

fn server() -> Server {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with tests/run.sh, which starts s3s-fs (tests/tools/install-s3s.sh) and sets it")
        })
    };
    Server {
        endpoint: var("UPDRAFT_TEST_S3_ENDPOINT"),
        access_key: var("UPDRAFT_TEST_S3_ACCESS_KEY"),
        secret_key: var("UPDRAFT_TEST_S3_SECRET_KEY"),
    }
}

fn config(server: &Server, bucket: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint.clone()),
        prefix: prefix.to_owned(),
        force_path_style: true,
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some(server.secret_key.clone()),
    }
}

/// A fresh bucket on the test server.
async fn fresh_store(prefix: &str) -> (S3Store, String) {
    let server = server();
    let bucket = format!("updraft-{}", uuid::Uuid::new_v4().simple());
    let sdk = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .endpoint_url(&server.endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &server.access_key,
                &server.secret_key,
                None,
                None,
                "test",
            ))
            .force_path_style(true)
            .build(),
    );
    sdk.create_bucket().bucket(&bucket).send().await.expect("create the test bucket");
    (S3Store::connect(&config(&server, &bucket, prefix)).await, bucket)
}

fn key(raw: &str) -> ObjectKey {
    ObjectKey::parse(raw).unwrap()
}

#[tokio::test]
async fn s3_store_passes_conformance() {
    let (store, _) = fresh_store("").await;
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn s3_store_with_a_prefix_passes_conformance() {
    let (store, _) = fresh_store("tenant/a").await;
    conformance::run_all(&store).await;
    assert!(store.to_string().starts_with("s3://updraft-"));
}

#[tokio::test]
async fn large_objects_go_up_in_parts_and_read_back_exactly() {
    let (store, _) = fresh_store("").await;
    // 8 MiB parts: 20 MiB + a tail is three parts.
    let chunk: Vec<u8> = (0..=255u8).cycle().take(1024 * 1024).collect();
    let n_chunks = 20;
    let body = stream::iter(
        (0..n_chunks).map(move |_| Ok(Bytes::from(chunk.clone()))).chain([Ok(Bytes::from_static(b"tail"))]),
    )
    .boxed();
    let put = store.put(&key("big/object.zip"), body, PutOptions::default()).await.unwrap();
    assert_eq!(put.size, n_chunks * 1024 * 1024 + 4);
    let meta = store.head(&key("big/object.zip")).await.unwrap();
    assert_eq!(meta.size, put.size);
    let tail =
        store.get(&key("big/object.zip"), GetOptions { range: Some(updraft_oss::ByteRange::Suffix(4)) }).await.unwrap();
    let bytes: Vec<Bytes> = tail.body.try_collect().await.unwrap();
    assert_eq!(bytes.concat(), b"tail");
    // Create mode refuses an existing key, whatever the size.
    let again = stream::iter([Ok(Bytes::from_static(b"x"))]).boxed();
    let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    assert!(matches!(store.put(&key("big/object.zip"), again, create).await, Err(Error::AlreadyExists { .. })));
}

#[tokio::test]
async fn a_failed_upload_leaves_nothing() {
    let (store, _) = fresh_store("").await;
    let chunk = Bytes::from(vec![7u8; 1024 * 1024]);
    // Fails after 10 MiB: the multipart upload has started, and must be aborted.
    let body =
        stream::iter((0..10).map(move |_| Ok(chunk.clone())).chain([Err(std::io::Error::other("client went away"))]))
            .boxed();
    assert!(store.put(&key("broken.zip"), body, PutOptions::default()).await.is_err());
    assert!(matches!(store.head(&key("broken.zip")).await, Err(Error::NotFound { .. })));
    let small = stream::iter([Ok(Bytes::from_static(b"part")), Err(std::io::Error::other("gone"))]).boxed();
    assert!(store.put(&key("broken-small.zip"), small, PutOptions::default()).await.is_err());
    assert!(matches!(store.head(&key("broken-small.zip")).await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let (store, _) = fresh_store("").await;
    let body = stream::iter([Ok(Bytes::from_static(b"hello presigned"))]).boxed();
    store.put(&key("p/hello.txt"), body, PutOptions::default()).await.unwrap();
    let url = store.presigned_get(&key("p/hello.txt"), Duration::from_secs(60)).await.unwrap().unwrap();
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hello presigned");
    let short = store.presigned_get(&key("p/hello.txt"), Duration::from_secs(1)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reqwest::get(&short).await.unwrap().status(), 403, "the server refuses an expired URL");
    // Without a signature the object is not public.
    let unsigned = url.split('?').next().unwrap().to_owned();
    assert_eq!(reqwest::get(&unsigned).await.unwrap().status(), 403);
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let (_, bucket) = fresh_store("").await;
    let server = server();
    let mut wrong = config(&server, &bucket, "");
    wrong.secret_access_key = Some("definitely-not-the-secret".into());
    let store = S3Store::connect(&wrong).await;
    let error = store.head(&key("anything")).await.unwrap_err().to_string();
    assert!(!error.contains("definitely-not-the-secret"), "{error}");
    let body = stream::iter([Ok(Bytes::from_static(b"x"))]).boxed();
    let error = store.put(&key("x"), body, PutOptions::default()).await.unwrap_err().to_string();
    assert!(
        error.contains("SignatureDoesNotMatch") || error.contains("AccessDenied") || error.contains("403"),
        "{error}"
    );
    assert!(!error.contains("definitely-not-the-secret"), "{error}");
    assert!(!format!("{wrong:?}").contains("definitely-not-the-secret"));
}
