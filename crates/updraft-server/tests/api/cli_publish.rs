//! `updraft publish capgo`: from a folder (zipped like `@capgo/cli bundle zip`) and from a CLI-made zip, and its
//! one-line errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::capgo_cli::CapacitorProject;
use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, device, sha256_hex};

fn publish(server: &str, key: Option<&str>, args: &[&str], path: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_updraft"));
    command
        .args(["publish", "capgo", "--app", APP_ID])
        .args(args)
        .arg(path)
        .env("UPDRAFT_SERVER", server)
        .env_remove("UPDRAFT_API_KEY");
    if let Some(key) = key {
        command.env("UPDRAFT_API_KEY", key);
    }
    command.output().unwrap()
}

fn one_error_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test]
async fn publish_a_folder_then_a_cli_zip() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("folder build");
    let output = publish(
        &app.base,
        Some(ADMIN_KEY),
        &["--version", "1.0.1", "--channel", "production", "--json"],
        &project.dist(),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["version"], "1.0.1");
    let update = app.check(device(json!({}))).await;
    assert_eq!(update["version"], "1.0.1");
    // The folder was zipped with index.html at the root; the download hashes to the announced checksum.
    let bytes = app.client.get(update["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), update["checksum"].as_str().unwrap());
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<_> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names, ["app.js", "assets/style.css", "index.html"]);

    let (zip_path, cli_checksum) = project.bundle_zip("1.0.2");
    let output =
        publish(&app.base, Some(ADMIN_KEY), &["--version", "1.0.2", "--channel", "production", "--delta"], &zip_path);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let update = app.check(device(json!({"version_name": "1.0.1"}))).await;
    assert_eq!((update["version"].as_str(), update["checksum"].as_str()), (Some("1.0.2"), Some(cli_checksum.as_str())));
    // --delta stored every file: the reply carries the complete manifest.
    assert_eq!(update["manifest"].as_array().map(Vec::len), Some(3), "{update}");
}

#[tokio::test]
async fn publish_errors_are_one_line() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("x");
    let no_key = one_error_line(&publish(&app.base, None, &["--version", "1.0.0"], &project.dist()));
    assert!(no_key.contains("UPDRAFT_API_KEY"), "{no_key}");
    let bad_version = one_error_line(&publish(&app.base, Some(ADMIN_KEY), &["--version", "one"], &project.dist()));
    assert!(bad_version.contains("--version") && bad_version.contains("semver"), "{bad_version}");
    let wrong_key = one_error_line(&publish(&app.base, Some("wrong"), &["--version", "1.0.0"], &project.dist()));
    assert!(wrong_key.contains("401"), "{wrong_key}");
    let missing =
        one_error_line(&publish(&app.base, Some(ADMIN_KEY), &["--version", "1.0.0"], Path::new("/nonexistent/dist")));
    assert!(missing.contains("/nonexistent/dist"), "{missing}");
    let no_index = tempfile::tempdir().unwrap();
    let empty = one_error_line(&publish(&app.base, Some(ADMIN_KEY), &["--version", "1.0.0"], no_index.path()));
    assert!(empty.contains("index.html"), "{empty}");
    let unreachable =
        one_error_line(&publish("http://127.0.0.1:9", Some(ADMIN_KEY), &["--version", "1.0.0"], &project.dist()));
    assert!(unreachable.contains("cannot reach"), "{unreachable}");
}

#[tokio::test]
async fn publish_sends_link_and_comment() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::typical("notes");
    let args = [
        "--version",
        "1.0.1",
        "--channel",
        "production",
        "--link",
        "https://example.com/releases/1.0.1",
        "--comment",
        "Fixes the login screen",
    ];
    let output = publish(&app.base, Some(ADMIN_KEY), &args, &project.dist());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"), "the build calls notifyAppReady");
    let update = app.check(device(json!({}))).await;
    assert_eq!(update["link"], "https://example.com/releases/1.0.1");
    assert_eq!(update["comment"], "Fixes the login screen");
}

/// `@capgo/cli bundle zip` refuses a build whose .js files never mention notifyAppReady (every device would roll
/// it back); `updraft publish capgo` says so in one warning line and still publishes, from a folder or a zip.
#[tokio::test]
async fn publish_warns_when_the_build_never_calls_notify_app_ready() {
    let app = TestApp::with_app().await;
    let project = CapacitorProject::new(&[
        ("index.html", "<!doctype html><script>CapacitorUpdater.notifyAppReady()</script>"),
        ("app.js", "console.log('forgot the updater')"),
    ]);
    let output = publish(&app.base, Some(ADMIN_KEY), &["--version", "1.0.1"], &project.dist());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("notifyAppReady"), "{stderr}");
    assert!(stderr.contains("published com.example.app 1.0.1"), "{stderr}");
    // The same from a zip made elsewhere (the Capgo CLI itself would refuse this build).
    let zip = project.dir.path().join("plain.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    for name in ["index.html", "app.js"] {
        writer.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut writer, &std::fs::read(project.dist().join(name)).unwrap()).unwrap();
    }
    writer.finish().unwrap();
    let output = publish(&app.base, Some(ADMIN_KEY), &["--version", "1.0.2"], &zip);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("warning: "), "{output:?}");
}
