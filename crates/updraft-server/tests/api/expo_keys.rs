//! Expo code-signing keys managed over the HTTP API with `updraft keys`: from any folder, with the private key kept
//! on the gateway; several key ids side by side; replacing a key only with `--force`, and a replaced key used for
//! the very next answer (cached ones included), checked with Node crypto against the certificates.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::expo_tools::{
    ExportFixture, cert_check, client_headers, codesigning_generate, expo_check, manifest_url, publish, updraft,
};
use crate::helpers::{ADMIN_KEY, APP_ID, TestApp};

/// `updraft <args>` run in `cwd` with nothing but the server and key in its environment.
fn keys_cli(app: &TestApp, cwd: &Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_updraft"));
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UPDRAFT_SERVER", &app.base)
        .env("UPDRAFT_LOG", "warn");
    if let Some(key) = key {
        command.env("UPDRAFT_API_KEY", key);
    }
    command.output().unwrap()
}

fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn one_error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn signed(platform: &str, key_id: &str) -> Value {
    client_headers(
        platform,
        json!({"expo-expect-signature": format!("sig, keyid=\"{key_id}\", alg=\"rsa-v1_5-sha256\"")}),
    )
}

/// The validity of the signature of the named part (or of the top-level header for a JSON-only answer) against
/// `certificate`, as Node crypto sees it.
async fn verifies(app: &TestApp, headers: &Value, certificate: &Path, part: Option<&str>) -> bool {
    let report = expo_check(&manifest_url(app), headers, Some(certificate)).await;
    assert_eq!(report["status"], 200, "{report}");
    let signature = match part {
        None => &report["signature"],
        Some(name) => {
            let parts = report["parts"].as_array().unwrap_or_else(|| panic!("multipart answer: {report}"));
            &parts.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name} part: {report}"))["signature"]
        }
    };
    signature["valid"].as_bool().unwrap_or_else(|| panic!("a signature: {report}"))
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn keys_are_managed_over_http_from_any_folder_and_stay_on_the_gateway() {
    let app = TestApp::with_app().await;
    publish(&app, &ExportFixture::new("keys"), "production", &[]);
    let laptop = tempfile::tempdir().unwrap();
    let cwd = laptop.path();
    let stderr =
        succeeded(&keys_cli(&app, cwd, Some(ADMIN_KEY), &["keys", "generate", "--app", APP_ID, "--out", "certs"]));
    assert!(stderr.contains(&app.base) && stderr.contains("\"keyid\":\"main\""), "{stderr}");
    assert!(!cwd.join("updraft-data").exists(), "no local store is created");
    assert_eq!(file_names(&cwd.join("certs")), ["certificate.pem"], "the private key stays on the gateway");
    let main_certificate = cwd.join("certs/certificate.pem");
    // Signed with it from the very next request.
    assert!(verifies(&app, &signed("ios", "main"), &main_certificate, Some("manifest")).await);

    // The id is taken: refused without --force, before and after contacting the gateway.
    let again =
        one_error_line(&keys_cli(&app, cwd, Some(ADMIN_KEY), &["keys", "generate", "--app", APP_ID, "--out", "certs"]));
    assert!(again.contains("certificate.pem already exists") && again.contains("--force"), "{again}");
    let refused =
        one_error_line(&keys_cli(&app, cwd, Some(ADMIN_KEY), &["keys", "generate", "--app", APP_ID, "--out", "other"]));
    assert!(
        refused.contains("409") && refused.contains("signing_key_exists") && refused.contains("--force"),
        "{refused}"
    );
    assert!(!cwd.join("other/certificate.pem").exists());
    assert!(verifies(&app, &signed("ios", "main"), &main_certificate, Some("manifest")).await, "main is unchanged");

    // A second key id, exported: both coexist, each request is signed with the key it names.
    let stderr = succeeded(&keys_cli(
        &app,
        cwd,
        Some(ADMIN_KEY),
        &["keys", "generate", "--app", APP_ID, "--key-id", "v2", "--out", "v2", "--export-private-key"],
    ));
    assert!(stderr.contains("private-key.pem"), "{stderr}");
    let v2 = cwd.join("v2");
    assert_eq!(file_names(&v2), ["certificate.pem", "private-key.pem", "public-key.pem"]);
    assert_eq!(mode(&v2.join("private-key.pem")), 0o600);
    let checked = cert_check(&v2.join("certificate.pem"), &v2.join("private-key.pem"), &v2.join("public-key.pem"));
    assert_eq!(checked["valid"], true, "the exported key is the certificate's: {checked}");
    assert!(verifies(&app, &signed("android", "v2"), &v2.join("certificate.pem"), Some("manifest")).await);
    assert!(!verifies(&app, &signed("android", "v2"), &main_certificate, Some("manifest")).await);
    assert!(verifies(&app, &signed("android", "main"), &main_certificate, Some("manifest")).await);

    // Listing shows fingerprints and certificates, never a private key.
    let listed = keys_cli(&app, cwd, Some(ADMIN_KEY), &["keys", "list", "--app", APP_ID, "--json"]);
    succeeded(&listed);
    let stdout = String::from_utf8(listed.stdout).unwrap();
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|k| k["key_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["main", "v2"]);
    assert_eq!(listed[0]["certificate_pem"], std::fs::read_to_string(&main_certificate).unwrap());
    assert_eq!(listed[0]["fingerprint"].as_str().unwrap().len(), 64);
    assert_ne!(listed[0]["fingerprint"], listed[1]["fingerprint"]);

    // Without a key, with an app-scoped key, or for an app that does not exist: refused.
    let no_key = one_error_line(&keys_cli(&app, cwd, None, &["keys", "list", "--app", APP_ID]));
    assert!(no_key.contains("UPDRAFT_API_KEY"), "{no_key}");
    let scoped = crate::management::create_key(&app, &["--name", "ci", "--app", APP_ID]);
    for (method, body) in [("GET", json!(null)), ("POST", json!({"key_id": "ci"}))] {
        let (status, answer) = app.call(method, &format!("/expo/{APP_ID}/keys"), Some(&scoped), body).await;
        assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")), "{method}: {answer}");
    }
    let (status, answer) = app.admin("POST", "/expo/com.example.nope/keys", json!({})).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("app_not_found")), "{answer}");
    let (status, answer) = app.admin("POST", &format!("/expo/{APP_ID}/keys"), json!({"key_id": "a b"})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_key_id")), "{answer}");
    let (status, answer) =
        app.admin("POST", &format!("/expo/{APP_ID}/keys"), json!({"key_id": "x", "private_key": "nope"})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_signing_key")), "{answer}");
    let (status, answer) = app.admin("POST", &format!("/expo/{APP_ID}/keys"), json!({"keyId": "x"})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_field")), "{answer}");
}

#[tokio::test]
async fn a_key_replaced_with_force_signs_the_very_next_answer() {
    let app = TestApp::with_app().await;
    let releases = publish(&app, &ExportFixture::new("rotate"), "production", &[]);
    let keys = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (keys.path().join("old"), keys.path().join("new"));
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let (old_key, old_certificate) = codesigning_generate(&old_dir);
    let (new_key, new_certificate) = codesigning_generate(&new_dir);
    let import = |key: &Path, force: bool| {
        let mut args = vec!["keys", "import", "--app", APP_ID, "--private-key", key.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        updraft(&app, &args)
    };
    succeeded(&import(&old_key, false));

    // Every answer form gets cached with the old key: the manifest (multipart and JSON-only) and the directive.
    let manifest = signed("ios", "main");
    let mut json_only = manifest.clone();
    json_only["accept"] = json!("application/expo+json");
    let ios_id = releases.iter().find(|r| r["platform"] == "ios").unwrap()["id"].clone();
    let mut running = manifest.clone();
    running["expo-current-update-id"] = ios_id;
    let forms = [(&manifest, Some("manifest")), (&json_only, None), (&running, Some("directive"))];
    for (headers, part) in forms {
        assert!(verifies(&app, headers, &old_certificate, part).await);
    }

    // The same id again is refused without --force, and the old key keeps signing.
    let refused = one_error_line(&import(&new_key, false));
    assert!(refused.contains("signing_key_exists") && refused.contains("--force"), "{refused}");
    assert!(verifies(&app, &manifest, &old_certificate, Some("manifest")).await);

    let stderr = succeeded(&import(&new_key, true));
    assert!(stderr.contains("warning: replaced signing key \"main\""), "{stderr}");
    // At once, for the answers that were cached too: the new certificate verifies them, the old one no longer does.
    for (headers, part) in forms {
        assert!(verifies(&app, headers, &new_certificate, part).await, "{part:?} with the new key");
        assert!(!verifies(&app, headers, &old_certificate, part).await, "{part:?} no longer with the old key");
    }
}
