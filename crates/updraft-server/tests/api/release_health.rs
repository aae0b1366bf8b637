//! Release health (`GET /release_health`, `updraft release health`): a Capgo stats stream and an Expo header stream
//! from many devices, counted per release and channel in distinct devices, written behind.

use serde_json::{Value, json};

use crate::expo_tools::{ExportFixture, publish, updraft};
use crate::helpers::{ADMIN_KEY, APP_ID, LOG_FILE_VAR, TestApp, device, eventually, small_zip};

/// A stats event of a device about `version`.
fn event(device_id: &str, action: &str, version: &str) -> Value {
    let mut body = device(json!({"device_id": device_id, "version_name": version, "action": action,
                                 "old_version_name": ""}));
    body.as_object_mut().unwrap().remove("defaultChannel");
    body
}

/// `GET /release_health` until `ready` accepts the answer.
async fn health_when(app: &TestApp, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually("release health to be written", || async {
        let (status, body) = app.admin("GET", &format!("/release_health?app_id={APP_ID}{query}"), json!(null)).await;
        assert_eq!(status, 200, "{body}");
        ready(&body).then_some(body)
    })
    .await
}

fn release<'a>(answer: &'a Value, release_id: &str) -> &'a Value {
    answer["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release_id"] == release_id)
        .unwrap_or_else(|| panic!("no {release_id} in {answer}"))
}

fn counts(entry: &Value) -> (u64, u64, u64, u64) {
    let n = |key: &str| entry[key].as_u64().unwrap();
    (n("offered"), n("running"), n("failed"), n("devices"))
}

