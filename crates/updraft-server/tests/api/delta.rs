//! Delta updates: an upload with `delta=true` stores every file content-addressed; plugins that read manifests get
//! the complete file list, each URL serving bytes that hash to `file_hash`; unchanged files are stored once.

use serde_json::{Value, json};

use crate::capgo_cli::CapacitorProject;
use crate::helpers::{TestApp, device, sha256_hex};

fn stored_files(app: &TestApp) -> usize {
    let dir = app.data_path().join("objects/files/com.example.app");
    std::fs::read_dir(dir).map(|entries| entries.count()).unwrap_or(0)
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
