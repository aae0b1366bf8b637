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

/// Reports coalesce in memory until written: every report acknowledged before SIGTERM is in the database after
/// the exit, each device with its newest one, including the devices whose second report came just before the
/// signal (the writer flushes every second, so most of those were still waiting).
#[tokio::test]
async fn sigterm_writes_every_acknowledged_report_with_its_newest() {
    let mut app = TestApp::with_app().await;
    app.upload("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    for version in ["1.0.0", "1.0.1"] {
        for n in 0..150 {
            let body =
                device(json!({"device_id": format!("fleet-{n}"), "version_name": version, "custom_id": version}));
            app.check(body).await;
        }
    }
    // Each device was accepted twice (its report changed), never shed; /metrics says so per signal.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let count = |outcome: &str| {
        let name = format!("updraft_coalesced_reports_total{{signal=\"device_reports\",outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&name))
            .unwrap_or_else(|| panic!("{name}: {metrics}"))
            .parse::<u64>()
    };
    assert_eq!(count("queued").unwrap() + count("replaced").unwrap(), 300, "{metrics}");
    assert_eq!(count("shed").unwrap() + count("dropped").unwrap(), 0, "{metrics}");
    let status = app.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let db = app.data_path().join("updraft.db");
    let output = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             rows=sqlite3.connect(sys.argv[1]).execute(\"select version_name, custom_id, count(*) from devices \
             where device_id like 'fleet-%' group by 1, 2\").fetchall()\n\
             print(rows)",
        )
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), "[('1.0.1', '1.0.1', 150)]", "{}", String::from_utf8_lossy(&output.stderr));
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

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap()
}

/// Update checks are answered from memory: they make no database read (the store's read counter does not move)
/// and need no object storage (the objects directory is gone); with another process holding the database's write
/// lock they still answer at once, while a management write waits for the lock and then says 503.
#[tokio::test]
async fn checks_need_neither_the_database_nor_storage() {
    let app = TestApp::spawn_with(&[]).await;
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    let expo = crate::expo_tools::ExportFixture::new("hot");
    crate::expo_tools::publish(&app, &expo, "production", &[]);

    let db = app.data_path().join("updraft.db");
    let mut locker = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=30)\n\
             c.execute('BEGIN IMMEDIATE'); c.execute('CREATE TABLE IF NOT EXISTS lock_probe(x)')\n\
             print('locked',flush=True); time.sleep(60)",
        )
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(locker.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    std::fs::rename(app.data_path().join("objects"), app.data_path().join("objects-gone")).unwrap();

    let metrics = || async { app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let reads_before = metric(&metrics().await, "updraft_store_reads_total");
    let headers = crate::expo_tools::client_headers("ios", json!({}));
    for n in 0..20 {
        let started = std::time::Instant::now();
        let answer = app.check(device(json!({"device_id": format!("offline-{n}")}))).await;
        assert_eq!(answer["version"], "1.0.1");
        let report = crate::expo_tools::expo_check(&crate::expo_tools::manifest_url(&app), &headers, None).await;
        assert_eq!(report["status"], 200, "{report}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "answered without waiting on the database");
    }
    let after = metrics().await;
    assert_eq!(metric(&after, "updraft_store_reads_total"), reads_before, "no database read per check");
    assert_eq!(metric(&after, "updraft_store_calls_during_checks_total"), 0, "no store call while answering a check");
    assert!(after.contains("updraft_update_checks_total{protocol=\"capgo\",outcome=\"update\"} 20"), "{after}");
    assert!(after.contains("updraft_update_checks_total{protocol=\"expo\",outcome=\"update\"} 20"), "{after}");
    assert!(after.contains("updraft_http_requests_total{route=\"/updates\",status=\"200\"} 20"), "{after}");
    // A write needs the database: it waits for the lock (busy timeout) and then answers 503 with Retry-After.
    let response = app
        .client
        .post(app.url("/channel"))
        .header("authorization", crate::helpers::ADMIN_KEY)
        .json(&json!({"app_id": APP_ID, "channel": "beta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let _ = locker.kill();
    let _ = locker.wait();
}

/// The nice value of a thread, field 19 of its `stat` (the name before it, in parentheses, may hold spaces).
#[cfg(target_os = "linux")]
fn niceness_in(stat: &str) -> i32 {
    // What follows the name starts at field 3 (the state), so field 19 is its 17th.
    stat.rsplit_once(") ").unwrap().1.split(' ').nth(16).unwrap().parse().unwrap()
}

/// The name and nice value of every thread of a process.
#[cfg(target_os = "linux")]
fn thread_niceness(pid: u32) -> Vec<(String, i32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else { continue };
        let name = stat.split_once(" (").unwrap().1.rsplit_once(") ").unwrap().0.to_owned();
        threads.push((name, niceness_in(&stat)));
    }
    threads
}

/// The background work (the device writer and SQLite's thread for its connection, reloads, the decider) runs nicer
/// than the HTTP workers, so it waits for them on a saturated machine rather than the other way round.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn background_threads_run_nicer_than_the_http_workers() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("a"), &[("channel", "production")]).await;
    app.check(device(json!({"device_id": "nice-device"}))).await;
    // Written behind: once the record is readable, the writer has opened its connection.
    crate::helpers::eventually("the device record", || async {
        let url = app.url(&format!("/device?app_id={APP_ID}&device_id=nice-device"));
        let response = app.client.get(url).header("authorization", crate::helpers::ADMIN_KEY).send().await.unwrap();
        (response.status() == 200).then_some(())
    })
    .await;
    let base = niceness_in(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
    let lowered = (base + 10).min(19);
    let of = |threads: &[(String, i32)], prefix: &str| -> Vec<i32> {
        threads.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, nice)| *nice).collect()
    };
    // A background thread lowers itself as it starts, so one started (on demand, for blocking work) just as the
    // threads are read may not have yet: read again until none is caught in its first instants.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let threads = loop {
        let threads = thread_niceness(app.pid());
        if of(&threads, "background").iter().all(|&nice| nice == lowered) || std::time::Instant::now() > deadline {
            break threads;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let workers = of(&threads, "actix-server wo");
    assert!(!workers.is_empty(), "no HTTP worker threads among {threads:?}");
    assert!(workers.iter().all(|&nice| nice == base), "HTTP workers keep the process's priority: {threads:?}");
    // The background runtime's threads; the HTTP workers' own blocking threads (`tokio-rt-worker`) keep the base.
    let background = of(&threads, "background");
    assert!(!background.is_empty(), "no background runtime threads among {threads:?}");
    assert!(background.iter().all(|&nice| nice == lowered), "background threads are nicer: {threads:?}");
    // SQLite's thread for a connection inherits the priority of the thread that opened it: the writer's own
    // connection was opened by the writer (the first, by the start-up on the main thread, keeps the base).
    assert!(of(&threads, "sqlx-sqlite-wor").contains(&lowered), "no SQLite thread is nicer: {threads:?}");
}
