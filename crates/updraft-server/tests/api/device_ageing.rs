//! Rows devices create without a key are aged out and capped by a background task (`UPDRAFT_DEVICE_RETENTION_*`,
//! `UPDRAFT_MAX_DEVICES_PER_APP`, `UPDRAFT_DEVICE_AGEING_INTERVAL_SECONDS`), while checks and `GET /device` keep
//! answering: run with a cap of 10 devices and a retention of seconds.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, device, eventually, small_zip};

/// The ids `GET /device` lists, newest first.
async fn listed(app: &TestApp) -> Vec<String> {
    let (status, body) =
        app.call("GET", &format!("/device?app_id={APP_ID}&limit=100"), Some(ADMIN_KEY), json!(null)).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap().to_owned()).collect()
}

/// A counter of `/metrics`, by its full name and labels.
async fn counter(app: &TestApp, series: &str) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("/metrics has no {series}:\n{text}"))
}

fn deleted(table: &str, reason: &str) -> String {
    format!("updraft_device_rows_deleted_total{{table=\"{table}\",reason=\"{reason}\"}}")
}

const ROUNDS_DONE: &str = "updraft_device_ageing_rounds_total{outcome=\"done\"}";

/// Waits until the instance has finished two more ageing rounds, so at least one whole round started after the
/// call: what a check of "nothing more was deleted" needs, and a round that was under way has counted its rows.
async fn two_more_rounds(app: &TestApp) {
    let before = counter(app, ROUNDS_DONE).await;
    eventually("two more ageing rounds", || async { (counter(app, ROUNDS_DONE).await >= before + 2).then_some(()) })
        .await;
}

