//! Capgo delta manifests with brotli files, for the plugin versions that decode them: a web build made of real
//! JavaScript and JSON (the Capgo CLI's own bundle and the updater plugin's dist files), zipped by `@capgo/cli`,
//! each manifest file decoded the way the plugin does (Node's brotli here) and checked against `file_hash`.

use serde_json::{Value, json};

use crate::bytes::node_decoded_sha256;
use crate::capgo_cli::{CapacitorProject, node_modules};
use crate::helpers::{TestApp, device, sha256_hex};

/// A web build of real files: the updater plugin's ESM entry (with the notifyAppReady call), the Capgo CLI's 5 MB
/// bundle as a vendor chunk, the plugin's API docs as JSON, and a page.
fn real_web_build() -> CapacitorProject {
    let read = |path: &str| std::fs::read_to_string(node_modules().join(path)).unwrap();
    let app_js = read("@capgo/capacitor-updater/dist/plugin.js") + "\nCapacitorUpdater.notifyAppReady();\n";
    CapacitorProject::new(&[
        (
            "index.html",
            "<!doctype html><html><head><script type=\"module\" src=\"app.js\"></script></head><body>Real</body></html>",
        ),
        ("app.js", &app_js),
        ("assets/vendor.js", &read("@capgo/cli/dist/index.js")),
        ("assets/docs.json", &read("@capgo/capacitor-updater/dist/docs.json")),
        ("assets/definitions.d.ts", &read("@capgo/capacitor-updater/dist/esm/definitions.d.ts")),
    ])
}

/// Downloads every manifest entry as the plugin would, checks each decoded file against `file_hash` and the build,
/// and returns (bytes downloaded, bytes of the files installed).
async fn download_like_the_plugin(
    app: &TestApp,
    project: &CapacitorProject,
    manifest: &[Value],
    every_file: bool,
) -> (u64, u64) {
    let (mut downloaded, mut installed) = (0u64, 0u64);
    for entry in manifest {
        let name = entry["file_name"].as_str().unwrap();
        let url = entry["download_url"].as_str().unwrap();
        // Suffixed-file plugins decode `.br` names; 7.0.35–7.0.37 decode every file (and keep its name).
        let (target, brotli) = match name.strip_suffix(".br") {
            Some(target) => (target, true),
            None => (name, every_file),
        };
        assert_eq!(url.ends_with(".br"), brotli, "{entry}");
        let response = app.client.get(url).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("content-encoding").is_none(), "a .br file is plain bytes to the plugin");
        let bytes = response.bytes().await.unwrap();
        let decoded = node_decoded_sha256(&bytes, if brotli { "br" } else { "identity" });
        assert_eq!(decoded, entry["file_hash"].as_str().unwrap(), "{entry}");
        let original = std::fs::read(project.dist().join(target)).unwrap();
        assert_eq!(decoded, sha256_hex(&original), "{target}");
        downloaded += bytes.len() as u64;
        installed += original.len() as u64;
    }
    (downloaded, installed)
}

#[tokio::test]
async fn delta_manifests_send_brotli_files_to_the_plugins_that_decode_them() {
    let app = TestApp::with_app().await;
    let project = real_web_build();
    let (zip, _) = project.bundle_zip("1.0.1");
    let (status, body) =
        app.upload("1.0.1", std::fs::read(zip).unwrap(), &[("channel", "production"), ("delta", "true")]).await;
    assert_eq!(status, 200, "{body}");

    // 8.x (and 5.50.1+ / 6.14.28+ / 7.0.38+): `.br` names where brotli saves bytes, the original elsewhere.
    let answer = app.check(device(json!({}))).await;
    let manifest = answer["manifest"].as_array().expect("a manifest").clone();
    let names: std::collections::BTreeSet<&str> = manifest.iter().map(|e| e["file_name"].as_str().unwrap()).collect();
    assert!(names.contains("assets/vendor.js.br") && names.contains("assets/docs.json.br"), "{names:?}");
    assert!(names.contains("index.html"), "a tiny page stays plain: {names:?}");
    let (downloaded, installed) = download_like_the_plugin(&app, &project, &manifest, false).await;
    eprintln!(
        "real web build, plugin 8.x delta: {downloaded} bytes downloaded for {installed} bytes installed ({:.1} % saved)",
        100.0 * (1.0 - downloaded as f64 / installed as f64)
    );
    assert!(downloaded * 4 < installed, "brotli quality 11 on JavaScript and JSON saves most bytes");

    // getBundleDownloadSize counts what the entries download.
    let size = app
        .client
        .post(app.url("/updates/manifest_size"))
        .json(&{
            let mut body = device(json!({}));
            body["manifest"] = Value::Array(manifest.clone());
            body
        })
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(size["totalSize"].as_u64(), Some(downloaded), "{size}");

    // 7.0.35–7.0.37 brotli-decode every file they download, under its own name.
    let every_file = app.check(device(json!({"plugin_version": "7.0.36"}))).await;
    let manifest = every_file["manifest"].as_array().expect("a manifest").clone();
    assert!(manifest.iter().all(|e| !e["file_name"].as_str().unwrap().ends_with(".br")));
    let (downloaded_v7, _) = download_like_the_plugin(&app, &project, &manifest, true).await;
    assert!(downloaded_v7 * 4 < installed);
    // Older plugins get no manifest at all, as before.
    assert!(app.check(device(json!({"plugin_version": "7.0.34"}))).await.get("manifest").is_none());
}

