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
    for n in 0..3 {
        app.check(device(json!({"device_id": format!("on-101-{n}"), "version_name": "1.0.1"}))).await;
    }
    app.check(device(json!({"device_id": "on-100"}))).await;
    post(
        &app,
        "/stats",
        &json!([
            event("on-101-0", "set", "1.0.1"),
            event("on-101-1", "set", "1.0.1"),
            event("x", "download_fail", "1.0.1"),
            event("x", "checksum_fail", "1.0.1:index.html")
        ]),
    )
    .await;
    let summary = eventually("stats to be written", || async {
        let (status, body) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
        assert_eq!(status, 200, "{body}");
        let bundles = body["bundles"].as_array().unwrap().clone();
        let ready = body["recent"].as_array().unwrap().len() == 4 && bundles.iter().any(|b| b["devices"] == 3);
        ready.then_some(body)
    })
    .await;
    let bundle =
        |version: &str| summary["bundles"].as_array().unwrap().iter().find(|b| b["version_name"] == version).cloned();
    assert_eq!(bundle("1.0.1").unwrap(), json!({"version_name": "1.0.1", "devices": 3, "installs": 2, "failures": 2}));
    assert_eq!(bundle("1.0.0").unwrap()["devices"], 1);
    assert_eq!(summary["recent"][0]["version_name"], "1.0.1", "the :file suffix is stripped");
    let (status, _) = app.call("GET", &format!("/stats?app_id={APP_ID}"), None, json!(null)).await;
    assert_eq!(status, 401);
}

/// With a one-slot queue, a burst of stats and checks overflows it: device reports are shed and stats batches that
/// find no room are refused with a 503 (the plugin resends them), but update answers never fail.
#[tokio::test]
async fn a_full_queue_sheds_writes_not_answers() {
    let app = std::sync::Arc::new(TestApp::spawn_with(&[("UPDRAFT_DEVICE_QUEUE_CAPACITY", "1")]).await);
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let app = app.clone();
            tokio::spawn(async move {
                for n in 0..25 {
                    let id = format!("burst-{worker}-{n}");
                    let batch = json!([event(&id, "download_10", "1.0.1"), event(&id, "download_20", "1.0.1")]);
                    let (status, body) = post(&app, "/stats", &batch).await;
                    match status {
                        200 => {}
                        503 => assert!(body.contains("\"error\":\"service_unavailable\""), "{body}"),
                        _ => panic!("/stats answered {status}: {body}"),
                    }
                    assert_eq!(app.check(device(json!({"device_id": id}))).await["version"], "1.0.1");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let shed = metrics.lines().find_map(|l| l.strip_prefix("updraft_write_queue_shed_total ")).unwrap();
    assert!(shed.parse::<u64>().unwrap() > 0, "a one-slot queue overflowed: {metrics}");
}
