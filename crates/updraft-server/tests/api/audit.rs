//! The audit log: management writes over the API and the CLI each append a record naming the key (never its
//! secret), app, channel, action, before and after; `GET /audit` and `updraft audit` show them, newest first.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, small_zip};
use crate::management::create_key;

fn audit_cli(app: &TestApp, key: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(["audit", "--server", &app.base, "--api-key", key])
        .args(args)
        .env("UPDRAFT_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn writes_are_audited_with_key_name_before_and_after() {
    let app = TestApp::with_app().await;
    let ci = create_key(&app, &["--name", "ci", "--role", "publish", "--app", APP_ID]);
    app.upload_ok("1.0.0", small_zip("a"), &[]).await;
    assert_eq!(app.call("POST", "/channel", Some(&ci), json!({"app_id": APP_ID, "channel": "beta"})).await.0, 200);
    let moved = json!({"app_id": APP_ID, "channel": "beta", "version": "1.0.0"});
    assert_eq!(app.call("POST", "/channel", Some(&ci), moved).await.0, 200);
    let pin = json!({"app_id": APP_ID, "device_id": "dev-1", "channel": "beta"});
    assert_eq!(app.call("POST", "/device", Some(&ci), pin).await.0, 200);
    // A refused write leaves no record.
    let reader = create_key(&app, &["--name", "viewer", "--role", "read", "--app", APP_ID]);
    assert_eq!(app.call("POST", "/channel", Some(&reader), json!({"app_id": APP_ID, "channel": "x"})).await.0, 403);

    let (status, log) = app.call("GET", &format!("/audit?app_id={APP_ID}"), Some(&reader), Value::Null).await;
    assert_eq!(status, 200, "{log}");
    let records = log["records"].as_array().unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["key_name"].as_str().unwrap(), r["channel"].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("apikey.create", "admin", None),
            ("device.pin", "ci", Some("beta")),
            ("channel.set", "ci", Some("beta")),
            ("channel.set", "ci", Some("beta")),
            ("bundle.publish", "admin", None),
            ("apikey.create", "admin", None),
            ("app.create", "admin", None),
        ]
    );
    // Moving beta onto 1.0.0: before it served builtin, after 1.0.0.
    let move_record = &records[2];
    assert_eq!(move_record["before"]["bundle"], "builtin", "{move_record}");
    assert_eq!(move_record["after"]["bundle"], "1.0.0", "{move_record}");
    assert!(records[3]["before"].is_null(), "a new channel had no before: {}", records[3]);
    assert_eq!(records[1]["after"], json!({"device_id": "dev-1", "channel": "beta", "bundle": null}));
    let text = log.to_string();
    assert!(!text.contains(&ci) && !text.contains(&reader) && !text.contains(ADMIN_KEY), "no secret in the log");

    // The CLI shows the same records, as JSON or as a table.
    let output = audit_cli(&app, &reader, &["--app", APP_ID, "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cli["records"], log["records"]);
    let output = audit_cli(&app, &reader, &["--app", APP_ID]);
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("admin") && l.contains("apikey.create")), "{table}");
    // A key of one app cannot read the installation's log or another app's.
    app.create_app("com.example.other").await;
    let (status, _) = app.call("GET", "/audit?app_id=com.example.other", Some(&reader), Value::Null).await;
    assert_eq!(status, 403);
    let (status, answer) = app.call("GET", "/audit", Some(&reader), Value::Null).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("missing_field")), "{answer}");
    let (status, all) = app.admin("GET", "/audit?limit=2", Value::Null).await;
    assert_eq!((status, all["records"].as_array().unwrap().len()), (200, 2), "{all}");
    assert_eq!(all["records"][0]["action"], "app.create");
    let (status, answer) = app.admin("GET", "/audit?limit=0", Value::Null).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("`limit`"), "{answer}");
}
