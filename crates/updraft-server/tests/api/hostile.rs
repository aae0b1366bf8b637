//! Hostile input against the real binary: every input is bounded before it is buffered, a request that stalls or
//! ends early is answered or dropped within a timeout, and what an unauthenticated caller sends cannot grow without
//! bound. Each test is the regression test of one finding of a probe of the release binary (issue #17).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ADMIN_KEY, APP_ID, TestApp, device, eventually, small_zip};

/// The raw exchange of one request written as bytes: what came back before the server closed the connection or
/// `wait` passed, and how long it took.
pub async fn raw_exchange(base: &str, request: &[u8], wait: Duration) -> (String, Duration) {
    let started = Instant::now();
    let stream = raw_send(base, request).await;
    raw_answer(stream, started, wait).await
}

/// Connects and writes `request`.
async fn raw_send(base: &str, request: &[u8]) -> tokio::net::TcpStream {
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer (and close) before it has read everything: a failed write is not a failed test.
    let _ = stream.write_all(request).await;
    stream
}

/// What came back on `stream` before the server closed it or `wait` (from `started`) passed, and how long it took.
async fn raw_answer(mut stream: tokio::net::TcpStream, started: Instant, wait: Duration) -> (String, Duration) {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let deadline = started + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                // One answer is enough: stop once its head and the whole Content-Length have arrived.
                if answer_complete(&answer) {
                    break;
                }
            }
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

fn answer_complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let length = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse::<usize>().ok());
    length.is_some_and(|length| body.len() >= length)
}

/// The status code of a raw answer (0 when there was none).
pub fn status_of(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// The JSON body of a raw answer.
pub fn json_of(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn staged_files(app: &TestApp) -> Vec<String> {
    staged_in(app.data_path())
}

fn staged_in(data_dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(data_dir.join("staging")) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Finding 1: a 1 MiB batch of half a million tiny items got a 56 MB answer.
#[tokio::test]
async fn stats_batches_are_capped_before_they_are_answered() {
    let app = TestApp::with_app().await;
    let event = json!({"app_id": APP_ID, "device_id": "d1", "action": "set", "version_name": "1.0.0"});
    let post = |body: String| {
        let client = app.client.clone();
        let url = app.url("/stats");
        async move {
            let response = client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap())
        }
    };
    let (status, answer) = post(Value::Array(vec![event.clone(); 200]).to_string()).await;
    assert_eq!(status, 200, "a full plugin queue is accepted");
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["results"].as_array().unwrap().len(), 200);
    let (status, answer) = post(Value::Array(vec![event; 1001]).to_string()).await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&answer));
    let tiny = format!("[{}]", vec!["0"; 524_000].join(","));
    let (status, answer) = post(tiny).await;
    assert_eq!(status, 413);
    assert!(answer.len() < 1024, "the refusal is small, not one result per item: {} bytes", answer.len());
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["error"], "body_too_large", "{answer}");
}

/// Finding 5: `bytes=1-18446744073709551615` got a 206 claiming a length of 2^64 - 1 (a debug build panicked).
#[tokio::test]
async fn range_ends_past_the_object_are_clamped() {
    let app = TestApp::with_app().await;
    let zip = small_zip("range");
    app.upload_ok("1.0.1", zip.clone(), &[("channel", "production")]).await;
    let answer = app.check(device(json!({}))).await;
    let url = answer["url"].as_str().unwrap().to_owned();
    let size = zip.len() as u64;
    for (range, status, expected) in [
        ("bytes=1-18446744073709551615", 206, Some(format!("bytes 1-{}/{size}", size - 1))),
        ("bytes=0-18446744073709551614", 206, Some(format!("bytes 0-{}/{size}", size - 1))),
        ("bytes=18446744073709551615-", 416, None),
        ("bytes=-18446744073709551615", 206, Some(format!("bytes 0-{}/{size}", size - 1))),
        ("bytes=1-18446744073709551616", 200, None),
    ] {
        let response = app.client.get(&url).header("range", range).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{range}");
        let content_range = response.headers().get("content-range").map(|v| v.to_str().unwrap().to_owned());
        if let Some(expected) = expected {
            assert_eq!(content_range.as_deref(), Some(expected.as_str()), "{range}");
            let length: u64 = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
            let body = response.bytes().await.unwrap();
            assert_eq!(length, body.len() as u64, "{range}");
            assert!(length <= size, "{range}");
        }
    }
}

