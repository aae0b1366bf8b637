//! `POST /updates` against the contract's checklist: exact JSON for every answer the plugin can get.

use serde_json::{Value, json};

use crate::capgo_cli::CapacitorProject;
use crate::helpers::{APP_ID, TestApp, device, eventually, sha256_hex, small_zip};

const NO_UPDATE: &str =
    r#"{"error":"no_new_version_available","message":"No new version available","kind":"up_to_date"}"#;

fn no_update() -> Value {
    serde_json::from_str(NO_UPDATE).unwrap()
}

/// A gateway with `production` (public, the default channel) on 1.0.1.
async fn with_production() -> (TestApp, Value) {
    let app = TestApp::with_app().await;
    let (status, uploaded) = app.upload("1.0.1", small_zip("1.0.1"), &[("channel", "production")]).await;
    assert_eq!(status, 200, "{uploaded}");
    (app, uploaded)
}

fn bundle_url(app: &TestApp, uploaded: &Value) -> String {
    app.url(&format!("/files/bundles/{APP_ID}/{}.zip", uploaded["checksum"].as_str().unwrap()))
}

#[tokio::test]
async fn real_capgo_bundle_round_trip() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("v1.0.1");
    let (zip_path, cli_checksum) = project.bundle_zip("1.0.1");
    let zip = std::fs::read(&zip_path).unwrap();
    assert_eq!(sha256_hex(&zip), cli_checksum, "the CLI's checksum is the zip's SHA-256");
    let (status, uploaded) = app.upload("1.0.1", zip, &[("channel", "production"), ("checksum", &cli_checksum)]).await;
    assert_eq!(status, 200, "{uploaded}");

    let answer = app.check(device(json!({}))).await;
    let url = answer["url"].as_str().unwrap().to_owned();
    assert_eq!(
        answer,
        json!({"version": "1.0.1", "url": url, "checksum": cli_checksum, "session_key": ""}),
        "exactly the four keys of an update, no error/message/kind"
    );
    assert!(url.starts_with(&app.base), "{url}");
    let downloaded = app.client.get(&url).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    let bytes = downloaded.bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), cli_checksum);

    // Once the device runs 1.0.1 it is up to date.
    assert_eq!(app.check(device(json!({"version_name": "1.0.1"}))).await, no_update());
}

#[tokio::test]
async fn trailing_slash_is_served_without_redirect() {
    let (app, _) = with_production().await;
    for path in ["/updates", "/updates/"] {
        let response = app.client.post(app.url(path)).json(&device(json!({}))).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["version"], "1.0.1", "{path}");
    }
}

/// A check with a declared length is answered before the router, one sent in chunks (no length) by the router's
/// route: both give the same answer and both reports are written, on either path.
#[tokio::test]
async fn a_check_is_answered_alike_whatever_its_body_framing() {
    let (app, _) = with_production().await;
    let mut answers = Vec::new();
    for (n, path) in ["/updates", "/updates/"].into_iter().enumerate() {
        for chunked in [false, true] {
            let device_id = format!("ab12cd34-0000-4000-8000-00000000000{}", n * 2 + usize::from(chunked));
            let body = device(json!({"device_id": device_id})).to_string();
            let framing = if chunked {
                format!("transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
            } else {
                format!("content-length: {}\r\n\r\n{body}", body.len())
            };
            let request = format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{framing}");
            let (answer, _) =
                crate::hostile::raw_exchange(&app.base, request.as_bytes(), std::time::Duration::from_secs(5)).await;
            assert_eq!(crate::hostile::status_of(&answer), 200, "{path}, chunked {chunked}: {answer}");
            let answer = crate::hostile::json_of(&answer);
            assert_eq!(answer["version"], "1.0.1", "{path}, chunked {chunked}: {answer}");
            answers.push(answer);
            eventually("the device record", || async {
                let query = format!("/device?app_id={APP_ID}&device_id={device_id}");
                let (status, record) = app.admin("GET", &query, json!(null)).await;
                (status == 200 && record["version_name"] == "1.0.0").then_some(())
            })
            .await;
        }
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "{answers:#?}");
}

#[tokio::test]
async fn minimal_and_empty_fields_are_accepted() {
    let (app, _) = with_production().await;
    // A pre-5.5 body: no defaultChannel, no is_prod/is_emulator, no install_source, no key_id.
    let minimal = json!({"platform": "ios", "device_id": "D1", "app_id": APP_ID, "version_build": "1.0.0",
                         "version_name": "builtin", "plugin_version": "5.0.0"});
    let answer = app.check(minimal).await;
    assert_eq!(answer["version"], "1.0.1");
    // "" is treated as absent everywhere.
    let empties = device(json!({"custom_id": "", "defaultChannel": "", "install_source": "", "key_id": ""}));
    assert_eq!(app.check(empties).await["version"], "1.0.1");
}

#[tokio::test]
async fn builtin_and_native_version_names_mean_embedded_bundle() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.0", small_zip("1.0.0"), &[("channel", "production")]).await;
    // Native 1.0.0 with a channel on 1.0.0: old plugins say "builtin", 8.44+ say the native version.
    assert_eq!(app.check(device(json!({"version_name": "builtin"}))).await, no_update());
    assert_eq!(app.check(device(json!({"version_name": "1.0.0"}))).await, no_update());
}

