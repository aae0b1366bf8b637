//! Webhooks: when `UPDRAFT_WEBHOOK_URL` is set, publishes, rollout changes and halts are POSTed there as JSON,
//! signed with HMAC-SHA256 under `UPDRAFT_WEBHOOK_SECRET`, from a task of their own (never on the request path).
//!
//! Delivery (the payload is documented in `docs/api.md`, "Webhooks"):
//! - Events wait in a bounded queue ([`QUEUE_CAPACITY`]); an event that does not fit is dropped, counted
//!   (`updraft_webhooks_total{outcome="dropped"}`) and logged, so a dead receiver never holds memory or requests.
//! - Each event is sent until the receiver answers 2xx, with a back-off from 1 s doubling to 60 s, at most
//!   [`MAX_ATTEMPTS`] times; a 4xx other than 408 and 429 says the receiver will never take it, and stops the
//!   retries. Every attempt has a 10 s timeout. Events are sent one at a time, in order.
//! - The signature is `X-Updraft-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, with the
//!   timestamp (Unix seconds) in `X-Updraft-Timestamp`, so a receiver can refuse replays of old deliveries; a
//!   retry is signed again with its own timestamp. The secret is never logged.
//! - The queue is in memory: what is still queued or being retried when the gateway stops is not delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::config::Secret;

/// Events waiting to be delivered, at most.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

/// Attempts per event, at most.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// The first retry's delay.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One attempt's timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// An event to announce.
#[derive(Debug, Clone)]
pub(crate) struct WebhookEvent {
    /// `release.published`, `rollout.started`, `rollout.changed`, `rollout.halted`, …
    pub(crate) kind: &'static str,
    /// The app.
    pub(crate) app_id: String,
    /// What happened (each kind's fields, documented in `docs/api.md`).
    pub(crate) data: Value,
    /// When.
    pub(crate) at: DateTime<Utc>,
}

/// What became of events, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct WebhookCounts {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl WebhookCounts {
    /// (outcome, count) pairs.
    pub(crate) fn outcomes(&self) -> [(&'static str, u64); 4] {
        [
            ("delivered", self.delivered.load(Ordering::Relaxed)),
            ("retried", self.retried.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
            ("dropped", self.dropped.load(Ordering::Relaxed)),
        ]
    }
}

/// The sending side, held in `AppState`: does nothing when no URL is configured.
#[derive(Clone, Default)]
pub(crate) struct Webhooks {
    sender: Option<mpsc::Sender<WebhookEvent>>,
    counts: Arc<WebhookCounts>,
}

impl Webhooks {
    /// Starts the delivery task when `url` is set (the secret is then required, checked by the settings).
    pub(crate) fn start(url: Option<&str>, secret: Option<&Secret>) -> anyhow::Result<Self> {
        let counts = Arc::new(WebhookCounts::default());
        let (Some(url), Some(secret)) = (url, secret) else { return Ok(Self { sender: None, counts }) };
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|error| anyhow::anyhow!("building the webhook client: {error}"))?;
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let delivery =
            Delivery { client, url: url.to_owned(), secret: secret.expose().to_owned(), counts: counts.clone() };
        tokio::spawn(delivery.run(receiver));
        Ok(Self { sender: Some(sender), counts })
    }

    /// Queues an event without waiting; a full queue drops it (counted, logged).
    pub(crate) fn send(&self, event: WebhookEvent) {
        let Some(sender) = &self.sender else { return };
        if let Err(error) = sender.try_send(event) {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            let kind = match &error {
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => event.kind,
            };
            tracing::warn!(
                webhook.event = kind,
                "webhook queue full ({QUEUE_CAPACITY} events): dropped a {kind} event"
            );
        }
    }

    /// What became of events.
    pub(crate) fn counts(&self) -> &WebhookCounts {
        &self.counts
    }
}

/// `release.published` for a Capgo bundle (uploaded or registered), and the channel it was published to.
pub(crate) fn bundle_published(
    bundle: &updraft_core::Bundle,
    channel: Option<&updraft_core::ChannelName>,
) -> WebhookEvent {
    WebhookEvent {
        kind: "release.published",
        app_id: bundle.app_id.as_str().to_owned(),
        data: json!({
            "protocol": "capgo",
            "action": "publish",
            "version": bundle.version.as_str(),
            "channel": channel.map(|c| c.as_str()),
        }),
        at: Utc::now(),
    }
}

/// `release.published` for Expo releases recorded by a publish, a rollback or a promotion (`action`).
pub(crate) fn expo_releases_recorded(
    app_id: &updraft_core::AppId,
    action: &'static str,
    releases: &[updraft_core::ExpoRelease],
) -> WebhookEvent {
    let first = releases.first();
    WebhookEvent {
        kind: "release.published",
        app_id: app_id.as_str().to_owned(),
        data: json!({
            "protocol": "expo",
            "action": action,
            "channel": first.map(|r| r.channel.as_str()),
            "group_id": first.map(|r| r.group_id.as_str()),
            "releases": releases.iter().map(|r| json!({
                "id": r.id,
                "platform": r.platform.as_str(),
                "runtime_version": r.runtime_version,
            })).collect::<Vec<_>>(),
        }),
        at: Utc::now(),
    }
}