/// Finding 3: a 10 GiB `Content-Length` was not refused before reading.
#[tokio::test]
async fn an_oversized_content_length_is_refused_at_once() {
    let app = TestApp::with_app().await;
    let huge = 10u64 * 1024 * 1024 * 1024;
    for (method, path, extra) in [
        ("POST", "/updates", "content-type: application/json\r\n".to_owned()),
        ("POST", "/stats", "content-type: application/json\r\n".to_owned()),
        ("POST", "/channel_self", "content-type: application/json\r\n".to_owned()),
        ("POST", "/bundle", format!("content-type: multipart/form-data; boundary=x\r\nauthorization: {ADMIN_KEY}\r\n")),
        ("PUT", &format!("/expo/{APP_ID}/assets/{}", "a".repeat(64)), format!("authorization: {ADMIN_KEY}\r\n")),
        ("POST", "/app", format!("content-type: application/json\r\nauthorization: {ADMIN_KEY}\r\n")),
    ] {
        let request = format!("{method} {path} HTTP/1.1\r\nhost: x\r\n{extra}content-length: {huge}\r\n\r\n{{");
        let (answer, took) = raw_exchange(&app.base, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status_of(&answer), 413, "{method} {path}: {answer:?}");
        assert_eq!(json_of(&answer)["error"], "body_too_large", "{method} {path}: {answer}");
        assert!(took < Duration::from_secs(2), "{method} {path} answered after {took:?}");
    }
    assert!(staged_files(&app).is_empty(), "{:?}", staged_files(&app));
}

/// Finding 3: a body declaring 1000 bytes and sending 10 held its connection for a minute, and 300 of them took
/// `/health` down.
#[tokio::test]
async fn a_stalled_body_is_dropped_within_the_timeout() {
    let app = TestApp::spawn_with(&[("UPDRAFT_LIMITS__BODY_TIMEOUT_SECONDS", "4")]).await;
    app.create_app(APP_ID).await;
    let request = "POST /updates HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n\
                   {\"app_id\":";
    let sent = Arc::new(AtomicUsize::new(0));
    let stalled: Vec<_> = (0..64)
        .map(|_| {
            let (base, sent) = (app.base.clone(), sent.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let stream = raw_send(&base, request.as_bytes()).await;
                sent.fetch_add(1, Ordering::SeqCst);
                raw_answer(stream, started, Duration::from_secs(10)).await
            })
        })
        .collect();
    eventually("every stalled request sent", || async { (sent.load(Ordering::SeqCst) == 64).then_some(()) }).await;
    let started = Instant::now();
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Starved, /health would wait for a stalled connection to be cut (the 4 s body timeout); half of that leaves a
    // slow, busy test machine room without letting starvation pass.
    assert!(started.elapsed() < Duration::from_secs(2), "/health took {:?}", started.elapsed());
    for stalled in stalled {
        let (answer, took) = stalled.await.unwrap();
        assert!(took < Duration::from_secs(7), "a stalled body was held {took:?}: {answer:?}");
        if !answer.is_empty() {
            assert_eq!(status_of(&answer), 408, "{answer}");
            assert_eq!(json_of(&answer)["error"], "body_timeout", "{answer}");
        }
    }
}

/// A check's body is read without a timer when it came in with its head; one that waited behind a pipelined
/// request and then stalls must still be cut off by the body timeout, and one that arrives in pieces is still read
/// whole.
#[tokio::test]
async fn a_pipelined_check_whose_body_stalls_is_dropped_within_the_timeout() {
    let app = TestApp::spawn_with(&[("UPDRAFT_LIMITS__BODY_TIMEOUT_SECONDS", "3")]).await;
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("1"), &[("channel", "production")]).await;
    let body = device(json!({})).to_string();
    let head = |length: usize| {
        format!(
            "POST /updates HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
        )
    };
    let address = app.base.strip_prefix("http://").unwrap().to_owned();

    // Pipelined: a whole check, then a check that declares 1000 bytes and sends its first few.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let started = Instant::now();
    let pipelined = format!("{}{body}{}{{\"app_id\":", head(body.len()), head(1000));
    stream.write_all(pipelined.as_bytes()).await.unwrap();
    let mut answers = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answers)).await;
    let took = started.elapsed();
    let answers = String::from_utf8_lossy(&answers).into_owned();
    assert!(answers.starts_with("HTTP/1.1 200"), "{answers}");
    assert!(answers.contains(r#""version":"1.0.1""#), "{answers}");
    let second = answers.find("HTTP/1.1 408").unwrap_or_else(|| panic!("no 408 for the stalled body: {answers}"));
    assert!(answers[second..].contains("body_timeout"), "{answers}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(8), "the stalled body was cut after {took:?}");

    // In pieces: the head with half the body, the rest a moment later.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(format!("{}{first}", head(body.len())).as_bytes()).await.unwrap();
    let mut early = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut early)).await;
    assert!(waited.is_err(), "answered before the rest of the body came: {waited:?}");
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 16 * 1024];
    let mut read = 0;
    while !String::from_utf8_lossy(&answer[..read]).contains("1.0.1") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer[read..])).await.unwrap().unwrap();
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&answer[..read]));
        read += n;
    }
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
}

