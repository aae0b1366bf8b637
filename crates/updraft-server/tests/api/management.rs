//! Management API: auth (admin, scoped and wrong keys), apps, channels and device links, with exact bodies.

use std::process::Command;

use serde_json::json;

use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, small_zip};

pub fn create_key(app: &TestApp, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(["apikey", "create", "--server", &app.base, "--api-key", ADMIN_KEY])
        .args(args)
        .env("UPDRAFT_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn keys_no_key_wrong_key_and_scope() {
    let app = TestApp::with_app().await;
    app.create_app("com.example.other").await;
    let body = json!({"app_id": APP_ID, "channel": "production"});
    assert_eq!(
        app.call("POST", "/channel", None, body.clone()).await,
        (
            401,
            json!({"status": "KO", "error": "no_key_provided", "message": "no API key: send it in the `authorization` header (or `capgkey`)"})
        )
    );
    let (status, answer) = app.call("POST", "/channel", Some("not-a-key"), body.clone()).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (401, "invalid_apikey"));

    let scoped = create_key(&app, &["--name", "ci", "--app", APP_ID]);
    assert!(scoped.starts_with("upd_"), "{scoped}");
    assert_eq!(app.call("POST", "/channel", Some(&scoped), body).await.0, 200);
    // Bearer form and Capgo's capgkey header work too.
    let other = json!({"app_id": "com.example.other", "channel": "production"});
    let (status, answer) = app.call("POST", "/channel", Some(&format!("Bearer {scoped}")), other.clone()).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (403, "cannot_access_app"));
    let response = app.client.post(app.url("/channel")).header("capgkey", &scoped).json(&other).send().await.unwrap();
    assert_eq!(response.status(), 403);
    // A scoped key cannot create apps; an unscoped one can.
    let (status, _) = app.call("POST", "/app", Some(&scoped), json!({"app_id": "com.example.third"})).await;
    assert_eq!(status, 403);
    let unscoped = create_key(&app, &["--name", "ops"]);
    assert_eq!(app.call("POST", "/app", Some(&unscoped), json!({"app_id": "com.example.third"})).await.0, 200);
    // A tampered key with a real id is refused.
    let flipped = if scoped.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &scoped[..scoped.len() - 1]);
    assert_eq!(app.call("POST", "/channel", Some(&tampered), json!({"app_id": APP_ID, "channel": "x"})).await.0, 401);
}

#[tokio::test]
async fn apps_are_validated() {
    let app = TestApp::spawn().await;
    let (status, body) = app.admin("POST", "/app", json!({"app_id": "myapp", "name": "x"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_app_id"));
    assert!(body["message"].as_str().unwrap().contains("reverse-domain"));
    let (status, body) = app.admin("POST", "/app", json!({"name": "x"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "missing_app_id"));
    assert_eq!(app.admin("POST", "/app", json!({"app_id": APP_ID})).await.0, 200);
    let (status, body) = app.admin("POST", "/app", json!({"app_id": APP_ID})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "app_already_exists"));
    let (status, body) = app.admin("POST", "/channel", json!({"app_id": "com.example.none", "channel": "c"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "app_not_found"));
}

#[tokio::test]
async fn channel_writes() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[]).await;
    let (status, body) =
        app.admin("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "public": true})).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["public"], true);
    assert!(body["id"].is_i64());
    assert_eq!(
        app.admin("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": "1.0.1"})).await,
        (200, json!({"status": "ok"}))
    );
    for (body, status, code) in [
        (json!({"app_id": APP_ID, "channel": "production", "version": "9.9.9"}), 400, "cannot_find_version"),
        (json!({"app_id": APP_ID}), 400, "missing_channel_name"),
        (json!({"app_id": APP_ID, "channel": "bad name"}), 400, "invalid_json_body"),
        (json!({"app_id": APP_ID, "channel": "p", "disableAutoUpdate": "always"}), 400, "invalid_json_body"),
        (json!({"app_id": APP_ID, "channel": "p", "ios": "no"}), 400, "invalid_json_body"),
        (json!("just a string"), 400, "invalid_json_parse_body"),
    ] {
        let (actual, answer) = app.admin("POST", "/channel", body.clone()).await;
        assert_eq!((actual, answer["error"].as_str().unwrap()), (status, code), "{body}");
    }
}

#[tokio::test]
async fn device_links() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "qa"})).await;
    let cases = [
        (json!({"app_id": APP_ID, "device_id": "d1", "channel": "qa"}), 200, None),
        (json!({"app_id": APP_ID, "device_id": "d1"}), 200, None),
        (json!({"app_id": APP_ID, "device_id": "d1", "channel": "production"}), 400, Some("public_channel_override")),
        (json!({"app_id": APP_ID, "device_id": "d1", "channel": "nope"}), 404, Some("channel_not_found")),
        (json!({"app_id": APP_ID, "device_id": "d1", "version_id": "7.7.7"}), 400, Some("cannot_find_version")),
        (json!({"app_id": APP_ID}), 400, Some("missing_device_id")),
    ];
    for (body, status, code) in cases {
        let (actual, answer) = app.admin("POST", "/device", body.clone()).await;
        assert_eq!(actual, status, "{body}: {answer}");
        match code {
            None => assert_eq!(answer, json!({"status": "ok"})),
            Some(code) => assert_eq!(answer["error"], code, "{body}"),
        }
    }
    let (status, body) =
        app.call("GET", &format!("/device?app_id={APP_ID}&device_id=never"), Some(ADMIN_KEY), json!(null)).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "device_not_found"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "not_found");
    let response = app.client.get(app.url("/updates")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "method_not_allowed");
}

