//! `POST /bundle`: what a good upload stores, and every way a bad one is refused without leaving anything behind.

use std::io::Write;

use serde_json::json;

use crate::capgo_cli::CapacitorProject;
use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, device, small_zip};

fn zip_with(entries: &[&str]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    for name in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"x").unwrap();
    }
    zip.finish().unwrap();
    buffer.into_inner()
}

/// Files under the objects directory (excluding the staging area), to prove nothing half-stored remains.
fn stored_objects(app: &TestApp) -> Vec<String> {
    let root = app.data_path().join("objects");
    let mut found = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

async fn assert_refused(app: &TestApp, zip: Vec<u8>, extra: &[(&str, &str)], status: u16, code: &str) {
    let (actual, body) = app.upload("1.0.9", zip, extra).await;
    assert_eq!((actual, body["error"].as_str().unwrap_or_default()), (status, code), "{body}");
    assert_eq!(body["status"], "KO");
    assert!(body["message"].as_str().unwrap().len() > 20, "the message says what to fix: {body}");
}

#[tokio::test]
async fn bad_zips_are_refused_and_nothing_is_stored() {
    let app = TestApp::with_app().await;
    assert_refused(&app, b"<html>this is not a zip</html>".to_vec(), &[], 400, "invalid_bundle").await;
    assert_refused(&app, zip_with(&["app.js"]), &[], 400, "invalid_bundle").await;
    assert_refused(&app, zip_with(&["index.html", "../../etc/evil.js"]), &[], 400, "invalid_bundle").await;
    assert_refused(&app, zip_with(&["index.html", "/abs.js"]), &[], 400, "invalid_bundle").await;
    assert_refused(&app, zip_with(&["dist/index.html", "__MACOSX/dist/._index.html"]), &[], 400, "invalid_bundle")
        .await;
    assert_refused(&app, zip_with(&["index.html", ".env"]), &[], 400, "invalid_bundle").await;
    assert_refused(&app, small_zip("a"), &[("checksum", &"0".repeat(64))], 400, "checksum_mismatch").await;
    assert!(stored_objects(&app).iter().all(|p| p.starts_with(".staging")), "{:?}", stored_objects(&app));
    // Nothing became visible.
    let (status, body) =
        app.admin("POST", "/channel", json!({"app_id": APP_ID, "channel": "p", "version": "1.0.9"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "cannot_find_version"));
}

#[tokio::test]
async fn single_top_folder_layout_is_accepted() {
    let app = TestApp::with_app().await;
    let (status, body) = app.upload("1.0.1", zip_with(&["dist/", "dist/index.html", "dist/app.js"]), &[]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn field_errors_name_the_field() {
    let app = TestApp::with_app().await;
    assert_refused(&app, small_zip("a"), &[("min_update_version", "soon")], 400, "invalid_version").await;
    let (status, body) = app.upload("v1", small_zip("a"), &[]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_version"));
    assert!(body["message"].as_str().unwrap().contains("semver"));

    let form = reqwest::multipart::Form::new().text("app_id", APP_ID).text("version", "1.0.0");
    let response =
        app.client.post(app.url("/bundle")).header("authorization", ADMIN_KEY).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "missing_field");
    assert!(body["message"].as_str().unwrap().contains("`file`"));

    let response = app
        .client
        .post(app.url("/bundle"))
        .header("authorization", ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16() / 100, 4, "a non-multipart body is a client error");
}

#[tokio::test]
async fn unknown_app_and_duplicate_versions() {
    let app = TestApp::with_app().await;
    let form = reqwest::multipart::Form::new()
        .text("app_id", "com.example.missing")
        .text("version", "1.0.0")
        .part("file", reqwest::multipart::Part::bytes(small_zip("x")));
    let response =
        app.client.post(app.url("/bundle")).header("authorization", ADMIN_KEY).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "app_not_found");

    assert_eq!(app.upload("1.0.1", small_zip("first"), &[]).await.0, 200);
    let (status, body) = app.upload("1.0.1", small_zip("second"), &[]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "version_already_exists"));
}

#[tokio::test]
async fn oversize_upload_is_refused() {
    let app = TestApp::spawn_with(&[("UPDRAFT_MAX_UPLOAD_BYTES", "1000")]).await;
    app.create_app(APP_ID).await;
    let big = vec![7u8; 5000];
    let (status, body) = app.upload("1.0.0", big, &[]).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (413, "body_too_large"));
}

#[tokio::test]
async fn identical_content_is_stored_once() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("same");
    let (zip_path, _) = project.bundle_zip("1.0.0");
    let zip = std::fs::read(zip_path).unwrap();
    assert_eq!(app.upload("1.0.0", zip.clone(), &[]).await.0, 200);
    assert_eq!(app.upload("1.0.1", zip, &[]).await.0, 200);
    let bundles: Vec<_> = stored_objects(&app).into_iter().filter(|p| p.starts_with("bundles/")).collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
}

