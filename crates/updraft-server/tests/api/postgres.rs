//! Several gateway instances on one PostgreSQL (`UPDRAFT_TEST_DATABASE_URL`, started by tests/run.sh) and one
//! S3-compatible bucket: changes made through one instance reach the other through LISTEN/NOTIFY, device and stats
//! writes from both are exact, and a PostgreSQL outage (a cluster of the test's own, really stopped) leaves update
//! checks answered and loses nothing acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::expo_tools::{ExportFixture, client_headers, codesigning_generate, expo_check, manifest_url, publish};
use crate::helpers::{APP_ID, TestApp, device, small_zip, workspace_root};
use crate::s3_storage::{create_bucket, s3_env, updraft_cli};

/// The longest an instance may serve a stale view after another instance's write (the bound).
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

/// A new, empty database on the PostgreSQL server at `admin_url`; returns its URL.
pub async fn fresh_database(admin_url: &str) -> String {
    let name = format!("it_{}", uuid::Uuid::new_v4().simple());
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(admin_url).await.unwrap();
    sqlx::Executor::execute(&mut connection, format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub fn shared_url() -> String {
    std::env::var("UPDRAFT_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("UPDRAFT_TEST_DATABASE_URL is not set: run the tests with tests/run.sh, which starts PostgreSQL")
    })
}

/// Two instances on one database and one bucket, started at the same moment (so both run the migrations on a fresh
/// database concurrently, as instances rolled out together do).
async fn pair(database_url: &str) -> (TestApp, TestApp) {
    let bucket = create_bucket(&std::env::var("UPDRAFT_TEST_S3_ENDPOINT").unwrap()).await;
    let mut env = s3_env(&bucket, "proxy", &[]);
    env.push(("UPDRAFT_DATABASE__URL", database_url.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    tokio::join!(TestApp::spawn_with(&env), TestApp::spawn_with(&env))
}

/// Polls `instance` until `probe` accepts its answer to `body`; returns how long that took. Fails after 10 s.
async fn served_by(instance: &TestApp, body: Value, probe: impl Fn(&Value) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let (status, answer) = instance.updates_raw(&body.to_string()).await;
        if status == 200 && probe(&answer) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never served: last answer {status} {answer}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn within_bound(what: &str, lag: Duration) {
    eprintln!("propagation of {what}: {} ms", lag.as_millis());
    assert!(lag < PROPAGATION_BOUND, "{what} took {lag:?} to reach the other instance");
}

#[tokio::test]
async fn changes_through_one_instance_reach_the_other() {
    let (a, b) = pair(&fresh_database(&shared_url()).await).await;
    a.create_app(APP_ID).await;
    let lag = served_by(&b, device(json!({})), |answer| answer["error"] != "app_not_found").await;
    within_bound("a new app", lag);

    a.upload_ok("1.0.1", small_zip("first"), &[("channel", "production")]).await;
    let lag = served_by(&b, device(json!({})), |answer| answer["version"] == "1.0.1").await;
    within_bound("a publish", lag);
    // B serves the bundle's bytes from the shared bucket.
    let answer = b.check(device(json!({}))).await;
    let zip = b.client.get(answer["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(zip.as_ref(), small_zip("first").as_slice());

    // A channel change through B reaches A.
    b.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "disableAutoUpdate": "major"}))
        .await;
    b.upload_ok("2.0.0", small_zip("major"), &[("channel", "production")]).await;
    let lag = served_by(&a, device(json!({})), |answer| answer["error"] == "disable_auto_update_to_major").await;
    within_bound("a channel setting", lag);
    b.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "production", "disableAutoUpdate": "none"}))
        .await;
    served_by(&a, device(json!({})), |answer| answer["version"] == "2.0.0").await;

    // A device override through A reaches B, and so does its deletion.
    a.upload_ok("2.1.0-beta.1", small_zip("beta"), &[("channel", "beta")]).await;
    a.admin_ok("POST", "/device", json!({"app_id": APP_ID, "device_id": "tester", "channel": "beta"})).await;
    let tester = device(json!({"device_id": "tester"}));
    let lag = served_by(&b, tester.clone(), |answer| answer["version"] == "2.1.0-beta.1").await;
    within_bound("a device override", lag);
    assert_eq!(b.check(device(json!({"device_id": "someone-else"}))).await["version"], "2.0.0");
    let (status, body) = a.admin("DELETE", "/device", json!({"app_id": APP_ID, "device_id": "tester"})).await;
    assert_eq!(status, 200, "{body}");
    let lag = served_by(&b, tester, |answer| answer["version"] == "2.0.0").await;
    within_bound("an override deletion", lag);

    // Deleting a channel through B reaches A: the beta bundle is no longer linked and can be deleted too.
    b.admin_ok("DELETE", "/channel", json!({"app_id": APP_ID, "channel": "beta"})).await;
    a.admin_ok("DELETE", "/bundle", json!({"app_id": APP_ID, "version": "2.1.0-beta.1"})).await;
    let (status, channel) = a
        .call("GET", &format!("/channel?app_id={APP_ID}&channel=beta"), Some(crate::helpers::ADMIN_KEY), json!(null))
        .await;
    assert_eq!((status, channel["error"].as_str()), (404, Some("channel_not_found")), "{channel}");
    let metrics = b.client.get(b.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let applied = metrics.lines().find_map(|l| l.strip_prefix("updraft_catalog_changes_applied_total ")).unwrap();
    assert!(applied.parse::<u64>().unwrap() >= 5, "{metrics}");
}

const DEVICES: usize = 120;

fn stats_event(device_id: &str, action: &str, version: &str) -> Value {
    let mut body = device(json!({"device_id": device_id, "version_name": version, "action": action,
                                 "old_version_name": "1.0.0"}));
    body.as_object_mut().unwrap().remove("defaultChannel");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_stats_from_both_instances_are_exact() {
    let database_url = fresh_database(&shared_url()).await;
    let (a, b) = pair(&database_url).await;
    a.create_app(APP_ID).await;
    a.upload_ok("1.0.1", small_zip("v1"), &[("channel", "production")]).await;
    served_by(&b, device(json!({})), |answer| answer["version"] == "1.0.1").await;
    let instances = Arc::new([a, b]);
    // Every device checks in through both instances, many at once, then reports one install through one of them.
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let instances = instances.clone();
            tokio::spawn(async move {
                for n in (worker..DEVICES).step_by(8) {
                    let id = format!("device-{n:04}");
                    for instance in instances.iter() {
                        let answer = instance.check(device(json!({"device_id": id}))).await;
                        assert_eq!(answer["version"], "1.0.1");
                    }
                    let via = &instances[n % 2];
                    let response = via
                        .client
                        .post(via.url("/stats"))
                        .json(&json!([stats_event(&id, "set", "1.0.1")]))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Graceful stops flush both write queues.
    let [mut a, mut b] = Arc::into_inner(instances).unwrap();
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let reader = TestApp::spawn_with(&[("UPDRAFT_DATABASE__URL", &database_url)]).await;
    let (status, summary) = reader.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
    assert_eq!(status, 200, "{summary}");
    let installed = summary["bundles"].as_array().unwrap().iter().find(|b| b["version_name"] == "1.0.1").cloned();
    assert_eq!(installed.as_ref().unwrap()["installs"], DEVICES, "every install counted once: {summary}");
    assert_eq!(installed.unwrap()["devices"], DEVICES, "every installed device counted once: {summary}");
    // Every device record once, plus the one that checked before the burst.
    let (status, records) = reader.admin("GET", &format!("/device?app_id={APP_ID}&limit=1000"), json!(null)).await;
    assert_eq!(status, 200, "{records}");
    assert_eq!(records["data"].as_array().unwrap().len(), DEVICES + 1, "every device recorded once");
}

/// A PostgreSQL cluster of this test's own, which it can stop and start (tests/tools/pg-cluster.sh).
struct OwnCluster {
    root: tempfile::TempDir,
    port: u16,
    url: String,
}

impl OwnCluster {
    fn start() -> Self {
        let root = tempfile::Builder::new().prefix("updraft-pg").tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cluster = Self { root, port, url: String::new() };
        cluster.url = cluster.resume();
        cluster
    }

    fn script(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(workspace_root().join("tests/tools/pg-cluster.sh"))
            .args(args)
            .output()
            .expect("tests/tools/pg-cluster.sh runs");
        assert!(output.status.success(), "pg-cluster.sh {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn resume(&self) -> String {
        self.script(&["start", self.root.path().to_str().unwrap(), &self.port.to_string()])
    }

    fn stop(&self) {
        self.script(&["stop", self.root.path().to_str().unwrap()]);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(workspace_root().join("tests/tools/pg-cluster.sh"))
            .args(["destroy", self.root.path().to_str().unwrap()])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_keeps_checks_answered_and_loses_nothing_acknowledged() {
    let cluster = OwnCluster::start();
    let (a, b) = pair(&cluster.url).await;
    a.create_app(APP_ID).await;
    a.upload_ok("1.0.1", small_zip("v1"), &[("channel", "production")]).await;
    served_by(&b, device(json!({})), |answer| answer["version"] == "1.0.1").await;
    // An Expo release with a signing key imported through A. B never signs anything before the outage: it must have
    // loaded the key when told of the change.
    let keys = tempfile::tempdir().unwrap();
    let (private_key, certificate) = codesigning_generate(keys.path());
    let imported = crate::expo_tools::updraft(
        &a,
        &["keys", "import", "--app", APP_ID, "--private-key", private_key.to_str().unwrap()],
    );
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    publish(&a, &ExportFixture::new("outage"), "production", &[]);
    let signed =
        client_headers("ios", json!({"expo-expect-signature": "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\""}));
    crate::helpers::eventually("B to serve the Expo release", || async {
        let report = expo_check(&manifest_url(&b), &client_headers("ios", json!({})), None).await;
        (report["status"] == 200).then_some(())
    })
    .await;

    cluster.stop();
    // A signed Expo manifest from B, verified against the certificate with Expo's own tooling.
    let report = expo_check(&manifest_url(&b), &signed, Some(&certificate)).await;
    assert_eq!(report["status"], 200, "{report}");
    let manifest = report["parts"].as_array().unwrap().iter().find(|p| p["name"] == "manifest").unwrap();
    assert_eq!(manifest["signature"]["valid"], true, "{report}");
    // Update checks are answered from memory by both instances, for devices seen before and new ones.
    for n in 0..20 {
        for instance in [&a, &b] {
            let answer = instance.check(device(json!({"device_id": format!("outage-{n}")}))).await;
            assert_eq!(answer["version"], "1.0.1", "{answer}");
        }
    }
    // Stats are acknowledged (queued) and written once the database is back.
    let response = b.client.post(b.url("/stats")).json(&json!([stats_event("outage-3", "set", "1.0.1")])).send().await;
    assert_eq!(response.unwrap().status(), 200);
    // Management writes fail with a clear 503, not a 500 or a hang.
    let started = Instant::now();
    let (status, body) = a.admin("POST", "/channel", json!({"app_id": APP_ID, "channel": "beta"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "service_unavailable", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("retry")), "{body}");
    assert!(!body.to_string().contains("postgres://"), "no database URL in errors: {body}");
    assert!(started.elapsed() < Duration::from_secs(30));

    cluster.resume();
    // Writes resume: a change through A reaches B (B's listener reconnected by itself).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = a.admin("POST", "/channel", json!({"app_id": APP_ID, "channel": "beta"})).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "writes did not resume: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.upload_ok("1.0.2", small_zip("v2"), &[("channel", "production")]).await;
    served_by(&b, device(json!({})), |answer| answer["version"] == "1.0.2").await;
    // Everything acknowledged during the outage is in the database.
    let records = crate::helpers::eventually("queued writes to land", || async {
        let (status, summary) = a.admin("GET", &format!("/stats?app_id={APP_ID}"), json!(null)).await;
        assert_eq!(status, 200, "{summary}");
        let bundles = summary["bundles"].as_array().unwrap();
        let installed = bundles.iter().find(|b| b["version_name"] == "1.0.1");
        let (status, records) = a.admin("GET", &format!("/device?app_id={APP_ID}&limit=1000"), json!(null)).await;
        assert_eq!(status, 200, "{records}");
        let n_records = records["data"].as_array().unwrap().len();
        let landed = installed.is_some_and(|b| b["installs"] == 1 && b["devices"] == 1) && n_records >= 22;
        landed.then_some(n_records)
    })
    .await;
    // The Expo client (its EAS-Client-ID) is a device record too.
    assert_eq!(records, 22, "20 devices seen during the outage, the first, and the Expo client");
}

/// A team outgrows SQLite: export with the old settings, import into PostgreSQL, and a gateway on PostgreSQL serves
/// exactly what the SQLite one did (objects stay in the same storage).
#[tokio::test]
async fn an_installation_moves_from_sqlite_to_postgres() {
    let mut old = TestApp::spawn().await;
    old.create_app(APP_ID).await;
    old.upload_ok("1.0.1", small_zip("moved"), &[("channel", "production")]).await;
    old.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "beta"})).await;
    old.upload_ok("1.0.2-beta.1", small_zip("beta"), &[("channel", "beta")]).await;
    old.admin_ok("POST", "/device", json!({"app_id": APP_ID, "device_id": "tester", "channel": "beta"})).await;
    assert!(old.terminate().success());

    let file = old.data_path().join("metadata.jsonl");
    let exported = updraft_cli(old.data_path(), &["export", "--out", file.to_str().unwrap()], &[]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let printed = String::from_utf8(exported.stdout).unwrap();
    assert!(printed.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["bundles", "2"]), "{printed}");
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions()) & 0o777,
        0o600
    );

    let database_url = fresh_database(&shared_url()).await;
    let env = [("UPDRAFT_DATABASE__URL", database_url.clone())];
    let imported = updraft_cli(old.data_path(), &["import", file.to_str().unwrap()], &env);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert_eq!(String::from_utf8(imported.stdout).unwrap(), printed, "the same counts on both sides");
    assert!(String::from_utf8_lossy(&imported.stderr).contains("every table's count matches"));
    // A second import would duplicate everything: refused, in one line, and the exit status says so.
    let again = updraft_cli(old.data_path(), &["import", file.to_str().unwrap()], &env);
    assert!(!again.status.success());
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("not empty") && !message.contains("postgres://"), "{message}");

    let new = TestApp::spawn_with(&[
        ("UPDRAFT_DATABASE__URL", &database_url),
        ("UPDRAFT_STORAGE__KIND", "fs"),
        ("UPDRAFT_DATA_DIR", old.data_path().to_str().unwrap()),
    ])
    .await;
    let answer = new.check(device(json!({}))).await;
    assert_eq!(answer["version"], "1.0.1");
    let zip = new.client.get(answer["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(zip.as_ref(), small_zip("moved").as_slice());
    assert_eq!(new.check(device(json!({"device_id": "tester"}))).await["version"], "1.0.2-beta.1");
}

/// A signing key replaced through one instance: the other one signs its next answer with the new key, for a
/// platform whose answer it had already cached with the old one.
#[tokio::test]
async fn a_key_replaced_through_one_instance_signs_the_other_instances_next_answer() {
    let (a, b) = pair(&fresh_database(&shared_url()).await).await;
    a.create_app(APP_ID).await;
    publish(&a, &ExportFixture::new("rotation"), "production", &[]);
    let keys = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (keys.path().join("old"), keys.path().join("new"));
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let (old_key, old_certificate) = codesigning_generate(&old_dir);
    let (new_key, new_certificate) = codesigning_generate(&new_dir);
    let import = |key: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["keys", "import", "--app", APP_ID, "--private-key", key.to_str().unwrap()];
        args.extend_from_slice(extra);
        let output = crate::expo_tools::updraft(&a, &args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    import(&old_key, &[]);
    let signed =
        client_headers("ios", json!({"expo-expect-signature": "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\""}));
    let valid_on = |instance: &TestApp, certificate: std::path::PathBuf| {
        let (url, headers) = (manifest_url(instance), signed.clone());
        async move {
            let report = expo_check(&url, &headers, Some(&certificate)).await;
            let manifest = report["parts"].as_array().and_then(|p| p.iter().find(|p| p["name"] == "manifest").cloned());
            manifest.is_some_and(|m| m["signature"]["valid"] == true)
        }
    };
    // B caches its answers signed with the old key (the multipart one checked by Node, the JSON-only one polled).
    crate::helpers::eventually("B to sign with the first key", || async {
        valid_on(&b, old_certificate.clone()).await.then_some(())
    })
    .await;
    let json_only_signature = |instance: &TestApp| {
        let request = instance
            .client
            .get(manifest_url(instance))
            .header("expo-protocol-version", "1")
            .header("expo-platform", "ios")
            .header("expo-runtime-version", "1.0.0")
            .header("expo-channel-name", "production")
            .header("expo-expect-signature", "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\"")
            .header("accept", "application/expo+json");
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.headers()["expo-signature"].to_str().unwrap().to_owned()
        }
    };
    let old_signature = json_only_signature(&b).await;

    import(&new_key, &["--force"]);
    // Measured from the moment the CLI's call through A returned.
    let started = Instant::now();
    loop {
        if json_only_signature(&b).await != old_signature {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "B kept the old signature");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    within_bound("a replaced signing key", started.elapsed());
    assert!(valid_on(&a, new_certificate.clone()).await, "A signs with the new key");
    assert!(valid_on(&b, new_certificate.clone()).await, "B signs with the new key");
    assert!(!valid_on(&b, old_certificate.clone()).await, "B no longer serves the old signature");
}

/// A reload after a change that fails (here: B's database role may not read `channels` for a while) is tried again
/// until it succeeds: B serves the change as soon as it can read it, without waiting for another change. Before,
/// the feed gave up after a few attempts and B served the older catalog until the app next changed.
#[tokio::test]
async fn a_reload_that_fails_is_retried_until_the_change_is_served() {
    use crate::webhooks::metric;
    use sqlx::Executor as _;

    let database = fresh_database(&shared_url()).await;
    let a = TestApp::spawn_with(&[("UPDRAFT_DATABASE__URL", database.as_str())]).await;
    a.create_app(APP_ID).await;
    a.upload_ok("1.0.1", small_zip("first"), &[("channel", "production")]).await;
    // B connects as a role of its own, with every privilege on the schema A migrated.
    let role = format!("feed_{}", uuid::Uuid::new_v4().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&database).await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT ALL ON SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        admin.execute(sql.as_str()).await.unwrap();
    }
    let (scheme, rest) = database.split_once("://").unwrap();
    let (_, host_and_database) = rest.split_once('@').unwrap();
    let b_url = format!("{scheme}://{role}@{host_and_database}");
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("b.log");
    let b = TestApp::spawn_with(&[
        ("UPDRAFT_DATABASE__URL", b_url.as_str()),
        (crate::helpers::LOG_FILE_VAR, log.to_str().unwrap()),
    ])
    .await;
    served_by(&b, device(json!({})), |answer| answer["version"] == "1.0.1").await;
    // B's feed has done its first reload (after connecting), so the next one is for A's publish below.
    crate::helpers::eventually("B's first reload", || async {
        (metric(&b, "updraft_catalog_changes_applied_total").await >= 1).then_some(())
    })
    .await;

    admin.execute(format!("REVOKE SELECT ON channels FROM {role}").as_str()).await.unwrap();
    a.upload_ok("1.0.2", small_zip("second"), &[("channel", "production")]).await;
    // The feed's quick attempts are over: from here on only the stale retries can reload the app.
    crate::helpers::eventually("B's feed to leave the app to the retries", || async {
        std::fs::read_to_string(&log).unwrap_or_default().contains("trying again every").then_some(())
    })
    .await;
    assert_eq!(metric(&b, "updraft_catalog_stale_apps").await, 1);
    assert_eq!(b.check(device(json!({}))).await["version"], "1.0.1", "B serves the catalog it last loaded");

    admin.execute(format!("GRANT SELECT ON channels TO {role}").as_str()).await.unwrap();
    served_by(&b, device(json!({})), |answer| answer["version"] == "1.0.2").await;
    crate::helpers::eventually("B to count no stale app", || async {
        (metric(&b, "updraft_catalog_stale_apps").await == 0).then_some(())
    })
    .await;
    // The role is the cluster's, not the test database's: gone with the test (the cluster trusts every role but
    // those that log in with a password, so B needed none).
    drop(b);
    for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        admin.execute(sql.as_str()).await.unwrap();
    }
}