/// The fields every rollout event carries.
fn rollout_fields(stored: &updraft_core::StoredRollout) -> serde_json::Map<String, Value> {
    let rollout = &stored.rollout;
    let policy = rollout.policy();
    let fields = json!({
        "channel": rollout.channel().as_str(),
        "rollout_id": rollout.id().as_str(),
        "state": rollout.state().as_str(),
        "percent": rollout.percent().to_string(),
        "candidate": rollout.candidate().label(),
        "stable": rollout.stable().label(),
        "max_failure_rate": policy.max_failure_rate(),
        "min_devices": policy.min_devices(),
        "action": stored.last_change.action,
        "by": stored.last_change.by,
        "reason": stored.last_change.reason,
    });
    match fields {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// `rollout.changed` for a start, a change of percentage or policy, a resume or a completion (`data.action`).
pub(crate) fn rollout_changed(stored: &updraft_core::StoredRollout) -> WebhookEvent {
    WebhookEvent {
        kind: "rollout.changed",
        app_id: stored.rollout.app_id().as_str().to_owned(),
        data: Value::Object(rollout_fields(stored)),
        at: stored.last_change.at,
    }
}

/// `rollout.halted`: the rollout's fields and the halt's record (who, where, why, the figures).
pub(crate) fn rollout_halted(stored: &updraft_core::StoredRollout, halt: &updraft_core::HaltRecord) -> WebhookEvent {
    let mut data = rollout_fields(stored);
    data.insert(
        "halt".into(),
        json!({
            "halted_at": halt.halted_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "halted_by": halt.halted_by,
            "instance": halt.instance,
            "reason": halt.reason,
            "devices": halt.figures.devices,
            "failures": halt.figures.failures,
            "failure_rate": halt.failure_rate,
            "lower_bound": halt.lower_bound,
        }),
    );
    WebhookEvent {
        kind: "rollout.halted",
        app_id: stored.rollout.app_id().as_str().to_owned(),
        data: Value::Object(data),
        at: halt.halted_at,
    }
}

/// The body of an event: `{id, type, created_at, app_id, data}`.
pub(crate) fn payload(event: &WebhookEvent, id: &str) -> Value {
    json!({
        "id": id,
        "type": event.kind,
        "created_at": event.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "app_id": event.app_id,
        "data": event.data,
    })
}

/// `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`.
pub(crate) fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Delivery {
    client: reqwest::Client,
    url: String,
    secret: String,
    counts: Arc<WebhookCounts>,
}

impl Delivery {
    async fn run(self, mut receiver: mpsc::Receiver<WebhookEvent>) {
        while let Some(event) = receiver.recv().await {
            self.deliver(&event).await;
        }
    }

    async fn deliver(&self, event: &WebhookEvent) {
        let id = uuid::Uuid::new_v4().to_string();
        let body = payload(event, &id).to_string();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let timestamp = Utc::now().timestamp();
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("user-agent", concat!("updraft/", env!("CARGO_PKG_VERSION")))
                .header("x-updraft-event", event.kind)
                .header("x-updraft-delivery", &id)
                .header("x-updraft-timestamp", timestamp.to_string())
                .header("x-updraft-signature", signature(&self.secret, timestamp, body.as_bytes()))
                .body(body.clone())
                .send()
                .await;
            let problem = match sent {
                Ok(response) if response.status().is_success() => {
                    self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(webhook.event = event.kind, webhook.delivery = %id, attempt, "webhook delivered");
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                        self.counts.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            webhook.event = event.kind,
                            webhook.delivery = %id,
                            "webhook receiver refused the {} event with {status}; not retrying",
                            event.kind
                        );
                        return;
                    }
                    format!("answered {status}")
                }
                // The URL's host and path only: a query may hold a token.
                Err(error) => format!("could not be reached ({})", error.without_url()),
            };
            if attempt == MAX_ATTEMPTS {
                break;
            }
            self.counts.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                webhook.event = event.kind,
                webhook.delivery = %id,
                attempt,
                "webhook receiver {problem}; retrying the {} event in {} s",
                event.kind,
                backoff.as_secs()
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            webhook.event = event.kind,
            webhook.delivery = %id,
            "gave up delivering the {} event after {MAX_ATTEMPTS} attempts",
            event.kind
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // A known value first (HMAC-SHA256 of the pangram under "key"), then the signed message's layout.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let signed = signature("s3cret", 1_700_000_000, br#"{"a":1}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(br#"1700000000.{"a":1}"#);
        assert_eq!(signed, format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
        assert_ne!(signed, signature("other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(signed, signature("s3cret", 1_700_000_001, br#"{"a":1}"#));
    }

    #[test]
    fn the_payload_names_the_event() {
        let event = WebhookEvent {
            kind: "rollout.halted",
            app_id: "com.example.app".into(),
            data: json!({"channel": "production"}),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        assert_eq!(
            payload(&event, "id-1"),
            json!({"id": "id-1", "type": "rollout.halted", "created_at": "2023-11-14T22:13:20.000Z",
                   "app_id": "com.example.app", "data": {"channel": "production"}})
        );
    }

    #[tokio::test]
    async fn without_a_url_nothing_is_queued() {
        let hooks = Webhooks::start(None, None).unwrap();
        hooks.send(WebhookEvent { kind: "release.published", app_id: "a".into(), data: json!({}), at: Utc::now() });
        assert_eq!(hooks.counts().outcomes().iter().map(|(_, n)| n).sum::<u64>(), 0);
    }
}
