//! Bounds on what a client may make the gateway hold: how long a request head and a body may take to arrive, and
//! which declared body sizes are refused before a byte of the body is read (`[limits]`, `UPDRAFT_LIMITS__*`).
//!
//! The body caps themselves (1 MiB for JSON, `max_upload_bytes` for uploads) are enforced while reading, in
//! `routes/body.rs` and `upload.rs`; this module refuses a `Content-Length` past them at once, and owns the read
//! timeouts those readers apply. Rate limits are `rate_limit.rs`.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use anyhow::Context;
use serde::Deserialize;
use updraft_core::codes;

use crate::routes::body::JSON_BODY_LIMIT;

/// What the multipart framing (boundaries, part headers, text fields) may add to an upload's file.
pub(crate) const MULTIPART_SLACK_BYTES: u64 = 1024 * 1024;

/// `[limits]`: timeouts for slow clients. Defaults are far above what a real device or CLI needs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitSettings {
    /// A request head (request line and headers) must arrive within this many seconds of the connection's start.
    pub(crate) request_head_timeout_seconds: u64,
    /// A JSON body (every route but uploads) must arrive whole within this many seconds.
    pub(crate) body_timeout_seconds: u64,
    /// An upload (a bundle or an Expo asset) is dropped when no byte arrives for this many seconds.
    pub(crate) upload_idle_timeout_seconds: u64,
    /// Requests a second one device may send to the device endpoints (0 turns the limit off).
    pub(crate) device_requests_per_second: u64,
    /// Requests a device may send at once before its rate applies.
    pub(crate) device_burst: u64,
    /// Requests a second one client address may send, to any route (0: off). Behind a proxy or load balancer
    /// every request comes from its address: raise this, or turn it off there.
    pub(crate) address_requests_per_second: u64,
    /// Requests an address may send at once.
    pub(crate) address_burst: u64,
    /// Requests a second sent with one API key (0: off).
    pub(crate) key_requests_per_second: u64,
    /// Requests with one key at once.
    pub(crate) key_burst: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            request_head_timeout_seconds: 10,
            body_timeout_seconds: 20,
            upload_idle_timeout_seconds: 30,
            device_requests_per_second: 20,
            device_burst: 200,
            address_requests_per_second: 5000,
            address_burst: 20_000,
            key_requests_per_second: 200,
            key_burst: 2000,
        }
    }
}

/// The environment variables of [`LimitSettings`].
pub(crate) const LIMIT_ENV: [&str; 3] = [
    "UPDRAFT_LIMITS__REQUEST_HEAD_TIMEOUT_SECONDS",
    "UPDRAFT_LIMITS__BODY_TIMEOUT_SECONDS",
    "UPDRAFT_LIMITS__UPLOAD_IDLE_TIMEOUT_SECONDS",
];

/// The environment variables of the rate limits in [`LimitSettings`].
pub(crate) const RATE_ENV: [&str; 6] = [
    "UPDRAFT_LIMITS__DEVICE_REQUESTS_PER_SECOND",
    "UPDRAFT_LIMITS__DEVICE_BURST",
    "UPDRAFT_LIMITS__ADDRESS_REQUESTS_PER_SECOND",
    "UPDRAFT_LIMITS__ADDRESS_BURST",
    "UPDRAFT_LIMITS__KEY_REQUESTS_PER_SECOND",
    "UPDRAFT_LIMITS__KEY_BURST",
];

impl LimitSettings {
    /// Applies the `UPDRAFT_LIMITS__*` variables.
    pub(crate) fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let [head, body, upload] = LIMIT_ENV;
        for (name, field) in [
            (head, &mut self.request_head_timeout_seconds),
            (body, &mut self.body_timeout_seconds),
            (upload, &mut self.upload_idle_timeout_seconds),
        ] {
            if let Some(value) = env(name) {
                *field = value.trim().parse().with_context(|| format!("{name}: {value:?} is not a whole number"))?;
            }
        }
        let [device, device_burst, address, address_burst, key, key_burst] = RATE_ENV;
        for (name, field) in [
            (device, &mut self.device_requests_per_second),
            (device_burst, &mut self.device_burst),
            (address, &mut self.address_requests_per_second),
            (address_burst, &mut self.address_burst),
            (key, &mut self.key_requests_per_second),
            (key_burst, &mut self.key_burst),
        ] {
            if let Some(value) = env(name) {
                *field = value.trim().parse().with_context(|| format!("{name}: {value:?} is not a whole number"))?;
            }
        }
        Ok(())
    }

    /// The per-device limit.
    pub(crate) fn device_rate(&self) -> crate::rate_limit::Rate {
        rate(self.device_requests_per_second, self.device_burst)
    }

    /// The per-address limit.
    pub(crate) fn address_rate(&self) -> crate::rate_limit::Rate {
        rate(self.address_requests_per_second, self.address_burst)
    }

    /// The per-key limit.
    pub(crate) fn key_rate(&self) -> crate::rate_limit::Rate {
        rate(self.key_requests_per_second, self.key_burst)
    }

    /// Checks the values.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let [head, body, upload] = LIMIT_ENV;
        for (name, value) in [
            (head, self.request_head_timeout_seconds),
            (body, self.body_timeout_seconds),
            (upload, self.upload_idle_timeout_seconds),
        ] {
            if !(1..=3600).contains(&value) {
                anyhow::bail!("{name}: use 1 to 3600 seconds, got {value}");
            }
        }
        Ok(())
    }
}

