//! The gateway on S3-compatible storage (s3s-fs, started by tests/run.sh): Capgo and Expo flows in every delivery
//! mode, presigned-URL expiry behind stable gateway URLs, credential errors, and the bucket going away.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::expo_tools::{ExportFixture, client_headers, expo_check, manifest_url, publish};
use crate::helpers::{APP_ID, TestApp, device, sha256_hex, small_zip};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with tests/run.sh, which starts s3s-fs and sets it")
    })
}

/// A bucket on a running S3-compatible server.
pub struct Bucket {
    endpoint: String,
    name: String,
}

pub async fn create_bucket(endpoint: &str) -> Bucket {
    let sdk = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .endpoint_url(endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                var("UPDRAFT_TEST_S3_ACCESS_KEY"),
                var("UPDRAFT_TEST_S3_SECRET_KEY"),
                None,
                None,
                "test",
            ))
            .force_path_style(true)
            .build(),
    );
    let name = format!("updraft-{}", uuid::Uuid::new_v4().simple());
    sdk.create_bucket().bucket(&name).send().await.expect("create the test bucket");
    Bucket { endpoint: endpoint.to_owned(), name }
}

pub fn s3_env(bucket: &Bucket, delivery: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("UPDRAFT_STORAGE__KIND", "s3".to_owned()),
        ("UPDRAFT_STORAGE__BUCKET", bucket.name.clone()),
        ("UPDRAFT_STORAGE__REGION", "us-east-1".to_owned()),
        ("UPDRAFT_STORAGE__ENDPOINT", bucket.endpoint.clone()),
        ("UPDRAFT_STORAGE__FORCE_PATH_STYLE", "true".to_owned()),
        ("UPDRAFT_STORAGE__ACCESS_KEY_ID", var("UPDRAFT_TEST_S3_ACCESS_KEY")),
        ("UPDRAFT_STORAGE__SECRET_ACCESS_KEY", var("UPDRAFT_TEST_S3_SECRET_KEY")),
        ("UPDRAFT_STORAGE__DELIVERY", delivery.to_owned()),
    ];
    env.extend(extra.iter().cloned());
    env
}

