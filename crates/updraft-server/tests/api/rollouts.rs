//! Rollouts through the real binary: a Capgo and an Expo rollout at 10 % then 50 % over 4 000 devices each reach
//! exactly the devices the documented bucket puts inside (so the share is right and the answer sticky), raising
//! only adds devices, a halt moves the devices on the candidate back (the Expo answer checked with Expo's own
//! parser and signature check), and complete makes the candidate everyone's; the CLI drives all of it.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;

use crate::expo_tools::{
    ExportFixture, client_headers, codesigning_generate, expo_check, manifest_url, publish, updraft,
};
use crate::helpers::{APP_ID, TestApp, device, small_zip};

/// The bucket of a device, recomputed from the formula `updraft_core::bucket` documents.
fn bucket(channel: &str, rollout_id: &str, identity: &str) -> u32 {
    let text = format!("updraft-rollout-v1\n{APP_ID}\n{channel}\n{rollout_id}\n{}", identity.to_ascii_lowercase());
    let digest = sha2::Sha256::digest(text.as_bytes());
    (u64::from_be_bytes(digest[..8].try_into().unwrap()) % 10_000) as u32
}

fn device_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:08x}-6c1e-4a55-9f3a-2f0c9a3b7d21")).collect()
}

/// The devices a rollout at `percent` reaches, by the formula.
fn expected(ids: &[String], channel: &str, rollout_id: &str, percent: u32) -> HashSet<String> {
    ids.iter().filter(|id| bucket(channel, rollout_id, id) < percent * 100).cloned().collect()
}

fn share(reached: &HashSet<String>, of: usize) -> f64 {
    reached.len() as f64 / of as f64 * 100.0
}

/// What each device (on its embedded `1.0.0`, or running `version_name`) is answered: the offered version, or the
/// refusal code.
async fn capgo_answers(app: &TestApp, ids: &[String], version_name: &str) -> HashMap<String, String> {
    futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let answer = app.check(device(json!({"device_id": id, "version_name": version_name}))).await;
            let got = answer["version"].as_str().or(answer["error"].as_str()).unwrap_or("?").to_owned();
            (id, got)
        })
        .buffer_unordered(16)
        .collect()
        .await
}

fn offered(answers: &HashMap<String, String>, version: &str) -> HashSet<String> {
    answers.iter().filter(|(_, got)| got.as_str() == version).map(|(id, _)| id.clone()).collect()
}

