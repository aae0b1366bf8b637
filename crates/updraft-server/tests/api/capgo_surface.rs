//! The Capgo management surface: channel, device and bundle listings (pages and cursors), deletes, external
//! bundles and builtin pins.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, device, small_zip};

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    app.call("GET", path, Some(ADMIN_KEY), json!(null)).await
}

#[tokio::test]
async fn channels_list_read_and_delete() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "beta", "ios": false})).await;
    let (status, list) = get(&app, &format!("/channel?app_id={APP_ID}")).await;
    assert_eq!(status, 200);
    let list = list.as_array().expect("a bare array").clone();
    assert_eq!(list.len(), 2);
    let production = &list[0];
    assert_eq!(production["name"], "production");
    assert_eq!(production["version"]["name"], "1.0.1");
    assert!(production["version"]["id"].is_i64() && production["id"].is_i64());
    for key in [
        "created_at",
        "updated_at",
        "app_id",
        "created_by",
        "public",
        "disableAutoUpdateUnderNative",
        "disableAutoUpdate",
        "allow_emulator",
        "allow_dev",
        "allow_device_self_set",
        "allow_prod",
        "allow_device",
    ] {
        assert!(production.get(key).is_some(), "{key} in {production}");
    }
    assert_eq!(list[1]["version"], Value::Null, "a new channel serves builtin");
    assert_eq!(list[1]["ios"], false);
    let (status, one) = get(&app, &format!("/channel?app_id={APP_ID}&channel=beta")).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("beta")));
    let (status, _) = get(&app, &format!("/channel?app_id={APP_ID}&page=1")).await;
    assert_eq!(status, 200);
    assert_eq!(get(&app, &format!("/channel?app_id={APP_ID}&page=1")).await.1, json!([]));
    assert_eq!(get(&app, &format!("/channel?app_id={APP_ID}&channel=nope")).await.0, 404);

    assert_eq!(
        app.admin("DELETE", "/channel", json!({"app_id": APP_ID, "channel": "beta"})).await,
        (200, json!({"status": "ok"}))
    );
    let (status, body) = app.admin("DELETE", "/channel", json!({"app_id": APP_ID, "channel": "beta"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "channel_not_found"));
}

