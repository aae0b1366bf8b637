//! Expo bsdiff patches of the launch asset, checked with the client's own bspatch: `vendor/bspatch/bspatch.c` from
//! the `expo-updates` npm package, compiled here, applies the gateway's patch to the bundle the device runs, and
//! the result must hash to the manifest's `hash`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::bytes::{export_with_bundles, js_bundle, metric};
use crate::capgo_cli::node_modules;
use crate::expo_tools::{client_headers, expo_check, manifest_url, publish};
use crate::helpers::{APP_ID, LOG_FILE_VAR, TestApp, eventually};

/// Compiles the client's bspatch (with a `main` that calls its `bspatch_main(argc, argv)`) into `dir`.
fn client_bspatch(dir: &Path) -> PathBuf {
    let source = node_modules().join("expo-updates/vendor/bspatch/bspatch.c");
    assert!(source.exists(), "{} is missing: run tests/tools/install.sh", source.display());
    let main = dir.join("main.c");
    std::fs::write(
        &main,
        "int bspatch_main(int, char **);\nint main(int c, char **v) { return bspatch_main(c, v); }\n",
    )
    .unwrap();
    let binary = dir.join("bspatch");
    let output = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .arg(&main)
        .arg("-lbz2")
        .output()
        .expect("a C compiler (cc) is installed");
    assert!(
        output.status.success(),
        "compiling bspatch.c (needs libbz2-dev): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

fn b64url_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

async fn manifest(app: &TestApp, extra: Value) -> Value {
    let report = expo_check(&manifest_url(app), &client_headers("ios", extra), None).await;
    report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").expect("a manifest")["json"].clone()
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

/// What the client sends for the launch asset of the update it moves to.
fn patch_request<'a>(current: &'a str, requested: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("a-im", "bsdiff"),
        ("expo-current-update-id", current),
        ("expo-requested-update-id", requested),
        ("expo-platform", "ios"),
        ("accept", "*/*"),
    ]
}

fn patch_objects(app: &TestApp) -> Vec<PathBuf> {
    let dir = app.data_path().join(format!("objects/patches/{APP_ID}"));
    std::fs::read_dir(dir).map(|entries| entries.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn devices_get_a_verified_bsdiff_patch_that_the_clients_own_bspatch_applies() {
    let tools = tempfile::tempdir().unwrap();
    let bspatch = client_bspatch(tools.path());
    let app = TestApp::with_app().await;
    let v1_bundle = |platform: &str| js_bundle(512, &format!("{platform}-v1"));
    let v2_bundle = |platform: &str| js_bundle(512, &format!("{platform}-v2"));
    publish(&app, &export_with_bundles("v1", v1_bundle), "production", &[]);
    let v1 = manifest(&app, json!({})).await;
    let v1_id = v1["id"].as_str().unwrap().to_owned();
    publish(&app, &export_with_bundles("v2", v2_bundle), "production", &[]);
    // A device on v1 checks: it is sent v2, and v1 is a base worth a patch (so is the release v2 replaced).
    let v2 = manifest(&app, json!({"expo-current-update-id": v1_id})).await;
    let v2_id = v2["id"].as_str().unwrap().to_owned();
    assert_ne!(v1_id, v2_id);
    let launch = &v2["launchAsset"];
    let url = launch["url"].as_str().unwrap();

    let (status, headers, patch) = eventually("a ready patch", || async {
        let answer = get(&app, url, &patch_request(&v1_id.to_uppercase(), &v2_id)).await;
        (answer.0 == 226).then_some(answer)
    })
    .await;
    assert_eq!(status, 226);
    assert_eq!(headers["im"], "bsdiff");
    assert_eq!(
        headers["expo-base-update-id"].to_str().unwrap(),
        v1_id,
        "the id it runs, lowercased as clients compare"
    );
    assert_eq!(headers["content-length"].to_str().unwrap(), patch.len().to_string());
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(&patch[..8], b"BSDIFF40");
    let full = v2_bundle("ios");
    assert!(patch.len() * 20 < full.len(), "a small change makes a small patch: {} of {}", patch.len(), full.len());

    // The client's bspatch turns the bundle it runs into exactly the bundle the manifest names.
    let (base, patched, patch_file) = (tools.path().join("base"), tools.path().join("new"), tools.path().join("patch"));
    std::fs::write(&base, v1_bundle("ios")).unwrap();
    std::fs::write(&patch_file, &patch).unwrap();
    let status = Command::new(&bspatch).args([&base, &patched, &patch_file]).status().unwrap();
    assert!(status.success(), "bspatch exited with {status}");
    let applied = std::fs::read(&patched).unwrap();
    assert_eq!(b64url_sha256(&applied), launch["hash"].as_str().unwrap());

    // Without A-IM, the answer is the one it always was; an unknown base or a non-launch asset gets the full file.
    for headers in [
        vec![("expo-current-update-id", v1_id.as_str()), ("expo-platform", "ios")],
        patch_request("6f0d7a4e-0000-4000-8000-00000000dead", &v2_id),
        patch_request(&v2_id, &v2_id),
        vec![("a-im", "vcdiff"), ("expo-current-update-id", v1_id.as_str())],
        vec![("a-im", "bsdiff")],
    ] {
        let (status, response, body) = get(&app, url, &headers).await;
        assert_eq!(status, 200, "{headers:?}");
        assert!(response.get("im").is_none() && response.get("expo-base-update-id").is_none());
        assert_eq!(b64url_sha256(&body), launch["hash"].as_str().unwrap());
    }
    let png = v2["assets"].as_array().unwrap().iter().find(|a| a["fileExtension"] == ".png").unwrap();
    let (status, _, _) = get(&app, png["url"].as_str().unwrap(), &patch_request(&v1_id, &v2_id)).await;
    assert_eq!(status, 200, "never a patch for a non-launch asset");

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metric(&metrics, "updraft_download_bytes_total{representation=\"patch\"}") >= patch.len() as u64);

    // A stored patch that no longer matches its address, or that is gone, never reaches a device.
    // The worker computes one pair at a time: iOS's patch is ready, Android's may still be on its way.
    let patch_sha = headers["etag"].to_str().unwrap().trim_matches('"').to_owned();
    let stored = eventually("both platforms' patches stored", || async {
        let stored = patch_objects(&app);
        (stored.len() >= 2).then_some(stored)
    })
    .await;
    assert_eq!(stored.len(), 2, "one patch per platform: v1 → v2 (the publish offered the same pairs): {stored:?}");
    let object = stored.iter().find(|path| path.ends_with(&patch_sha)).expect("stored under its own digest").clone();
    let mut corrupt = patch.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    std::fs::write(&object, &corrupt).unwrap();
    let (status, _, body) = get(&app, url, &patch_request(&v1_id, &v2_id)).await;
    assert_eq!(status, 200, "a corrupt patch is not sent");
    assert_eq!(b64url_sha256(&body), launch["hash"].as_str().unwrap());
    std::fs::remove_file(&object).unwrap();
    let (status, _, body) = get(&app, url, &patch_request(&v1_id, &v2_id)).await;
    assert_eq!(status, 200, "a missing patch is not sent");
    assert_eq!(b64url_sha256(&body), launch["hash"].as_str().unwrap());
}

#[tokio::test]
async fn a_rewritten_bundle_gets_no_patch_only_the_full_file() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("gateway.log");
    // At `info` the worker's judgement of each pair is in the log.
    let app = TestApp::spawn_with(&[(LOG_FILE_VAR, log.to_str().unwrap()), ("UPDRAFT_LOG", "info")]).await;
    app.create_app(APP_ID).await;
    publish(&app, &export_with_bundles("a", |p| js_bundle(256, p)), "production", &[]);
    let v1_id = manifest(&app, json!({})).await["id"].as_str().unwrap().to_owned();
    // Unrelated bytes: a patch would be as large as the file, so none is worth sending.
    let unrelated = |platform: &str| {
        let mut state = 0x2545_f491_4f6c_dd1du64 ^ platform.len() as u64;
        (0..256 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect::<Vec<u8>>()
    };
    publish(&app, &export_with_bundles("b", unrelated), "production", &[]);
    let v2 = manifest(&app, json!({"expo-current-update-id": v1_id})).await;
    let url = v2["launchAsset"]["url"].as_str().unwrap().to_owned();
    // The worker records, for each platform, that no patch is worth sending (and logs it); from then on the
    // device keeps getting the full file, and nothing was stored.
    eventually("both platforms' pairs judged not worth a patch", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.matches("not worth sending").count() >= 2).then_some(())
    })
    .await;
    for _ in 0..3 {
        let (status, _, body) = get(&app, &url, &patch_request(&v1_id, v2["id"].as_str().unwrap())).await;
        assert_eq!(status, 200);
        assert_eq!(b64url_sha256(&body), v2["launchAsset"]["hash"].as_str().unwrap());
    }
    assert!(patch_objects(&app).is_empty());
}
