//! Encrypted bundles with the real `@capgo/cli`: key create → bundle encrypt → upload → /updates → bundle decrypt of
//! the downloaded bytes with the returned session key and checksum.

use serde_json::json;

use crate::capgo_cli::CapacitorProject;
use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, device, sha256_hex};

async fn encrypted_setup() -> (TestApp, CapacitorProject, String, Vec<u8>, String, String, String) {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("secret build");
    let public_key = project.key_create();
    app.admin_ok("PUT", "/app", json!({"app_id": APP_ID, "public_key": public_key})).await;
    let (zip, plain_sha) = project.bundle_zip("1.0.1");
    let (encrypted, checksum, session_key) = project.bundle_encrypt(&zip, &plain_sha);
    let bytes = std::fs::read(&encrypted).unwrap();
    (app, project, public_key, bytes, checksum, session_key, plain_sha)
}

fn key_id(public_key: &str) -> String {
    public_key.lines().filter(|l| !l.starts_with("-----")).flat_map(|l| l.trim().chars()).take(20).collect()
}

#[tokio::test]
async fn encrypted_bundle_round_trip_with_the_capgo_cli() {
    let (app, project, public_key, bytes, checksum, session_key, _) = encrypted_setup().await;
    let (status, body) = app
        .upload("1.0.1", bytes, &[("channel", "production"), ("checksum", &checksum), ("session_key", &session_key)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["encrypted"], true);

    let answer = app.check(device(json!({"key_id": key_id(&public_key)}))).await;
    let url = answer["url"].as_str().unwrap().to_owned();
    assert_eq!(answer, json!({"version": "1.0.1", "url": url, "checksum": checksum, "session_key": session_key}));
    assert_eq!(checksum.len(), 512, "V3 hex checksum for plugin 8.x");

    let downloaded = app.client.get(&url).send().await.unwrap().bytes().await.unwrap();
    let path = project.dir.path().join("downloaded.zip");
    std::fs::write(&path, &downloaded).unwrap();
    let (decrypted, output) =
        project.bundle_decrypt(&path, answer["session_key"].as_str().unwrap(), answer["checksum"].as_str().unwrap());
    assert!(output.to_lowercase().contains("checksum match"), "{output}");
    let plain = std::fs::read(decrypted).unwrap();
    let archive = zip::ZipArchive::new(std::io::Cursor::new(plain)).unwrap();
    assert!(archive.file_names().any(|n| n == "index.html"));

    // A device whose plugin reads the V2 form cannot use this checksum: it gets a clear refusal, not a bad update.
    let old = app.check(device(json!({"key_id": key_id(&public_key), "plugin_version": "6.29.0"}))).await;
    assert_eq!(old["error"], "checksum_form_unavailable");
    assert_eq!(old["kind"], "failed");
    // A device with another key gets key_id_mismatch.
    let other = app.check(device(json!({"key_id": "MIIBCgKCAQEAzzzzzzzz"}))).await;
    assert_eq!(other["error"], "key_id_mismatch");
    assert_eq!(other["bundleKeyId"], key_id(&public_key));
}

#[tokio::test]
async fn encrypted_uploads_that_do_not_check_out_are_refused() {
    let (app, _project, _key, bytes, checksum, session_key, plain_sha) = encrypted_setup().await;
    type Case<'a> = (Vec<u8>, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        // The plain checksum instead of the encrypted one.
        (
            bytes.clone(),
            vec![("checksum", plain_sha.clone()), ("session_key", session_key.clone())],
            "invalid_encryption",
        ),
        // A session key that is not base64 iv:key.
        (bytes.clone(), vec![("checksum", checksum.clone()), ("session_key", "nonsense".into())], "invalid_encryption"),
        // Bytes that are not the ciphertext of a zip.
        (
            vec![0u8; 4096],
            vec![("checksum", checksum.clone()), ("session_key", session_key.clone())],
            "invalid_encryption",
        ),
        // Encrypted without a checksum.
        (bytes.clone(), vec![("session_key", session_key.clone())], "missing_field"),
        // Encrypted plus delta.
        (
            bytes.clone(),
            vec![("checksum", checksum.clone()), ("session_key", session_key.clone()), ("delta", "true".into())],
            "delta_not_supported",
        ),
    ];
    for (body, fields, code) in cases {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = app.upload("1.0.1", body, &fields).await;
        assert_eq!((status, answer["error"].as_str().unwrap()), (400, code), "{fields:?}: {answer}");
    }
    // Nothing was recorded.
    let (status, list) = app.call("GET", &format!("/bundle?app_id={APP_ID}"), Some(ADMIN_KEY), json!(null)).await;
    assert_eq!((status, list), (200, json!([])));
}

#[tokio::test]
async fn encrypted_upload_needs_the_app_key() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("x");
    project.key_create();
    let (zip, plain_sha) = project.bundle_zip("1.0.1");
    let (encrypted, checksum, session_key) = project.bundle_encrypt(&zip, &plain_sha);
    let (status, answer) = app
        .upload("1.0.1", std::fs::read(encrypted).unwrap(), &[("checksum", &checksum), ("session_key", &session_key)])
        .await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "encryption_key_missing"));
    // With another app key, the session key does not decrypt.
    let other = CapacitorProject::typical("y");
    app.admin_ok("PUT", "/app", json!({"app_id": APP_ID, "public_key": other.key_create()})).await;
    let (status, answer) = app
        .upload(
            "1.0.1",
            std::fs::read(project.dir.path().join("com.example.app_1.0.1.zip_encrypted.zip")).unwrap(),
            &[("checksum", &checksum), ("session_key", &session_key)],
        )
        .await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "invalid_encryption"), "{answer}");
}

#[tokio::test]
async fn public_keys_must_be_pkcs1() {
    let app = TestApp::with_app().await;
    let spki = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----";
    let (status, answer) = app.admin("PUT", "/app", json!({"app_id": APP_ID, "public_key": spki})).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "invalid_public_key"));
    assert!(answer["message"].as_str().unwrap().contains("-RSAPublicKey_out"), "{answer}");
    let (status, answer) =
        app.admin("POST", "/app", json!({"app_id": "com.example.keyed", "public_key": "garbage"})).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "invalid_public_key"));
    let project = CapacitorProject::typical("k");
    let pem = project.key_create();
    assert_eq!(app.admin("POST", "/app", json!({"app_id": "com.example.keyed", "public_key": pem})).await.0, 200);
    let _ = sha256_hex(b"");
}