#[tokio::test]
async fn upload_can_point_a_channel_and_first_channel_is_public() {
    let app = TestApp::with_app().await;
    let (status, body) = app.upload("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["channel"], "production");
    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");
    // A second channel named at upload is created private (Capgo's default) and does not take over.
    app.upload_ok("1.0.2", small_zip("b"), &[("channel", "beta")]).await;
    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");
}

/// A refusal decided before the file is read (wrong key, another app's key, no app key for an encrypted bundle)
/// still reaches the client as its readable 4xx, however large the body it is still sending: the gateway reads the
/// rest of the body before answering, instead of closing a connection with unread bytes (which resets it, so the
/// client would see "broken pipe").
#[tokio::test]
async fn refusals_reach_a_client_still_sending_a_large_body() {
    let app = TestApp::with_app().await;
    app.create_app("com.example.other").await;
    let (_, other) = app.admin("POST", "/apikey", json!({"name": "other", "app_id": "com.example.other"})).await;
    let other_key = other["key"].as_str().unwrap().to_owned();
    // 16 MiB of incompressible-looking bytes: far more than socket buffers hold.
    let mut large = vec![0u8; 16 * 1024 * 1024];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for byte in &mut large {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case<'_>; 3] = [
        ("upd_000000000000_not-a-real-key", &[], 401, "invalid_apikey"),
        (&other_key, &[], 403, "cannot_access_app"),
        (ADMIN_KEY, &[("checksum", "00"), ("session_key", "aa:bb")], 400, "encryption_key_missing"),
    ];
    for (key, extra, status, code) in cases {
        for _ in 0..3 {
            let mut form = reqwest::multipart::Form::new().text("app_id", APP_ID).text("version", "1.0.1");
            for (name, value) in extra {
                form = form.text((*name).to_owned(), (*value).to_owned());
            }
            form = form.part("file", reqwest::multipart::Part::bytes(large.clone()).file_name("bundle.zip"));
            let response = app
                .client
                .post(app.url("/bundle"))
                .header("authorization", key)
                .multipart(form)
                .send()
                .await
                .unwrap_or_else(|e| panic!("the {status} answer must arrive, got a transport error: {e:?}"));
            assert_eq!(response.status().as_u16(), status);
            let answer: serde_json::Value = response.json().await.unwrap();
            assert_eq!(answer["error"], code, "{answer}");
        }
    }
    assert!(stored_objects(&app).is_empty());
    let staging = app.data_path().join("staging");
    assert_eq!(std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0), 0, "nothing left in staging");
}

/// A request after the test's runtime was blocked for longer than the gateway's keep-alive (as a test running
/// `npx` is) goes out on a fresh connection, not on the one the gateway closed meanwhile.
#[tokio::test]
async fn a_request_after_a_long_pause_gets_its_answer() {
    let app = TestApp::with_app().await;
    assert_eq!(app.admin("GET", "/channel", json!({"app_id": APP_ID})).await.0, 200);
    std::thread::sleep(std::time::Duration::from_millis(5500));
    let (status, answer) = app.upload("1.0.1", small_zip("after a pause"), &[]).await;
    assert_eq!(status, 200, "{answer}");
}