#[tokio::test]
async fn a_capgo_stats_stream_is_counted_per_release_in_distinct_devices() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("candidate"), &[("channel", "production")]).await;
    // 40 devices on their builtin bundle are offered 1.0.1; each asks twice (counted once).
    for round in 0..2 {
        for n in 0..40 {
            let answer = app.check(device(json!({"device_id": format!("d{n}")}))).await;
            assert_eq!(answer["version"], "1.0.1", "round {round}");
        }
    }
    // A device already on 1.0.1 checks in: it runs 1.0.1 without having been offered it here.
    app.check(device(json!({"device_id": "d50", "version_name": "1.0.1"}))).await;
    let mut events: Vec<Value> = (0..30).map(|n| event(&format!("d{n}"), "set", "1.0.1")).collect();
    // Failures that block 1.0.1 for the device count (#12's rule): rollbacks after install, download failures.
    events.extend((0..3).map(|n| event(&format!("d{n}"), "update_fail", "1.0.1")));
    events.extend((30..35).map(|n| event(&format!("d{n}"), "download_fail", "1.0.1")));
    // Device conditions do not, nor a failure naming the bundle the device runs, nor progress events.
    events.push(event("d35", "low_mem_fail", "1.0.1"));
    events.push(event("d36", "insufficient_disk_space", "1.0.1"));
    events.push(event("d37", "checksum_fail", "1.0.0"));
    events.push(event("d38", "download_50", "1.0.1"));
    // The same failure twice is one failed device.
    events.push(event("d30", "download_fail", "1.0.1"));
    for batch in events.chunks(7) {
        let response = app.client.post(app.url("/stats")).json(&batch).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // Every event written first: the last one (a repeated failure) changes no count, only `last_seen_at`, and the
    // answers below are compared whole.
    eventually("every event written", || async {
        let (_, stats) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
        (stats["recent"].as_array().map(Vec::len) == Some(events.len())).then_some(())
    })
    .await;
    let answer = health_when(&app, "", |body| {
        body["releases"].as_array().is_some_and(|r| r.len() == 1) && counts(&body["releases"][0]) == (40, 31, 8, 36)
    })
    .await;
    let entry = release(&answer, "1.0.1");
    assert_eq!((entry["channel"].as_str(), entry["protocol"].as_str()), (Some("production"), Some("capgo")));
    assert_eq!(entry["group_id"], "1.0.1");
    assert!((entry["failure_rate"].as_f64().unwrap() - 8.0 / 36.0).abs() < 1e-9, "{entry}");
    assert!((entry["adoption_rate"].as_f64().unwrap() - 31.0 / 40.0).abs() < 1e-9, "{entry}");
    let bound = entry["failure_rate_lower_bound"].as_f64().unwrap();
    assert!(bound > 0.1 && bound < 8.0 / 36.0, "{entry}");
    assert!(entry["first_offered_at"].is_string() && entry["last_failed_at"].is_string());
    // A channel filter, and a channel nothing was offered on.
    let production = health_when(&app, "&channel=production", |_| true).await;
    assert_eq!(production["releases"], answer["releases"]);
    let beta = health_when(&app, "&channel=beta", |_| true).await;
    assert_eq!(beta["releases"], json!([]));
    // The CLI prints the same answer.
    let output = updraft(&app, &["release", "health", "--app", APP_ID, "--channel", "production", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["releases"], answer["releases"]);
    let output = updraft(&app, &["release", "health", "--app", APP_ID]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.lines().any(|l| l.starts_with("production") && l.contains("1.0.1")), "{table}");
    // GET /stats keeps counting what it counted.
    let (status, stats) = app.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
    assert_eq!(status, 200);
    let bundle = stats["bundles"].as_array().unwrap().iter().find(|b| b["version_name"] == "1.0.1").unwrap();
    assert_eq!(bundle["devices"], 27, "30 installs minus the 3 rollbacks: {bundle}");
}

#[tokio::test]
async fn bad_release_health_requests_are_refused_with_a_reason() {
    let app = TestApp::with_app().await;
    let (status, body) = app.call("GET", &format!("/release_health?app_id={APP_ID}"), None, json!(null)).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = app.admin("GET", "/release_health", json!(null)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("app_id"), "{body}");
    let (status, body) = app.admin("GET", "/release_health?app_id=com.example.nothere", json!(null)).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.admin("GET", "/release_health", json!({"app_id": APP_ID, "channel": 5})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("channel"), "{body}");
}

/// Expo's manifest request headers, as the clients send them.
fn expo_headers(client_id: &str, extra: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in [
        ("expo-protocol-version", "1"),
        ("expo-platform", "android"),
        ("expo-runtime-version", "1.0.0"),
        ("expo-channel-name", "production"),
        ("accept", "multipart/mixed,application/expo+json,application/json"),
        ("expo-embedded-update-id", EMBEDDED),
        ("eas-client-id", client_id),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

const EMBEDDED: &str = "0b9d3b1e-6f1c-4f77-9a3c-000000000000";

#[tokio::test]
async fn an_expo_header_stream_is_counted_per_release_and_devices_are_recorded() {
    let app = TestApp::with_app().await;
    let releases = publish(&app, &ExportFixture::new("health"), "production", &[]);
    let android = releases.iter().find(|r| r["platform"] == "android").unwrap();
    let android_id = android["id"].as_str().unwrap().to_owned();
    let group = android["group_id"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/expo/{APP_ID}/manifest"));
    let get = |headers: reqwest::header::HeaderMap| {
        let request = app.client.get(&url).headers(headers);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    let client = |n: usize| format!("6f0d7a4e-0000-4000-8000-{n:012}");
    // 20 devices on their embedded update are offered the release (iOS sends its id uppercase: one device).
    for n in 0..20 {
        get(expo_headers(&client(n), &[])).await;
    }
    get(expo_headers(&client(0).to_uppercase(), &[])).await;
    // 12 launched it and say so.
    for n in 0..12 {
        get(expo_headers(&client(n), &[("expo-current-update-id", &android_id)])).await;
    }
    // 3 crashed on it: back on the embedded update, they list it as failed (with an unknown id that counts for
    // nothing), and the first request after the crash carries the fatal error.
    let failed = format!(r#""{android_id}", "9f9f9f9f-0000-4000-8000-000000000000""#);
    for n in 12..15 {
        let fatal = ("expo-fatal-error", "TypeError: undefined is not an object (evaluating 'a.b')");
        get(expo_headers(
            &client(n),
            &[("expo-current-update-id", EMBEDDED), ("expo-recent-failed-update-ids", &failed), fatal],
        ))
        .await;
        // They keep listing it on later checks: still one failed device each.
        get(expo_headers(
            &client(n),
            &[("expo-current-update-id", EMBEDDED), ("expo-recent-failed-update-ids", &failed)],
        ))
        .await;
    }
    // A request without EAS-Client-ID counts for no one.
    let mut anonymous = expo_headers("x", &[]);
    anonymous.remove("eas-client-id");
    get(anonymous).await;
    let answer = health_when(&app, "&channel=production", |body| {
        body["releases"].as_array().is_some_and(|r| r.len() == 1) && counts(&body["releases"][0]) == (20, 12, 3, 15)
    })
    .await;
    let entry = release(&answer, &android_id);
    assert_eq!((entry["protocol"].as_str(), entry["group_id"].as_str()), (Some("expo"), Some(group.as_str())));
    assert!((entry["failure_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9, "{entry}");
    // Each EAS-Client-ID is a device record, lowercased, with the update it runs and its channel.
    let (status, listed) =
        app.admin("GET", &format!("/device?app_id={APP_ID}&device_id={}", client(3)), json!(null)).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["device_id"], client(3));
    assert_eq!(listed["version_name"], android_id.as_str());
    let (status, upper) =
        app.admin("GET", &format!("/device?app_id={APP_ID}&device_id={}", client(0)), json!(null)).await;
    assert_eq!(status, 200, "{upper}");
}

/// `GET /rollout` of the production channel.
async fn rollout_status(app: &TestApp) -> Value {
    let (status, body) = app.admin("GET", &format!("/rollout?app_id={APP_ID}&channel=production"), json!(null)).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_failure_stream_halts_an_active_rollout_by_itself_and_devices_get_stable() {
    use crate::webhooks::{Receiver, SECRET, metric};
    let receiver = Receiver::start(&[]).await;
    // The decider's judgement of each look is logged at debug: the test waits for the look it means.
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("gateway.log");
    let app = TestApp::spawn_with(&[
        ("UPDRAFT_WEBHOOK_URL", &receiver.url),
        ("UPDRAFT_WEBHOOK_SECRET", SECRET),
        (LOG_FILE_VAR, log.to_str().unwrap()),
        ("UPDRAFT_LOG", "warn,updraft::ops::release_health=debug"),
    ])
    .await;
    // Whether the decider, since the log was `from` bytes long, judged the figures `judged` ("12 of 60").
    let looked = |from: usize, judged: &str| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let line = format!(": {judged} devices failed, no halt");
        text.get(from..).is_some_and(|new| new.contains(&line))
    };
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.0", small_zip("stable"), &[("channel", "production")]).await;
    app.upload_ok("1.0.1", small_zip("candidate"), &[]).await;
    let start = json!({"app_id": APP_ID, "channel": "production", "version": "1.0.1", "percent": 100,
                       "max_failure_rate": 0.05, "min_devices": 50});
    app.admin_ok("POST", "/rollout", start).await;
    // 60 devices get the candidate and install it: healthy so far.
    for n in 0..60 {
        let answer = app.check(device(json!({"device_id": format!("r{n}"), "version_name": "1.0.0"}))).await;
        assert_eq!(answer["version"], "1.0.1");
    }
    let installs: Vec<Value> = (0..60).map(|n| event(&format!("r{n}"), "set", "1.0.1")).collect();
    assert_eq!(app.client.post(app.url("/stats")).json(&installs).send().await.unwrap().status(), 200);
    health_when(&app, "&channel=production", |body| {
        body["releases"].as_array().unwrap().iter().any(|r| r["release_id"] == "1.0.1" && r["running"] == 60)
    })
    .await;
    // The decider looks at the healthy figures and does not halt.
    eventually("the decider to judge 60 healthy devices", || async { looked(0, "0 of 60").then_some(()) }).await;
    let status = rollout_status(&app).await;
    assert_eq!((status["state"].as_str(), status["devices"].as_u64()), (Some("active"), Some(60)), "{status}");
    // 12 of them roll back (20 %; the 95 % lower bound is about 12 %, above the 5 % maximum).
    let failures: Vec<Value> = (0..12).map(|n| event(&format!("r{n}"), "update_fail", "1.0.1")).collect();
    let sent = std::time::Instant::now();
    assert_eq!(app.client.post(app.url("/stats")).json(&failures).send().await.unwrap().status(), 200);
    let halted = eventually("the rollout to halt by itself", || async {
        let status = rollout_status(&app).await;
        (status["state"] == "halted").then_some(status)
    })
    .await;
    println!("halted {} ms after the failures were posted", sent.elapsed().as_millis());
    assert_eq!(halted["changed_by"], "automatic", "{halted}");
    assert_eq!((halted["devices"].as_u64(), halted["failures"].as_u64()), (Some(60), Some(12)), "{halted}");
    assert!(halted["reason"].as_str().unwrap().contains("12 of 60 devices failed"), "{halted}");
    // Devices on the candidate are offered stable; devices that never had it stay on stable.
    let back = app.check(device(json!({"device_id": "r30", "version_name": "1.0.1"}))).await;
    assert_eq!(back["version"], "1.0.0", "{back}");
    let fresh = app.check(device(json!({"device_id": "new-device", "version_name": "1.0.0"}))).await;
    assert_ne!(fresh["version"], "1.0.1", "{fresh}");
    // The halt is recorded with its figures, counted, and announced, signed.
    let health =
        health_when(&app, "&channel=production", |body| body["halts"].as_array().is_some_and(|h| h.len() == 1)).await;
    let halt = &health["halts"][0];
    assert_eq!((halt["halted_by"].as_str(), halt["candidate"].as_str()), (Some("automatic"), Some("1.0.1")));
    assert_eq!((halt["devices"].as_u64(), halt["failures"].as_u64()), (Some(60), Some(12)));
    assert!(
        (halt["failure_rate"].as_f64().unwrap() - 0.2).abs() < 1e-6 && halt["lower_bound"].as_f64().unwrap() > 0.05
    );
    assert_eq!((halt["max_failure_rate"].as_f64(), halt["min_devices"].as_u64()), (Some(0.05), Some(50)));
    assert_eq!(metric(&app, "updraft_rollout_halts_total{by=\"automatic\"}").await, 1);
    assert!(metric(&app, "updraft_rollout_health_checks_total").await >= 2, "the healthy look and the halting one");
    let deliveries = eventually("the halt webhook", || async {
        let got = receiver.deliveries();
        got.iter().any(|d| d.header("x-updraft-event") == Some("rollout.halted")).then_some(got)
    })
    .await;
    let kinds: Vec<&str> = deliveries.iter().filter_map(|d| d.header("x-updraft-event")).collect();
    assert_eq!(kinds, ["release.published", "release.published", "rollout.changed", "rollout.halted"]);
    assert!(deliveries.iter().all(|d| d.signed_with(SECRET)));
    let halted_event = deliveries[3].json();
    assert_eq!(halted_event["data"]["state"], "halted");
    assert_eq!(halted_event["data"]["candidate"], "1.0.1");
    assert_eq!(halted_event["data"]["halt"]["halted_by"], "automatic");
    assert_eq!(halted_event["data"]["halt"]["failures"], 12);
    assert_eq!(deliveries[2].json()["data"]["action"], "start");

    // Resumed, the health window restarts: the failures from before it do not halt the rollout again.
    let resume = json!({"app_id": APP_ID, "channel": "production"});
    let before_resume = std::fs::metadata(&log).unwrap().len() as usize;
    app.admin_ok("POST", "/rollout/resume", resume.clone()).await;
    for n in 12..60 {
        app.check(device(json!({"device_id": format!("r{n}"), "version_name": "1.0.1"}))).await;
    }
    eventually("the decider to judge the resumed rollout's devices", || async {
        looked(before_resume, "0 of 48").then_some(())
    })
    .await;
    let status = rollout_status(&app).await;
    assert_eq!((status["state"].as_str(), status["failures"].as_u64()), (Some("active"), Some(0)), "{status}");
    // An operator's halt is recorded too, with the note and who.
    app.admin_ok("POST", "/rollout/halt", json!({"app_id": APP_ID, "channel": "production", "reason": "manual check"}))
        .await;
    let health = health_when(&app, "", |body| body["halts"].as_array().is_some_and(|h| h.len() == 2)).await;
    let latest = &health["halts"][0];
    assert_eq!((latest["halted_by"].as_str(), latest["reason"].as_str()), (Some("admin"), Some("manual check")));
    assert_eq!(metric(&app, "updraft_rollout_halts_total{by=\"operator\"}").await, 1);
    assert_eq!(metric(&app, "updraft_rollout_halts_total{by=\"automatic\"}").await, 1);
}

#[tokio::test]
async fn expo_failure_headers_halt_an_expo_rollout_by_itself() {
    use crate::expo_tools::{client_headers, expo_check, manifest_url};
    let app = TestApp::with_app().await;
    let stable = publish(&app, &ExportFixture::new("stable"), "production", &[]);
    let candidate = publish(&app, &ExportFixture::new("candidate"), "production", &["--rollout", "100"]);
    let android = |releases: &[Value]| {
        releases.iter().find(|r| r["platform"] == "android").unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (stable_id, candidate_id) = (android(&stable), android(&candidate));
    let url = app.url(&format!("/expo/{APP_ID}/manifest"));
    let get = |headers: reqwest::header::HeaderMap| {
        let request = app.client.get(&url).headers(headers);
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    };
    let client = |n: usize| format!("7a0d7a4e-0000-4000-8000-{n:012}");
    // 60 devices on the stable update are offered the candidate and launch it.
    for n in 0..60 {
        get(expo_headers(&client(n), &[("expo-current-update-id", &stable_id)])).await;
        get(expo_headers(&client(n), &[("expo-current-update-id", &candidate_id)])).await;
    }
    let status = rollout_status(&app).await;
    assert_eq!(status["state"], "active", "{status}");
    // 12 crash on it: back on the stable update, they list it as failed.
    let failed = format!(r#""{candidate_id}""#);
    for n in 0..12 {
        let headers = [("expo-current-update-id", stable_id.as_str()), ("expo-recent-failed-update-ids", &failed)];
        get(expo_headers(&client(n), &headers)).await;
    }
    let halted = eventually("the Expo rollout to halt by itself", || async {
        let status = rollout_status(&app).await;
        (status["state"] == "halted").then_some(status)
    })
    .await;
    assert_eq!(halted["changed_by"], "automatic", "{halted}");
    assert_eq!((halted["devices"].as_u64(), halted["failures"].as_u64()), (Some(60), Some(12)), "{halted}");
    // A device running the candidate is served a release that moves it back (read by Expo's own parser).
    let headers = client_headers(
        "android",
        json!({"eas-client-id": client(40), "expo-current-update-id": candidate_id,
               "expo-embedded-update-id": EMBEDDED}),
    );
    let report = expo_check(&manifest_url(&app), &headers, None).await;
    assert_eq!(report["status"], 200, "{report}");
    let part = report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").expect("a manifest");
    let back = part["json"]["id"].as_str().unwrap();
    assert!(back != candidate_id && back != stable_id, "a new release moving the device back: {report}");
}

/// Two instances on one PostgreSQL database (and one data directory for the objects).
async fn postgres_pair() -> (TestApp, TestApp) {
    let database = crate::postgres::fresh_database(&crate::postgres::shared_url()).await;
    let a = TestApp::spawn_with(&[("UPDRAFT_DATABASE__URL", &database)]).await;
    let shared_dir = a.data_path().to_str().unwrap().to_owned();
    let b = TestApp::spawn_with(&[("UPDRAFT_DATABASE__URL", &database), ("UPDRAFT_DATA_DIR", &shared_dir)]).await;
    (a, b)
}

async fn post_stats(app: &TestApp, events: &[Value]) {
    let response = app.client.post(app.url("/stats")).json(&events).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn two_instances_on_postgres_count_exactly_and_one_halts_for_both() {
    use crate::webhooks::metric;
    let (a, b) = postgres_pair().await;
    a.create_app(APP_ID).await;
    a.upload_ok("1.0.0", small_zip("stable"), &[("channel", "production")]).await;
    a.upload_ok("1.0.1", small_zip("candidate"), &[]).await;
    let start = json!({"app_id": APP_ID, "channel": "production", "version": "1.0.1", "percent": 100,
                       "max_failure_rate": 0.05, "min_devices": 50});
    a.admin_ok("POST", "/rollout", start).await;
    let on_stable = |n: usize| device(json!({"device_id": format!("p{n}"), "version_name": "1.0.0"}));
    eventually("the rollout to reach the other instance", || async {
        (b.check(on_stable(999)).await["version"] == "1.0.1").then_some(())
    })
    .await;
    // 80 devices check through both instances (offered once each), and install through either, some twice.
    for n in 0..80 {
        for instance in [&a, &b] {
            assert_eq!(instance.check(on_stable(n)).await["version"], "1.0.1");
        }
    }
    let installs: Vec<Value> = (0..80).map(|n| event(&format!("p{n}"), "set", "1.0.1")).collect();
    post_stats(&a, &installs[..40]).await;
    post_stats(&b, &installs[30..]).await;
    for instance in [&a, &b] {
        let answer = health_when(instance, "&channel=production", |body| {
            body["releases"].as_array().unwrap().iter().any(|r| r["release_id"] == "1.0.1" && r["running"] == 80)
        })
        .await;
        assert_eq!(counts(release(&answer, "1.0.1")), (81, 80, 0, 80), "p999 was offered it too: {answer}");
    }
    // 16 of them roll back, reported through both instances (20 %: the rule halts).
    let failures: Vec<Value> = (0..16).map(|n| event(&format!("p{n}"), "update_fail", "1.0.1")).collect();
    post_stats(&a, &failures[..10]).await;
    post_stats(&b, &failures[6..]).await;
    // Poll both instances as a device on the candidate: each moves it back to stable once it serves the halt.
    let on_candidate = device(json!({"device_id": "p70", "version_name": "1.0.1"}));
    let started = std::time::Instant::now();
    let (mut back_a, mut back_b) = (None, None);
    while back_a.is_none() || back_b.is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "no halt: {:?} {:?}", back_a, back_b);
        for (instance, back) in [(&a, &mut back_a), (&b, &mut back_b)] {
            if back.is_none() && instance.check(on_candidate.clone()).await["version"] == "1.0.0" {
                *back = Some(started.elapsed());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (back_a, back_b) = (back_a.unwrap(), back_b.unwrap());
    let lag = back_a.max(back_b) - back_a.min(back_b);
    println!(
        "stable served by a after {} ms, by b after {} ms: lag {} ms",
        back_a.as_millis(),
        back_b.as_millis(),
        lag.as_millis()
    );
    assert!(lag < std::time::Duration::from_secs(1), "the halt took {lag:?} to reach the other instance");
    // One instance decided: one halt recorded, one counted, and the counts are exact on both. The deciding
    // instance records the halt (metric, then history) after it serves it, and the other instance may still be
    // writing the last failures when the halt (on 10 of them, say) is served: both are waited for.
    for instance in [&a, &b] {
        let answer = health_when(instance, "&channel=production", |body| {
            body["halts"].as_array().is_some_and(|h| !h.is_empty()) && release(body, "1.0.1")["failed"] == 16
        })
        .await;
        assert_eq!(answer["halts"].as_array().unwrap().len(), 1, "{answer}");
        let halt = &answer["halts"][0];
        assert_eq!((halt["halted_by"].as_str(), halt["devices"].as_u64()), (Some("automatic"), Some(80)), "{halt}");
        let failures = halt["failures"].as_u64().unwrap();
        assert!((5..=16).contains(&failures), "halted on {failures} failures: {halt}");
        let entry = release(&answer, "1.0.1");
        assert_eq!((entry["failed"].as_u64(), entry["devices"].as_u64()), (Some(16), Some(80)), "{entry}");
        let status = {
            let (_, body) =
                instance.admin("GET", &format!("/rollout?app_id={APP_ID}&channel=production"), json!(null)).await;
            body
        };
        assert_eq!((status["state"].as_str(), status["changed_by"].as_str()), (Some("halted"), Some("automatic")));
    }
    let halts_a = metric(&a, "updraft_rollout_halts_total{by=\"automatic\"}").await;
    let halts_b = metric(&b, "updraft_rollout_halts_total{by=\"automatic\"}").await;
    assert_eq!(halts_a + halts_b, 1, "a: {halts_a}, b: {halts_b}");
}

/// An active rollout whose devices report nothing new is not counted again every second (counting reads every row
/// of the candidate, a cost that grows with the fleet): the decider looks at an app again only after release-health
/// rows of it were written, or its catalog changed. A second app, whose device keeps reporting, shows the decider
/// kept looking meanwhile.
#[tokio::test]
async fn an_idle_rollout_is_not_counted_again_until_its_devices_report() {
    const BUSY_APP: &str = "org.example.busy";
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("gateway.log");
    let app = TestApp::spawn_with(&[
        (LOG_FILE_VAR, log.to_str().unwrap()),
        ("UPDRAFT_LOG", "warn,updraft::ops::release_health=debug"),
    ])
    .await;
    // The decider's judgements of `app_id` since the log was `from` bytes long.
    let looks = |app_id: &str, from: usize| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.get(from..).map_or(0, |new| new.matches(&format!(" on {app_id} channel production: ")).count())
    };
    let log_length = || std::fs::metadata(&log).map_or(0, |meta| meta.len() as usize);
    for app_id in [APP_ID, BUSY_APP] {
        app.create_app(app_id).await;
        for (version, channel) in [("1.0.0", "production"), ("1.0.1", "")] {
            let mut form = reqwest::multipart::Form::new().text("app_id", app_id).text("version", version);
            if !channel.is_empty() {
                form = form.text("channel", channel);
            }
            let form = form.part("file", reqwest::multipart::Part::bytes(small_zip(version)).file_name("bundle.zip"));
            let response =
                app.client.post(app.url("/bundle")).header("authorization", ADMIN_KEY).multipart(form).send().await;
            assert_eq!(response.unwrap().status(), 200, "{app_id} {version}");
        }
        let start = json!({"app_id": app_id, "channel": "production", "version": "1.0.1", "percent": 100});
        app.admin_ok("POST", "/rollout", start).await;
    }
    // The idle rollout is looked at once after it started (its catalog changed); then, with nothing written, never,
    // while the busy app's device reports something new every 200 ms and its rollout is looked at again and again.
    eventually("the decider to look at the new rollout", || async { (looks(APP_ID, 0) > 0).then_some(()) }).await;
    let idle_since = log_length();
    let mut n = 0;
    while looks(BUSY_APP, idle_since) < 3 {
        n += 1;
        assert!(n < 100, "the busy app's rollout was looked at {} times", looks(BUSY_APP, idle_since));
        let busy = device(json!({"app_id": BUSY_APP, "device_id": "busy-1", "custom_id": format!("launch-{n}")}));
        assert_eq!(app.check(busy).await["version"], "1.0.1");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(looks(APP_ID, idle_since), 0, "an idle rollout's figures were read again");
    // A device is offered the candidate: its release-health row is written, and the rollout looked at again.
    let reported = log_length();
    assert_eq!(app.check(device(json!({"device_id": "idle-1", "version_name": "1.0.0"}))).await["version"], "1.0.1");
    eventually("the decider to look at the rollout after its device reported", || async {
        (looks(APP_ID, reported) > 0).then_some(())
    })
    .await;
}