#[tokio::test]
async fn a_capgo_rollout_reaches_a_sticky_share_then_halts_back_and_completes() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("stable"), &[("channel", "production")]).await;
    // The candidate goes up with the CLI, which starts the rollout instead of pointing the channel at it.
    let zip = tempfile::Builder::new().suffix(".zip").tempfile().unwrap();
    std::fs::write(zip.path(), small_zip("candidate")).unwrap();
    let args = ["publish", "capgo", "--app", APP_ID, "--version", "1.1.0", "--channel", "production"];
    let output = updraft(&app, &[&args[..], &["--rollout", "10", "--json", zip.path().to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let published: Value = serde_json::from_slice(&output.stdout).unwrap();
    let started = &published["rollout"];
    assert_eq!(
        (&started["state"], &started["percent"], &started["candidate"], &started["stable"]),
        (&json!("active"), &json!(10.0), &json!("1.1.0"), &json!("1.0.1")),
        "{published}"
    );
    let rollout_id = started["rollout_id"].as_str().unwrap().to_owned();

    let ids = device_ids(4_000);
    let first = capgo_answers(&app, &ids, "1.0.0").await;
    let at_ten = offered(&first, "1.1.0");
    assert_eq!(at_ten, expected(&ids, "production", &rollout_id, 10), "the documented bucket decides");
    assert!((share(&at_ten, ids.len()) - 10.0).abs() <= 2.5, "{}% at 10%", share(&at_ten, ids.len()));
    assert_eq!(offered(&first, "1.0.1").len() + at_ten.len(), ids.len(), "the others keep the stable bundle");
    assert_eq!(capgo_answers(&app, &ids, "1.0.0").await, first, "asked twice, the same answers");

    // Raised to 50 %: only devices are added. Lowering is refused.
    let raised =
        app.admin_ok("POST", "/rollout", json!({"app_id": APP_ID, "channel": "production", "percent": 50})).await;
    assert_eq!(raised["percent"], 50.0);
    let at_fifty = offered(&capgo_answers(&app, &ids, "1.0.0").await, "1.1.0");
    assert!(at_ten.is_subset(&at_fifty), "a device left the rollout when it was raised");
    assert_eq!(at_fifty, expected(&ids, "production", &rollout_id, 50));
    assert!((share(&at_fifty, ids.len()) - 50.0).abs() <= 3.0, "{}% at 50%", share(&at_fifty, ids.len()));
    let (status, lowered) =
        app.admin("POST", "/rollout", json!({"app_id": APP_ID, "channel": "production", "percent": 20})).await;
    assert_eq!((status, lowered["error"].as_str()), (409, Some("rollout_percent_lowered")), "{lowered}");
    // A device running the candidate keeps it, and a pinned device gets its pin whatever its bucket.
    let running: Vec<String> = at_fifty.iter().take(50).cloned().collect();
    assert!(capgo_answers(&app, &running, "1.1.0").await.values().all(|got| got == "no_new_version_available"));
    let pinned = at_fifty.iter().next().unwrap().clone();
    app.admin_ok("POST", "/device", json!({"app_id": APP_ID, "device_id": pinned, "version_id": "1.0.1"})).await;
    assert_eq!(app.check(device(json!({"device_id": pinned}))).await["version"], "1.0.1", "the pin wins");
    app.admin_ok("DELETE", "/device", json!({"app_id": APP_ID, "device_id": pinned})).await;

    // Halted: nobody is offered the candidate, and the devices running it are moved back to the stable bundle.
    let output = updraft(
        &app,
        &["rollout", "halt", "--app", APP_ID, "--channel", "production", "--reason", "crash reports", "--json"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let halted: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((&halted["state"], &halted["reason"]), (&json!("halted"), &json!("crash reports")), "{halted}");
    // Who halted is the name of the key (the bootstrap admin key's is `admin`).
    assert_eq!(halted["halted_by"], "admin");
    let after = capgo_answers(&app, &ids, "1.0.0").await;
    assert_eq!(offered(&after, "1.0.1").len(), ids.len(), "everyone is offered stable");
    let moved_back: Vec<String> = at_fifty.iter().cloned().collect();
    assert!(capgo_answers(&app, &moved_back, "1.1.0").await.values().all(|got| got == "1.0.1"));
    let again = updraft(&app, &["rollout", "halt", "--app", APP_ID, "--channel", "production"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("rollout_already_halted"), "{again:?}");

    // Resumed: the same devices again. Completed: the candidate is the channel's bundle for everyone.
    let output = updraft(&app, &["rollout", "resume", "--app", APP_ID, "--channel", "production", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(offered(&capgo_answers(&app, &ids, "1.0.0").await, "1.1.0"), at_fifty);
    let output = updraft(&app, &["rollout", "complete", "--app", APP_ID, "--channel", "production", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(offered(&capgo_answers(&app, &ids, "1.0.0").await, "1.1.0").len(), ids.len());
    let output = updraft(&app, &["rollout", "status", "--app", APP_ID, "--channel", "production", "--json"]);
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in ["state", "percent", "candidate", "stable", "devices", "failures", "failure_rate", "reason"] {
        assert!(status.get(key).is_some(), "status --json has no {key}: {status}");
    }
    assert_eq!((&status["state"], &status["last_action"]), (&json!("completed"), &json!("complete")));
    // The candidate bundle is now the channel's: a new rollout of it is refused as already served.
    let (status, same) = app
        .admin("POST", "/rollout", json!({"app_id": APP_ID, "channel": "production", "version": "1.1.0", "percent": 5}))
        .await;
    assert_eq!((status, same["error"].as_str()), (400, Some("candidate_is_stable")), "{same}");
}

#[tokio::test]
async fn rollout_requests_that_cannot_work_say_why() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("stable"), &[("channel", "production")]).await;
    let start = |body: Value| {
        let mut base = json!({"app_id": APP_ID, "channel": "production"});
        base.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        base
    };
    for (body, status, code) in [
        (json!({"version": "9.9.9", "percent": 10}), 400, "cannot_find_version"),
        (json!({"version": "1.0.1", "percent": 101}), 400, "invalid_rollout_percent"),
        (json!({"version": "1.0.1", "percent": 12.345}), 400, "invalid_rollout_percent"),
        (json!({"version": "1.0.1"}), 400, "missing_field"),
        (json!({"version": "1.0.1", "release": "x", "percent": 1}), 400, "invalid_json_body"),
        (json!({"version": "1.0.1", "percent": 10, "max_failure_rate": 2}), 400, "invalid_max_failure_rate"),
        (json!({"release": "no-such-group", "percent": 10}), 404, "release_not_found"),
        (json!({"percent": 20}), 404, "rollout_not_found"),
        (json!({"percnt": 20}), 400, "invalid_json_body"),
    ] {
        let (got, answer) = app.admin("POST", "/rollout", start(body.clone())).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    for action in ["halt", "resume", "complete"] {
        let (got, answer) = app.admin("POST", &format!("/rollout/{action}"), start(json!({}))).await;
        assert_eq!((got, answer["error"].as_str()), (404, Some("rollout_not_found")), "{action}: {answer}");
    }
    let (got, none) = app.admin("GET", &format!("/rollout?app_id={APP_ID}&channel=production"), json!(null)).await;
    assert_eq!((got, &none["state"], &none["percent"]), (200, &json!("none"), &json!(0.0)), "{none}");
    // A second active rollout on the channel is refused; a key of another app may not touch it.
    app.upload_ok("1.1.0", small_zip("candidate"), &[]).await;
    app.admin_ok("POST", "/rollout", start(json!({"version": "1.1.0", "percent": 10}))).await;
    let (got, twice) = app.admin("POST", "/rollout", start(json!({"version": "1.1.0", "percent": 10}))).await;
    assert_eq!((got, twice["error"].as_str()), (409, Some("rollout_active")), "{twice}");
    let (got, resumed) = app.admin("POST", "/rollout/resume", start(json!({}))).await;
    assert_eq!((got, resumed["error"].as_str()), (409, Some("rollout_not_halted")), "{resumed}");
    let (got, anonymous) = app.call("POST", "/rollout/halt", None, start(json!({}))).await;
    assert_eq!(got, 401, "{anonymous}");
}

/// The manifest a client with `eas-client-id` (and running `current`) is served, as the bare JSON of its
/// `manifest` part, or `None` for a directive or no update.
async fn expo_manifest(app: &TestApp, eas_client_id: Option<&str>, current: Option<&str>) -> Option<Value> {
    let mut headers = client_headers("ios", json!({}));
    let map = headers.as_object_mut().unwrap();
    map.remove("eas-client-id");
    if let Some(id) = eas_client_id {
        map.insert("eas-client-id".into(), json!(id));
    }
    if let Some(current) = current {
        map.insert("expo-current-update-id".into(), json!(current));
    }
    let mut request = app.client.get(manifest_url(app));
    for (name, value) in map.iter() {
        request = request.header(name.as_str(), value.as_str().unwrap());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    // The manifest part's body is the one JSON object with a launchAsset.
    let start = body.find("{\"id\"")?;
    let end = body[start..].find("\r\n--")? + start;
    serde_json::from_str(&body[start..end]).ok()
}

async fn expo_offered(app: &TestApp, ids: &[String], candidate_id: &str) -> HashSet<String> {
    futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let manifest = expo_manifest(app, Some(&id), None).await;
            (id, manifest.is_some_and(|m| m["id"] == candidate_id))
        })
        .buffer_unordered(16)
        .filter_map(|(id, candidate)| async move { candidate.then_some(id) })
        .collect()
        .await
}

fn ios(releases: &[Value]) -> &Value {
    releases.iter().find(|r| r["platform"] == "ios").unwrap()
}

fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    let output = updraft(app, &[args, &["--json"]].concat());
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn an_expo_rollout_follows_eas_client_id_and_a_halt_mints_the_way_back() {
    let app = TestApp::with_app().await;
    let keys = tempfile::tempdir().unwrap();
    let (private_key, certificate) = codesigning_generate(keys.path());
    let output = updraft(&app, &["keys", "import", "--app", APP_ID, "--private-key", private_key.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stable = publish(&app, &ExportFixture::new("stable"), "production", &[]);
    let candidate = publish(&app, &ExportFixture::new("candidate"), "production", &["--rollout", "10"]);
    let (stable_id, candidate_id) = (ios(&stable)["id"].as_str().unwrap(), ios(&candidate)["id"].as_str().unwrap());
    let group = ios(&candidate)["group_id"].as_str().unwrap();
    let channel = ["--app", APP_ID, "--channel", "production"];
    let status = cli_json(&app, &[&["rollout", "status"][..], &channel].concat());
    assert_eq!(
        (&status["state"], &status["candidate"], &status["percent"]),
        (&json!("active"), &json!(group), &json!(10.0))
    );
    assert_eq!(
        status["covers"],
        json!([{"platform": "android", "runtime_version": "1.0.0"}, {"platform": "ios", "runtime_version": "1.0.0"}])
    );
    let rollout_id = status["rollout_id"].as_str().unwrap().to_owned();

    let ids: Vec<String> = device_ids(4_000).into_iter().map(|id| id.to_uppercase()).collect();
    let at_ten = expo_offered(&app, &ids, candidate_id).await;
    assert_eq!(at_ten, expected(&ids, "production", &rollout_id, 10), "bucketed by the lowercased EAS-Client-ID");
    assert!((share(&at_ten, ids.len()) - 10.0).abs() <= 2.5, "{}% at 10%", share(&at_ten, ids.len()));
    assert_eq!(expo_offered(&app, &ids, candidate_id).await, at_ten, "asked twice, the same answers");
    let outside = ids.iter().find(|id| !at_ten.contains(*id)).unwrap();
    assert_eq!(expo_manifest(&app, Some(outside), None).await.unwrap()["id"], stable_id, "outside: stable");
    assert_eq!(expo_manifest(&app, None, None).await.unwrap()["id"], stable_id, "no EAS-Client-ID: stable");
    let inside = at_ten.iter().next().unwrap().clone();
    assert!(expo_manifest(&app, Some(&inside), Some(candidate_id)).await.is_none(), "running it: no update");

    let raised = cli_json(&app, &[&["rollout", "set"][..], &channel, &["--percent", "50"]].concat());
    assert_eq!(raised["percent"], 50.0);
    let at_fifty = expo_offered(&app, &ids, candidate_id).await;
    assert!(at_ten.is_subset(&at_fifty), "a device left the rollout when it was raised");
    assert_eq!(at_fifty, expected(&ids, "production", &rollout_id, 50));
    assert!((share(&at_fifty, ids.len()) - 50.0).abs() <= 3.0, "{}% at 50%", share(&at_fifty, ids.len()));

    // Halted: a device running the candidate is served a new release, newer than the candidate, with the stable
    // update's files, which Expo's parser reads and Expo's signature check accepts.
    let outside_fifty = ids.iter().find(|id| !at_fifty.contains(*id)).unwrap();
    let stable_manifest = expo_manifest(&app, Some(outside_fifty), None).await.unwrap();
    assert_eq!(stable_manifest["id"], stable_id);
    let halted =
        cli_json(&app, &[&["rollout", "halt"][..], &channel, &["--reason", "crash-free rate dropped"]].concat());
    assert_eq!((&halted["state"], &halted["reason"]), (&json!("halted"), &json!("crash-free rate dropped")));
    let mut headers = client_headers(
        "ios",
        json!({"expo-expect-signature": "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\"", "eas-client-id": inside,
               "expo-current-update-id": candidate_id}),
    );
    let report = expo_check(&manifest_url(&app), &headers, Some(&certificate)).await;
    assert_eq!(report["status"], 200, "{report}");
    let part = report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").expect("a manifest");
    assert_eq!(part["signature"]["valid"], true, "{report}");
    let back = &part["json"];
    assert!(back["id"] != candidate_id && back["id"] != stable_id, "a new release: {back}");
    assert!(back["createdAt"].as_str().unwrap() > ios(&candidate)["created_at"].as_str().unwrap(), "{back}");
    assert_eq!(back["launchAsset"]["hash"], stable_manifest["launchAsset"]["hash"], "the stable update's files");
    // Nobody is offered the candidate any more; the device moved back then has nothing to do.
    assert!(expo_offered(&app, &ids[..300], candidate_id).await.is_empty());
    let back_id = back["id"].as_str().unwrap();
    assert!(expo_manifest(&app, Some(&inside), Some(back_id)).await.is_none());

    // Completed (after the halt): the candidate's files are republished newer still, for everyone.
    let done = cli_json(&app, &[&["rollout", "complete"][..], &channel].concat());
    assert_eq!(done["state"], "completed");
    headers["expo-current-update-id"] = json!(back_id);
    let report = expo_check(&manifest_url(&app), &headers, Some(&certificate)).await;
    let part = report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").expect("a manifest");
    assert_eq!(part["signature"]["valid"], true, "{report}");
    let candidate_manifest_hash = {
        let releases = cli_json(&app, &["release", "list", "--app", APP_ID]);
        assert!(releases.as_array().unwrap().len() >= 6, "{releases}");
        part["json"]["launchAsset"]["hash"].clone()
    };
    assert_ne!(candidate_manifest_hash, stable_manifest["launchAsset"]["hash"], "the candidate's files");
    let outside_now = expo_manifest(&app, Some(outside), None).await.unwrap();
    assert_eq!(outside_now["launchAsset"]["hash"], candidate_manifest_hash, "everyone");
}

#[tokio::test]
async fn a_halt_through_one_postgres_instance_is_served_by_the_other_within_a_second() {
    let database = crate::postgres::fresh_database(&crate::postgres::shared_url()).await;
    let env = [("UPDRAFT_DATABASE__URL", database.as_str())];
    let (a, b) = tokio::join!(TestApp::spawn_with(&env), TestApp::spawn_with(&env));
    a.create_app(APP_ID).await;
    a.upload_ok("1.0.1", small_zip("stable"), &[("channel", "production")]).await;
    a.upload_ok("1.1.0", small_zip("candidate"), &[]).await;
    let started = a
        .admin_ok(
            "POST",
            "/rollout",
            json!({"app_id": APP_ID, "channel": "production", "version": "1.1.0", "percent": 50}),
        )
        .await;
    let rollout_id = started["rollout_id"].as_str().unwrap();
    let ids = device_ids(400);
    let inside: Vec<String> = expected(&ids, "production", rollout_id, 50).into_iter().collect();
    // B serves the rollout A started (the change feed), to exactly the same devices.
    let probe = device(json!({"device_id": inside[0]}));
    crate::helpers::eventually("the rollout on B", || {
        let probe = probe.clone();
        let b = &b;
        async move { (b.check(probe).await["version"] == "1.1.0").then_some(()) }
    })
    .await;
    assert_eq!(capgo_answers(&b, &ids, "1.0.0").await, capgo_answers(&a, &ids, "1.0.0").await);

    // Halted through A: B moves a device running the candidate back within the bound.
    let running = device(json!({"device_id": inside[0], "version_name": "1.1.0"}));
    assert_eq!(b.check(running.clone()).await["error"], "no_new_version_available");
    let halted_at = std::time::Instant::now();
    a.admin_ok("POST", "/rollout/halt", json!({"app_id": APP_ID, "channel": "production"})).await;
    loop {
        if b.check(running.clone()).await["version"] == "1.0.1" {
            break;
        }
        assert!(halted_at.elapsed() < std::time::Duration::from_secs(10), "B never served the halt");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let lag = halted_at.elapsed();
    eprintln!("a halt through A served by B after {} ms", lag.as_millis());
    assert!(lag < std::time::Duration::from_secs(1), "the halt took {lag:?} to reach B");
    // A second halt, through B, finds it halted: one halt, recorded once.
    let (status, again) = b.admin("POST", "/rollout/halt", json!({"app_id": APP_ID, "channel": "production"})).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("rollout_already_halted")), "{again}");
    let (_, seen_by_b) = b.admin("GET", &format!("/rollout?app_id={APP_ID}&channel=production"), json!(null)).await;
    assert_eq!((&seen_by_b["state"], &seen_by_b["last_action"]), (&json!("halted"), &json!("halt")), "{seen_by_b}");
}

#[tokio::test]
async fn capgo_channel_rollout_fields_drive_the_same_rollout() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("stable"), &[("channel", "production")]).await;
    app.upload_ok("1.1.0", small_zip("candidate"), &[]).await;
    let channel = |extra: Value| {
        let mut body = json!({"app_id": APP_ID, "channel": "production"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let status =
        || async { app.admin("GET", &format!("/rollout?app_id={APP_ID}&channel=production"), json!(null)).await.1 };
    // Capgo's fields, as its backend's POST /channel reads them (camelCase or snake_case).
    app.admin_ok("POST", "/channel", channel(json!({"rolloutVersion": "1.1.0", "rolloutPercentageBps": 2500}))).await;
    let started = status().await;
    assert_eq!(
        (&started["state"], &started["candidate"], &started["percent"]),
        (&json!("active"), &json!("1.1.0"), &json!(25.0))
    );
    let ids = device_ids(400);
    let rollout_id = started["rollout_id"].as_str().unwrap();
    assert_eq!(
        offered(&capgo_answers(&app, &ids, "1.0.0").await, "1.1.0"),
        expected(&ids, "production", rollout_id, 25)
    );
    app.admin_ok("POST", "/channel", channel(json!({"rollout_percentage": 40}))).await;
    assert_eq!(status().await["percent"], 40.0);
    // The candidate of a rollout cannot be deleted.
    let (code, refused) = app.admin("DELETE", "/bundle", json!({"app_id": APP_ID, "version": "1.1.0"})).await;
    assert_eq!((code, refused["error"].as_str()), (400, Some("cannot_delete_linked_version")), "{refused}");
    app.admin_ok("POST", "/channel", channel(json!({"rolloutPaused": true, "rolloutPauseReason": "bad reviews"})))
        .await;
    let paused = status().await;
    assert_eq!((&paused["state"], &paused["reason"]), (&json!("halted"), &json!("bad reviews")));
    assert!(offered(&capgo_answers(&app, &ids, "1.0.0").await, "1.1.0").is_empty());
    app.admin_ok("POST", "/channel", channel(json!({"rolloutPaused": false}))).await;
    assert_eq!(status().await["state"], "active");
    app.admin_ok("POST", "/channel", channel(json!({"promoteToStable": true}))).await;
    assert_eq!(status().await["state"], "completed");
    assert_eq!(offered(&capgo_answers(&app, &ids, "1.0.0").await, "1.1.0").len(), ids.len());
    let (code, bad) = app.admin("POST", "/channel", channel(json!({"rolloutPercentageBps": 20000}))).await;
    assert_eq!((code, bad["error"].as_str()), (400, Some("invalid_rollout_config")), "{bad}");
}

#[tokio::test]
async fn an_expo_rollout_started_from_a_served_manifest_id_resumes_to_the_same_devices() {
    let app = TestApp::with_app().await;
    let stable = publish(&app, &ExportFixture::new("stable"), "production", &[]);
    let candidate = publish(&app, &ExportFixture::new("candidate"), "production", &[]);
    let (stable_id, candidate_id) = (ios(&stable)["id"].as_str().unwrap(), ios(&candidate)["id"].as_str().unwrap());
    // The id of a manifest the gateway served names its whole publish group.
    let served = expo_manifest(&app, Some("some-device"), None).await.unwrap();
    assert_eq!(served["id"], candidate_id);
    let channel = ["--app", APP_ID, "--channel", "production"];
    let start = [&["rollout", "start"][..], &channel, &["--release", candidate_id, "--percent", "30"]].concat();
    let started = cli_json(&app, &[&start[..], &["--runtime-version", "1.0.0"]].concat());
    assert_eq!(started["candidate"], ios(&candidate)["group_id"]);
    assert_eq!(started["covers"].as_array().unwrap().len(), 2, "{started}");
    let rollout_id = started["rollout_id"].as_str().unwrap().to_owned();
    // A device that already runs the candidate keeps it; the others follow their bucket.
    let ids = device_ids(600);
    let reached = expected(&ids, "production", &rollout_id, 30);
    let outside = ids.iter().find(|id| !reached.contains(*id)).unwrap();
    assert!(expo_manifest(&app, Some(outside), Some(candidate_id)).await.is_none(), "keeps the candidate");
    assert_eq!(expo_manifest(&app, Some(outside), None).await.unwrap()["id"], stable_id);
    assert_eq!(expo_offered(&app, &ids, candidate_id).await, reached);
    let (status, elsewhere) = app
        .admin(
            "POST",
            "/rollout",
            json!({"app_id": APP_ID, "channel": "staging", "release": candidate_id, "percent": 5}),
        )
        .await;
    assert_eq!((status, elsewhere["error"].as_str()), (404, Some("release_not_found")), "{elsewhere}");

    // Halted, then resumed: the candidate comes back as a new release, newer than the halt's, to the same devices.
    cli_json(&app, &[&["rollout", "halt"][..], &channel].concat());
    let inside = reached.iter().next().unwrap().clone();
    let back = expo_manifest(&app, Some(&inside), Some(candidate_id)).await.unwrap();
    let resumed = cli_json(&app, &[&["rollout", "resume"][..], &channel].concat());
    assert_eq!((&resumed["state"], &resumed["rollout_id"]), (&json!("active"), &json!(rollout_id)));
    let again = expo_manifest(&app, Some(&inside), Some(back["id"].as_str().unwrap())).await.unwrap();
    assert!(again["id"] != candidate_id && again["createdAt"].as_str() > back["createdAt"].as_str(), "{again}");
    assert_eq!(again["launchAsset"]["hash"], served["launchAsset"]["hash"], "the candidate's files");
    let new_candidate = resumed["candidate"].as_str().unwrap();
    assert_ne!(new_candidate, ios(&candidate)["group_id"].as_str().unwrap(), "republished as a new group");
    assert_eq!(expo_offered(&app, &ids, again["id"].as_str().unwrap()).await, reached, "the same devices");
}

/// A counter of `/metrics` text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn checks_under_active_rollouts_read_only_memory() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("stable"), &[("channel", "production")]).await;
    app.upload_ok("1.1.0", small_zip("candidate"), &[]).await;
    app.admin_ok(
        "POST",
        "/rollout",
        json!({"app_id": APP_ID, "channel": "production", "version": "1.1.0", "percent": 50}),
    )
    .await;
    publish(&app, &ExportFixture::new("stable"), "expo-prod", &[]);
    let candidate = publish(&app, &ExportFixture::new("candidate"), "expo-prod", &["--rollout", "50"]);
    let metrics = || async { app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    // Not the store's total reads: the checks' reports, written behind, make the decider read the rollouts'
    // figures meanwhile. What counts is that the checks themselves called the store zero times.
    const DURING_CHECKS: &str = "updraft_store_calls_during_checks_total";
    assert_eq!(metric(&metrics().await, DURING_CHECKS), 0);
    let ids = device_ids(100);
    let capgo = capgo_answers(&app, &ids, "1.0.0").await;
    let mut headers = client_headers("ios", json!({"expo-channel-name": "expo-prod"}));
    let mut expo_candidates = 0;
    for id in &ids {
        headers["eas-client-id"] = json!(id);
        let mut request = app.client.get(manifest_url(&app));
        for (name, value) in headers.as_object().unwrap() {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
        let body = request.send().await.unwrap().text().await.unwrap();
        expo_candidates += usize::from(body.contains(ios(&candidate)["id"].as_str().unwrap()));
    }
    assert_eq!(metric(&metrics().await, DURING_CHECKS), 0, "no store call while answering a check");
    // Both answers were given under the rollout.
    assert!((20..=80).contains(&offered(&capgo, "1.1.0").len()), "{capgo:?}");
    assert!((20..=80).contains(&expo_candidates), "{expo_candidates} of 100 Expo devices got the candidate");
}