#[tokio::test]
async fn devices_paginate_across_page_boundaries() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    let first_sent = chrono::Utc::now();
    for n in 0..120 {
        app.check(device(json!({"device_id": format!("device-{n:03}")}))).await;
    }
    crate::helpers::eventually("all 120 device records", || async {
        let (_, page) = get(&app, &format!("/device?app_id={APP_ID}&page=2")).await;
        (page["data"].as_array().map(Vec::len) == Some(20)).then_some(())
    })
    .await;
    // Zero-based pages of 50, in Capgo's `{data, nextCursor, hasMore}` shape.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursors = Vec::new();
    for (page, expected, more) in [(0, 50, true), (1, 50, true), (2, 20, false), (3, 0, false)] {
        let (status, body) = get(&app, &format!("/device?app_id={APP_ID}&page={page}")).await;
        assert_eq!(status, 200);
        let list = body["data"].as_array().expect("data");
        assert_eq!((list.len(), body["hasMore"].as_bool()), (expected, Some(more)), "page {page}");
        assert_eq!(body["nextCursor"].is_string(), more, "{body}");
        cursors.push(body["nextCursor"].clone());
        for item in list {
            assert!(seen.insert(item["device_id"].as_str().unwrap().to_owned()));
            assert_eq!(item["platform"], "android");
            // A check is recorded at the end of its second (`updraft_core::check_time`), never before it was sent;
            // many of these share a second, and the pages above still list each device once.
            let seen_at = chrono::DateTime::parse_from_rfc3339(item["updated_at"].as_str().unwrap()).unwrap();
            assert_eq!(seen_at.timestamp_subsec_nanos(), 0, "{item}");
            assert!(seen_at >= first_sent, "{item}");
        }
    }
    assert_eq!(seen.len(), 120);
    // A page's nextCursor continues with the next page.
    let (_, after_first) =
        get(&app, &format!("/device?app_id={APP_ID}&limit=50&cursor={}", urlencode(cursors[0].as_str().unwrap())))
            .await;
    let (_, second) = get(&app, &format!("/device?app_id={APP_ID}&page=1")).await;
    assert_eq!(after_first["data"], second["data"]);

    // Capgo's cursor form.
    let mut cursor: Option<String> = None;
    let mut walked = 0;
    loop {
        let path = match &cursor {
            None => format!("/device?app_id={APP_ID}&limit=50"),
            Some(c) => format!("/device?app_id={APP_ID}&limit=50&cursor={}", urlencode(c)),
        };
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 200, "{body}");
        walked += body["data"].as_array().unwrap().len();
        if body["hasMore"] == false {
            assert_eq!(body["nextCursor"], Value::Null);
            break;
        }
        cursor = Some(body["nextCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(walked, 120);
    assert_eq!(get(&app, &format!("/device?app_id={APP_ID}&cursor=garbage")).await.0, 400);
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bundles_list_and_delete() {
    let app = TestApp::with_app().await;
    let linked = app.upload_ok("1.0.1", small_zip("linked"), &[("channel", "production")]).await;
    let loose = app.upload_ok("1.0.2", small_zip("loose"), &[]).await;
    app.upload_ok("1.0.3", small_zip("loose too"), &[]).await;
    let (status, list) = get(&app, &format!("/bundle?app_id={APP_ID}")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["1.0.3", "1.0.2", "1.0.1"], "newest first");
    assert_eq!(list[2]["checksum"], linked["checksum"]);
    for key in [
        "id",
        "app_id",
        "checksum",
        "created_at",
        "deleted",
        "external_url",
        "r2_path",
        "session_key",
        "storage_provider",
    ] {
        assert!(list[0].get(key).is_some(), "{key}");
    }

    let (status, body) = app.admin("DELETE", "/bundle", json!({"app_id": APP_ID, "version": "1.0.1"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "cannot_delete_linked_version"));
    let loose_url = app.url(&format!("/files/bundles/{APP_ID}/{}.zip", loose["checksum"].as_str().unwrap()));
    assert_eq!(app.client.get(&loose_url).send().await.unwrap().status(), 200);
    let (status, body) = app.admin("DELETE", "/bundle", json!({"app_id": APP_ID, "version": "1.0.2"})).await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(["1.0.2"])));
    assert_eq!(app.client.get(&loose_url).send().await.unwrap().status(), 404, "its object left storage");
    // Without a version: every unlinked bundle goes, linked ones stay.
    let (status, body) = app.admin("DELETE", "/bundle", json!({"app_id": APP_ID})).await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(["1.0.3"])));
    let names: Vec<Value> = get(&app, &format!("/bundle?app_id={APP_ID}"))
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, [json!("1.0.1")]);
    // A deleted bundle is never offered: a device pinned to it before deletion... cannot exist (pins are links).
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": "builtin"})).await;
    app.admin_ok("DELETE", "/bundle", json!({"app_id": APP_ID, "version": "1.0.1"})).await;
    assert_eq!(app.check(device(json!({"version_name": "1.0.1"}))).await, json!({"version": "builtin"}));
    let (status, body) = app.admin("DELETE", "/bundle", json!({"app_id": APP_ID, "version": "9.9.9"})).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "bundle_not_found"));
}

#[tokio::test]
async fn external_bundles_are_handed_out_as_registered() {
    let app = TestApp::with_app().await;
    let checksum = "ab".repeat(32);
    let (status, body) = app
        .admin("POST", "/bundle", json!({"app_id": APP_ID, "version": "1.0.1", "external_url": "http://cdn.example.com/b.zip", "checksum": checksum}))
        .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_external_url"));
    let (status, body) = app
        .admin("POST", "/bundle", json!({"app_id": APP_ID, "version": "1.0.1", "external_url": "https://cdn.example.com/b.zip", "checksum": "short"}))
        .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_checksum"));
    app.admin_ok(
        "POST",
        "/bundle",
        json!({"app_id": APP_ID, "version": "1.0.1", "external_url": "https://cdn.example.com/b.zip", "checksum": checksum, "channel": "production"}),
    )
    .await;
    assert_eq!(
        app.check(device(json!({}))).await,
        json!({"version": "1.0.1", "url": "https://cdn.example.com/b.zip", "checksum": checksum, "session_key": ""})
    );
    let (_, list) = get(&app, &format!("/bundle?app_id={APP_ID}")).await;
    assert_eq!(list[0]["external_url"], "https://cdn.example.com/b.zip");
}

