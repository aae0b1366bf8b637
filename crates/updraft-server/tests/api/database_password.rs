//! A database password never reaches the gateway's log or its errors. The test cluster (tests/tools/pg-cluster.sh)
//! trusts every role on loopback except members of `password_login`, which must give a scram-sha-256 password: these
//! tests make such a role with a random password, run the gateway on it with debug logging, and grep what it wrote.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, APP_ID, LOG_FILE_VAR, TestApp, device, small_zip};
use crate::postgres::shared_url;

/// A role of `password_login` with a random password, owning a new database; returns (role, password, database).
async fn role_with_password() -> (String, String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (role, password, database) = (format!("pw_{id}"), format!("Pw-{id}-secret"), format!("it_pw_{id}"));
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&shared_url()).await.unwrap();
    for statement in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE password_login"),
        format!("CREATE DATABASE {database} OWNER {role}"),
    ] {
        sqlx::Executor::execute(&mut connection, statement.as_str()).await.unwrap();
    }
    sqlx::Connection::close(connection).await.unwrap();
    (role, password, database)
}

/// The shared cluster's URL for `role` with `password` and `database`.
fn url_for(role: &str, password: &str, database: &str) -> String {
    let admin = shared_url();
    let (_, after_user) = admin.split_once('@').expect("postgres://user@host:port/db");
    let (host_port, _) = after_user.split_once('/').unwrap();
    format!("postgres://{role}:{password}@{host_port}/{database}")
}

/// Every way the password could be written out: as given and URL-encoded.
fn assert_absent(text: &str, password: &str, what: &str) {
    for form in [password.to_owned(), password.replace('-', "%2D")] {
        assert!(!text.contains(&form), "{what} contains the database password");
    }
}

#[tokio::test]
async fn a_database_password_stays_out_of_the_log() {
    let (role, password, database) = role_with_password().await;
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("gateway.log");
    let url = url_for(&role, &password, &database);
    let app = TestApp::spawn_with(&[
        ("UPDRAFT_DATABASE__URL", url.as_str()),
        ("UPDRAFT_LOG", "debug"),
        (LOG_FILE_VAR, log.to_str().unwrap()),
    ])
    .await;
    // Work that touches the database on every path: management writes, a publish, checks written behind, stats.
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("pw"), &[("channel", "production")]).await;
    assert_eq!(app.check(device(json!({"device_id": "pw-device"}))).await["version"], "1.0.1");
    let stats = device(json!({"device_id": "pw-device", "action": "set", "version_name": "1.0.1"}));
    assert_eq!(app.client.post(app.url("/stats")).json(&stats).send().await.unwrap().status(), 200);
    crate::helpers::eventually("the device row and the event, written behind", || async {
        let (status, body) = app.call("GET", &format!("/device?app_id={APP_ID}"), Some(ADMIN_KEY), json!(null)).await;
        let (_, stats) = app.call("GET", &format!("/stats?app_id={APP_ID}"), Some(ADMIN_KEY), json!(null)).await;
        let written = |list: &Value| list.as_array().is_some_and(|d| !d.is_empty());
        (status == 200 && written(&body["data"]) && written(&stats["recent"])).then_some(())
    })
    .await;
    drop(app);
    let text = std::fs::read_to_string(&log).unwrap();
    // The log is a debug log of this work (so a logged URL or connection string would be in it).
    assert!(text.contains("/updates"), "the debug log recorded no request:\n{text}");
    assert_absent(&text, &password, "the gateway's debug log");
}

#[tokio::test]
async fn a_wrong_database_password_stops_start_up_with_one_line_that_names_the_host_not_the_password() {
    let (role, password, database) = role_with_password().await;
    let wrong = format!("Wrong-{}-secret", uuid::Uuid::new_v4().simple());
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UPDRAFT_LISTEN", "127.0.0.1:0")
        .env("UPDRAFT_DATA_DIR", data_dir.path())
        .env("UPDRAFT_ADMIN_API_KEY", ADMIN_KEY)
        .env("UPDRAFT_LOG", "debug")
        .env("UPDRAFT_DATABASE__URL", url_for(&role, &wrong, &database))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("a gateway with a wrong database password neither started nor stopped in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success(), "it started: {stdout}");
    assert!(!stdout.contains("updraft listening"), "{stdout}");
    for text in [&stdout, &stderr] {
        assert_absent(text, &wrong, "what the gateway printed");
        assert_absent(text, &password, "what the gateway printed");
    }
    let error = stderr.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default();
    assert!(error.contains("127.0.0.1"), "the error names the server it talked to: {stderr}");
    assert!(error.to_lowercase().contains("password"), "the error says what failed: {stderr}");
}