/// Finding 2: a multipart upload whose body ends just before its closing boundary never got an answer and held its
/// staged file until shutdown.
#[tokio::test]
async fn a_multipart_body_that_ends_early_is_answered_and_frees_its_file() {
    let app = TestApp::spawn_with(&[("UPDRAFT_LIMITS__UPLOAD_IDLE_TIMEOUT_SECONDS", "2")]).await;
    app.create_app(APP_ID).await;
    let zip = small_zip("early");
    for ending in ["\r", "\r\n", "\r\n-", "\r\n--", "\r\n--b"] {
        let mut body = Vec::new();
        for (name, value) in [("app_id", APP_ID), ("version", "1.0.1")] {
            body.extend_from_slice(
                format!("--bnd\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--bnd\r\ncontent-disposition: form-data; name=\"file\"; filename=\"b.zip\"\r\n\
              content-type: application/zip\r\n\r\n",
        );
        body.extend_from_slice(&zip);
        body.extend_from_slice(ending.as_bytes());
        let mut request = format!(
            "POST /bundle HTTP/1.1\r\nhost: x\r\nauthorization: {ADMIN_KEY}\r\n\
             content-type: multipart/form-data; boundary=bnd\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        // Before the fix no answer ever came; now one comes after the 2 s idle timeout. The wait is generous so
        // that a loaded machine does not turn a late answer into a failure: no answer at all still fails below.
        let (answer, took) = raw_exchange(&app.base, &request, Duration::from_secs(30)).await;
        assert!(!answer.is_empty(), "{ending:?}: no answer in {took:?}");
        let status = status_of(&answer);
        assert!(status == 400 || status == 408, "{ending:?}: {answer:?}");
        assert!(json_of(&answer)["error"].is_string(), "{ending:?}: {answer}");
        crate::helpers::eventually("the staged file to be removed", || async {
            staged_files(&app).is_empty().then_some(())
        })
        .await;
    }
    // Nothing was recorded, and a complete upload still works.
    app.upload_ok("1.0.1", zip, &[]).await;
}

/// Finding 2: any valid key could stage a file, even one scoped to another app, because the body was read before
/// the scope check; a file part must now follow `app_id`, which is checked before a byte of the file is read.
#[tokio::test]
async fn an_upload_is_authorized_before_its_file_is_read() {
    let app = TestApp::with_app().await;
    app.create_app("com.example.other").await;
    let created = app.admin_ok("POST", "/apikey", json!({"name": "other", "app_id": "com.example.other"})).await;
    let other_key = created["key"].as_str().unwrap().to_owned();
    let head = |key: &str, first_part: &str| {
        format!(
            "POST /bundle HTTP/1.1\r\nhost: x\r\nauthorization: {key}\r\n\
             content-type: multipart/form-data; boundary=bnd\r\ncontent-length: 100000000\r\n\r\n{first_part}\
             --bnd\r\ncontent-disposition: form-data; name=\"file\"; filename=\"b.zip\"\r\n\r\nPK"
        )
    };
    let app_field = format!(
        "--bnd\r\ncontent-disposition: form-data; name=\"app_id\"\r\n\r\n{APP_ID}\r\n--bnd\r\ncontent-disposition: form-data; name=\"version\"\r\n\r\n1.0.1\r\n"
    );
    // A key of another app: refused at the file part's header, while the client is still to send 100 MB.
    let (answer, took) = raw_exchange(&app.base, head(&other_key, &app_field).as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 403, "{answer:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A file before app_id: refused before it is read, whoever asks.
    let (answer, took) = raw_exchange(&app.base, head(ADMIN_KEY, "").as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 400, "{answer:?}");
    assert_eq!(json_of(&answer)["error"], "missing_field", "{answer}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(staged_files(&app).is_empty(), "{:?}", staged_files(&app));
}

/// A stored zip written byte by byte: `(central name, local name, Unicode Path of the central entry, Unix mode,
/// declared size, data)` per entry, to say what no honest zip writer would.
type ForgedEntry<'a> = (&'a str, &'a str, Option<&'a str>, u32, Option<u32>, &'a [u8]);

fn forged_zip(entries: &[ForgedEntry<'_>]) -> Vec<u8> {
    let crc = |data: &[u8]| {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(data);
        hasher.finalize()
    };
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for &(name, local_name, unicode, mode, declared, data) in entries {
        let offset = out.len() as u32;
        let size = data.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc(data).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&declared.unwrap_or(size).to_le_bytes());
        out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(local_name.as_bytes());
        out.extend_from_slice(data);
        let mut extra = Vec::new();
        if let Some(unicode) = unicode {
            extra.extend_from_slice(&0x7075u16.to_le_bytes());
            extra.extend_from_slice(&((5 + unicode.len()) as u16).to_le_bytes());
            extra.push(1);
            extra.extend_from_slice(&crc(name.as_bytes()).to_le_bytes());
            extra.extend_from_slice(unicode.as_bytes());
        }
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc(data).to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&declared.unwrap_or(size).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&extra);
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Finding 6: zip checks were bypassed by a Unicode Path field, a local header name, symlinks, and a zip declaring
/// gigabytes (which, with `delta=true`, wrote 1.97 GiB to staging before the 400).
#[tokio::test]
async fn zip_entries_are_judged_by_every_name_type_and_size() {
    let app = TestApp::spawn_with(&[("UPDRAFT_MAX_UPLOAD_BYTES", "1048576")]).await;
    app.create_app(APP_ID).await;
    const FILE: u32 = 0o100_644;
    let index: ForgedEntry<'_> = ("index.html", "index.html", None, FILE, None, b"<html>notifyAppReady</html>");
    let honest = forged_zip(&[index, ("ok.js", "ok.js", None, FILE, None, b"x")]);
    for (case, entry, expected) in [
        (
            "Unicode Path hides ../",
            ("../../x.js", "../../x.js", Some("ok.js"), FILE, None, &b"x"[..]),
            "different names",
        ),
        ("local header differs", ("ok.js", "../../x.js", None, FILE, None, &b"x"[..]), "different names"),
        ("symlink", ("link.js", "link.js", None, 0o120_777, None, &b"/etc/passwd"[..]), "not a regular file"),
        ("declares 4 GiB", ("big.js", "big.js", None, FILE, Some(u32::MAX), &b"x"[..]), "uncompressed bytes"),
    ] {
        for delta in ["false", "true"] {
            let (status, answer) = app.upload("1.0.1", forged_zip(&[index, entry]), &[("delta", delta)]).await;
            assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_bundle")), "{case}: {answer}");
            assert!(answer["message"].as_str().unwrap().contains(expected), "{case}: {answer}");
        }
    }
    assert!(staged_files(&app).is_empty(), "{:?}", staged_files(&app));
    let objects = app.data_path().join("objects");
    let stored: Vec<_> = walk(&objects);
    assert!(stored.is_empty(), "a refused bundle stored {stored:?}");
    app.upload_ok("1.0.1", honest, &[("delta", "true")]).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

/// Finding 7: the database (which holds private signing keys) was 0644 in a 0755 data directory.
#[tokio::test]
async fn the_data_directory_and_database_are_private_to_the_gateway_user() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("fresh").join("data");
    let app = TestApp::spawn_with(&[("UPDRAFT_DATA_DIR", data_dir.to_str().unwrap())]).await;
    app.create_app(APP_ID).await;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700, "data directory");
    for file in ["updraft.db", "updraft.db-wal", "updraft.db-shm"] {
        let path = data_dir.join(file);
        if path.exists() || file == "updraft.db" {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
}

/// `/metrics` can require a key.
#[tokio::test]
async fn metrics_can_require_a_key() {
    let key = "metrics-key-0123456789abcdef";
    let app = TestApp::spawn_with(&[("UPDRAFT_METRICS_API_KEY", key)]).await;
    let metrics = |auth: Option<String>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move { request.send().await.unwrap() }
    };
    assert_eq!(metrics(None).await.status(), 401);
    assert_eq!(metrics(Some("Bearer wrong-key-0123456789".into())).await.status(), 401);
    assert_eq!(metrics(Some(ADMIN_KEY.into())).await.status(), 401, "the admin key is not the metrics key");
    let open = metrics(Some(format!("Bearer {key}"))).await;
    assert_eq!(open.status(), 200);
    assert!(open.text().await.unwrap().contains("updraft_store_reads_total"));
    let unprotected = TestApp::spawn().await;
    assert_eq!(unprotected.client.get(unprotected.url("/metrics")).send().await.unwrap().status(), 200);
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Finding 4: `/updates` stored device-report fields of any size (a 900 000-byte `version_os` came back from
/// `GET /device`).
#[tokio::test]
async fn stored_device_report_fields_are_truncated() {
    let app = TestApp::with_app().await;
    let (huge, long) = ("9".repeat(900_000), "8".repeat(20_000));
    let body = device(json!({
        "device_id": "f00d0000-0000-4000-8000-000000000001",
        "version_os": huge, "version_code": long, "custom_id": long, "defaultChannel": long,
        "version_name": format!("1.0.0{long}"),
    }));
    let (status, _) = app.updates_raw(&body.to_string()).await;
    assert_eq!(status, 200);
    let listed = crate::helpers::eventually("the device report to be written", || async {
        let (_, answer) = app.admin("GET", &format!("/device?app_id={APP_ID}"), Value::Null).await;
        answer["data"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    let stored = listed[0].to_string();
    assert!(stored.len() < 2000, "the stored report is {} bytes", stored.len());
    assert_eq!(listed[0]["os_version"].as_str().unwrap().len(), 64, "{stored}");
}

/// Finding 4: old-plugin setChannel stored and reloaded the catalog on every call; a call that changes nothing now
/// writes nothing.
#[tokio::test]
async fn a_repeated_set_channel_writes_nothing() {
    let app = TestApp::with_app().await;
    app.upload_ok("1.0.1", small_zip("1"), &[("channel", "production")]).await;
    app.admin_ok("POST", "/channel", json!({"app_id": APP_ID, "channel": "beta", "allow_device_self_set": true})).await;
    let set = |channel: &str| device(json!({"plugin_version": "6.14.0", "channel": channel}));
    assert_eq!(app.call("POST", "/channel_self", None, set("beta")).await.0, 200);
    let writes = metric(&app, "updraft_store_writes_total").await;
    for _ in 0..20 {
        let (status, answer) = app.call("POST", "/channel_self", None, set("beta")).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("ok")), "{answer}");
    }
    assert_eq!(metric(&app, "updraft_store_writes_total").await, writes, "repeated choices wrote to the store");
    // A real change is still stored.
    assert_eq!(app.call("POST", "/channel_self", None, set("production")).await.0, 200);
    assert!(metric(&app, "updraft_store_writes_total").await > writes);
}

/// Client mistakes are not server errors: a malformed request head is answered 400 and logs nothing at `ERROR`.
#[tokio::test]
async fn client_mistakes_log_nothing_at_error() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("gateway.log");
    let app =
        TestApp::spawn_with(&[(crate::helpers::LOG_FILE_VAR, log.to_str().unwrap()), ("UPDRAFT_LOG", "debug")]).await;
    let oversized_header = format!("GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(100_000));
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"POST /updates HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\nzz",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"POST /updates HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        oversized_header.as_bytes(),
    ] {
        let (answer, _) = raw_exchange(&app.base, request, Duration::from_secs(3)).await;
        assert!(matches!(status_of(&answer), 200 | 400 | 431), "{answer:?}");
    }
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG") || text.contains("INFO"), "the log was captured: {text}");
    let errors: Vec<&str> = text.lines().filter(|line| line.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Starts writing `head` then `body_start` of a request that declares more, and waits until the gateway has staged
/// a file for it; returns the open connection (dropping it ends the request).
async fn stage_partially(
    app: &TestApp,
    data_dir: &std::path::Path,
    head: String,
    body_start: &[u8],
) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(app.base.strip_prefix("http://").unwrap()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start).await.unwrap();
    crate::helpers::eventually("a staged file", || async { (!staged_in(data_dir).is_empty()).then_some(()) }).await;
    stream
}

/// Fault: `kill -9` during a Capgo upload, then a restart: nothing is half-visible, staging is empty, and the
/// retry succeeds.
#[tokio::test]
async fn a_capgo_upload_killed_midway_leaves_nothing_and_can_be_retried() {
    let shared = tempfile::tempdir().unwrap();
    let env = [("UPDRAFT_DATA_DIR", shared.path().to_str().unwrap())];
    let mut first = TestApp::spawn_with(&env).await;
    first.create_app(APP_ID).await;
    let mut fields = Vec::new();
    for (name, value) in [("app_id", APP_ID), ("version", "1.0.1"), ("channel", "production")] {
        fields.extend_from_slice(
            format!("--bnd\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    fields.extend_from_slice(b"--bnd\r\ncontent-disposition: form-data; name=\"file\"; filename=\"b.zip\"\r\n\r\n");
    fields.extend_from_slice(&[b'P'; 64 * 1024]);
    let head = format!(
        "POST /bundle HTTP/1.1\r\nhost: x\r\nauthorization: {ADMIN_KEY}\r\n\
         content-type: multipart/form-data; boundary=bnd\r\ncontent-length: 10000000\r\n\r\n"
    );
    let connection = stage_partially(&first, shared.path(), head, &fields).await;
    first.kill_hard();
    drop(connection);
    assert!(!staged_in(shared.path()).is_empty(), "the kill left a staged file behind (the case under test)");
    let second = TestApp::spawn_with(&env).await;
    assert!(staged_in(shared.path()).is_empty(), "{:?}", staged_in(shared.path()));
    let (_, bundles) = second.admin("GET", &format!("/bundle?app_id={APP_ID}"), Value::Null).await;
    assert_eq!(bundles, json!([]), "nothing of the cut upload is visible");
    assert_eq!(second.check(device(json!({}))).await["error"], "no_channel", "no channel points at a cut bundle");
    second.upload_ok("1.0.1", small_zip("retry"), &[("channel", "production")]).await;
    assert_eq!(second.check(device(json!({}))).await["version"], "1.0.1");
}

/// Fault: `kill -9` while an Expo asset of a publish is being uploaded, then a restart: the asset is not recorded
/// (a publish naming it is refused), staging is empty, and the retried upload and publish succeed.
#[tokio::test]
async fn an_expo_publish_killed_midway_leaves_nothing_and_can_be_retried() {
    let shared = tempfile::tempdir().unwrap();
    let env = [("UPDRAFT_DATA_DIR", shared.path().to_str().unwrap())];
    let mut first = TestApp::spawn_with(&env).await;
    first.create_app(APP_ID).await;
    let asset = vec![b'a'; 256 * 1024];
    let sha = crate::helpers::sha256_hex(&asset);
    let head = format!(
        "PUT /expo/{APP_ID}/assets/{sha} HTTP/1.1\r\nhost: x\r\nauthorization: {ADMIN_KEY}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        asset.len()
    );
    let connection = stage_partially(&first, shared.path(), head, &asset[..64 * 1024]).await;
    first.kill_hard();
    drop(connection);
    assert!(!staged_in(shared.path()).is_empty(), "the kill left a staged file behind (the case under test)");
    let second = TestApp::spawn_with(&env).await;
    assert!(staged_in(shared.path()).is_empty(), "{:?}", staged_in(shared.path()));
    let publish = json!({"channel": "production", "runtime_version": "1.0.0", "expo_client": {},
        "platforms": [{"platform": "ios", "launch_asset": {"sha256": sha, "ext": "hbc"}, "assets": []}]});
    let (status, answer) = second.admin("POST", &format!("/expo/{APP_ID}/releases"), publish.clone()).await;
    assert_eq!(status, 400, "a publish naming the cut asset is refused: {answer}");
    let (_, missing) = second.admin("POST", &format!("/expo/{APP_ID}/assets/missing"), json!({"sha256": [sha]})).await;
    assert_eq!(missing["missing"], json!([sha]), "{missing}");
    let response = second
        .client
        .put(second.url(&format!("/expo/{APP_ID}/assets/{sha}")))
        .header("authorization", ADMIN_KEY)
        .body(asset)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    second.admin_ok("POST", &format!("/expo/{APP_ID}/releases"), publish).await;
}

/// A bundle zip of incompressible bytes, about `size` long.
fn random_zip(size: usize, seed: u64) -> Vec<u8> {
    use std::io::Write;
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let noise: Vec<u8> = (0..size)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        })
        .collect();
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("index.html", stored).unwrap();
    zip.write_all(b"<html>notifyAppReady</html>").unwrap();
    zip.start_file("noise.bin", stored).unwrap();
    zip.write_all(&noise).unwrap();
    zip.finish().unwrap();
    buffer.into_inner()
}

/// Mounts a tmpfs of `megabytes` at `path` (this test needs root, as CI has); unmounted on drop.
struct SmallFilesystem(std::path::PathBuf);

impl SmallFilesystem {
    fn mount(path: &std::path::Path, megabytes: u32) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a {megabytes} MB tmpfs at {} needs root", path.display());
        Self(path.to_path_buf())
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fault: the disk runs out of space, for staging and for the filesystem object store. The upload is refused 507
/// with a clear message, nothing of it is visible or left behind, and update checks keep being answered.
#[tokio::test]
async fn a_full_disk_refuses_the_upload_and_keeps_answering_checks() {
    let shared = tempfile::tempdir().unwrap();
    let objects = SmallFilesystem::mount(&shared.path().join("objects"), 3);
    let staging = SmallFilesystem::mount(&shared.path().join("staging"), 2);
    let env = [("UPDRAFT_DATA_DIR", shared.path().to_str().unwrap())];
    let app = TestApp::spawn_with(&env).await;
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", random_zip(700_000, 1), &[("channel", "production")]).await;
    // Staging is full: 2.5 MB does not fit in 2 MB.
    let (status, answer) = app.upload("1.0.2", random_zip(2_500_000, 2), &[("channel", "production")]).await;
    assert_eq!((status, answer["error"].as_str()), (507, Some("insufficient_storage")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("out of space"), "{answer}");
    // The object store is full: each 1.4 MB bundle is stored once, the third does not fit in 3 MiB.
    app.upload_ok("1.0.3", random_zip(1_400_000, 3), &[]).await;
    let (status, answer) = app.upload("1.0.4", random_zip(1_400_000, 4), &[("channel", "production")]).await;
    assert_eq!((status, answer["error"].as_str()), (507, Some("insufficient_storage")), "{answer}");
    // Nothing half-visible: the refused versions are not listed, the channel still serves 1.0.1, nothing is left
    // in either staging folder, and checks keep being answered.
    let (_, bundles) = app.admin("GET", &format!("/bundle?app_id={APP_ID}"), Value::Null).await;
    let versions: Vec<&str> = bundles.as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap_or("?")).collect();
    assert!(!versions.contains(&"1.0.2") && !versions.contains(&"1.0.4"), "{bundles}");
    for _ in 0..20 {
        assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");
    }
    assert!(staged_in(shared.path()).is_empty(), "{:?}", staged_in(shared.path()));
    let leftovers: Vec<_> = std::fs::read_dir(shared.path().join("objects/.staging")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(app);
    drop((objects, staging));
}

/// Fault: clients that trickle their bodies a byte at a time do not starve others: checks keep being answered
/// quickly while they trickle, and each trickler is cut off by the body timeout.
#[tokio::test]
async fn trickling_clients_do_not_starve_others() {
    let app = TestApp::spawn_with(&[("UPDRAFT_LIMITS__BODY_TIMEOUT_SECONDS", "4")]).await;
    app.create_app(APP_ID).await;
    app.upload_ok("1.0.1", small_zip("1"), &[("channel", "production")]).await;
    let address = app.base.strip_prefix("http://").unwrap().to_owned();
    let trickling = Arc::new(AtomicUsize::new(0));
    let tricklers: Vec<_> = (0..48)
        .map(|_| {
            let (address, trickling) = (address.clone(), trickling.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                let head = "POST /updates HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n";
                stream.write_all(head.as_bytes()).await.unwrap();
                trickling.fetch_add(1, Ordering::SeqCst);
                for _ in 0..100 {
                    if stream.write_all(b" ").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let mut answer = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
                (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
            })
        })
        .collect();
    eventually("every trickler connected", || async { (trickling.load(Ordering::SeqCst) == 48).then_some(()) }).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let started = Instant::now();
        assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");
        slowest = slowest.max(started.elapsed());
    }
    // Starved, a check would wait for a trickler to be cut (the 4 s body timeout); half of that leaves a slow, busy
    // test machine room without letting starvation pass.
    assert!(slowest < Duration::from_secs(2), "a check took {slowest:?} while others trickled");
    for trickler in tricklers {
        let (took, answer) = trickler.await.unwrap();
        assert!(took < Duration::from_secs(9), "a trickler was held {took:?}");
        assert_eq!(status_of(&answer), 408, "{answer:?}");
    }
}

/// Rate limits: per device on the device endpoints, per key on management routes, per client address on every
/// route; each answered 429 with `Retry-After` and `moreInfo.retryAfterSeconds`.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = TestApp::spawn_with(&[
        ("UPDRAFT_LIMITS__DEVICE_REQUESTS_PER_SECOND", "1"),
        ("UPDRAFT_LIMITS__DEVICE_BURST", "3"),
        ("UPDRAFT_LIMITS__KEY_REQUESTS_PER_SECOND", "1"),
        ("UPDRAFT_LIMITS__KEY_BURST", "6"),
    ])
    .await;
    app.create_app(APP_ID).await;
    let post = |path: &'static str, body: Value| {
        let request = app.client.post(app.url(path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (status, retry_after, response.json::<Value>().await.unwrap())
        }
    };
    let mine = device(json!({"device_id": "limited-device"}));
    for _ in 0..3 {
        assert_eq!(post("/updates", mine.clone()).await.0, 200);
    }
    let (status, retry_after, body) = post("/updates", mine.clone()).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")), "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["moreInfo"]["retryAfterSeconds"], 1);
    let stats = json!([{"app_id": APP_ID, "device_id": "limited-device", "action": "set", "version_name": "1.0.0"}]);
    assert_eq!(post("/stats", stats).await.0, 429, "the device's limit covers every device endpoint");
    let channel = device(json!({"device_id": "limited-device", "channel": "beta"}));
    assert_eq!(post("/channel_self", channel).await.0, 429);
    assert_eq!(post("/updates", device(json!({"device_id": "another-device"}))).await.0, 200, "per device");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post("/updates", mine).await.0, 200, "a token came back");
    // Management: per key (create_app above took one).
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.admin("GET", &format!("/bundle?app_id={APP_ID}"), Value::Null).await.0);
    }
    // Five of the six saved tokens are left (about one more came back while the device checks ran).
    assert!(statuses[..5].iter().all(|s| *s == 200) && statuses[7] == 429, "{statuses:?}");
    assert_eq!(app.call("GET", "/bundle", Some("another-key-0123456789"), Value::Null).await.0, 401, "per key");
    // Per address: every route.
    let tight = TestApp::spawn_with(&[
        ("UPDRAFT_LIMITS__ADDRESS_REQUESTS_PER_SECOND", "1"),
        ("UPDRAFT_LIMITS__ADDRESS_BURST", "5"),
    ])
    .await;
    let mut statuses = Vec::new();
    for n in 0..7 {
        let body = device(json!({"device_id": format!("d{n}")}));
        statuses.push(tight.client.post(tight.url("/updates")).json(&body).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(tight.client.get(tight.url("/health")).send().await.unwrap().status(), 429);
}

/// An Expo asset upload is authorized (app scope included) before a byte of its body is read or staged.
#[tokio::test]
async fn an_asset_upload_is_authorized_before_its_body_is_read() {
    let app = TestApp::with_app().await;
    app.create_app("com.example.other").await;
    let created = app.admin_ok("POST", "/apikey", json!({"name": "other", "app_id": "com.example.other"})).await;
    let other_key = created["key"].as_str().unwrap().to_owned();
    for (key, expected) in [(other_key.as_str(), 403), ("upd_not-a-key-0123456789", 401), ("", 401)] {
        let request = format!(
            "PUT /expo/{APP_ID}/assets/{} HTTP/1.1\r\nhost: x\r\nauthorization: {key}\r\n\
             content-length: 50000000\r\n\r\nfirst bytes",
            "a".repeat(64)
        );
        let (answer, took) = raw_exchange(&app.base, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status_of(&answer), expected, "{key:?}: {answer:?}");
        assert!(took < Duration::from_secs(2), "{key:?}: {took:?}");
    }
    assert!(staged_files(&app).is_empty(), "{:?}", staged_files(&app));
}
