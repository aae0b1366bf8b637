//! `/channel_self`: setChannel, getChannel, listChannels and unsetChannel for new and old plugins.

use serde_json::{Value, json};

use crate::helpers::{APP_ID, TestApp, device, small_zip};

/// production (public, 1.0.1), beta (self-set, 1.0.2), internal (private, 1.0.3), ios-only (self-set, iOS).
async fn channels() -> TestApp {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("1"), &[("channel", "production")]).await;
    app.upload_ok("1.0.2", small_zip("2"), &[]).await;
    app.upload_ok("1.0.3", small_zip("3"), &[]).await;
    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "beta", "version": "1.0.2", "allow_device_self_set": true}),
    )
    .await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "internal", "version": "1.0.3"})).await;
    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "ios-only", "allow_device_self_set": true, "android": false}),
    )
    .await;
    app
}

async fn send(app: &TestApp, method: &str, body: Value) -> (u16, Value) {
    app.call(method, "/channel_self", None, body).await
}

#[tokio::test]
async fn new_plugins_validate_without_storing() {
    let app = channels().await;
    let set = |channel: &str| device(json!({"channel": channel}));
    assert_eq!(send(&app, "POST", set("beta")).await, (200, json!({"status": "ok", "allowSet": true})));
    let (status, body) = send(&app, "POST", set("internal")).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (200, "channel_self_set_not_allowed"));
    let (_, body) = send(&app, "POST", set("production")).await;
    assert_eq!(body["error"], "public_channel_self_set_not_allowed");
    let (_, body) = send(&app, "POST", set("ios-only")).await;
    assert_eq!(body["error"], "channel_not_found");
    // Capgo answers a setChannel without a channel with a 200 refusal.
    let (status, body) = send(&app, "POST", device(json!({}))).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (200, "missing_channel"));
    assert!(!body["message"].as_str().unwrap().is_empty());
    // Nothing was stored: without defaultChannel the device is still on production.
    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");
    // The device sends its choice as defaultChannel from now on.
    assert_eq!(app.check(device(json!({"defaultChannel": "beta"}))).await["version"], "1.0.2");
    // unsetChannel is local for new plugins; a DELETE still answers ok.
    assert_eq!(send(&app, "DELETE", device(json!({}))).await, (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn get_channel_answers_what_updates_resolves_without_teaching_names() {
    let app = channels().await;
    // A device that made no choice is on the public default; plugins 8.47.9+ would store any name as their
    // defaultChannel, so the name is left out, as the plugin's own reference server does.
    assert_eq!(
        send(&app, "PUT", device(json!({}))).await,
        (200, json!({"channel": "", "status": "default", "allowSet": false}))
    );
    // Older plugins only display it.
    for old in ["8.47.8", "7.50.0", "6.34.0"] {
        assert_eq!(send(&app, "PUT", device(json!({"plugin_version": old}))).await.1["channel"], "production", "{old}");
    }
    // The device's own choice is echoed.
    assert_eq!(
        send(&app, "PUT", device(json!({"defaultChannel": "beta"}))).await,
        (200, json!({"channel": "beta", "status": "override", "allowSet": true}))
    );
    // A name it may not use resolves to the public channel, which is not named either.
    assert_eq!(
        send(&app, "PUT", device(json!({"defaultChannel": "nope"}))).await,
        (200, json!({"channel": "", "status": "default", "allowSet": false}))
    );
    // An operator override is the device's channel, but naming it would outlive the override.
    app.admin_ok(
        "POST",
        "/device",
        json!({"app_id": APP_ID, "device_id": "0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21", "channel": "internal"}),
    )
    .await;
    assert_eq!(
        send(&app, "PUT", device(json!({}))).await,
        (200, json!({"channel": "", "status": "override", "allowSet": false}))
    );
    assert_eq!(send(&app, "PUT", device(json!({"plugin_version": "8.40.0"}))).await.1["channel"], "internal");
    // With no channel at all for the device: 400 channel_not_found (the device keeps its local choice).
    let none = TestApp::with_app().await;
    let (status, body) = send(&none, "PUT", device(json!({}))).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "channel_not_found"));
}

/// The operator moves the public default from production to stable. Devices that learned "production" (from
/// getChannel before this rule, their config, or a setChannel) keep sending it; none is stranded on no_channel,
/// and getChannel never hands out "stable" for them to store.
#[tokio::test]
async fn a_default_channel_switch_strands_no_device() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("1"), &[("channel", "production")]).await;
    let learned = device(json!({"defaultChannel": "production"}));
    assert_eq!(app.check(learned.clone()).await["version"], "1.0.1");

    // The switch: stable becomes the public channel, production private.
    app.upload_ok("1.0.2", small_zip("2"), &[]).await;
    app.admin_ok(
        "POST",
        "/channel",
        json!({"app_id": APP_ID, "channel": "stable", "version": "1.0.2", "public": true}),
    )
    .await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "public": false})).await;
    assert_eq!(app.check(learned.clone()).await["version"], "1.0.2", "the stale name falls back to the default");
    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.2");
    assert_eq!(send(&app, "PUT", learned.clone()).await.1["channel"], "", "nothing new to store");

    // And when production is deleted altogether.
    app.admin_ok("DELETE", "/channel", json!({"app_id": APP_ID, "channel": "production"})).await;
    assert_eq!(app.check(learned).await["version"], "1.0.2");
}

#[tokio::test]
async fn list_channels_from_the_query_string() {
    let app = channels().await;
    let query = |extra: &str| {
        format!(
            "/channel_self?app_id={APP_ID}&device_id=d1&platform=android&plugin_version=8.51.14&is_prod=true&is_emulator=false{extra}"
        )
    };
    let response = app.client.get(app.url(&query(""))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["beta", "production"]);
    assert!(listed.as_array().unwrap().iter().all(|c| c["id"].is_i64()), "numeric ids: {listed}");
    assert_eq!(listed[0], json!({"id": listed[0]["id"], "name": "beta", "public": false, "allow_self_set": true}));
    let ios: Value =
        app.client.get(app.url(&query("").replace("android", "ios"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(ios.as_array().unwrap().len(), 3);
    let unknown = app.client.get(app.url(&query("").replace(APP_ID, "com.example.unknown"))).send().await.unwrap();
    assert_eq!(unknown.status(), 200);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "app_not_found");
}

#[tokio::test]
async fn old_plugins_store_the_choice_on_the_server() {
    let app = channels().await;
    let old = |extra: Value| {
        let mut body = device(json!({"plugin_version": "6.14.0"}));
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(send(&app, "POST", old(json!({"channel": "beta"}))).await.0, 200);
    // The override makes /updates serve beta without a defaultChannel.
    assert_eq!(app.check(old(json!({}))).await["version"], "1.0.2");
    assert_eq!(send(&app, "PUT", old(json!({}))).await.1["channel"], "beta");
    // DELETE with the info object in the query string removes it.
    let response = app
        .client
        .delete(app.url(&format!("/channel_self?app_id={APP_ID}&device_id=0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21&platform=android&plugin_version=6.14.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert_eq!(app.check(old(json!({}))).await["version"], "1.0.1");
    let (_, body) = send(&app, "DELETE", old(json!({}))).await;
    assert_eq!(body["error"], "cannot_override");
    // An operator's override cannot be replaced from the device.
    app.admin_ok(
        "POST",
        "/device",
        json!({"app_id": APP_ID, "device_id": "0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21", "channel": "internal"}),
    )
    .await;
    assert_eq!(send(&app, "POST", old(json!({"channel": "beta"}))).await.1["error"], "cannot_override");
}