#[tokio::test]
async fn version_build_is_coerced_like_capgo() {
    let (app, _) = with_production().await;
    for native in ["1", "1.0", "1.0.0"] {
        let answer = app.check(device(json!({"version_build": native, "version_name": "builtin"}))).await;
        assert_eq!(answer["version"], "1.0.1", "native {native}");
    }
    let (status, answer) = app.updates_raw(&device(json!({"version_build": "one"})).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "semver_error");
    let answer = app.check(device(json!({"version_build": "unknown"}))).await;
    assert_eq!(
        answer,
        json!({"error": "unknown_version_build", "message": "The native version_build is unknown", "kind": "failed"})
    );
}

#[tokio::test]
async fn checksum_form_follows_plugin_version() {
    let (app, uploaded) = with_production().await;
    let zip = app.client.get(bundle_url(&app, &uploaded)).send().await.unwrap().bytes().await.unwrap();
    let crc = format!("{:08x}", crc32fast::hash(&zip));
    let sha = sha256_hex(&zip);
    for (plugin, expected) in [
        ("5.9.0", &crc),
        ("5.10.0", &sha),
        ("6.24.0", &crc),
        ("6.25.0", &sha),
        ("7.0.29", &crc),
        ("7.0.30", &sha),
        ("8.0.0", &sha),
    ] {
        let answer = app.check(device(json!({"plugin_version": plugin}))).await;
        assert_eq!(answer["checksum"], json!(expected), "plugin {plugin}");
    }
}

#[tokio::test]
async fn unknown_app_gets_a_json_refusal() {
    let app = TestApp::spawn().await;
    let answer = app.check(device(json!({"app_id": "com.example.unknown"}))).await;
    assert_eq!(answer["error"], "app_not_found");
    assert_eq!(answer["kind"], "failed");
    assert!(answer["message"].as_str().unwrap().contains("POST /app"));
}

#[tokio::test]
async fn no_channel_and_old_plugin_refusals() {
    let app = TestApp::with_app().await;
    assert_eq!(
        app.check(device(json!({}))).await,
        json!({"error": "no_channel", "message": "No default channel or override for this device", "kind": "failed"})
    );
    let answer = app.check(device(json!({"plugin_version": "4.13.0"}))).await;
    assert_eq!(answer["error"], "unsupported_plugin_version");
    assert_eq!(answer["kind"], "failed");
    let answer = app
        .check(json!({"device_id": "d", "app_id": APP_ID, "plugin_version": "8.0.0", "platform": "ios",
                                  "version_build": "1.0.0"}))
        .await;
    assert_eq!(
        answer,
        json!({"error": "missing_info", "message": "Cannot find version_name in the request", "kind": "failed"})
    );
}

