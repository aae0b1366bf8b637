//! A replayable hostile corpus: more than 10 000 requests generated from one seed over every route (device
//! endpoints, management, Expo, downloads), with broken and oversized bodies, wrong types, traversal in paths,
//! garbled multipart, hostile headers and every kind of credential, sent to the real binary. It must give 0 5xx,
//! 0 panics, 0 hangs (every request answered within a timeout), 0 files outside the data directory and 0 secrets
//! in the gateway's log.
//!
//! It runs twice: 10 400 requests on the filesystem store, and the first 2 000 of the same sequence on a real S3
//! server (s3s-fs, started by tests/run.sh) with presigned delivery, where every presigned URL the gateway hands out
//! (its signature and whole query), the S3 secret key and access key id are grepped for in the debug log too.
//!
//! Replay a failure with `UPDRAFT_CORPUS_SEED=<seed>` (printed on failure) and the request index it names.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, APP_ID, LOG_FILE_VAR, TestApp, device, small_zip};

const DEFAULT_SEED: u64 = 0x17_17_17;
/// Requests of the filesystem run.
const REQUESTS: usize = 10_400;
/// Requests of the S3 run (a prefix of the same sequence), fewer to keep CI time in check.
const S3_REQUESTS: usize = 2_000;
/// A name no request may ever manage to create outside the data directory.
const ESCAPE_MARKER: &str = "corpus-escape-17";
const METRICS_KEY: &str = "corpus-metrics-key-0123456789";

/// SplitMix64: small, fast, and the same sequence on every machine and version (a generator from a crate could
/// change its algorithm under us, and the corpus would no longer replay).
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `max` random bytes.
    fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

/// One generated request.
#[derive(Debug, Clone)]
struct Request {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What came back: the status, body and `Location` header, or why nothing did.
type Outcome = Result<(u16, Vec<u8>, Option<String>), String>;

/// The credentials a request may carry.
struct Keys {
    scoped_other: String,
}

/// Strings that break parsers, paths and stores.
const NASTY: &[&str] = &[
    "",
    " ",
    "..",
    "../../corpus-escape-17",
    "..%2F..%2Fcorpus-escape-17",
    "%2e%2e/%2e%2e/corpus-escape-17",
    "/etc/passwd",
    "C:\\corpus-escape-17",
    "\u{0}",
    "\u{202e}evil",
    "💥",
    "null",
    "true",
    "-1",
    "18446744073709551616",
    "1e400",
    "NaN",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "\r\nx-injected: 1",
    "com.example.app",
    "com.example.other",
    "1.0.0",
    "999999999.999999999.999999999",
    "production",
    "builtin",
];

fn nasty_value(rng: &mut Seeded) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(f64::from_bits(rng.next()).is_finite().then_some(1.5e300)),
        4 => json!([rng.pick(NASTY), {"a": []}]),
        5 => json!({"nested": {"deeper": [rng.pick(NASTY)]}}),
        6 => Value::String("x".repeat(rng.below(9000))),
        _ => Value::String((*rng.pick(NASTY)).to_owned()),
    }
}

/// A device body, with fields mutated, removed or replaced.
fn device_body(rng: &mut Seeded) -> Value {
    let mut body = device(json!({"device_id": format!("corpus-{}", rng.below(5000)), "channel": "beta"}));
    let map = body.as_object_mut().unwrap();
    let names: Vec<String> = map.keys().cloned().collect();
    for _ in 0..rng.below(4) {
        let name = rng.pick(&names).clone();
        match rng.below(3) {
            0 => {
                map.remove(&name);
            }
            _ => {
                map.insert(name, nasty_value(rng));
            }
        }
    }
    if rng.chance(10) {
        map.insert("app_id".into(), json!("com.example.other"));
    }
    body
}