async fn gateway(env: &[(&'static str, String)]) -> TestApp {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&env).await;
    app.create_app(APP_ID).await;
    app
}

/// Follows redirects like a device does (reqwest's default policy), returning the final status and bytes.
async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn capgo_bundles_in_every_delivery_mode() {
    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    for delivery in ["proxy", "presigned", "public"] {
        let extra = vec![("UPDRAFT_STORAGE__PUBLIC_BASE_URL", "https://cdn.example.com/updates".to_owned())];
        let app = gateway(&s3_env(&bucket, delivery, &extra)).await;
        let zip = small_zip(&format!("s3 {delivery}"));
        app.upload_ok("1.0.1", zip.clone(), &[("channel", "production")]).await;
        let answer = app.check(device(json!({}))).await;
        let url = answer["url"].as_str().unwrap().to_owned();
        assert_eq!(answer["checksum"], sha256_hex(&zip));
        match delivery {
            "public" => {
                assert_eq!(url, format!("https://cdn.example.com/updates/bundles/{APP_ID}/{}.zip", sha256_hex(&zip)));
            }
            "presigned" => {
                assert!(url.starts_with(&app.base), "a stable gateway URL: {url}");
                let first = app.client.get(&url).send().await.unwrap();
                assert_eq!(first.status(), 302, "{delivery}");
                let location = first.headers()["location"].to_str().unwrap().to_owned();
                assert!(location.starts_with(&bucket.endpoint) && location.contains("X-Amz-Signature"), "{location}");
                let (status, bytes) = fetch(&url).await;
                assert_eq!((status, sha256_hex(&bytes)), (200, sha256_hex(&zip)));
            }
            _ => {
                let (status, bytes) = fetch(&url).await;
                assert_eq!((status, sha256_hex(&bytes)), (200, sha256_hex(&zip)), "{delivery}");
                // Ranges are served by the gateway from the bucket.
                let partial = app.client.get(&url).header("range", "bytes=10-").send().await.unwrap();
                assert_eq!(partial.status(), 206);
                assert_eq!(partial.bytes().await.unwrap().as_ref(), &zip[10..]);
            }
        }
        // Each delivery mode gets its own app data dir but shares the bucket: content-addressed keys dedupe.
        drop(app);
    }
}

#[tokio::test]
async fn expo_assets_stay_reachable_after_the_presigned_url_expires() {
    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    let app = gateway(&s3_env(&bucket, "presigned", &[("UPDRAFT_STORAGE__PRESIGN_TTL_SECONDS", "1".to_owned())])).await;
    let fixture = ExportFixture::new("s3");
    publish(&app, &fixture, "production", &[]);
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    let manifest = &report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").unwrap()["json"];
    let launch = &manifest["launchAsset"];
    let url = launch["url"].as_str().unwrap();
    assert!(url.starts_with(&app.base), "manifests name stable gateway URLs, never presigned ones: {url}");
    let redirect = app.client.get(url).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let presigned = redirect.headers()["location"].to_str().unwrap().to_owned();
    let (status, bytes) = fetch(url).await;
    assert_eq!(status, 200);
    assert_eq!(crate::expo_tools::md5_hex(&bytes), launch["key"].as_str().unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fetch(&presigned).await.0, 403, "the S3 server refuses the expired presigned URL");
    let (status, again) = fetch(url).await;
    assert_eq!((status, again), (200, bytes), "the stable URL redirects to a fresh one");
}

#[tokio::test]
async fn wrong_credentials_fail_clearly_at_start_and_in_storage_check() {
    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    let data = tempfile::tempdir().unwrap();
    let mut env = s3_env(&bucket, "proxy", &[]);
    env.retain(|(k, _)| *k != "UPDRAFT_STORAGE__SECRET_ACCESS_KEY");
    env.push(("UPDRAFT_STORAGE__SECRET_ACCESS_KEY", "wrong-secret-for-the-test".to_owned()));
    for args in [&["storage", "check"][..], &["serve"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_updraft"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("UPDRAFT_DATA_DIR", data.path())
            .env("UPDRAFT_LISTEN", "127.0.0.1:0")
            .env("UPDRAFT_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("SignatureDoesNotMatch") || stderr.contains("403") || stderr.contains("AccessDenied"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("wrong-secret-for-the-test"), "the secret never appears: {stderr}");
        assert!(stderr.lines().last().unwrap().starts_with("error: "), "{stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(["storage", "check"])
        .envs(s3_env(&bucket, "proxy", &[]).iter().map(|(k, v)| (*k, v.as_str())))
        .env("UPDRAFT_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A private s3s-fs the test can stop and start.
struct OwnServer {
    child: Option<Child>,
    port: u16,
    root: tempfile::TempDir,
}

impl OwnServer {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { child: None, port, root };
        server.resume();
        server
    }

    fn resume(&mut self) {
        let child = Command::new(var("UPDRAFT_TEST_S3S_BIN"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--access-key",
                &var("UPDRAFT_TEST_S3_ACCESS_KEY"),
                "--secret-key",
                &var("UPDRAFT_TEST_S3_SECRET_KEY"),
            ])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("s3s-fs did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn the_bucket_going_away() {
    let mut server = OwnServer::start();
    let bucket = create_bucket(&server.endpoint()).await;
    let app = gateway(&s3_env(&bucket, "presigned", &[])).await;
    app.upload_ok("1.0.1", small_zip("before"), &[("channel", "production")]).await;

    server.stop();
    // Update checks never touch the bucket.
    for n in 0..5 {
        assert_eq!(app.check(device(json!({"device_id": format!("s3-down-{n}")}))).await["version"], "1.0.1");
    }
    // A publish fails cleanly (503, retryable) and leaves nothing visible.
    let (status, body) = app.upload("1.0.2", small_zip("during"), &[("channel", "production")]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");

    server.resume();
    app.upload_ok("1.0.2", small_zip("after"), &[("channel", "production")]).await;
    let answer = app.check(device(json!({}))).await;
    assert_eq!(answer["version"], "1.0.2");
    let (status, bytes) = fetch(answer["url"].as_str().unwrap()).await;
    assert_eq!((status, sha256_hex(&bytes)), (200, answer["checksum"].as_str().unwrap().to_owned()));
}

pub fn updraft_cli(data_dir: &std::path::Path, args: &[&str], env: &[(&'static str, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("UPDRAFT_DATA_DIR", data_dir)
        .env("UPDRAFT_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn gc_removes_only_what_no_release_uses() {
    let app = TestApp::with_app().await;
    let zip = small_zip("kept");
    app.upload_ok("1.0.1", zip.clone(), &[("channel", "production")]).await;
    let fixture = ExportFixture::new("gc");
    publish(&app, &fixture, "production", &[]);
    // An asset uploaded by a publish that never finished, and a stray object.
    let orphan = b"an asset no release names".to_vec();
    let orphan_sha = sha256_hex(&orphan);
    let response = app
        .client
        .put(app.url(&format!("/expo/{APP_ID}/assets/{orphan_sha}")))
        .header("authorization", crate::helpers::ADMIN_KEY)
        .body(orphan)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stray = app.data_path().join(format!("objects/bundles/{APP_ID}/{}.zip", "f".repeat(64)));
    std::fs::write(&stray, b"stray").unwrap();

    let young = updraft_cli(app.data_path(), &["storage", "gc"], &[]);
    assert!(String::from_utf8_lossy(&young.stderr).contains("removed 0 unused objects"), "{young:?}");
    let dry = updraft_cli(app.data_path(), &["storage", "gc", "--dry-run", "--grace-hours", "0"], &[]);
    let listed = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(listed.contains(&orphan_sha) && listed.contains(&"f".repeat(64)), "{listed}");
    assert_eq!(listed.lines().count(), 2, "only the two unused objects: {listed}");
    assert!(stray.exists(), "a dry run removes nothing");
    let run = updraft_cli(app.data_path(), &["storage", "gc", "--grace-hours", "0"], &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(!stray.exists());
    // What releases use is untouched: the bundle and every Expo asset still download.
    let answer = app.check(device(json!({}))).await;
    let (status, bytes) = fetch(answer["url"].as_str().unwrap()).await;
    assert_eq!((status, sha256_hex(&bytes)), (200, sha256_hex(&zip)));
    let report = expo_check(&manifest_url(&app), &client_headers("android", json!({})), None).await;
    let manifest = &report["parts"][0]["json"];
    for asset in manifest["assets"].as_array().unwrap().iter().chain([&manifest["launchAsset"]]) {
        assert_eq!(fetch(asset["url"].as_str().unwrap()).await.0, 200);
    }
    // The removed asset is reported missing again, so a later publish uploads it instead of trusting it.
    let (_, missing) =
        app.admin("POST", &format!("/expo/{APP_ID}/assets/missing"), json!({"sha256": [orphan_sha]})).await;
    assert_eq!(missing["missing"], json!([orphan_sha]));
}

#[tokio::test]
async fn migrate_from_the_filesystem_to_a_bucket() {
    let mut app = TestApp::with_app().await;
    let zip = small_zip("migrated");
    app.upload_ok("1.0.1", zip.clone(), &[("channel", "production"), ("delta", "true")]).await;
    let fixture = ExportFixture::new("migrate");
    publish(&app, &fixture, "production", &[]);
    app.terminate();

    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    let target = app.data_path().join("s3.toml");
    std::fs::write(
        &target,
        format!(
            "[storage]\nkind = \"s3\"\nbucket = \"{}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\nforce_path_style = true\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            bucket.name,
            bucket.endpoint,
            var("UPDRAFT_TEST_S3_ACCESS_KEY"),
            var("UPDRAFT_TEST_S3_SECRET_KEY")
        ),
    )
    .unwrap();
    let output = updraft_cli(app.data_path(), &["storage", "migrate", "--to", target.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("copied") && stderr.contains("0 were already there"), "{stderr}");
    let again = updraft_cli(app.data_path(), &["storage", "migrate", "--to", target.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("copied 0 objects"), "idempotent: {again:?}");

    // The same installation, now on the bucket, serves everything.
    let mut env = s3_env(&bucket, "proxy", &[]);
    env.push(("UPDRAFT_DATA_DIR", app.data_path().to_str().unwrap().to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let moved = TestApp::spawn_with(&env).await;
    std::fs::remove_dir_all(app.data_path().join("objects")).unwrap();
    let answer = moved.check(device(json!({}))).await;
    let (status, bytes) = fetch(answer["url"].as_str().unwrap()).await;
    assert_eq!((status, sha256_hex(&bytes)), (200, sha256_hex(&zip)));
    for entry in answer["manifest"].as_array().unwrap() {
        let (status, bytes) = fetch(entry["download_url"].as_str().unwrap()).await;
        assert_eq!((status, sha256_hex(&bytes)), (200, entry["file_hash"].as_str().unwrap().to_owned()));
    }
    let report = expo_check(&manifest_url(&moved), &client_headers("ios", json!({})), None).await;
    let launch = &report["parts"][0]["json"]["launchAsset"];
    let (status, bytes) = fetch(launch["url"].as_str().unwrap()).await;
    assert_eq!((status, crate::expo_tools::md5_hex(&bytes)), (200, launch["key"].as_str().unwrap().to_owned()));
}

#[tokio::test]
async fn expo_assets_in_proxy_and_public_delivery() {
    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    for delivery in ["proxy", "public"] {
        let extra = vec![("UPDRAFT_STORAGE__PUBLIC_BASE_URL", "https://cdn.example.com".to_owned())];
        let app = gateway(&s3_env(&bucket, delivery, &extra)).await;
        let fixture = ExportFixture::new(delivery);
        publish(&app, &fixture, "production", &[]);
        let report = expo_check(&manifest_url(&app), &client_headers("android", json!({})), None).await;
        let launch = &report["parts"][0]["json"]["launchAsset"];
        let url = launch["url"].as_str().unwrap();
        if delivery == "public" {
            assert!(url.starts_with(&format!("https://cdn.example.com/assets/{APP_ID}/")), "{url}");
        } else {
            let (status, bytes) = fetch(url).await;
            assert_eq!((status, crate::expo_tools::md5_hex(&bytes)), (200, launch["key"].as_str().unwrap().to_owned()));
        }
    }
}

/// A presigned redirect from an https gateway to an http bucket would change scheme, which Android's downloader
/// refuses: the gateway streams instead.
#[tokio::test]
async fn presigned_delivery_never_redirects_across_schemes() {
    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    let app =
        gateway(&s3_env(&bucket, "presigned", &[("UPDRAFT_PUBLIC_URL", "https://updates.example.com".to_owned())]))
            .await;
    let zip = small_zip("scheme");
    app.upload_ok("1.0.1", zip.clone(), &[("channel", "production")]).await;
    let answer = app.check(device(json!({}))).await;
    let url = answer["url"].as_str().unwrap();
    assert!(url.starts_with("https://updates.example.com/files/"), "{url}");
    let path = url.strip_prefix("https://updates.example.com").unwrap();
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "streamed, not redirected to http");
    assert_eq!(sha256_hex(&response.bytes().await.unwrap()), sha256_hex(&zip));
}

/// Presigned delivery of a compressed copy: the gateway redirects to a presigned URL of the `.br` copy that asks
/// the bucket for `Content-Encoding: br` (`response-content-encoding`), and what the bucket sends decodes (Node's
/// zlib) to the manifest's hash.
#[tokio::test]
async fn presigned_compressed_copies_come_with_their_content_encoding() {
    let bucket = create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    let app = gateway(&s3_env(&bucket, "presigned", &[])).await;
    let fixture = crate::bytes::export_with_bundles("s3br", |platform| crate::bytes::js_bundle(128, platform));
    publish(&app, &fixture, "production", &[]);
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    let manifest = &report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").unwrap()["json"];
    let launch = &manifest["launchAsset"];
    let redirect =
        app.client.get(launch["url"].as_str().unwrap()).header("accept-encoding", "br").send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["vary"], "Accept-Encoding");
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains(".br?") && location.contains("response-content-encoding=br"), "{location}");
    let response = reqwest::get(&location).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "br");
    let body = response.bytes().await.unwrap();
    let expected = {
        use base64::Engine;
        hex::encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(launch["hash"].as_str().unwrap()).unwrap())
    };
    assert_eq!(crate::bytes::node_decoded_sha256(&body, "br"), expected);
}