/// Past the cap the least recently seen devices go (stats events: 16 per device allowed), and the newest stay.
#[tokio::test]
async fn past_the_cap_the_least_recently_seen_device_rows_are_evicted() {
    let app = TestApp::spawn_with(&[
        ("UPDRAFT_DEVICE_RETENTION_DAYS", "0"),
        ("UPDRAFT_MAX_DEVICES_PER_APP", "10"),
        ("UPDRAFT_DEVICE_AGEING_INTERVAL_SECONDS", "1"),
    ])
    .await;
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    // 25 invented device ids, each seen a few milliseconds after the one before.
    for n in 0..25 {
        assert_eq!(app.check(device(json!({"device_id": format!("rnd-{n:02}")}))).await["version"], "1.0.1");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest: Vec<String> = (15..25).rev().map(|n| format!("rnd-{n:02}")).collect();
    // A round counts its deletions after they commit, so the list can be ahead of the counter.
    eventually("the 10 most recently seen devices to be all that is left", || async {
        (listed(&app).await == newest && counter(&app, &deleted("devices", "cap")).await >= 15).then_some(())
    })
    .await;
    assert_eq!(counter(&app, &deleted("devices", "cap")).await, 15);
    // 200 stats events of one device: the 40 oldest go past the 160 stats events 10 devices may keep.
    let events: Vec<Value> = (0..200)
        .map(|n| {
            device(json!({"device_id": "rnd-24", "action": format!("download_{}", n % 100), "version_name": "1.0.1",
                          "old_version_name": "", "timestamp": 1_755_600_000_000u64 + n}))
        })
        .collect();
    let response = app.client.post(app.url("/stats")).json(&events).send().await.unwrap();
    assert_eq!(response.status(), 200);
    eventually("the oldest stats events to be evicted", || async {
        (counter(&app, &deleted("stats_events", "cap")).await >= 40).then_some(())
    })
    .await;
    two_more_rounds(&app).await;
    assert_eq!(counter(&app, &deleted("stats_events", "cap")).await, 40, "no more than the excess");
    assert_eq!(counter(&app, &deleted("devices", "retention")).await, 0, "retention 0 keeps rows");
    // Checks, the catalog and the device list keep working; a new device is kept and pushes the oldest out.
    assert_eq!(app.check(device(json!({"device_id": "late-comer"}))).await["version"], "1.0.1");
    eventually("the late comer to replace the oldest kept device", || async {
        let ids = listed(&app).await;
        (ids.len() == 10 && ids[0] == "late-comer" && !ids.contains(&"rnd-15".to_owned())).then_some(())
    })
    .await;
    assert_eq!(counter(&app, "updraft_device_ageing_rounds_total{outcome=\"failed\"}").await, 0);
}

/// Rows not seen for the retention go; a device that keeps checking in stays, and so do its rows.
#[tokio::test]
async fn rows_not_seen_for_the_retention_are_aged_out() {
    let app = TestApp::spawn_with(&[
        ("UPDRAFT_DEVICE_RETENTION_SECONDS", "6"),
        ("UPDRAFT_DEVICE_AGEING_INTERVAL_SECONDS", "1"),
    ])
    .await;
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    let set = |device_id: &str| {
        device(json!({"device_id": device_id, "action": "set", "version_name": "1.0.1", "old_version_name": ""}))
    };
    // Taken before the silent devices' last requests, so every time the gateway recorded for them is later.
    let last_heard = std::time::Instant::now();
    for id in ["gone-a", "gone-b", "stays"] {
        assert_eq!(app.check(device(json!({"device_id": id}))).await["version"], "1.0.1");
        let response = app.client.post(app.url("/stats")).json(&set(id)).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    eventually("three devices listed", || async { (listed(&app).await.len() == 3).then_some(()) }).await;
    // `stays` checks in every 200 ms with something new (the writer refreshes an unchanged report only every five
    // minutes, longer than this test's retention); the others are never heard from again.
    let started = std::time::Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let check = app.check(device(json!({"device_id": "stays", "custom_id": format!("launch-{n}")}))).await;
        assert_eq!(check["version"], "1.0.1", "checks keep answering while rows are deleted");
        if listed(&app).await == ["stays"] {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the silent devices were never aged out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // (A second of margin for the wall clock the gateway stamps rows with, against this monotonic one.)
    assert!(last_heard.elapsed() >= Duration::from_secs(5), "nothing went before the retention");
    // A round counts its deletions after they commit, so the list can be ahead of the counter.
    eventually("the two silent devices counted", || async {
        (counter(&app, &deleted("devices", "retention")).await >= 2).then_some(())
    })
    .await;
    assert_eq!(counter(&app, &deleted("devices", "retention")).await, 2);
    assert_eq!(counter(&app, &deleted("devices", "cap")).await, 0, "the default cap is far away");
    // Their stats events, installs and release rows go with them: in the same round, or the next for a row stamped
    // just past the second its device's check was rounded up to.
    eventually("the silent devices' events, installs and release rows to age out", || async {
        let events = counter(&app, &deleted("stats_events", "retention")).await;
        let installs = counter(&app, &deleted("device_installs", "retention")).await;
        let releases = counter(&app, &deleted("release_devices", "retention")).await;
        (events >= 2 && installs >= 2 && releases >= 2).then_some(())
    })
    .await;
    let (status, stats) = app.call("GET", &format!("/stats?app_id={APP_ID}"), Some(ADMIN_KEY), json!(null)).await;
    assert_eq!(status, 200, "{stats}");
    let senders: Vec<&str> =
        stats["recent"].as_array().unwrap().iter().map(|e| e["device_id"].as_str().unwrap()).collect();
    assert!(!senders.contains(&"gone-a") && !senders.contains(&"gone-b"), "{senders:?}");
}

/// Two instances on one PostgreSQL (`UPDRAFT_TEST_DATABASE_URL`) run the task at the same moments: together they
/// delete exactly the excess, each row once, and both list the same newest devices.
#[tokio::test]
async fn two_instances_on_postgres_evict_each_row_once() {
    let database_url = crate::postgres::fresh_database(&crate::postgres::shared_url()).await;
    let env = [
        ("UPDRAFT_DATABASE__URL", database_url.as_str()),
        ("UPDRAFT_MAX_DEVICES_PER_APP", "10"),
        ("UPDRAFT_DEVICE_AGEING_INTERVAL_SECONDS", "1"),
    ];
    let (first, second) = tokio::join!(TestApp::spawn_with(&env), TestApp::spawn_with(&env));
    first.create_app(APP_ID).await;
    // The second instance learns of the app through LISTEN/NOTIFY: until then its checks record nothing. One
    // device, seen before all the others, tells when it has.
    let warm_up = device(json!({"device_id": "pg-warm-up"})).to_string();
    let path = format!("/device?app_id={APP_ID}&device_id=pg-warm-up");
    eventually("the second instance to record a device of the new app", || async {
        assert_eq!(second.updates_raw(&warm_up).await.0, 200);
        (second.call("GET", &path, Some(ADMIN_KEY), json!(null)).await.0 == 200).then_some(())
    })
    .await;
    // Check times are rounded up to the second and ties go by device id, where `pg-warm-up` sorts above `pg-NN`:
    // the others are only "seen after" it from the next second on.
    let (status, warm) = second.call("GET", &path, Some(ADMIN_KEY), json!(null)).await;
    assert_eq!(status, 200, "{warm}");
    let warm_seen = chrono::DateTime::parse_from_rfc3339(warm["updated_at"].as_str().unwrap()).unwrap();
    if let Ok(ahead) = (warm_seen.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std() {
        tokio::time::sleep(ahead + Duration::from_millis(10)).await;
    }
    let both = [&first, &second];
    for n in 0..25 {
        let instance = both[n % 2];
        let answer = instance.updates_raw(&device(json!({"device_id": format!("pg-{n:02}")})).to_string()).await;
        assert_eq!(answer.0, 200, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest: Vec<String> = (15..25).rev().map(|n| format!("pg-{n:02}")).collect();
    for instance in both {
        eventually("the 10 newest devices on both instances", || async {
            (listed(instance).await == newest).then_some(())
        })
        .await;
    }
    // Two rounds more on each, in which neither instance finds anything left to evict.
    tokio::join!(two_more_rounds(&first), two_more_rounds(&second));
    let evicted =
        counter(&first, &deleted("devices", "cap")).await + counter(&second, &deleted("devices", "cap")).await;
    assert_eq!(evicted, 16, "each row (the warm-up device's too) is deleted by one instance");
    assert_eq!(listed(&second).await, newest);
}