/// Runs `updraft storage encode` on the installation in `data`; returns (stdout, stderr).
fn storage_encode(data: &std::path::Path) -> (String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args(["storage", "encode"])
        .env("UPDRAFT_DATA_DIR", data)
        .env("UPDRAFT_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "{stderr}");
    (stdout, stderr)
}

/// A delta bundle uploaded before brotli copies existed (its rows without `br_size_bytes` or `size_bytes`, no `.br`
/// objects) gets plain manifests, and none for the plugins that decode every file; `updraft storage encode` makes
/// the copies and records their sizes (once: a second run changes nothing), after which a gateway on that database
/// sends `.br` files to the plugins that decode them, each decoding to its `file_hash`.
#[tokio::test]
async fn storage_encode_gives_older_delta_bundles_their_brotli_files() {
    let mut first = TestApp::with_app().await;
    let read = |path: &str| std::fs::read_to_string(node_modules().join(path)).unwrap();
    let project = CapacitorProject::new(&[
        ("index.html", "<!doctype html><html><head><script src=\"app.js\"></script></head><body>Old</body></html>"),
        ("app.js", &(read("@capgo/capacitor-updater/dist/plugin.js") + "\nCapacitorUpdater.notifyAppReady();\n")),
        ("assets/docs.json", &read("@capgo/capacitor-updater/dist/docs.json")),
    ]);
    let (zip, _) = project.bundle_zip("1.0.1");
    let (status, body) =
        first.upload("1.0.1", std::fs::read(zip).unwrap(), &[("channel", "production"), ("delta", "true")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(first.terminate().code(), Some(0));

    // As it was before brotli copies: no sizes in the rows, no `.br` objects.
    let data = first.data_path().to_path_buf();
    let url = format!("sqlite://{}", data.join("updraft.db").display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let nulled = sqlx::query("UPDATE bundle_files SET br_size_bytes = NULL, size_bytes = NULL")
        .execute(&mut db)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(nulled, 3);
    sqlx::Connection::close(db).await.unwrap();
    let mut removed = 0;
    for entry in std::fs::read_dir(data.join("objects/files/com.example.app")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "br" || e == "gz") {
            std::fs::remove_file(path).unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 3, "each delta file had a brotli copy: {removed}");

    let env = [("UPDRAFT_DATA_DIR", data.to_str().unwrap())];
    let mut old = TestApp::spawn_with(&env).await;
    let answer = old.check(device(json!({}))).await;
    let manifest = answer["manifest"].as_array().expect("a manifest").clone();
    assert!(manifest.iter().all(|e| !e["file_name"].as_str().unwrap().ends_with(".br")), "{manifest:?}");
    download_like_the_plugin(&old, &project, &manifest, false).await;
    assert!(old.check(device(json!({"plugin_version": "7.0.36"}))).await.get("manifest").is_none());

    let (stdout, stderr) = storage_encode(&data);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("sized files/")).count(), 3, "{stdout}");
    assert!(stderr.contains("recorded the brotli sizes of 3 delta files (3 bundle rows)"), "{stderr}");
    let (_, again) = storage_encode(&data);
    assert!(again.contains("recorded the brotli sizes of 0 delta files"), "idempotent: {again}");
    // The gateway that served meanwhile uses the sizes once it reloads the app (on SQLite, at the app's next
    // change): the reply it cached from the catalog before is not reused.
    old.admin_ok("POST", "/channel", json!({"app_id": "com.example.app", "channel": "beta"})).await;
    let answer = old.check(device(json!({}))).await;
    let manifest = answer["manifest"].as_array().expect("a manifest");
    assert!(manifest.iter().any(|e| e["file_name"].as_str().unwrap().ends_with(".br")), "{manifest:?}");
    assert_eq!(old.terminate().code(), Some(0));

    let app = TestApp::spawn_with(&env).await;
    let answer = app.check(device(json!({}))).await;
    let manifest = answer["manifest"].as_array().expect("a manifest").clone();
    let names: std::collections::BTreeSet<&str> = manifest.iter().map(|e| e["file_name"].as_str().unwrap()).collect();
    assert!(names.contains("app.js.br") && names.contains("assets/docs.json.br"), "{names:?}");
    let (downloaded, installed) = download_like_the_plugin(&app, &project, &manifest, false).await;
    assert!(downloaded * 2 < installed, "{downloaded} of {installed}");
    let every_file = app.check(device(json!({"plugin_version": "7.0.36"}))).await;
    let manifest = every_file["manifest"].as_array().expect("a manifest for 7.0.36 now").clone();
    download_like_the_plugin(&app, &project, &manifest, true).await;
}
