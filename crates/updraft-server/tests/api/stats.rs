//! `/stats`: single and batch bodies, unknown actions, rollbacks stopping redelivery, and the operator's counts.

use serde_json::{Value, json};

use crate::helpers::{APP_ID, TestApp, device, eventually, small_zip};

fn event(device_id: &str, action: &str, version: &str) -> Value {
    let mut body = device(json!({"device_id": device_id, "version_name": version, "action": action,
                                 "old_version_name": "", "timestamp": 1755600000000u64}));
    body.as_object_mut().unwrap().remove("defaultChannel");
    body
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, String) {
    let response = app.client.post(app.url(path)).json(body).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn single_batch_and_unknown_actions_get_non_empty_200() {
    let app = TestApp::with_app().await;
    let (status, body) = post(&app, "/stats", &event("d1", "set", "1.0.1")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let batch =
        json!([event("d1", "download_10", "1.0.1"), event("d1", "a_future_action", "1.0.1"), {"not": "an event"}]);
    let (status, body) = post(&app, "/stats/", &batch).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["results"][0], json!({"status": "ok", "index": 0}));
    assert_eq!(body["results"][1], json!({"status": "ok", "index": 1}));
    assert_eq!(body["results"][2]["status"], "error");
    // Unknown apps are acknowledged too (a 4xx would drop the device's batch).
    let (status, _) = post(
        &app,
        "/stats",
        &event("d1", "set", "1.0.1")
            .as_object()
            .map(|m| {
                let mut m = m.clone();
                m.insert("app_id".into(), json!("com.example.unknown"));
                Value::Object(m)
            })
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let response = app.client.post(app.url("/stats")).body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn rollback_stops_redelivery_to_that_device() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("bad build"), &[("channel", "production")]).await;
    assert_eq!(app.check(device(json!({"device_id": "looper"}))).await["version"], "1.0.1");
    // The new bundle never called notifyAppReady(): the device rolled back and says so.
    let (status, _) = post(&app, "/stats", &json!([event("looper", "update_fail", "1.0.1")])).await;
    assert_eq!(status, 200);
    let refused = eventually("the rollback to take effect", || async {
        let answer = app.check(device(json!({"device_id": "looper"}))).await;
        (answer["error"] == "update_failed_on_device").then_some(answer)
    })
    .await;
    assert_eq!(refused["kind"], "blocked");
    assert_eq!(refused["version"], "1.0.1");
    // Other devices still get 1.0.1, and the failed device gets the next version.
    assert_eq!(app.check(device(json!({"device_id": "other"}))).await["version"], "1.0.1");
    app.upload_ok("1.0.2", small_zip("fixed build"), &[("channel", "production")]).await;
    assert_eq!(app.check(device(json!({"device_id": "looper"}))).await["version"], "1.0.2");
}

#[tokio::test]
async fn operators_read_recent_events_and_per_bundle_counts() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    // Checking in with a bundle name proves nothing: devices are counted from what they installed.
    for n in 0..3 {
        app.check(device(json!({"device_id": format!("on-101-{n}"), "version_name": "1.0.1"}))).await;
    }
    app.check(device(json!({"device_id": "on-100"}))).await;
    let (status, _) = post(
        &app,
        "/stats",
        &json!([
            event("on-101-0", "set", "1.0.1"),
            event("on-101-1", "set", "1.0.1"),
            event("rolled-back", "set", "1.0.1"),
            event("rolled-back", "update_fail", "1.0.1"),
            event("x", "download_fail", "1.0.1"),
            event("x", "checksum_fail", "1.0.1:index.html")
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let summary = eventually("stats to be written", || async {
        let (status, body) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
        assert_eq!(status, 200, "{body}");
        (body["recent"].as_array().unwrap().len() == 6).then_some(body)
    })
    .await;
    let bundle =
        |version: &str| summary["bundles"].as_array().unwrap().iter().find(|b| b["version_name"] == version).cloned();
    assert_eq!(bundle("1.0.1").unwrap(), json!({"version_name": "1.0.1", "devices": 2, "installs": 3, "failures": 3}));
    assert_eq!(bundle("1.0.0"), None, "no device installed 1.0.0");
    assert_eq!(summary["recent"][0]["version_name"], "1.0.1", "the :file suffix is stripped");
    let (status, _) = app.call("GET", &format!("/stats?app_id={APP_ID}"), None, json!(null)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn events_keep_their_bounded_time_and_metadata() {
    let app = TestApp::with_app().await;
    let now = chrono::Utc::now().timestamp_millis();
    let at = |device_id: &str, millis: i64, metadata: Value| {
        let mut body = event(device_id, "app_crash", "1.0.0");
        body["timestamp"] = json!(millis);
        body["metadata"] = metadata;
        body
    };
    let hours_ago = now - 3 * 3_600_000;
    let huge: serde_json::Map<String, Value> = (0..5).map(|n| (format!("k{n}"), json!("v".repeat(1500)))).collect();
    let batch = json!([
        at("late", hours_ago, json!({"exit_reason": "crash", "pss_kb": "2048", "not_text": 5})),
        at("skewed", 0, json!("not an object")),
        at("ahead", now + 10 * 365 * 86_400_000, Value::Object(huge)),
    ]);
    assert_eq!(post(&app, "/stats", &batch).await.0, 200);
    let recent = eventually("stats to be written", || async {
        let (_, body) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
        let recent = body["recent"].as_array().unwrap().clone();
        (recent.len() == 3).then_some(recent)
    })
    .await;
    let by_device = |id: &str| recent.iter().find(|e| e["device_id"] == id).unwrap().clone();
    let millis = |e: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(e[field].as_str().unwrap()).unwrap().timestamp_millis()
    };
    let late = by_device("late");
    assert_eq!(millis(&late, "created_at"), hours_ago, "a late event keeps its own time");
    assert_eq!(late["metadata"], json!({"exit_reason": "crash", "pss_kb": "2048"}));
    // A clock years off is held to [received - 7 days, received + 5 minutes].
    let skewed = by_device("skewed");
    assert_eq!(millis(&skewed, "received_at") - millis(&skewed, "created_at"), 7 * 86_400_000);
    assert_eq!(skewed["metadata"], json!({}));
    let ahead = by_device("ahead");
    assert_eq!(millis(&ahead, "created_at") - millis(&ahead, "received_at"), 5 * 60_000);
    // Metadata past 4 KiB is dropped entry by entry; the event is kept.
    let kept = ahead["metadata"].as_object().unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
}

/// A bundle the device could not install (here its zip fails the checksum on the device: `checksum_fail`, then
/// `download_fail`) is not offered to that device again; a newer version is.
#[tokio::test]
async fn an_install_failure_stops_redelivery_to_that_device() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("good"), &[("channel", "production")]).await;
    let on_101 = |id: &str| device(json!({"device_id": id, "version_name": "1.0.1"}));
    assert_eq!(app.check(on_101("android")).await["error"], "no_new_version_available");
    app.upload_ok("1.0.2", small_zip("corrupted on the way"), &[("channel", "production")]).await;
    assert_eq!(app.check(on_101("android")).await["version"], "1.0.2");
    assert_eq!(app.check(on_101("ios")).await["version"], "1.0.2");
    // The device report of those checks is written before the failures are judged.
    eventually("the device records", || async {
        let (status, _) = app.admin("GET", &format!("/device?app_id={APP_ID}&device_id=ios"), json!(null)).await;
        (status == 200).then_some(())
    })
    .await;
    // Android names the bundle it runs in checksum_fail and the download_fail after it, and the failed one in
    // finish_download_fail (CapgoUpdater.java finishDownload); iOS names the failed one in checksum_fail.
    let android = json!([
        event("android", "checksum_fail", "1.0.1"),
        event("android", "download_fail", "1.0.1"),
        event("android", "finish_download_fail", "1.0.2"),
    ]);
    let ios = json!([event("ios", "checksum_fail", "1.0.2"), event("ios", "download_fail", "1.0.1")]);
    assert_eq!(post(&app, "/stats", &android).await.0, 200);
    assert_eq!(post(&app, "/stats", &ios).await.0, 200);
    for id in ["android", "ios"] {
        let refused = eventually("the failure to take effect", || async {
            let answer = app.check(on_101(id)).await;
            (answer["error"] == "update_failed_on_device").then_some(answer)
        })
        .await;
        assert_eq!((refused["kind"].as_str(), refused["version"].as_str()), (Some("blocked"), Some("1.0.2")), "{id}");
    }
    // The bundle they run was not marked failed: a channel rolled back to 1.0.1 reaches a device that moved on.
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": "1.0.1"})).await;
    assert_eq!(app.check(device(json!({"device_id": "android", "version_name": "1.0.0"}))).await["version"], "1.0.1");
    // Other devices still get 1.0.2, and the next version reaches the failed ones.
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "version": "1.0.2"})).await;
    assert_eq!(app.check(on_101("other")).await["version"], "1.0.2");
    app.upload_ok("1.0.3", small_zip("fixed"), &[("channel", "production")]).await;
    assert_eq!(app.check(on_101("android")).await["version"], "1.0.3");
    assert_eq!(app.check(on_101("ios")).await["version"], "1.0.3");
}