#[tokio::test]
async fn a_device_can_be_pinned_to_builtin() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    app.admin_ok("POST", "/device", json!({"app_id": APP_ID, "device_id": "tester", "version_id": "builtin"})).await;
    assert_eq!(
        app.check(device(json!({"device_id": "tester", "version_name": "1.0.1"}))).await,
        json!({"version": "builtin"})
    );
    assert_eq!(app.check(device(json!({"device_id": "tester"}))).await["error"], "already_on_builtin");
    assert_eq!(app.check(device(json!({"device_id": "someone-else"}))).await["version"], "1.0.1");
    let (_, record) = crate::helpers::eventually("the device record", || async {
        let answer = get(&app, &format!("/device?app_id={APP_ID}&device_id=tester")).await;
        (answer.0 == 200).then_some(answer)
    })
    .await;
    assert_eq!(record["version"], json!({"id": null, "name": "builtin"}));
}

/// Capgo's bundle `link` and `comment` (`expose_metadata`): set at upload, listed, and sent in the update reply to
/// plugins from 5.35.0 / 6.35.0 / 7.35.0 / 8.35.0, as Capgo's `resToVersion` does.
#[tokio::test]
async fn bundle_link_and_comment_reach_the_plugins_that_read_them() {
    let app = TestApp::with_app().await;
    let notes = [("link", "https://example.com/releases/1.0.1"), ("comment", "Fixes the login screen ✓")];
    let (status, body) =
        app.upload("1.0.1", small_zip("a"), &[("channel", "production"), ("link", "not a url"), notes[1]]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_link")), "{body}");
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production"), notes[0], notes[1]]).await;
    let reply = app.check(device(json!({}))).await;
    assert_eq!(reply["link"], "https://example.com/releases/1.0.1");
    assert_eq!(reply["comment"], "Fixes the login screen ✓");
    assert!(reply.get("error").is_none() && reply.get("message").is_none(), "{reply}");
    for old in ["8.34.0", "7.34.9", "6.34.0", "5.20.0"] {
        let reply = app.check(device(json!({"plugin_version": old}))).await;
        assert_eq!(reply["version"], "1.0.1", "{old}");
        assert!(reply.get("link").is_none() && reply.get("comment").is_none(), "{old}: {reply}");
    }
    for lts in ["7.35.0", "6.50.1", "5.35.0"] {
        assert_eq!(app.check(device(json!({"plugin_version": lts}))).await["comment"], "Fixes the login screen ✓");
    }
    let (_, list) = get(&app, &format!("/bundle?app_id={APP_ID}")).await;
    assert_eq!((&list[0]["link"], &list[0]["comment"]), (&json!(notes[0].1), &json!(notes[1].1)));
    // A bundle hosted elsewhere takes them too; one without them sends neither.
    app.admin_ok(
        "POST",
        "/bundle",
        json!({"app_id": APP_ID, "version": "1.0.2", "external_url": "https://cdn.example.com/b.zip",
               "checksum": "ab".repeat(32), "channel": "production", "comment": "From the CDN"}),
    )
    .await;
    let reply = app.check(device(json!({}))).await;
    assert_eq!((reply["comment"].as_str(), reply.get("link")), (Some("From the CDN"), None));
    app.upload_ok("1.0.3", small_zip("c"), &[("channel", "production")]).await;
    let reply = app.check(device(json!({}))).await;
    assert_eq!(reply.as_object().unwrap().keys().collect::<Vec<_>>(), ["checksum", "session_key", "url", "version"]);
}
