//! Delta updates: an upload with `delta=true` stores every file content-addressed; plugins that read manifests get
//! the complete file list, each URL serving bytes that hash to `file_hash`; unchanged files are stored once.

use serde_json::{Value, json};

use crate::capgo_cli::CapacitorProject;
use crate::helpers::{TestApp, device, sha256_hex};

/// Stored delta files (originals; their compressed copies `<sha256>.br` / `.gz` sit beside them).
fn stored_files(app: &TestApp) -> usize {
    let dir = app.data_path().join("objects/files/com.example.app");
    let original = |entry: &std::fs::DirEntry| !entry.file_name().to_string_lossy().contains('.');
    std::fs::read_dir(dir).map(|entries| entries.map(Result::unwrap).filter(original).count()).unwrap_or(0)
}

#[tokio::test]
async fn manifest_lists_every_file_and_each_url_serves_it() {
    let app = TestApp::with_app().await;
    let v1 = CapacitorProject::typical("version one");
    let (zip, checksum) = v1.bundle_zip("1.0.1");
    let (status, body) = app
        .upload(
            "1.0.1",
            std::fs::read(zip).unwrap(),
            &[("channel", "production"), ("delta", "true"), ("checksum", &checksum)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest_files"], 3);

    let answer = app.check(device(json!({}))).await;
    assert_eq!(answer["checksum"], checksum.as_str(), "url and checksum stay next to the manifest");
    assert!(answer["url"].as_str().unwrap().starts_with("http"));
    let manifest = answer["manifest"].as_array().expect("manifest for plugin 8.x").clone();
    let mut names: Vec<&str> = manifest.iter().map(|e| e["file_name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["app.js", "assets/style.css", "index.html"]);
    for entry in &manifest {
        let bytes =
            app.client.get(entry["download_url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(sha256_hex(&bytes), entry["file_hash"].as_str().unwrap(), "{entry}");
        let original = std::fs::read(v1.dist().join(entry["file_name"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.as_ref(), original.as_slice());
    }
    // Plugins that predate manifests get the zip only.
    let old = app.check(device(json!({"plugin_version": "7.0.34"}))).await;
    assert!(old.get("manifest").is_none(), "{old}");
    assert_eq!(old["version"], "1.0.1");
}

#[tokio::test]
async fn unchanged_files_are_stored_once() {
    let app = TestApp::with_app().await;
    let v1 = CapacitorProject::typical("same text");
    let (zip, _) = v1.bundle_zip("1.0.1");
    app.upload_ok("1.0.1", std::fs::read(zip).unwrap(), &[("delta", "true")]).await;
    assert_eq!(stored_files(&app), 3);
    // Only app.js changes in the next build.
    std::fs::write(v1.dist().join("app.js"), "CapacitorUpdater.notifyAppReady(); console.log('v2')").unwrap();
    let (zip, _) = v1.bundle_zip("1.0.2");
    app.upload_ok("1.0.2", std::fs::read(zip).unwrap(), &[("delta", "true"), ("channel", "production")]).await;
    assert_eq!(stored_files(&app), 4, "index.html and style.css are shared");
    let answer: Value = app.check(device(json!({}))).await;
    assert_eq!(answer["manifest"].as_array().unwrap().len(), 3, "the manifest is complete, not a diff");
}

/// Brotli-compresses `file` into `file.br` with node's zlib, as vite's compression plugin does.
fn brotli_copy(file: &std::path::Path) {
    let script = "const z=require('zlib'),fs=require('fs');\
                  fs.writeFileSync(process.argv[1]+'.br', z.brotliCompressSync(fs.readFileSync(process.argv[1])))";
    let status = std::process::Command::new("node").args(["-e", script, file.to_str().unwrap()]).status().unwrap();
    assert!(status.success());
}

/// A build with pre-compressed copies next to the originals (what vite's compression plugin emits): the plugin
/// brotli-decodes every `.br` manifest entry and writes it without the suffix, and fails the whole download when two
/// entries land on the same path (`manifest_path_fail`). So the manifest keeps one entry per device path: the
/// original. Devices on the zip get every file of the zip, `.br` copies included.
#[tokio::test]
async fn precompressed_copies_do_not_break_delta_downloads() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("with br copies");
    std::fs::write(project.dist().join("assets/vendor.js"), "x".repeat(20_000) + "CapacitorUpdater.notifyAppReady()")
        .unwrap();
    brotli_copy(&project.dist().join("app.js"));
    brotli_copy(&project.dist().join("assets/vendor.js"));
    let (zip, checksum) = project.bundle_zip("1.0.1");
    let zip = std::fs::read(zip).unwrap();
    let (status, body) = app.upload("1.0.1", zip.clone(), &[("channel", "production"), ("delta", "true")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest_files"], 4);

    let answer = app.check(device(json!({}))).await;
    assert_eq!(answer["checksum"], checksum.as_str());
    let manifest = answer["manifest"].as_array().expect("a manifest").clone();
    // What the device does with it (DownloadService.java handleManifestDownload): strip `.br`, refuse repeats.
    let mut targets = std::collections::BTreeSet::new();
    for entry in &manifest {
        let name = entry["file_name"].as_str().unwrap();
        let target = name.strip_suffix(".br").unwrap_or(name);
        assert!(targets.insert(target.to_owned()), "two entries land on {target}: {manifest:?}");
        let bytes =
            app.client.get(entry["download_url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
        // A `.br` entry is the brotli copy the plugin decodes; `file_hash` is checked on the decoded bytes.
        let encoding = if name.ends_with(".br") { "br" } else { "identity" };
        let decoded_sha256 = crate::bytes::node_decoded_sha256(&bytes, encoding);
        assert_eq!(decoded_sha256, entry["file_hash"].as_str().unwrap(), "{entry}");
        assert_eq!(decoded_sha256, sha256_hex(&std::fs::read(project.dist().join(target)).unwrap()), "{target}");
    }
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    assert_eq!(targets, ["app.js", "assets/style.css", "assets/vendor.js", "index.html"]);
    // The zip itself is served as uploaded.
    let served = app.client.get(answer["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(served.as_ref(), zip.as_slice());
}

/// A `.br` file without its original could never be installed as itself from a manifest; a delta upload of such a
/// build is refused, saying why and what to do, and the same zip uploads fine without delta.
#[tokio::test]
async fn a_precompressed_file_without_its_original_is_refused_for_delta() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("lone br");
    let data = project.dist().join("assets/data.json");
    std::fs::write(&data, "{\"a\":1}").unwrap();
    brotli_copy(&data);
    std::fs::remove_file(&data).unwrap();
    let (zip, _) = project.bundle_zip("1.0.1");
    let zip = std::fs::read(zip).unwrap();
    let (status, body) = app.upload("1.0.1", zip.clone(), &[("delta", "true")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_bundle")), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("assets/data.json.br") && message.contains("without delta"), "{message}");
    assert_eq!(stored_files(&app), 0, "nothing of a refused upload is kept");
    let (status, body) = app.upload("1.0.1", zip, &[]).await;
    assert_eq!(status, 200, "{body}");
}

/// `POST <updateUrl>/manifest_size` (getBundleDownloadSize, getLatest({includeBundleSize})): the device sends the
/// manifest it was offered and gets each file's download size, as Capgo's backend answers it.
#[tokio::test]
async fn manifest_size_reports_each_offered_file() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("sizes");
    let (zip, _) = project.bundle_zip("1.0.1");
    app.upload_ok("1.0.1", std::fs::read(zip).unwrap(), &[("channel", "production"), ("delta", "true")]).await;
    let offer = app.check(device(json!({}))).await;
    let mut manifest = offer["manifest"].as_array().unwrap().clone();
    manifest.push(json!({"file_name": "gone.js", "file_hash": "00".repeat(32), "download_url": "https://x/gone"}));
    let mut body = device(json!({"version": "1.0.1", "manifest": manifest}));
    for path in ["/updates/manifest_size", "/updates/manifest_size/"] {
        let (status, sizes) = app.call("POST", path, None, body.clone()).await;
        assert_eq!(status, 200, "{path}: {sizes}");
        let mut expected_total = 0u64;
        for (asked, answered) in manifest.iter().zip(sizes["files"].as_array().unwrap()) {
            assert_eq!(answered["file_name"], asked["file_name"]);
            assert_eq!(answered["file_hash"], asked["file_hash"]);
            assert_eq!(answered["download_url"], asked["download_url"]);
            match std::fs::metadata(project.dist().join(asked["file_name"].as_str().unwrap())) {
                Ok(file) => {
                    assert_eq!(answered["size"], file.len(), "{answered}");
                    expected_total += file.len();
                }
                Err(_) => assert_eq!(answered["error"], "size_unknown"),
            }
        }
        assert_eq!(sizes["totalSize"], expected_total);
        assert_eq!((sizes["knownFiles"].as_u64(), sizes["unknownFiles"].as_u64()), (Some(3), Some(1)));
    }
    // An unknown app knows no sizes; a body that is not an info object is a 400 (the device then reports
    // response_error itself).
    body["app_id"] = json!("com.example.unknown");
    let (status, sizes) = app.call("POST", "/updates/manifest_size", None, body).await;
    assert_eq!((status, sizes["unknownFiles"].as_u64(), sizes["totalSize"].as_u64()), (200, Some(4), Some(0)));
    let (status, answer) = app.call("POST", "/updates/manifest_size", None, json!({"manifest": []})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("missing_device_id")));
}
