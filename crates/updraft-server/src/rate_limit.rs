//! Rate limits: device endpoints per device and per client address, management routes per API key, answered 429
//! with `Retry-After` (which the Capgo plugin honours, pausing all its traffic until then).
//!
//! Each limit is a token bucket per key, kept in a sharded in-memory map: a check hashes the key, locks one shard for
//! a few arithmetic operations (never across an await) and unlocks. Memory is bounded: a shard past its capacity
//! forgets the buckets that have refilled (a full bucket and no bucket are the same thing), then the oldest.
//! The limits are per instance; the defaults are far above what a real device, CLI or test sends.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use updraft_core::codes;

use crate::limits::LimitSettings;

/// One limit: `per_second` tokens a second, at most `burst` saved up; `per_second == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub(crate) per_second: f64,
    pub(crate) burst: f64,
}

/// The limits of one gateway instance.
pub(crate) struct RateLimits {
    device: Limiter,
    address: Limiter,
    key: Limiter,
}

impl RateLimits {
    pub(crate) fn new(settings: &LimitSettings) -> Self {
        Self {
            device: Limiter::new(settings.device_rate()),
            address: Limiter::new(settings.address_rate()),
            key: Limiter::new(settings.key_rate()),
        }
    }

    /// One request of a device (`app`, `device`): `Err(retry_after)` past its limit.
    pub(crate) fn device(&self, app: &str, device: &str) -> Result<(), Duration> {
        self.device.take(&(app, device))
    }

    /// The 429 of a device past its limit, in the device endpoints' `{error, message}` shape.
    pub(crate) fn device_refusal(retry_after: Duration) -> HttpResponse {
        too_many(retry_after, "this device sends requests faster than the gateway allows; retry after the pause")
    }
}

/// A token-bucket limiter over a sharded map.
struct Limiter {
    rate: Rate,
    shards: Box<[Mutex<HashMap<u64, Bucket>>]>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    refreshed: Instant,
}

const SHARDS: usize = 64;
/// Keys remembered per shard (64 shards: about 260 000 keys, some 10 MB at most).
const SHARD_CAPACITY: usize = 4096;

impl Limiter {
    fn new(rate: Rate) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        Self { rate, shards, hasher: Default::default() }
    }

    /// Takes one token for `key`, or says how long until one is there.
    fn take(&self, key: &impl Hash) -> Result<(), Duration> {
        if self.rate.per_second <= 0.0 {
            return Ok(());
        }
        let hash = self.hasher.hash_one(key);
        let now = Instant::now();
        let Ok(mut shard) = self.shards[(hash as usize) % SHARDS].lock() else { return Ok(()) };
        if shard.len() >= SHARD_CAPACITY && !shard.contains_key(&hash) {
            forget_refilled(&mut shard, self.rate, now);
        }
        let bucket = shard.entry(hash).or_insert(Bucket { tokens: self.rate.burst, refreshed: now });
        let elapsed = now.saturating_duration_since(bucket.refreshed).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        bucket.refreshed = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate.per_second))
        }
    }
}

/// Drops the buckets that have refilled by now; if none has, the half least recently used.
fn forget_refilled(shard: &mut HashMap<u64, Bucket>, rate: Rate, now: Instant) {
    shard.retain(|_, bucket| {
        bucket.tokens + now.saturating_duration_since(bucket.refreshed).as_secs_f64() * rate.per_second < rate.burst
    });
    if shard.len() >= SHARD_CAPACITY {
        let mut ages: Vec<Instant> = shard.values().map(|b| b.refreshed).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        shard.retain(|_, bucket| bucket.refreshed > cut);
    }
}

/// A 429 with `Retry-After` (whole seconds, at least 1) and `moreInfo.retryAfterSeconds`, which the plugin also
/// reads. The code is not Capgo's `too_many_requests`, which would make a device queue a `rate_limit_reached` event.
fn too_many(retry_after: Duration, message: &str) -> HttpResponse {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    HttpResponse::TooManyRequests().insert_header(("Retry-After", seconds.to_string())).json(serde_json::json!({
        "error": codes::RATE_LIMITED,
        "message": message,
        "moreInfo": { "retryAfterSeconds": seconds },
    }))
}

/// Limits every request by client address, and management requests by the key they present (a request without a
/// key counts against its address only), before the handler runs. Device limits are applied by the device
/// handlers, which know the device.
pub(crate) async fn enforce(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(limits) = request.app_data::<web::Data<RateLimits>>() {
        let address: Option<IpAddr> = request.peer_addr().map(|peer| peer.ip());
        if let Some(address) = address
            && let Err(retry_after) = limits.address.take(&address)
        {
            let refusal = too_many(retry_after, "too many requests from this address; retry after the pause");
            return Ok(request.into_response(refusal));
        }
        if let Some(key) = presented_key(&request)
            && let Err(retry_after) = limits.key.take(&key)
        {
            let refusal = too_many(retry_after, "too many requests with this API key; retry after the pause");
            return Ok(request.into_response(refusal));
        }
    }
    next.call(request).await.map(ServiceResponse::map_into_boxed_body)
}

/// The API key a request presents, as the `Caller` extractor reads it (`capgkey`, else `authorization`).
fn presented_key(request: &ServiceRequest) -> Option<&str> {
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.trim().is_empty());
    header("capgkey").or_else(|| header("authorization"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = Limiter::new(Rate { per_second: 10.0, burst: 3.0 });
        for _ in 0..3 {
            assert_eq!(limiter.take(&"a"), Ok(()));
        }
        let wait = limiter.take(&"a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert_eq!(limiter.take(&"b"), Ok(()), "keys are independent");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(limiter.take(&"a"), Ok(()), "a token came back");
    }

    #[test]
    fn a_zero_rate_is_off() {
        let limiter = Limiter::new(Rate { per_second: 0.0, burst: 0.0 });
        assert!((0..10_000).all(|_| limiter.take(&"a").is_ok()));
    }

    #[test]
    fn memory_stays_bounded_under_random_keys() {
        let limiter = Limiter::new(Rate { per_second: 1.0, burst: 5.0 });
        for n in 0..(SHARDS * SHARD_CAPACITY * 3) {
            let _ = limiter.take(&n);
        }
        let remembered: usize = limiter.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(remembered <= SHARDS * SHARD_CAPACITY, "{remembered}");
        // Buckets still limited survive a pass that forgets the refilled ones.
        let limiter = Limiter::new(Rate { per_second: 0.001, burst: 1.0 });
        assert_eq!(limiter.take(&"hot"), Ok(()));
        let mut shard = HashMap::new();
        let now = Instant::now();
        shard.insert(1, Bucket { tokens: 0.0, refreshed: now });
        shard.insert(2, Bucket { tokens: 1.0, refreshed: now });
        forget_refilled(&mut shard, limiter.rate, now);
        assert_eq!(shard.keys().collect::<Vec<_>>(), [&1]);
    }

    #[test]
    fn the_refusal_says_when_to_retry() {
        let response = too_many(Duration::from_millis(1500), "slow down");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("retry-after").unwrap(), "2");
    }
}
