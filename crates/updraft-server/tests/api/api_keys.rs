//! `updraft apikey create|list|revoke` over the gateway's HTTP API (`/apikey`), run from a folder that is not the
//! gateway's, and the operator-facing start-up messages of `serve`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, APP_ID, TestApp};

/// Runs `updraft ARGS` in `cwd` with a clean environment.
fn updraft(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UPDRAFT_LOG", "warn")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn one_error_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stderr(output);
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("error: "), "{text}");
    text
}

#[tokio::test]
async fn keys_are_managed_over_the_api_from_any_folder() {
    let app = TestApp::with_app().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let server = ["--server", app.base.as_str(), "--api-key", ADMIN_KEY];
    let with_server = |args: &[&str]| -> Vec<String> {
        args.iter().chain(server.iter()).map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    let run = |args: &[&str]| {
        let args = with_server(args);
        updraft(elsewhere.path(), &args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let created = run(&["apikey", "create", "--name", "ci", "--app", APP_ID]);
    assert!(created.status.success(), "{}", stderr(&created));
    let ci_key = String::from_utf8(created.stdout.clone()).unwrap().trim().to_owned();
    assert!(ci_key.starts_with("upd_"), "{ci_key}");
    assert!(stderr(&created).contains(&app.base), "names the gateway: {}", stderr(&created));
    // Nothing was created where the command ran: the key lives in the gateway's store and works there.
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    assert_eq!(app.call("POST", "/channel", Some(&ci_key), json!({"app_id": APP_ID, "channel": "beta"})).await.0, 200);

    let ops = run(&["apikey", "create", "--name", "ops", "--json"]);
    assert!(ops.status.success(), "{}", stderr(&ops));
    let ops: Value = serde_json::from_slice(&ops.stdout).unwrap();
    assert_eq!((ops["name"].as_str(), ops["app_id"].is_null()), (Some("ops"), true), "{ops}");
    let ops_key = ops["key"].as_str().unwrap().to_owned();

    // A second active key with the same name is refused, in one line naming the server.
    let again = run(&["apikey", "create", "--name", "ci"]);
    let line = one_error_line(&again);
    assert!(line.contains(&app.base) && line.contains("409") && line.contains("already named"), "{line}");

    // The listing has names, ids and scopes, never secrets or hashes.
    let listed = run(&["apikey", "list", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = String::from_utf8(listed.stdout).unwrap();
    assert!(!text.contains(&ci_key) && !text.contains(&ci_key[17..]) && !text.contains("sha256"), "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    let keys = listed["keys"].as_array().unwrap();
    let summary: Vec<(&str, Option<&str>, bool)> =
        keys.iter().map(|k| (k["name"].as_str().unwrap(), k["app_id"].as_str(), k["revoked_at"].is_null())).collect();
    assert_eq!(summary, [("ci", Some(APP_ID), true), ("ops", None, true)]);
    let table = run(&["apikey", "list"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.lines().any(|l| l.starts_with("ci ") && l.contains(APP_ID) && l.ends_with("active")), "{table}");

    // A scoped key cannot manage keys; an unscoped stored key can.
    let (status, answer) = app.call("GET", "/apikey", Some(&ci_key), Value::Null).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (403, "cannot_access_app"), "{answer}");
    let (status, answer) = app.call("POST", "/apikey", Some(&ci_key), json!({"name": "escalate"})).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(app.call("GET", "/apikey", Some(&ops_key), Value::Null).await.0, 200);

    // Revoked by name: it stops working at once and stays listed as revoked.
    let revoked = run(&["apikey", "revoke", "ci"]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let (status, answer) = app.call("POST", "/channel", Some(&ci_key), json!({"app_id": APP_ID, "channel": "x"})).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (401, "invalid_apikey"));
    let (_, listed) = app.admin("GET", "/apikey", Value::Null).await;
    let ci = listed["keys"].as_array().unwrap().iter().find(|k| k["name"] == "ci").unwrap().clone();
    assert!(ci["revoked_at"].is_string(), "{ci}");
    // The name is free again; revoking an unknown name fails in one line naming the server.
    assert!(run(&["apikey", "create", "--name", "ci"]).status.success());
    let missing = one_error_line(&run(&["apikey", "revoke", "nobody"]));
    assert!(missing.contains(&app.base) && missing.contains("404") && missing.contains("nobody"), "{missing}");
    // Bad input is a readable 400.
    let (status, answer) = app.admin("POST", "/apikey", json!({"name": "  "})).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "missing_field"), "{answer}");
    let (status, answer) = app.admin("POST", "/apikey", json!({"name": "x", "app_id": "com.example.none"})).await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test]
async fn cli_errors_name_the_server() {
    let app = TestApp::with_app().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = one_error_line(&updraft(
        dir.path(),
        &["apikey", "list", "--server", &app.base, "--api-key", "upd_000000000000_wrong"],
    ));
    assert!(wrong.contains(&format!("the gateway at {}", app.base)) && wrong.contains("401"), "{wrong}");
    // Nothing listens on port 9 of loopback.
    let unreachable =
        one_error_line(&updraft(dir.path(), &["apikey", "list", "--server", "http://127.0.0.1:9", "--api-key", "k"]));
    assert!(unreachable.contains("http://127.0.0.1:9"), "{unreachable}");
}

#[tokio::test]
async fn serve_names_the_listen_setting_and_warns_without_an_admin_key() {
    let app = TestApp::with_app().await;
    let taken = app.base.strip_prefix("http://").unwrap().to_owned();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UPDRAFT_LISTEN", &taken)
        .env("UPDRAFT_DATA_DIR", data.path())
        .env("UPDRAFT_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = one_error_line(&output);
    assert!(line.contains(&taken) && line.contains("UPDRAFT_LISTEN") && line.contains("in use"), "{line}");

    // Without UPDRAFT_ADMIN_API_KEY the gateway starts, and says at once that no one can manage it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UPDRAFT_LISTEN", "127.0.0.1:0")
        .env("UPDRAFT_DATA_DIR", data.path())
        .env("UPDRAFT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("updraft listening on "), "{first}");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert!(text.contains("WARN") && text.contains("UPDRAFT_ADMIN_API_KEY"), "{text}");
}