fn json_body(rng: &mut Seeded) -> Vec<u8> {
    match rng.below(10) {
        0 => rng.some_bytes(300),
        1 => b"{".to_vec(),
        2 => format!("{}{}", "[".repeat(3000), "]".repeat(3000)).into_bytes(),
        3 => Value::Array((0..rng.below(50)).map(|_| device_body(rng)).collect()).to_string().into_bytes(),
        4 => nasty_value(rng).to_string().into_bytes(),
        _ => {
            let mut body = device_body(rng);
            for key in ["name", "version", "external_url", "checksum", "page", "limit", "cursor", "key_id", "sha256"] {
                if rng.chance(15) {
                    body[key] = nasty_value(rng);
                }
            }
            body.to_string().into_bytes()
        }
    }
}

fn multipart_body(rng: &mut Seeded) -> (String, Vec<u8>) {
    let boundary = if rng.chance(80) { "corpusbnd".to_owned() } else { (*rng.pick(NASTY)).to_owned() };
    let mut body = Vec::new();
    let fields = ["app_id", "version", "checksum", "channel", "delta", "session_key", "file", "unknown", "link"];
    for _ in 0..rng.below(6) {
        let name = *rng.pick(&fields);
        body.extend_from_slice(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"").as_bytes());
        if name == "file" {
            body.extend_from_slice(b"; filename=\"b.zip\"");
        }
        body.extend_from_slice(b"\r\n\r\n");
        let value = match (name, rng.below(4)) {
            ("file", 0) => small_zip("corpus"),
            ("file", _) => rng.some_bytes(4000),
            ("app_id", 0 | 1) => APP_ID.as_bytes().to_vec(),
            ("version", 0 | 1) => format!("2.0.{}", rng.below(1000)).into_bytes(),
            _ => rng.pick(NASTY).as_bytes().to_vec(),
        };
        body.extend_from_slice(&value);
        body.extend_from_slice(b"\r\n");
    }
    match rng.below(4) {
        0 => {}
        1 => body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes()),
        2 => body.extend_from_slice(b"\r\n-"),
        _ => body.extend_from_slice(format!("--{boundary}--").as_bytes()),
    }
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn generate(seed: u64, keys: &Keys, file_key: &str, n_requests: usize) -> Vec<Request> {
    let mut rng = Seeded(seed);
    let mut requests = Vec::with_capacity(n_requests);
    let management = [
        "/app",
        "/apikey",
        "/channel",
        "/device",
        "/bundle",
        "/stats",
        "/rollout",
        "/rollout/halt",
        "/rollout/resume",
        "/rollout/complete",
        "/release_health",
    ];
    let devices = ["/updates", "/updates/manifest_size", "/stats", "/channel_self"];
    let expo_suffixes = ["manifest", "assets/missing", "releases", "releases/rollback", "releases/promote", "keys"];
    for _ in 0..n_requests {
        let mut headers = Vec::new();
        let auth = match rng.below(6) {
            0 => None,
            1 => Some(ADMIN_KEY.to_owned()),
            2 => Some(format!("Bearer {}", keys.scoped_other)),
            3 => Some(format!("Bearer {ADMIN_KEY}x")),
            4 => Some((*rng.pick(NASTY)).to_owned()),
            _ => Some(format!("upd_{}", hex::encode(rng.bytes(20)))),
        };
        let (method, path, body) = match rng.below(12) {
            0..=3 => {
                let method = *rng.pick(&["POST", "POST", "PUT", "GET", "DELETE"]);
                let path = (*rng.pick(&devices)).to_owned();
                let path = if rng.chance(20) { format!("{path}/") } else { path };
                let path = if method == "GET" {
                    format!("{path}?app_id={}&device_id={}&platform=android", rng.pick(NASTY), rng.pick(NASTY))
                } else {
                    path
                };
                (method, path, json_body(&mut rng))
            }
            4..=5 => {
                let method = *rng.pick(&["POST", "PUT", "GET", "DELETE", "PATCH"]);
                let path = (*rng.pick(&management)).to_owned();
                let query = if rng.chance(30) {
                    format!("?app_id={}&page={}", rng.pick(NASTY), rng.pick(NASTY))
                } else {
                    String::new()
                };
                (method, format!("{path}{query}"), json_body(&mut rng))
            }
            6 => {
                let (content_type, body) = multipart_body(&mut rng);
                headers.push(("content-type".to_owned(), content_type));
                ("POST", "/bundle".to_owned(), body)
            }
            7..=8 => {
                let app = if rng.chance(70) { APP_ID } else { *rng.pick(NASTY) };
                let suffix = *rng.pick(&expo_suffixes);
                for (name, values) in [
                    ("expo-platform", &["ios", "android", "web", "", "💥"][..]),
                    ("expo-runtime-version", &["1.0.0", "", "../x", "\u{1}"][..]),
                    ("expo-protocol-version", &["0", "1", "2", "-1", "x"][..]),
                    ("expo-channel-name", &["production", "", "nope"][..]),
                    ("expo-expect-signature", &["sig, keyid=\"main\"", "sig", "=", "keyid=\"\u{7f}\""][..]),
                    ("expo-extra-params", &["a=\"b\"", "((", "x=?1, y=3", ""][..]),
                    ("expo-current-update-id", &["00000000-0000-0000-0000-000000000000", "nope"][..]),
                ] {
                    if rng.chance(60) {
                        headers.push((name.to_owned(), (*rng.pick(values)).to_owned()));
                    }
                }
                let method = *rng.pick(&["GET", "POST", "PUT", "DELETE"]);
                let path = if suffix == "manifest" && rng.chance(30) {
                    format!("/api/manifest?app_id={}", rng.pick(NASTY))
                } else {
                    format!("/expo/{app}/{suffix}")
                };
                // Key generation is slow (RSA); the admin key only ever sends key bodies that fail.
                let body = if suffix == "keys" && method == "POST" {
                    json!({"key_id": rng.pick(NASTY), "private_key": rng.pick(NASTY)}).to_string().into_bytes()
                } else {
                    json_body(&mut rng)
                };
                (method, path, body)
            }
            9 => {
                let file = match rng.below(4) {
                    0 => format!("{}.{}", hex::encode(rng.bytes(32)), rng.pick(&["png", "html", "js", ".."])),
                    1 => (*rng.pick(NASTY)).to_owned(),
                    2 => format!("..%2F..%2F{ESCAPE_MARKER}"),
                    _ => "a".repeat(64),
                };
                let method = *rng.pick(&["GET", "PUT", "HEAD"]);
                let body = if method == "PUT" { rng.some_bytes(2000) } else { Vec::new() };
                (method, format!("/expo/{APP_ID}/assets/{file}"), body)
            }
            10 => {
                let path = match rng.below(5) {
                    0 => format!("/files/{file_key}"),
                    1 => format!("/files/../../{ESCAPE_MARKER}"),
                    2 => format!("/files/{}", rng.pick(NASTY)),
                    3 => "/files/bundles/com.example.app/..%2F..%2Fupdraft.db".to_owned(),
                    _ => format!("/files/staging/{}", hex::encode(rng.bytes(8))),
                };
                let range = *rng.pick(&[
                    "bytes=0-0",
                    "bytes=1-18446744073709551615",
                    "bytes=18446744073709551615-",
                    "bytes=-0",
                    "bytes=5-2",
                    "bytes=0-1,3-4",
                    "items=0-1",
                    "bytes=--1",
                ]);
                if rng.chance(60) {
                    headers.push(("range".to_owned(), range.to_owned()));
                }
                if rng.chance(20) {
                    headers.push(("if-none-match".to_owned(), (*rng.pick(NASTY)).to_owned()));
                }
                (*rng.pick(&["GET", "HEAD", "POST"]), path, Vec::new())
            }
            _ => {
                let path = match rng.below(4) {
                    0 => "/health".to_owned(),
                    1 => "/metrics".to_owned(),
                    2 => format!("/{}", rng.pick(NASTY)),
                    _ => format!("/{}/{}", hex::encode(rng.bytes(4)), rng.pick(NASTY)),
                };
                if path == "/metrics" && rng.chance(50) {
                    headers.push(("authorization".to_owned(), format!("Bearer {METRICS_KEY}")));
                }
                (*rng.pick(&["GET", "POST", "OPTIONS", "HEAD"]), path, json_body(&mut rng))
            }
        };
        if let Some(auth) = auth
            && !headers.iter().any(|(name, _)| name == "authorization")
        {
            headers.push((if rng.chance(20) { "capgkey" } else { "authorization" }.to_owned(), auth));
        }
        if !headers.iter().any(|(name, _)| name == "content-type") && rng.chance(80) {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        requests.push(Request { method, path, headers, body });
    }
    requests
}

#[tokio::test]
async fn a_hostile_corpus_over_every_route_gets_no_5xx_no_hang_no_escape_and_no_leak() {
    run_corpus(REQUESTS, Vec::new(), Vec::new()).await;
}

/// The corpus on S3 with presigned delivery: the gateway signs URLs with the bucket's secret, and neither the
/// secret, the access key id nor any signature it handed out may reach its log.
#[tokio::test]
async fn the_hostile_corpus_on_s3_with_presigned_delivery_leaks_no_signature_or_s3_secret() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with tests/run.sh, which starts s3s-fs and sets it")
        })
    };
    let bucket = crate::s3_storage::create_bucket(&var("UPDRAFT_TEST_S3_ENDPOINT")).await;
    let env = crate::s3_storage::s3_env(&bucket, "presigned", &[]);
    let secrets = vec![
        ("S3 secret key", var("UPDRAFT_TEST_S3_SECRET_KEY")),
        ("S3 access key id", var("UPDRAFT_TEST_S3_ACCESS_KEY")),
    ];
    let presigned = run_corpus(S3_REQUESTS, env, secrets).await;
    assert!(presigned >= 5, "the run handed out presigned URLs to check the log for ({presigned})");
}