#[tokio::test]
async fn bad_bodies_are_400_with_capgo_codes() {
    let app = TestApp::with_app().await;
    let cases = [
        ("{not json", "invalid_json_parse_body"),
        ("[]", "invalid_json_parse_body"),
        (r#"{"app_id":"com.example.app"}"#, "missing_device_id"),
        (r#"{"device_id":"d"}"#, "missing_app_id"),
        (r#"{"device_id":"d","app_id":"not an app"}"#, "invalid_app_id"),
        (
            r#"{"device_id":"d","app_id":"com.example.app","plugin_version":"8.0.0","platform":"ios","version_build":"1.0.0","version_name":"1.0.0","is_prod":"sometimes"}"#,
            "invalid_json_body",
        ),
        (
            r#"{"device_id":"d","app_id":"com.example.app","plugin_version":"eight","platform":"ios"}"#,
            "invalid_json_body",
        ),
        (
            r#"{"device_id":"d","app_id":"com.example.app","plugin_version":"8.0.0","platform":"windows","version_build":"1.0.0","version_name":"1.0.0"}"#,
            "invalid_json_body",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = app.updates_raw(body).await;
        assert_eq!((status, answer["error"].as_str().unwrap()), (400, code), "{body}: {answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    let wrong_type = app.updates_raw(&device(json!({"is_emulator": 3})).to_string()).await.1;
    assert_eq!(wrong_type["message"], "field `is_emulator` must be a boolean (true or false)");
    let huge = format!(r#"{{"device_id":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, answer) = app.updates_raw(&huge).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (413, "body_too_large"));
}

#[tokio::test]
async fn channel_resolution_order() {
    let (app, _) = with_production().await;
    app.upload_ok("1.0.2", small_zip("1.0.2"), &[]).await;
    app.upload_ok("1.0.3", small_zip("1.0.3"), &[]).await;
    // beta: self-settable, on 1.0.2; internal: private, on 1.0.3.
    let (status, _) = app
        .admin(
            "POST",
            "/channel",
            json!({"app_id": APP_ID, "channel": "beta", "version": "1.0.2",
                                                         "allow_device_self_set": true}),
        )
        .await;
    assert_eq!(status, 200);
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "internal", "version": "1.0.3"})).await;

    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1", "public channel");
    assert_eq!(app.check(device(json!({"defaultChannel": "beta"}))).await["version"], "1.0.2", "defaultChannel");
    // A channel the device may not use (private without self-set, or none by that name) is not served to it: it
    // gets the public channel, as if it had asked for none, never no_channel for good.
    assert_eq!(app.check(device(json!({"defaultChannel": "internal"}))).await["version"], "1.0.1", "private");
    assert_eq!(app.check(device(json!({"defaultChannel": "nope"}))).await["version"], "1.0.1", "unknown name");

    // A device override wins over defaultChannel and may target a private channel.
    let (status, body) = app
        .admin(
            "POST",
            "/device",
            json!({"app_id": APP_ID, "device_id": "0F6B3E1C-6C1E-4A55-9F3A-2F0C9A3B7D21",
                                                            "channel": "internal"}),
        )
        .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert_eq!(app.check(device(json!({"defaultChannel": "beta"}))).await["version"], "1.0.3");
    // Other devices are unaffected.
    assert_eq!(app.check(device(json!({"device_id": "other"}))).await["version"], "1.0.1");
}

#[tokio::test]
async fn per_device_version_pin() {
    let (app, _) = with_production().await;
    app.upload_ok("1.0.5", small_zip("1.0.5"), &[]).await;
    let (status, _) =
        app.admin("POST", "/device", json!({"app_id": APP_ID, "device_id": "pinned", "version_id": "1.0.5"})).await;
    assert_eq!(status, 200);
    assert_eq!(app.check(device(json!({"device_id": "pinned"}))).await["version"], "1.0.5");
    let (status, _) = app
        .call("DELETE", "/device", Some(crate::helpers::ADMIN_KEY), json!({"app_id": APP_ID, "device_id": "pinned"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.check(device(json!({"device_id": "pinned"}))).await["version"], "1.0.1");
}

#[tokio::test]
async fn policy_refusals_have_exact_bodies() {
    let (app, _) = with_production().await;
    app.upload_ok("2.0.0", small_zip("2.0.0"), &[]).await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": "2.0.0"})).await;
    assert_eq!(
        app.check(device(json!({}))).await,
        json!({"error": "disable_auto_update_to_major", "message": "Cannot upgrade major version", "major": true,
               "version": "2.0.0", "old": "1.0.0", "kind": "blocked"})
    );
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "disableAutoUpdate": "none"}))
        .await;
    assert_eq!(app.check(device(json!({}))).await["version"], "2.0.0");

    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "production", "version": "1.0.1",
                                         "disableAutoUpdate": "minor"}),
    )
    .await;
    let native_1_1 = device(json!({"version_build": "1.1.0", "version_name": "1.1.0"}));
    let answer = app.check(native_1_1.clone()).await;
    assert_eq!(answer["error"], "disable_auto_update_to_minor");
    assert_eq!(answer["major"], true);
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "disableAutoUpdate": "none"}))
        .await;
    assert_eq!(
        app.check(native_1_1.clone()).await,
        json!({"error": "disable_auto_update_under_native", "message": "Cannot revert to a bundle older than the native version",
               "version": "1.0.1", "old": "1.1.0", "kind": "blocked"})
    );
    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "production", "disableAutoUpdateUnderNative": false}),
    )
    .await;
    assert_eq!(app.check(native_1_1).await["version"], "1.0.1");

    for (field, request, code) in [
        ("allow_prod", json!({}), "disable_prod_build"),
        ("allow_dev", json!({"is_prod": false}), "disable_dev_build"),
        ("allow_device", json!({}), "disable_device"),
        ("allow_emulator", json!({"is_emulator": true}), "disable_emulator"),
    ] {
        app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", field: false})).await;
        let answer = app.check(device(request)).await;
        assert_eq!(
            (answer["error"].as_str().unwrap_or_default(), answer["kind"].as_str().unwrap_or_default()),
            (code, "blocked"),
            "{field}: {answer}"
        );
        app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", field: true})).await;
    }
}

