//! Start-up and shutdown: health, bad settings, and SIGTERM flushing queued device reports.

use std::process::Command;

use serde_json::json;

use crate::helpers::{APP_ID, TestApp, device, small_zip};

#[tokio::test]
async fn health_is_ok_once_serving() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn sigterm_flushes_device_reports_and_state_survives_restart() {
    let mut app = TestApp::with_app().await;
    app.upload("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    for n in 0..50 {
        let answer = app.check(device(json!({"device_id": format!("device-{n}")}))).await;
        assert_eq!(answer["version"], "1.0.1");
    }
    let status = app.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    let db = app.data_path().join("updraft.db");
    let output = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from devices').fetchone()[0])")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "50", "{}", String::from_utf8_lossy(&output.stderr));

    // A new process on the same data directory serves the same release.
    let restarted = TestApp::spawn_with(&[("UPDRAFT_DATA_DIR", app.data_path().to_str().unwrap())]).await;
    assert_eq!(restarted.check(device(json!({}))).await["version"], "1.0.1");
    let _ = APP_ID;
}

#[test]
fn bad_settings_fail_with_one_line_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("serve")
        .env("UPDRAFT_LISTEN", "not-an-address")
        .env("UPDRAFT_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: UPDRAFT_LISTEN"), "{stderr}");
}
