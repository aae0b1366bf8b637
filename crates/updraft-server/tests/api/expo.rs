//! Expo Updates end to end: publish an `expo export` folder with the CLI, then check every answer with Expo's own
//! parsers and Node crypto (the contract's checklist).

use base64::Engine;
use std::process::Output;

use serde_json::{Value, json};

use crate::expo_tools::{
    ExportFixture, cert_check, client_headers, codesigning_generate, expo_check, expo_config, manifest_url, md5_hex,
    publish, updraft,
};
use crate::helpers::{APP_ID, TestApp};

fn b64url_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

fn part<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} part: {report}"))
}

fn part_names(report: &Value) -> Vec<String> {
    report["parts"]
        .as_array()
        .map(|parts| parts.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

async fn published() -> (TestApp, ExportFixture, Vec<Value>) {
    let app = TestApp::with_app().await;
    let fixture = ExportFixture::new("v1");
    let releases = publish(&app, &fixture, "production", &["--message", "first"]);
    (app, fixture, releases)
}

#[tokio::test]
async fn manifest_envelope_and_json_match_the_contract() {
    let (app, fixture, releases) = published().await;
    assert_eq!(releases.len(), 2);
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    assert_eq!(report["status"], 200, "{report}");
    let headers = &report["headers"];
    assert_eq!(headers["expo-protocol-version"], "1");
    assert_eq!(headers["expo-sfv-version"], "0");
    assert_eq!(headers["cache-control"], "private, max-age=0");
    assert!(headers.get("etag").is_none() && headers.get("last-modified").is_none());
    let content_type = headers["content-type"].as_str().unwrap();
    let boundary = content_type.strip_prefix("multipart/mixed; boundary=").expect(content_type);
    assert!(boundary.len() <= 70 && boundary.chars().all(|c| c.is_ascii_alphanumeric() || "'()+_,-./:=?".contains(c)));
    let body = report["bodyText"].as_str().unwrap();
    assert!(body.starts_with(&format!("--{boundary}\r\n")) && body.ends_with(&format!("\r\n--{boundary}--\r\n")));
    assert_eq!(part_names(&report), ["manifest", "extensions"]);
    for part in report["parts"].as_array().unwrap() {
        let disposition = part["headers"]["content-disposition"].as_str().unwrap();
        assert!(!disposition.contains("filename"), "{disposition}");
        assert!(
            part["headerNames"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n.as_str().unwrap() == n.as_str().unwrap().to_lowercase())
        );
    }
    assert_eq!(part(&report, "extensions")["json"], json!({"assetRequestHeaders": {}}));

    let manifest = &part(&report, "manifest")["json"];
    let ios_release = releases.iter().find(|r| r["platform"] == "ios").unwrap();
    assert_eq!(manifest["id"], ios_release["id"]);
    let id = manifest["id"].as_str().unwrap();
    assert!(
        id.len() == 36
            && id == id.to_lowercase()
            && id.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12],
        "{id}"
    );
    let created_at = manifest["createdAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok() && created_at.len() == 24 && created_at.ends_with('Z'),
        "{created_at}"
    );
    assert_eq!(manifest["runtimeVersion"], "1.0.0");
    assert_eq!(manifest["metadata"], json!({}));
    assert_eq!(manifest["extra"]["expoClient"], expo_config(), "non-ASCII app config survives");

    // Every asset: fetched bytes match key (md5) and hash (base64url sha256); the launch asset is the ios bundle.
    let metadata = fixture.metadata();
    let ios = &metadata["fileMetadata"]["ios"];
    let launch = &manifest["launchAsset"];
    assert_eq!(launch["contentType"], "application/javascript");
    let launch_bytes = std::fs::read(fixture.path().join(ios["bundle"].as_str().unwrap())).unwrap();
    assert_eq!(launch["key"], md5_hex(&launch_bytes));
    let assets = manifest["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 3, "ios has three assets (one ios-only)");
    let mut keys = std::collections::HashSet::new();
    for asset in assets.iter().chain(std::iter::once(launch)) {
        let key = asset["key"].as_str().unwrap();
        assert!(keys.insert(key.to_owned()), "unique keys");
        assert!(!key.contains('/') && key != "." && key != "..");
        let url = asset["url"].as_str().unwrap();
        assert!(url.starts_with(&app.base), "{url}");
        assert!(asset["contentType"].is_string());
        let bytes = app.client.get(url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(md5_hex(&bytes), key);
        let hash = asset["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 43);
        assert_eq!(b64url_sha256(&bytes), hash);
    }
    for asset in assets {
        assert!(asset["fileExtension"].as_str().unwrap().starts_with('.'));
    }
    // Android's manifest lists only Android's files, under its own id.
    let android = expo_check(&manifest_url(&app), &client_headers("android", json!({})), None).await;
    let android_manifest = &part(&android, "manifest")["json"];
    assert_ne!(android_manifest["id"], manifest["id"]);
    assert_eq!(android_manifest["assets"].as_array().unwrap().len(), 2);
    // Identical requests, byte-identical answers.
    let again = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    assert_eq!(part(&again, "manifest")["body"], part(&report, "manifest")["body"]);
}

#[tokio::test]
async fn assets_are_served_as_published_with_their_length_and_never_sniffed() {
    let (app, fixture, _) = published().await;
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    let manifest = &part(&report, "manifest")["json"];
    let raw = crate::helpers::test_client(reqwest::Client::builder().no_gzip().no_brotli());
    // What the Android client sends (loader/CompressionInterceptor.kt). The fixture's files are too small for
    // compressed copies (`bytes::` tests the encoded answers), so these are the stored bytes with their length.
    let get = |url: String| {
        let raw = raw.clone();
        async move {
            let response = raw
                .get(&url)
                .header("accept", "*/*")
                .header("accept-encoding", "zstd, br, gzip")
                .header("a-im", "bsdiff")
                .header("expo-platform", "ios")
                .send()
                .await
                .unwrap();
            let headers = response.headers().clone();
            (response.status().as_u16(), headers, response.bytes().await.unwrap())
        }
    };
    let launch = &manifest["launchAsset"];
    let png = manifest["assets"].as_array().unwrap().iter().find(|a| a["fileExtension"] == ".png").unwrap();
    for (asset, content_type) in [(launch, "application/javascript"), (png, "image/png")] {
        let (status, headers, bytes) = get(asset["url"].as_str().unwrap().to_owned()).await;
        assert_eq!(status, 200);
        assert!(headers.get("content-encoding").is_none(), "{headers:?}");
        assert!(headers.get("transfer-encoding").is_none(), "{headers:?}");
        assert_eq!(headers["content-length"].to_str().unwrap(), bytes.len().to_string());
        assert_eq!(headers["content-type"], content_type, "the manifest's contentType");
        assert_eq!(asset["contentType"], content_type);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
        assert!(headers["etag"].to_str().unwrap().starts_with('"'));
        assert_eq!(b64url_sha256(&bytes), asset["hash"].as_str().unwrap());
    }
    // The URL's extension does not choose the type: the same bytes asked for as .html are only bytes.
    let png_url = png["url"].as_str().unwrap();
    let as_html = format!("{}.html", png_url.strip_suffix(".png").unwrap());
    let (status, headers, _) = get(as_html).await;
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "application/octet-stream"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // A client that would decode an encoding gets the exported bytes too.
    let bytes = app.client.get(launch["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let bundle = fixture.metadata()["fileMetadata"]["ios"]["bundle"].as_str().unwrap().to_owned();
    assert_eq!(bytes.as_ref(), std::fs::read(fixture.path().join(bundle)).unwrap().as_slice());
    let missing =
        app.client.get(app.url(&format!("/expo/{APP_ID}/assets/{}.png", "0".repeat(64)))).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn unsafe_file_extensions_are_refused_at_publish() {
    let app = TestApp::with_app().await;
    let sha = "a".repeat(64);
    let body = |ext: &str| {
        json!({"channel": "production", "runtime_version": "1.0.0", "expo_client": {},
               "platforms": [{"platform": "ios", "launch_asset": {"sha256": sha, "ext": "hbc"},
                              "assets": [{"sha256": sha, "ext": ext}]}]})
    };
    for ext in ["png/../../evil", "..\\x", "png\u{0}", ".."] {
        let (status, answer) = app.admin("POST", &format!("/expo/{APP_ID}/releases"), body(ext)).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some("unsafe_file_extension")), "{ext:?}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("path separator"), "{answer}");
    }
    // The CLI refuses such an export before uploading anything.
    let fixture = ExportFixture::new("unsafe");
    let mut metadata = fixture.metadata();
    metadata["fileMetadata"]["android"]["assets"][0]["ext"] = json!("png/../../evil");
    std::fs::write(fixture.path().join("metadata.json"), metadata.to_string()).unwrap();
    let output = updraft(
        &app,
        &[
            "publish",
            "expo",
            "--app",
            APP_ID,
            "--channel",
            "production",
            "--runtime-version",
            "1.0.0",
            fixture.path().to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("png/../../evil"), "{stderr}");
    let (_, missing) = app.admin("POST", &format!("/expo/{APP_ID}/assets/missing"), json!({"sha256": [sha]})).await;
    assert_eq!(missing["missing"], json!([sha]), "nothing was uploaded");
    let listed = updraft(&app, &["release", "list", "--app", APP_ID, "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&listed.stdout).unwrap(), json!([]), "nothing recorded");
}

#[tokio::test]
async fn signed_manifests_and_directives_verify_with_an_expo_certificate() {
    let (app, _fixture, releases) = published().await;
    let keys = tempfile::tempdir().unwrap();
    let (private_key, certificate) = codesigning_generate(keys.path());
    let output = updraft(&app, &["keys", "import", "--app", APP_ID, "--private-key", private_key.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let signed =
        client_headers("ios", json!({"expo-expect-signature": "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\""}));
    // The key signs from the next request on.
    let report = expo_check(&manifest_url(&app), &signed, Some(&certificate)).await;
    assert_eq!(report["status"], 200, "{report}");
    let signature = &part(&report, "manifest")["signature"];
    assert_eq!(signature["valid"], true, "{report}");
    assert_eq!(signature["allStrings"], true);
    assert_eq!(signature["members"]["keyid"], "main");
    assert_eq!(signature["members"]["alg"], "rsa-v1_5-sha256");
    let sig = signature["members"]["sig"].as_str().unwrap();
    assert_eq!(sig.len(), 344);
    assert!(sig.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
    assert!(part(&report, "extensions")["signature"].is_null(), "extensions are not signed");

    // noUpdateAvailable, signed, for the running update (id in uppercase too).
    let ios_id = releases.iter().find(|r| r["platform"] == "ios").unwrap()["id"].as_str().unwrap().to_uppercase();
    let mut headers = signed.clone();
    headers["expo-current-update-id"] = json!(ios_id);
    let no_update = expo_check(&manifest_url(&app), &headers, Some(&certificate)).await;
    assert_eq!(part_names(&no_update), ["directive"]);
    let directive = part(&no_update, "directive");
    assert_eq!(directive["json"], json!({"type": "noUpdateAvailable"}));
    assert_eq!(directive["signature"]["valid"], true);

    // application/expo+json only: the same bytes, signed in a top-level header.
    let mut json_only = signed.clone();
    json_only["accept"] = json!("application/expo+json");
    let bare = expo_check(&manifest_url(&app), &json_only, Some(&certificate)).await;
    assert_eq!(bare["headers"]["content-type"], "application/expo+json");
    assert_eq!(bare["bodyText"], part(&report, "manifest")["body"]);
    assert_eq!(bare["signature"]["valid"], true);

    // Many requests, one signature per distinct body and key.
    for _ in 0..20 {
        expo_check(&manifest_url(&app), &signed, None).await;
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let signatures: u64 =
        metrics.lines().find_map(|l| l.strip_prefix("updraft_expo_signatures_total ")).unwrap().parse().unwrap();
    assert_eq!(signatures, 2, "manifest + noUpdate directive, each signed once: {metrics}");

    // A keyid the app does not have, or an app without keys: 4xx, never an unsigned 200.
    let mut other_key = signed.clone();
    other_key["expo-expect-signature"] = json!("sig, keyid=\"root\", alg=\"rsa-v1_5-sha256\"");
    let refused = expo_check(&manifest_url(&app), &other_key, None).await;
    assert_eq!(refused["status"], 400);
    assert!(refused["bodyText"].as_str().unwrap().contains("root"));
}

#[tokio::test]
async fn keyid_root_is_echoed_for_a_key_imported_as_root() {
    let (app, _fixture, _) = published().await;
    let keys = tempfile::tempdir().unwrap();
    let (private_key, certificate) = codesigning_generate(keys.path());
    // PKCS#8 form of the same key imports too.
    let pkcs8 = keys.path().join("pkcs8.pem");
    let converted = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-in", private_key.to_str().unwrap(), "-out", pkcs8.to_str().unwrap()])
        .status();
    let import_path = if converted.is_ok_and(|s| s.success()) { pkcs8 } else { private_key };
    let output = updraft(
        &app,
        &["keys", "import", "--app", APP_ID, "--private-key", import_path.to_str().unwrap(), "--key-id", "root"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let headers = client_headers("android", json!({"expo-expect-signature": "sig"}));
    let report = expo_check(&manifest_url(&app), &headers, Some(&certificate)).await;
    assert_eq!(report["status"], 200, "{report}");
    let signature = &part(&report, "manifest")["signature"];
    assert_eq!(signature["members"]["keyid"], "root");
    assert_eq!(signature["valid"], true);
}

#[tokio::test]
async fn generated_certificates_pass_expo_validation_and_verify_signatures() {
    let (app, _fixture, _) = published().await;
    let out = tempfile::tempdir().unwrap();
    let output = updraft(
        &app,
        &["keys", "generate", "--app", APP_ID, "--out", out.path().to_str().unwrap(), "--export-private-key"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (certificate, private_key, public_key) =
        (out.path().join("certificate.pem"), out.path().join("private-key.pem"), out.path().join("public-key.pem"));
    let checked = cert_check(&certificate, &private_key, &public_key);
    assert_eq!(
        checked,
        json!({"valid": true, "error": null, "inValidityWindow": true, "digitalSignature": true, "codeSigning": true})
    );
    let headers =
        client_headers("ios", json!({"expo-expect-signature": "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\""}));
    let report = expo_check(&manifest_url(&app), &headers, Some(&certificate)).await;
    assert_eq!(part(&report, "manifest")["signature"]["valid"], true);
}

#[tokio::test]
async fn rollback_to_embedded_and_to_an_earlier_release() {
    let (app, fixture, first) = published().await;
    let v2 = ExportFixture::new("v2");
    let second = publish(&app, &v2, "production", &[]);
    let first_ios = first.iter().find(|r| r["platform"] == "ios").unwrap()["id"].as_str().unwrap().to_owned();
    let second_ios = second.iter().find(|r| r["platform"] == "ios").unwrap();

    let output = updraft(
        &app,
        &[
            "release",
            "rollback",
            "--app",
            APP_ID,
            "--channel",
            "production",
            "--runtime-version",
            "1.0.0",
            "--embedded",
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let headers = client_headers(
        "ios",
        json!({"expo-current-update-id": second_ios["id"], "expo-embedded-update-id": "11111111-1111-4111-8111-111111111111"}),
    );
    let rollback = expo_check(&manifest_url(&app), &headers, None).await;
    let directive = &part(&rollback, "directive")["json"];
    assert_eq!(directive["type"], "rollBackToEmbedded");
    let commit_time = directive["parameters"]["commitTime"].as_str().unwrap().to_owned();
    assert!(commit_time.as_str() > second_ios["created_at"].as_str().unwrap(), "{commit_time}");
    let again = expo_check(&manifest_url(&app), &headers, None).await;
    assert_eq!(
        part(&again, "directive")["json"]["parameters"]["commitTime"],
        commit_time.as_str(),
        "stable commitTime"
    );
    let on_embedded = client_headers(
        "ios",
        json!({"expo-current-update-id": "11111111-1111-4111-8111-111111111111", "expo-embedded-update-id": "11111111-1111-4111-8111-111111111111"}),
    );
    assert_eq!(
        part(&expo_check(&manifest_url(&app), &on_embedded, None).await, "directive")["json"]["type"],
        "noUpdateAvailable"
    );

    // Roll back to the first release: a new id, createdAt after everything before, the first release's files.
    let output = updraft(
        &app,
        &[
            "release",
            "rollback",
            "--app",
            APP_ID,
            "--channel",
            "production",
            "--runtime-version",
            "1.0.0",
            "--to",
            &first_ios,
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let restored: Value = serde_json::from_slice(&output.stdout).unwrap();
    let restored = &restored["releases"][0];
    assert_ne!(restored["id"], first_ios.as_str());
    assert!(restored["created_at"].as_str().unwrap() > commit_time.as_str());
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    let manifest = &part(&report, "manifest")["json"];
    assert_eq!(manifest["id"], restored["id"]);
    let first_bundle = fixture.metadata()["fileMetadata"]["ios"]["bundle"].as_str().unwrap().to_owned();
    assert_eq!(manifest["launchAsset"]["key"], md5_hex(&std::fs::read(fixture.path().join(first_bundle)).unwrap()));

    // Promote to another channel: new id, same files.
    let output = updraft(
        &app,
        &[
            "release",
            "promote",
            "--app",
            APP_ID,
            "--release",
            restored["id"].as_str().unwrap(),
            "--to-channel",
            "staging",
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut staging = client_headers("ios", json!({}));
    staging["expo-channel-name"] = json!("staging");
    let staging_report = expo_check(&manifest_url(&app), &staging, None).await;
    let promoted = &part(&staging_report, "manifest")["json"];
    assert_ne!(promoted["id"], manifest["id"]);
    assert_eq!(promoted["launchAsset"]["key"], manifest["launchAsset"]["key"]);

    let listed = updraft(&app, &["release", "list", "--app", APP_ID, "--channel", "production", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    // Two publishes and the rollback to embedded cover both platforms; `--to <ios release id>` restored iOS only
    // (a publish's group id restores every platform).
    assert_eq!(listed.as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn protocol_0_never_gets_directives() {
    let (app, _fixture, releases) = published().await;
    let ios_id = releases.iter().find(|r| r["platform"] == "ios").unwrap()["id"].clone();
    let mut v0 = client_headers("ios", json!({"expo-current-update-id": ios_id}));
    v0.as_object_mut().unwrap().remove("expo-protocol-version");
    let report = expo_check(&manifest_url(&app), &v0, None).await;
    assert_eq!(report["headers"]["expo-protocol-version"], "0");
    assert_eq!(part_names(&report), ["manifest", "extensions"], "the latest manifest even if the client has it");
    let mut other_channel = v0.clone();
    other_channel["expo-channel-name"] = json!("nothing-here");
    assert_eq!(expo_check(&manifest_url(&app), &other_channel, None).await["status"], 404);
    // Protocol 1 with nothing published: noUpdateAvailable, not an error.
    let mut v1_empty = client_headers("ios", json!({}));
    v1_empty["expo-channel-name"] = json!("nothing-here");
    assert_eq!(
        part(&expo_check(&manifest_url(&app), &v1_empty, None).await, "directive")["json"]["type"],
        "noUpdateAvailable"
    );
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    let (app, _fixture, _) = published().await;
    let get = |headers: Value, url: String| async move { expo_check(&url, &headers, None).await };
    let mut no_platform = client_headers("ios", json!({}));
    no_platform.as_object_mut().unwrap().remove("expo-platform");
    let report = get(no_platform, manifest_url(&app)).await;
    assert_eq!(report["status"], 400);
    assert!(report["bodyText"].as_str().unwrap().contains("expo-platform"));
    let report = get(client_headers("web", json!({})), manifest_url(&app)).await;
    assert_eq!(report["status"], 400);
    let mut no_runtime = client_headers("ios", json!({}));
    no_runtime.as_object_mut().unwrap().remove("expo-runtime-version");
    let report = get(no_runtime, manifest_url(&app)).await;
    assert_eq!(report["status"], 400);
    assert!(report["bodyText"].as_str().unwrap().contains("expo-runtime-version"));
    let report = get(client_headers("ios", json!({})), app.url("/expo/com.example.unknown/manifest")).await;
    assert_eq!(report["status"], 404);
    let post = app.client.post(manifest_url(&app)).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert!(post.json::<Value>().await.unwrap()["error"].is_string());
    // Seed 004's URL form reaches the same handler.
    let report = get(client_headers("ios", json!({})), app.url(&format!("/api/manifest?app={APP_ID}"))).await;
    assert_eq!(part_names(&report), ["manifest", "extensions"]);
    // Without a channel header, the app's default channel (production) answers.
    let mut no_channel = client_headers("ios", json!({}));
    no_channel.as_object_mut().unwrap().remove("expo-channel-name");
    assert_eq!(part_names(&get(no_channel, manifest_url(&app)).await), ["manifest", "extensions"]);
}

#[tokio::test]
async fn failed_publishes_leave_nothing_visible() {
    let app = TestApp::with_app().await;
    let run = |args: &[&str]| {
        let output = updraft(&app, args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    };
    let base = ["publish", "expo", "--app", APP_ID, "--channel", "production", "--runtime-version", "1.0.0"];
    let empty = tempfile::tempdir().unwrap();
    let with = |dir: &std::path::Path| {
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        args.push(dir.to_str().unwrap().to_owned());
        args
    };
    let args = with(empty.path());
    assert!(run(&args.iter().map(String::as_str).collect::<Vec<_>>()).contains("metadata.json"));

    let missing_file = ExportFixture::new("m");
    let bundle = missing_file.metadata()["fileMetadata"]["ios"]["bundle"].as_str().unwrap().to_owned();
    std::fs::remove_file(missing_file.path().join(&bundle)).unwrap();
    let args = with(missing_file.path());
    assert!(run(&args.iter().map(String::as_str).collect::<Vec<_>>()).contains("missing"));

    let escaping = ExportFixture::new("e");
    let mut metadata = escaping.metadata();
    metadata["fileMetadata"]["android"]["assets"][0]["path"] = json!("../../../../etc/passwd");
    std::fs::write(escaping.path().join("metadata.json"), metadata.to_string()).unwrap();
    let args = with(escaping.path());
    assert!(run(&args.iter().map(String::as_str).collect::<Vec<_>>()).contains("not a relative path inside"));

    let symlinked = ExportFixture::new("s");
    let metadata = symlinked.metadata();
    let asset = metadata["fileMetadata"]["ios"]["assets"][0]["path"].as_str().unwrap().to_owned();
    std::fs::remove_file(symlinked.path().join(&asset)).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", symlinked.path().join(&asset)).unwrap();
    let args = with(symlinked.path());
    assert!(run(&args.iter().map(String::as_str).collect::<Vec<_>>()).contains("outside"));

    let bad_key = empty.path().join("bad.pem");
    std::fs::write(&bad_key, "not a key").unwrap();
    assert!(
        run(&["keys", "import", "--app", APP_ID, "--private-key", bad_key.to_str().unwrap()])
            .contains("RSA private key")
    );

    let listed = updraft(&app, &["release", "list", "--app", APP_ID, "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&listed.stdout).unwrap(), json!([]), "nothing visible");
    let report = expo_check(&manifest_url(&app), &client_headers("ios", json!({})), None).await;
    assert_eq!(part(&report, "directive")["json"]["type"], "noUpdateAvailable");
}

#[tokio::test]
async fn republishing_uploads_only_new_files() {
    let (app, fixture, _) = published().await;
    let output = updraft(
        &app,
        &[
            "publish",
            "expo",
            "--app",
            APP_ID,
            "--channel",
            "staging",
            "--runtime-version",
            "1.0.0",
            fixture.path().to_str().unwrap(),
        ],
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("0 of 5 files uploaded"), "2 bundles and 3 assets, all stored already: {stderr}");
}

/// Sets the fixture's `expoConfig.json` runtimeVersion (a string or a policy object) and `extra.eas`.
fn configure(fixture: &ExportFixture, runtime_version: Value) {
    let mut config = expo_config();
    config["runtimeVersion"] = runtime_version;
    config["extra"]["eas"] = json!({"projectId": "3c5e9d0a-6b1f-4f7e-9c2d-0a1b2c3d4e5f"});
    std::fs::write(fixture.path().join("expoConfig.json"), config.to_string()).unwrap();
}

fn publish_with(app: &TestApp, fixture: &ExportFixture, runtime_args: &[&str]) -> Output {
    let mut args = vec!["publish", "expo", "--app", APP_ID, "--channel", "production", "--json"];
    args.extend_from_slice(runtime_args);
    let dist = fixture.path().to_str().unwrap().to_owned();
    args.push(&dist);
    updraft(app, &args)
}

fn one_line_failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// The group id a publish or rollback printed (`… as group <id>: …`).
fn printed_group(stderr: &str) -> String {
    let after = stderr.split(" as group ").nth(1).unwrap_or_else(|| panic!("no group id printed: {stderr}"));
    after.split(|c: char| c == ':' || c.is_whitespace()).next().unwrap().to_owned()
}

async fn launch_key(app: &TestApp, platform: &str, runtime_version: &str) -> Value {
    let headers = client_headers(platform, json!({"expo-runtime-version": runtime_version}));
    let report = expo_check(&manifest_url(app), &headers, None).await;
    let manifest = &part(&report, "manifest")["json"];
    assert_eq!(manifest["runtimeVersion"], runtime_version);
    manifest["launchAsset"]["key"].clone()
}

fn bundle_key(fixture: &ExportFixture, platform: &str) -> String {
    let bundle = fixture.metadata()["fileMetadata"][platform]["bundle"].as_str().unwrap().to_owned();
    md5_hex(&std::fs::read(fixture.path().join(bundle)).unwrap())
}

#[tokio::test]
async fn runtime_versions_per_platform_and_rollback_of_a_whole_publish_group() {
    let app = TestApp::with_app().await;
    // A runtime version that contradicts the app config is refused before anything is uploaded.
    let pinned = ExportFixture::new("pinned");
    let refused = one_line_failure(&publish_with(&app, &pinned, &["--runtime-version", "2.0.0"]));
    assert!(refused.contains("contradicts expoConfig.json") && refused.contains("\"1.0.0\""), "{refused}");

    let v1 = ExportFixture::new("fp1");
    configure(&v1, json!({"policy": "fingerprint"}));
    let unresolved = one_line_failure(&publish_with(&app, &v1, &[]));
    assert!(unresolved.contains("runtimeversion:resolve --platform ios"), "{unresolved}");
    let shared = one_line_failure(&publish_with(&app, &v1, &["--runtime-version", "fp"]));
    assert!(shared.contains("--ios-runtime-version and --android-runtime-version"), "{shared}");
    let listed = updraft(&app, &["release", "list", "--app", APP_ID, "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&listed.stdout).unwrap(), json!([]), "nothing published yet");

    let per_platform = ["--ios-runtime-version", "fp-ios-1", "--android-runtime-version", "fp-android-1"];
    let output = publish_with(&app, &v1, &per_platform);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let first_group = printed_group(&stderr);
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let runtimes: Vec<(&str, &str)> = answer["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["platform"].as_str().unwrap(), r["runtime_version"].as_str().unwrap()))
        .collect();
    assert_eq!(runtimes, [("ios", "fp-ios-1"), ("android", "fp-android-1")]);
    assert!(answer["releases"].as_array().unwrap().iter().all(|r| r["group_id"] == first_group.as_str()));
    // Each platform is served under its own runtime version, with the EAS settings for Constants.easConfig.
    assert_eq!(launch_key(&app, "ios", "fp-ios-1").await, bundle_key(&v1, "ios"));
    assert_eq!(launch_key(&app, "android", "fp-android-1").await, bundle_key(&v1, "android"));
    let report =
        expo_check(&manifest_url(&app), &client_headers("ios", json!({"expo-runtime-version": "fp-ios-1"})), None)
            .await;
    assert_eq!(
        part(&report, "manifest")["json"]["extra"]["eas"],
        json!({"projectId": "3c5e9d0a-6b1f-4f7e-9c2d-0a1b2c3d4e5f"})
    );
    let wrong = client_headers("android", json!({"expo-runtime-version": "fp-ios-1"}));
    assert_eq!(
        part(&expo_check(&manifest_url(&app), &wrong, None).await, "directive")["json"]["type"],
        "noUpdateAvailable"
    );

    let v2 = ExportFixture::new("fp2");
    configure(&v2, json!({"policy": "fingerprint"}));
    let output = publish_with(&app, &v2, &per_platform);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let second: Value = serde_json::from_slice(&output.stdout).unwrap();
    let second_ios = second["releases"].as_array().unwrap().iter().find(|r| r["platform"] == "ios").unwrap();
    assert_eq!(launch_key(&app, "android", "fp-android-1").await, bundle_key(&v2, "android"));

    // The group id printed at publish rolls every platform back, each under its own runtime version.
    let rollback =
        |to: &str| updraft(&app, &["release", "rollback", "--app", APP_ID, "--channel", "production", "--to", to]);
    let output = rollback(&first_group);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("rolled back android and ios"), "{stderr}");
    assert_eq!(launch_key(&app, "ios", "fp-ios-1").await, bundle_key(&v1, "ios"));
    assert_eq!(launch_key(&app, "android", "fp-android-1").await, bundle_key(&v1, "android"));

    // One platform's release id rolls back that platform only, with a warning naming the group.
    let output = rollback(second_ios["id"].as_str().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let second_group = second_ios["group_id"].as_str().unwrap();
    assert!(
        stderr.contains("warning: ")
            && stderr.contains(&format!("ios release of publish group {second_group}"))
            && stderr.contains("android keep")
            && stderr.contains(&format!("--to {second_group}")),
        "{stderr}"
    );
    assert_eq!(launch_key(&app, "ios", "fp-ios-1").await, bundle_key(&v2, "ios"));
    assert_eq!(launch_key(&app, "android", "fp-android-1").await, bundle_key(&v1, "android"), "android untouched");

    // Rolling back to the embedded update still names the runtime version.
    let output = updraft(&app, &["release", "rollback", "--app", APP_ID, "--channel", "production", "--embedded"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--runtime-version"));
}