/// A rate whose burst is at least one request.
fn rate(per_second: u64, burst: u64) -> crate::rate_limit::Rate {
    crate::rate_limit::Rate { per_second: per_second as f64, burst: burst.max(1) as f64 }
}

/// The read timeouts in force, set once by `serve` (the defaults until then, e.g. in unit tests).
static TIMEOUTS: OnceLock<LimitSettings> = OnceLock::new();

/// Makes `settings` the timeouts every body reader applies.
pub(crate) fn install(settings: &LimitSettings) {
    let _ = TIMEOUTS.set(settings.clone());
}

fn timeouts() -> &'static LimitSettings {
    TIMEOUTS.get_or_init(LimitSettings::default)
}

/// How long a JSON body may take to arrive.
pub(crate) fn body_timeout() -> Duration {
    Duration::from_secs(timeouts().body_timeout_seconds)
}

/// How long an upload may send nothing.
pub(crate) fn upload_idle_timeout() -> Duration {
    Duration::from_secs(timeouts().upload_idle_timeout_seconds)
}

/// Refuses, before the handler runs and so before any of the body is read, a request whose `Content-Length` is past
/// what its route would ever accept: 413 with `{"error":"body_too_large","message"}` and the connection closed.
pub(crate) async fn refuse_oversized_bodies(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(declared) = declared_length(request.headers())
        && let Some(max_upload_bytes) =
            request.app_data::<web::Data<crate::state::AppState>>().map(|state| state.settings.max_upload_bytes)
    {
        let limit = body_limit(request.method(), request.path(), max_upload_bytes);
        if declared > limit {
            let mut response = HttpResponse::PayloadTooLarge().json(serde_json::json!({
                "error": codes::BODY_TOO_LARGE,
                "message": format!(
                    "the body declares {declared} bytes, more than the {limit} this endpoint accepts; send a smaller \
                     request (uploads: UPDRAFT_MAX_UPLOAD_BYTES)"
                ),
            }));
            response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
            return Ok(request.into_response(response));
        }
    }
    next.call(request).await.map(ServiceResponse::map_into_boxed_body)
}

/// The body length a request declares (`Content-Length`), if it declares one that parses.
pub(crate) fn declared_length(headers: &actix_web::http::header::HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

/// The largest body a route accepts: an upload's file plus its framing, else a JSON body.
fn body_limit(method: &Method, path: &str, max_upload_bytes: u64) -> u64 {
    let path = path.strip_suffix('/').unwrap_or(path);
    let is_upload = (method == Method::POST && path == "/bundle")
        || (method == Method::PUT
            && path.starts_with("/expo/")
            && path.rsplit('/').nth(1) == Some("assets")
            && !path.ends_with("/assets/missing"));
    if is_upload { max_upload_bytes.saturating_add(MULTIPART_SLACK_BYTES) } else { JSON_BODY_LIMIT as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_get_the_upload_limit_and_everything_else_the_json_limit() {
        let upload = 100;
        let json = JSON_BODY_LIMIT as u64;
        for (method, path, expected) in [
            (Method::POST, "/bundle", upload + MULTIPART_SLACK_BYTES),
            (Method::POST, "/bundle/", upload + MULTIPART_SLACK_BYTES),
            (Method::PUT, "/expo/com.example.app/assets/abc", upload + MULTIPART_SLACK_BYTES),
            (Method::POST, "/expo/com.example.app/assets/missing", json),
            (Method::GET, "/bundle", json),
            (Method::POST, "/updates", json),
            (Method::POST, "/expo/com.example.app/releases", json),
        ] {
            assert_eq!(body_limit(&method, path, upload), expected, "{method} {path}");
        }
    }

    #[test]
    fn limits_from_env_are_checked() {
        let mut settings = LimitSettings::default();
        settings.apply_env(&|name| (name == LIMIT_ENV[1]).then(|| "3".to_owned())).unwrap();
        assert_eq!(settings.body_timeout_seconds, 3);
        settings.validate().unwrap();
        settings.body_timeout_seconds = 0;
        assert!(settings.validate().unwrap_err().to_string().contains(LIMIT_ENV[1]));
        assert!(settings.apply_env(&|_| Some("soon".to_owned())).is_err());
    }
}
