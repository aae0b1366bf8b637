//! Fewer bytes to every device: compressed copies made once at publish and served as stored files (decoded here by
//! Node's zlib, an independent implementation, and hashed), `Accept-Encoding` negotiation, and `/metrics` bytes
//! by representation.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::expo_tools::{ExportFixture, client_headers, expo_check, manifest_url, md5_hex, publish, updraft};
use crate::helpers::TestApp;

/// A JavaScript bundle of about `kib` KiB that compresses like real code; `marker` changes a few lines.
pub fn js_bundle(kib: usize, marker: &str) -> Vec<u8> {
    let mut out = String::from("var __BUNDLE_START_TIME__=Date.now();\n");
    let mut i = 0usize;
    while out.len() < kib * 1024 {
        let name = format!("m{}_{}", i % 97, i * 7919 % 10_007);
        out.push_str(&format!(
            "__d(function(g,r,i,a,m,e,d){{var {name}=r(d[{}]);e.{name}=function(x){{return {name}.call(x,{},\"{}\")}}}},{i},[{}]);\n",
            i % 31,
            i * 31 % 977,
            if i % 500 == 250 { marker } else { "v" },
            i % 13
        ));
        i += 1;
    }
    out.into_bytes()
}

/// An export like `ExportFixture`'s, with each platform's launch bundle replaced by `bundle(platform)`.
pub fn export_with_bundles(marker: &str, bundle: impl Fn(&str) -> Vec<u8>) -> ExportFixture {
    let fixture = ExportFixture::new(marker);
    let mut metadata = fixture.metadata();
    for platform in ["ios", "android"] {
        let old = metadata["fileMetadata"][platform]["bundle"].as_str().unwrap().to_owned();
        std::fs::remove_file(fixture.path().join(&old)).unwrap();
        let bytes = bundle(platform);
        let path = format!("_expo/static/js/{platform}/index-{}.hbc", md5_hex(&bytes));
        std::fs::write(fixture.path().join(&path), &bytes).unwrap();
        metadata["fileMetadata"][platform]["bundle"] = json!(path);
    }
    std::fs::write(fixture.path().join("metadata.json"), metadata.to_string()).unwrap();
    fixture
}

/// Decodes `bytes` with Node's zlib (`br`, `gzip` or `identity`) and returns the hex SHA-256 of the result.
pub fn node_decoded_sha256(bytes: &[u8], encoding: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, bytes).unwrap();
    let script = "const fs=require('fs'),z=require('zlib'),c=require('crypto');\
        const b=fs.readFileSync(process.argv[1]);\
        const d=process.argv[2]==='br'?z.brotliDecompressSync(b):process.argv[2]==='gzip'?z.gunzipSync(b):b;\
        process.stdout.write(c.createHash('sha256').update(d).digest('hex'))";
    let output = Command::new("node").args(["-e", script, file.to_str().unwrap(), encoding]).output().unwrap();
    assert!(output.status.success(), "node: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn hex_of_b64url(hash: &str) -> String {
    use base64::Engine;
    hex::encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(hash).unwrap())
}

async fn get(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app.client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    (response.status().as_u16(), headers, response.bytes().await.unwrap().to_vec())
}

async fn launch_asset(app: &TestApp, platform: &str) -> Value {
    let report = expo_check(&manifest_url(app), &client_headers(platform, json!({})), None).await;
    let manifest = report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").unwrap();
    manifest["json"]["launchAsset"].clone()
}

pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn compressed_copies_made_at_publish_are_served_as_stored_files() {
    let app = TestApp::with_app().await;
    let fixture = export_with_bundles("v1", |platform| js_bundle(300, platform));
    publish(&app, &fixture, "production", &[]);
    let launch = launch_asset(&app, "ios").await;
    let url = launch["url"].as_str().unwrap();
    let expected = hex_of_b64url(launch["hash"].as_str().unwrap());
    let sha = url.rsplit('/').next().unwrap().split('.').next().unwrap().to_owned();
    assert_eq!(sha, expected);

    // What each client offers, and what it gets.
    let cases = [
        (None, "identity"),
        (Some("zstd, br, gzip"), "br"),
        (Some("br, gzip"), "br"),
        (Some("gzip"), "gzip"),
        (Some("br;q=0.5, gzip"), "gzip"),
        (Some("gzip;q=0, br;q=0"), "identity"),
        (Some("deflate"), "identity"),
    ];
    let mut sizes = std::collections::HashMap::new();
    for (accept, encoding) in cases {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        let (status, headers, body) = get(&app, url, &headers).await;
        assert_eq!(status, 200, "{accept:?}");
        let content_encoding = headers.get("content-encoding").map(|v| v.to_str().unwrap());
        assert_eq!(content_encoding.unwrap_or("identity"), encoding, "{accept:?}");
        assert_eq!(headers["content-length"].to_str().unwrap(), body.len().to_string(), "{accept:?}");
        assert!(headers.get("transfer-encoding").is_none());
        assert_eq!(headers["vary"], "Accept-Encoding");
        assert_eq!(headers["content-type"], "application/javascript");
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
        let suffix = match encoding {
            "br" => ".br",
            "gzip" => ".gz",
            _ => "",
        };
        assert_eq!(headers["etag"].to_str().unwrap(), format!("\"{sha}{suffix}\""));
        assert_eq!(node_decoded_sha256(&body, encoding), expected, "{accept:?} decodes to the manifest's hash");
        sizes.insert(encoding, body.len());
    }
    assert!(sizes["br"] < sizes["gzip"] && sizes["gzip"] * 3 < sizes["identity"], "{sizes:?}");

    // Each representation revalidates with its own validator; a range is always of the original.
    let (status, headers, _) =
        get(&app, url, &[("accept-encoding", "br"), ("if-none-match", &format!("\"{sha}.br\""))]).await;
    assert_eq!((status, headers["etag"].to_str().unwrap()), (304, format!("\"{sha}.br\"").as_str()));
    let (status, headers, body) = get(&app, url, &[("accept-encoding", "br"), ("range", "bytes=0-9")]).await;
    assert_eq!(status, 206);
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(&body[..], &js_bundle(300, "ios")[..10]);

    // Images are not compressed again.
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    let manifest = &report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").unwrap()["json"];
    let png = manifest["assets"].as_array().unwrap().iter().find(|a| a["fileExtension"] == ".png").unwrap();
    let (status, headers, _) = get(&app, png["url"].as_str().unwrap(), &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none() && headers.get("vary").is_none(), "{headers:?}");

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let served = |label: &str| metric(&metrics, &format!("updraft_download_bytes_total{{representation=\"{label}\"}}"));
    assert_eq!(served("br"), 2 * sizes["br"] as u64);
    assert_eq!(served("gzip"), 2 * sizes["gzip"] as u64);
    assert!(served("identity") >= 3 * sizes["identity"] as u64 + 10);
    assert_eq!(served("patch"), 0);
}

/// Removes every stored compressed copy under `data`, as if the objects were published before copies existed.
fn remove_copies(data: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![data.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "br" || e == "gz") {
                std::fs::remove_file(path).unwrap();
                removed += 1;
            }
        }
    }
    removed
}

#[tokio::test]
async fn objects_stored_before_get_their_copies_from_the_storage_command_never_from_a_request() {
    let app = TestApp::with_app().await;
    let fixture = export_with_bundles("old", |platform| js_bundle(200, platform));
    publish(&app, &fixture, "production", &[]);
    assert!(remove_copies(app.data_path()) >= 4, "brotli and gzip copies of both launch bundles were stored");
    let ios = launch_asset(&app, "ios").await;
    let android = launch_asset(&app, "android").await;

    // Without copies: the stored file, as it is, and no copy appears because of the request.
    let (status, headers, body) = get(&app, ios["url"].as_str().unwrap(), &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(node_decoded_sha256(&body, "identity"), hex_of_b64url(ios["hash"].as_str().unwrap()));
    assert_eq!(remove_copies(app.data_path()), 0);

    let output = updraft(&app, &["storage", "encode"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().filter(|l| l.starts_with("encoded assets/")).count() >= 2, "{stdout}");
    let again = updraft(&app, &["storage", "encode"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("gave 0 objects"), "idempotent");

    let (status, headers, body) = get(&app, android["url"].as_str().unwrap(), &[("accept-encoding", "br")]).await;
    assert_eq!((status, headers["content-encoding"].to_str().unwrap()), (200, "br"));
    assert_eq!(node_decoded_sha256(&body, "br"), hex_of_b64url(android["hash"].as_str().unwrap()));
}