#[tokio::test]
async fn disabled_platform_through_override() {
    let (app, _) = with_production().await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "qa", "version": "1.0.1", "android": false}))
        .await;
    app.admin_ok("POST", "/device", json!({"app_id": APP_ID, "device_id": "q1", "channel": "qa"})).await;
    assert_eq!(
        app.check(device(json!({"device_id": "q1"}))).await,
        json!({"error": "disabled_platform_android", "message": "Updates are disabled for android on this channel",
               "version": "1.0.1", "old": "1.0.0", "kind": "blocked"})
    );
}

#[tokio::test]
async fn min_update_version_guard() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.2.0", small_zip("1.2.0"), &[("channel", "production"), ("min_update_version", "1.1.0")]).await;
    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "production", "disableAutoUpdate": "version_number"}),
    )
    .await;
    let answer = app.check(device(json!({}))).await;
    assert_eq!(
        (answer["error"].as_str(), answer["major"].as_bool()),
        (Some("disable_auto_update_to_metadata"), Some(true))
    );
    let native_1_1 = device(json!({"version_build": "1.1", "version_name": "1.1"}));
    assert_eq!(app.check(native_1_1).await["version"], "1.2.0");
}

#[tokio::test]
async fn builtin_channel_reverts_once() {
    let (app, _) = with_production().await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": "builtin"})).await;
    // A device on a downloaded bundle goes back to builtin...
    assert_eq!(app.check(device(json!({"version_name": "1.0.1"}))).await, json!({"version": "builtin"}));
    // ...and once there it is up to date, whichever way the plugin names the embedded bundle.
    // Current Capgo answers a device already on builtin without a `version`.
    let on_builtin =
        json!({"error": "already_on_builtin", "message": "Already on the builtin bundle", "kind": "up_to_date"});
    assert_eq!(app.check(device(json!({"version_name": "1.0.0"}))).await, on_builtin);
    assert_eq!(app.check(device(json!({"version_name": "builtin"}))).await, on_builtin);
    let answer = app.check(device(json!({"version_name": "1.0.1", "plugin_version": "6.1.0"}))).await;
    assert_eq!(answer["error"], "revert_to_builtin_plugin_version_too_old");
}

#[tokio::test]
async fn device_with_key_never_gets_a_plain_bundle() {
    let (app, _) = with_production().await;
    let answer = app.check(device(json!({"key_id": "MIIBCgKCAQEAx8Q3rT2b"}))).await;
    assert_eq!(
        answer,
        json!({"error": "key_id_mismatch", "message": "The bundle was not encrypted with the public key this device has",
               "deviceKeyId": "MIIBCgKCAQEAx8Q3rT2b", "bundleKeyId": "", "kind": "blocked"})
    );
}

#[tokio::test]
async fn device_record_is_written_behind() {
    let (app, _) = with_production().await;
    let body = device(json!({"device_id": "AB12CD34-0000-4000-8000-000000000001", "custom_id": "user-42",
                             "version_name": "1.0.0", "install_source": "Google_Play"}));
    assert_eq!(app.check(body).await["version"], "1.0.1");
    let record = eventually("the device record", || async {
        let (status, body) = app
            .admin(
                "GET",
                &format!("/device?app_id={APP_ID}&device_id=ab12cd34-0000-4000-8000-000000000001"),
                json!(null),
            )
            .await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(record["device_id"], "ab12cd34-0000-4000-8000-000000000001");
    assert_eq!(record["custom_id"], "user-42");
    assert_eq!(record["version_name"], "1.0.0");
    assert_eq!(record["platform"], "android");
    assert_eq!(record["plugin_version"], "8.51.14");
    assert_eq!(record["install_source"], "google_play");
    assert_eq!(record["is_prod"], true);
}