/// With a one-slot queue, a burst of stats and checks overflows it: device reports are shed and stats batches that
/// find no room are refused whole with a 429 and `Retry-After` (the plugin resends them after that, and honours the
/// header only on a 429), but update answers never fail.
#[tokio::test]
async fn a_full_queue_sheds_writes_not_answers() {
    let app = std::sync::Arc::new(TestApp::spawn_with(&[("UPDRAFT_DEVICE_QUEUE_CAPACITY", "1")]).await);
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let (app, refused) = (app.clone(), refused.clone());
            tokio::spawn(async move {
                for n in 0..25 {
                    let id = format!("burst-{worker}-{n}");
                    // Two events never fit a one-slot queue, so this batch is always refused, never half-queued.
                    let batch = json!([event(&id, "download_10", "1.0.1"), event(&id, "download_20", "1.0.1")]);
                    let response = app.client.post(app.url("/stats")).json(&batch).send().await.unwrap();
                    let status = response.status().as_u16();
                    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(status, 429, "{body}");
                    assert_eq!(retry_after.as_deref(), Some("5"));
                    assert_eq!(body["error"], "stats_queue_full");
                    assert_eq!(body["moreInfo"]["retryAfterSeconds"], 5);
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    assert_eq!(app.check(device(json!({"device_id": id}))).await["version"], "1.0.1");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 200);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let shed = metrics.lines().find_map(|l| l.strip_prefix("updraft_write_queue_shed_total ")).unwrap();
    assert!(shed.parse::<u64>().unwrap() > 0, "a one-slot queue overflowed: {metrics}");
    // Nothing of a refused batch was written.
    let (_, summary) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
    assert_eq!(summary["recent"], json!([]), "{summary}");
}
