//! Webhooks: a receiver in the test (a small HTTP server) gets signed JSON for publishes, retried after a failure.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, eventually, small_zip};

pub const SECRET: &str = "webhook-secret-0123456789";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether `X-Updraft-Signature` is HMAC-SHA256 under `secret` of `<X-Updraft-Timestamp>.<body>`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let (Some(timestamp), Some(signature)) =
            (self.header("x-updraft-timestamp"), self.header("x-updraft-signature"))
        else {
            return false;
        };
        let Some(hex_digest) = signature.strip_prefix("sha256=") else { return false };
        let Ok(digest) = hex::decode(hex_digest) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        mac.verify_slice(&digest).is_ok()
    }
}

/// A receiver on a random loopback port: answers each request with the next status of `statuses` (then 200), and
/// keeps every request.
pub struct Receiver {
    pub url: String,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start(statuses: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/updraft", listener.local_addr().unwrap());
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let statuses = Arc::new(Mutex::new(statuses.to_vec()));
        let kept = deliveries.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let kept = kept.clone();
                let statuses = statuses.clone();
                tokio::spawn(async move {
                    while let Some(delivery) = read_request(&mut socket).await {
                        kept.lock().unwrap().push(delivery);
                        let status = {
                            let mut statuses = statuses.lock().unwrap();
                            if statuses.is_empty() { 200 } else { statuses.remove(0) }
                        };
                        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, deliveries }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }
}

/// Reads one HTTP/1.1 request (headers, then a `content-length` body); `None` at the end of the connection.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Delivery> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Delivery { headers, body })
}

/// The value of a `/metrics` sample.
pub async fn metric(app: &TestApp, sample: &str) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {sample} in /metrics"))
}

#[tokio::test]
async fn a_publish_arrives_signed_and_is_retried_after_a_failure() {
    let receiver = Receiver::start(&[503]).await;
    let app = TestApp::spawn_with(&[("UPDRAFT_WEBHOOK_URL", &receiver.url), ("UPDRAFT_WEBHOOK_SECRET", SECRET)]).await;
    app.create_app(crate::helpers::APP_ID).await;
    app.upload_ok("1.0.1", small_zip("hooked"), &[("channel", "production")]).await;
    // The first attempt is answered 503; the retry (about a second later) is taken.
    let deliveries = eventually("the webhook to be retried", || async {
        let got = receiver.deliveries();
        (got.len() >= 2).then_some(got)
    })
    .await;
    // Events go out one at a time, in order: once a later publish's event has arrived, anything more of the first
    // (a second event, or a retry of the delivered one) would have come before it.
    app.upload_ok("1.0.2", small_zip("sentinel"), &[]).await;
    let all = eventually("the next publish's event", || async {
        let got = receiver.deliveries();
        (got.len() >= 3).then_some(got)
    })
    .await;
    assert_eq!(all.len(), 3, "delivered once after the retry, not again: {all:?}");
    assert_eq!(all[2].json()["data"]["version"], "1.0.2");
    for delivery in &deliveries {
        assert!(delivery.signed_with(SECRET), "{delivery:?}");
        assert!(!delivery.signed_with("another-secret-0123456789"));
        assert_eq!(delivery.header("content-type"), Some("application/json"));
        assert_eq!(delivery.header("x-updraft-event"), Some("release.published"));
        let timestamp: i64 = delivery.header("x-updraft-timestamp").unwrap().parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    }
    assert_eq!(deliveries[0].body, deliveries[1].body, "a retry sends the same event");
    assert_eq!(deliveries[0].header("x-updraft-delivery"), deliveries[1].header("x-updraft-delivery"));
    let body = deliveries[1].json();
    assert_eq!(body["type"], "release.published");
    assert_eq!(body["app_id"], crate::helpers::APP_ID);
    assert_eq!(body["id"].as_str(), deliveries[1].header("x-updraft-delivery"));
    assert_eq!(
        body["data"],
        json!({"protocol": "capgo", "action": "publish", "version": "1.0.1", "channel": "production"})
    );
    // A body changed in transit no longer verifies.
    let mut tampered = deliveries[1].clone();
    tampered.body = tampered.body.replace_first(b"1.0.1", b"6.6.6");
    assert!(!tampered.signed_with(SECRET));
    eventually("the last delivery to be counted", || async {
        (metric(&app, "updraft_webhooks_total{outcome=\"delivered\"}").await >= 2).then_some(())
    })
    .await;
    assert_eq!(metric(&app, "updraft_webhooks_total{outcome=\"delivered\"}").await, 2);
    assert_eq!(metric(&app, "updraft_webhooks_total{outcome=\"retried\"}").await, 1);
    assert_eq!(metric(&app, "updraft_webhooks_total{outcome=\"failed\"}").await, 0);
}

#[tokio::test]
async fn a_webhook_url_without_a_secret_stops_the_gateway_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
        .arg("serve")
        .env_clear()
        .env("UPDRAFT_LISTEN", "127.0.0.1:0")
        .env("UPDRAFT_DATA_DIR", tempfile::tempdir().unwrap().path())
        .env("UPDRAFT_WEBHOOK_URL", "http://127.0.0.1:9/hooks")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("UPDRAFT_WEBHOOK_SECRET"), "{stderr}");
}

trait ReplaceFirst {
    fn replace_first(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).expect("present");
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}