/// Runs `n_requests` of the corpus against a gateway started with `env` (plus the corpus's own settings) and checks
/// it; `secrets` are grepped for in its log besides the corpus's keys. Returns how many presigned URLs (redirects
/// to a signed URL) the gateway handed out, whose signatures and queries were grepped for too.
async fn run_corpus(
    n_requests: usize,
    env: Vec<(&'static str, String)>,
    secrets: Vec<(&'static str, String)>,
) -> usize {
    let seed = std::env::var("UPDRAFT_CORPUS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("gateway.log");
    let mut settings: Vec<(&str, &str)> = vec![
        (LOG_FILE_VAR, log.to_str().unwrap()),
        ("UPDRAFT_LOG", "debug"),
        ("UPDRAFT_METRICS_API_KEY", METRICS_KEY),
        ("UPDRAFT_MAX_UPLOAD_BYTES", "262144"),
        // One address and one key send everything: only the per-device limit stays on.
        ("UPDRAFT_LIMITS__ADDRESS_REQUESTS_PER_SECOND", "0"),
        ("UPDRAFT_LIMITS__KEY_REQUESTS_PER_SECOND", "0"),
    ];
    settings.extend(env.iter().map(|(name, value)| (*name, value.as_str())));
    let app = TestApp::spawn_with(&settings).await;
    app.create_app(APP_ID).await;
    app.create_app("com.example.other").await;
    let uploaded = app.upload_ok("1.0.1", small_zip("corpus"), &[("channel", "production")]).await;
    assert_eq!(uploaded["status"], "ok");
    let checked = app.check(device(json!({}))).await;
    let file_key = checked["url"].as_str().unwrap().split("/files/").nth(1).unwrap().to_owned();
    let scoped = app.admin_ok("POST", "/apikey", json!({"name": "other", "app_id": "com.example.other"})).await;
    let keys = Keys { scoped_other: scoped["key"].as_str().unwrap().to_owned() };
    let generated = app
        .admin_ok("POST", &format!("/expo/{APP_ID}/keys"), json!({"key_id": "main", "export_private_key": true}))
        .await;
    let private_key = generated["private_key_pem"].as_str().unwrap().to_owned();

    let requests = generate(seed, &keys, &file_key, n_requests);
    assert_eq!(requests.len(), n_requests);
    // Redirects are answers to look at (a presigned URL is one), not to follow.
    let client = crate::helpers::test_client(
        reqwest::Client::builder().timeout(Duration::from_secs(15)).redirect(reqwest::redirect::Policy::none()),
    );
    let started = Instant::now();
    let outcomes: Vec<(usize, Outcome)> = futures::stream::iter(requests.iter().enumerate())
        .map(|(index, request)| {
            let client = client.clone();
            let url = app.url(&request.path);
            async move {
                let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
                let mut builder = client.request(method, url).body(request.body.clone());
                for (name, value) in &request.headers {
                    if let Ok(value) = reqwest::header::HeaderValue::from_bytes(value.as_bytes()) {
                        builder = builder.header(name.as_str(), value);
                    }
                }
                let outcome = match builder.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let location = response
                            .headers()
                            .get(reqwest::header::LOCATION)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                        response.bytes().await.map(|b| (status, b.to_vec(), location)).map_err(|e| format!("body: {e}"))
                    }
                    Err(error) => Err(format!("{error:?}")),
                };
                (index, outcome)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = started.elapsed();

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut presigned = Vec::new();
    for (index, outcome) in &outcomes {
        match outcome {
            Ok((status, body, location)) => {
                *statuses.entry(*status).or_default() += 1;
                let request = &requests[*index];
                let json_expected = (400..500).contains(status) && request.method != "HEAD" && *status != 416;
                if *status >= 500 || (json_expected && serde_json::from_slice::<Value>(body).is_err()) {
                    failures.push(format!(
                        "#{index} {} {} -> {status} {:?}",
                        request.method,
                        request.path,
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ));
                }
                if let Some(location) = location.as_deref().filter(|l| l.contains("X-Amz-Signature=")) {
                    presigned.push(location.to_owned());
                }
            }
            // A refusal sent while the client was still writing a large body may reach it as a reset; that is an
            // answer, not a hang. Only timeouts count as hangs.
            Err(error) if error.contains("TimedOut") || error.contains("timed out") => {
                failures.push(format!("#{index} {} {} hung: {error}", requests[*index].method, requests[*index].path));
            }
            Err(_) => *statuses.entry(0).or_default() += 1,
        }
    }
    eprintln!(
        "corpus seed {seed}: {} requests in {took:?}, statuses {statuses:?}, {} presigned URLs",
        outcomes.len(),
        presigned.len()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(statuses.get(&0).copied().unwrap_or(0) < outcomes.len() / 100, "too many unanswered: {statuses:?}");

    // Still serving, and nothing escaped the data directory.
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(app.check(device(json!({}))).await["version"], "1.0.1");
    for place in
        [app.data_path().parent().unwrap().to_path_buf(), std::env::current_dir().unwrap(), std::env::temp_dir()]
    {
        let escaped: Vec<_> = std::fs::read_dir(&place)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(ESCAPE_MARKER))
            .collect();
        assert!(escaped.is_empty(), "{escaped:?} in {}", place.display());
    }
    // The log has no secret, no signature the gateway handed out and no panic.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > outcomes.len(), "the debug log was captured ({} lines)", text.lines().count());
    assert!(text.contains(&file_key), "the debug log names the requests' paths, where a signed URL would show");
    let pem_line = private_key.lines().nth(3).unwrap().to_owned();
    let mut looked_for: Vec<(&str, String)> = vec![
        ("admin key", ADMIN_KEY.to_owned()),
        ("scoped key", keys.scoped_other.clone()),
        ("metrics key", METRICS_KEY.to_owned()),
        ("private key", pem_line),
    ];
    looked_for.extend(secrets);
    for url in &presigned {
        let (_, query) = url.split_once('?').expect("a presigned URL has a query");
        let signature = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Signature=")).unwrap();
        assert_eq!(signature.len(), 64, "a SigV4 signature: {url}");
        looked_for.push(("presigned signature", signature.to_owned()));
        looked_for.push(("presigned query", query.to_owned()));
    }
    for (what, secret) in &looked_for {
        assert!(!secret.is_empty(), "{what} is empty");
        assert!(!text.contains(secret.as_str()), "the log holds the {what}");
    }
    assert!(!text.contains("panicked"), "a panic was logged");
    presigned.len()
}
