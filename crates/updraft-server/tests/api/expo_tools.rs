//! Expo fixtures and tools: an export folder laid out exactly like `npx expo export` output, the real
//! `expo-updates codesigning:generate`, and Node scripts that check answers with `@expo/multipart-body-parser`,
//! `structured-headers`, Node `crypto` and `@expo/code-signing-certificates`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use md5::{Digest as _, Md5};
use serde_json::{Value, json};

use crate::capgo_cli::node_modules;
use crate::helpers::{ADMIN_KEY, APP_ID, TestApp};

/// The public app config of the fixture, with non-ASCII text.
pub fn expo_config() -> Value {
    json!({"name": "Café Updraft ✓", "slug": "updraft-fixture", "version": "1.0.0", "runtimeVersion": "1.0.0",
           "extra": {"greeting": "héllo wörld"}, "updates": {"url": "https://updates.example.com/expo/com.example.app/manifest"}})
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// An `npx expo export` output folder: Hermes bundles per platform, assets shared between platforms under
/// `assets/<md5>`, `metadata.json`, and `expoConfig.json`.
pub struct ExportFixture {
    pub dir: tempfile::TempDir,
}

impl ExportFixture {
    pub fn new(marker: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |relative: &str, bytes: &[u8]| {
            let path = root.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        let image = format!("\u{89}PNG fake image bytes {marker}").into_bytes();
        let font = b"fake ttf font bytes shared by both platforms".to_vec();
        let ios_only = format!("ios-only splash {marker}").into_bytes();
        let mut file_metadata = serde_json::Map::new();
        for platform in ["ios", "android"] {
            let bundle = format!("var __BUNDLE_START_TIME__=Date.now(); /* {platform} {marker} */").into_bytes();
            let bundle_path = format!("_expo/static/js/{platform}/index-{}.hbc", md5_hex(&bundle));
            write(&bundle_path, &bundle);
            let mut assets = vec![
                json!({"path": format!("assets/{}", md5_hex(&image)), "ext": "png"}),
                json!({"path": format!("assets/{}", md5_hex(&font)), "ext": "ttf"}),
            ];
            if platform == "ios" {
                assets.push(json!({"path": format!("assets/{}", md5_hex(&ios_only)), "ext": "png"}));
            }
            file_metadata.insert(platform.into(), json!({"bundle": bundle_path, "assets": assets}));
        }
        for bytes in [&image, &font, &ios_only] {
            write(&format!("assets/{}", md5_hex(bytes)), bytes);
        }
        write(
            "metadata.json",
            json!({"version": 0, "bundler": "metro", "fileMetadata": file_metadata}).to_string().as_bytes(),
        );
        write("expoConfig.json", serde_json::to_string_pretty(&expo_config()).unwrap().as_bytes());
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn metadata(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("metadata.json")).unwrap()).unwrap()
    }
}

/// Runs `updraft <args>` with the server and admin key of `app`.
pub fn updraft(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(args)
        .env("UPDRAFT_SERVER", &app.base)
        .env("UPDRAFT_API_KEY", ADMIN_KEY)
        .env("UPDRAFT_DATA_DIR", app.data_path())
        .env("UPDRAFT_LOG", "warn")
        .output()
        .unwrap()
}

/// `updraft publish expo` of a fixture; asserts success and returns the releases.
pub fn publish(app: &TestApp, fixture: &ExportFixture, channel: &str, extra: &[&str]) -> Vec<Value> {
    let mut args =
        vec!["publish", "expo", "--app", APP_ID, "--channel", channel, "--runtime-version", "1.0.0", "--json"];
    args.extend_from_slice(extra);
    let dist = fixture.path().to_str().unwrap().to_owned();
    args.push(&dist);
    let output = updraft(app, &args);
    assert!(output.status.success(), "publish failed: {}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["releases"].as_array().unwrap().clone()
}

/// `npx expo-updates codesigning:generate` into `dir`: returns (private key, certificate) paths.
pub fn codesigning_generate(dir: &Path) -> (PathBuf, PathBuf) {
    let output = Command::new(node_modules().join(".bin/expo-updates"))
        .args(["codesigning:generate", "--key-output-directory", "keys", "--certificate-output-directory", "certs"])
        .args(["--certificate-validity-duration-years", "10", "--certificate-common-name", "Updraft Test"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "codesigning:generate failed: {}", String::from_utf8_lossy(&output.stderr));
    (dir.join("keys/private-key.pem"), dir.join("certs/certificate.pem"))
}

fn node(script: &str, args: &[&str]) -> Value {
    let tools = node_modules().parent().unwrap().to_path_buf();
    let output = Command::new("node").arg(tools.join(script)).args(args).current_dir(&tools).output().unwrap();
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Fetches `url` with `headers` and reports what Expo's tooling sees (see tests/tools/expo-check.mjs).
pub async fn expo_check(url: &str, headers: &Value, certificate: Option<&Path>) -> Value {
    let (url, headers) = (url.to_owned(), headers.to_string());
    let certificate = certificate.map(|c| c.to_str().unwrap().to_owned());
    tokio::task::spawn_blocking(move || {
        let mut args = vec![url.as_str(), headers.as_str()];
        if let Some(certificate) = &certificate {
            args.push(certificate);
        }
        node("expo-check.mjs", &args)
    })
    .await
    .unwrap()
}

/// Checks a certificate with @expo/code-signing-certificates (see tests/tools/expo-cert-check.mjs).
pub fn cert_check(certificate: &Path, private_key: &Path, public_key: &Path) -> Value {
    node(
        "expo-cert-check.mjs",
        &[certificate.to_str().unwrap(), private_key.to_str().unwrap(), public_key.to_str().unwrap()],
    )
}

/// The request headers of a current client.
pub fn client_headers(platform: &str, extra: Value) -> Value {
    let mut headers = json!({
        "expo-protocol-version": "1",
        "expo-platform": platform,
        "expo-runtime-version": "1.0.0",
        "expo-channel-name": "production",
        "accept": "multipart/mixed,application/expo+json,application/json",
        "expo-api-version": "1",
        "expo-updates-environment": "BARE",
        "expo-json-error": "true",
        "eas-client-id": "6f0d7a4e-0000-4000-8000-000000000001",
    });
    headers.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    headers
}

pub fn manifest_url(app: &TestApp) -> String {
    app.url(&format!("/expo/{APP_ID}/manifest"))
}