/// Channel writes and device check-ins (whose reports are written behind) hit the database at once; every write
/// must still succeed and be visible to the next check.
#[tokio::test]
async fn writes_succeed_while_devices_check_in() {
    let app = std::sync::Arc::new(TestApp::with_app().await);
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    app.upload_ok("1.0.2", small_zip("b"), &[]).await;
    let checkers: Vec<_> = (0..4)
        .map(|worker| {
            let app = app.clone();
            tokio::spawn(async move {
                for n in 0..60 {
                    let body = crate::helpers::device(json!({"device_id": format!("w{worker}-{n}")}));
                    let answer = app.check(body).await;
                    assert!(answer["version"].is_string() || answer["error"].is_string(), "{answer}");
                }
            })
        })
        .collect();
    for round in 0..30 {
        let version = if round % 2 == 0 { "1.0.2" } else { "1.0.1" };
        app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": version})).await;
        let answer = app.check(crate::helpers::device(json!({"device_id": "observer"}))).await;
        assert_eq!(answer["version"], version, "round {round}");
    }
    for checker in checkers {
        checker.await.unwrap();
    }
}

/// A write whose reload fails after it committed (here the catalog cannot be read: its `channels` table is moved
/// away for a moment) is not left unserved: the app is kept stale and reloaded every 2 s until that succeeds, with
/// no further change. Before, the instance served the older catalog until the app's next write.
#[tokio::test]
async fn a_write_whose_reload_failed_is_served_once_the_catalog_can_be_read() {
    use sqlx::Connection as _;
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("first"), &[("channel", "production")]).await;
    let url = format!("sqlite://{}", app.data_path().join("updraft.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE channels RENAME TO channels_away").execute(&mut db).await.unwrap();
    let (status, body) = app.upload("1.0.2", small_zip("second"), &[]).await;
    assert_ne!(status, 200, "the reload after the write failed: {body}");
    let listed = || async {
        let (_, bundles) = app.admin("GET", &format!("/bundle?app_id={APP_ID}"), json!(null)).await;
        bundles.as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(listed().await, ["1.0.1"], "not served while the catalog cannot be read");
    assert_eq!(crate::webhooks::metric(&app, "updraft_catalog_stale_apps").await, 1);

    sqlx::query("ALTER TABLE channels_away RENAME TO channels").execute(&mut db).await.unwrap();
    crate::helpers::eventually("the stored bundle to be served", || async {
        listed().await.contains(&"1.0.2".to_owned()).then_some(())
    })
    .await;
    crate::helpers::eventually("no stale app", || async {
        (crate::webhooks::metric(&app, "updraft_catalog_stale_apps").await == 0).then_some(())
    })
    .await;
}
