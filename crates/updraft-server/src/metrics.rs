//! In-process metrics, rendered by `GET /metrics` in Prometheus text format: requests and latency per route and
//! status, update-check outcomes, and the last release-index refresh time.
//!
//! Recording is on the hot path, so it touches nothing another core writes: each worker thread records into its own
//! shard (an uncontended lock, maps keyed by static labels with a cheap hash), and rendering adds the shards up.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Shards: more than the worker threads, so threads rarely share one.
const SHARDS: usize = 8;

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    n: u64,
    sum: f64,
}

impl Histogram {
    fn add(&mut self, other: &Self) {
        for (count, more) in self.counts.iter_mut().zip(other.counts) {
            *count += more;
        }
        self.n += other.n;
        self.sum += other.sum;
    }
}

/// Labels are a handful of short static strings: FNV-1a is plenty, and far cheaper than SipHash.
#[derive(Default)]
struct LabelHash(u64);

impl Hasher for LabelHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type Labels<K, V> = HashMap<K, V, BuildHasherDefault<LabelHash>>;

#[derive(Default)]
struct Shard {
    requests: Labels<(&'static str, u16), Histogram>,
    outcomes: Labels<&'static str, Labels<String, u64>>,
}

/// Keeps shards out of each other's cache lines.
#[derive(Default)]
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// The gateway's metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    shards: [Padded; SHARDS],
    refresh_micros: AtomicU64,
    remote_changes: AtomicU64,
    /// Rollout halts decided by this instance: by the health rule, by an operator.
    halts_automatic: AtomicU64,
    halts_operator: AtomicU64,
    /// Judgements of active rollouts' figures by the health rule, by this instance's decider.
    health_checks: AtomicU64,
    /// Download bytes by representation.
    pub(crate) served: ServedBytes,
}

/// Bytes of downloads the gateway sent itself (not redirects), by representation: the stored original, a stored
/// gzip or brotli copy, or an Expo bsdiff patch.
#[derive(Default)]
pub(crate) struct ServedBytes {
    identity: AtomicU64,
    gzip: AtomicU64,
    br: AtomicU64,
    patch: AtomicU64,
}

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Representation {
    Encoded(updraft_core::Encoding),
    Patch,
}

impl ServedBytes {
    /// Counts `bytes` sent as `representation`.
    pub(crate) fn add(&self, representation: Representation, bytes: u64) {
        use updraft_core::Encoding;
        let counter = match representation {
            Representation::Encoded(Encoding::Identity) => &self.identity,
            Representation::Encoded(Encoding::Gzip) => &self.gzip,
            Representation::Encoded(Encoding::Brotli) => &self.br,
            Representation::Patch => &self.patch,
        };
        counter.fetch_add(bytes, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        out.push_str("# HELP updraft_download_bytes_total Download bytes sent by the gateway, by representation (identity, gzip, br, patch).\n# TYPE updraft_download_bytes_total counter\n");
        for (label, counter) in
            [("identity", &self.identity), ("gzip", &self.gzip), ("br", &self.br), ("patch", &self.patch)]
        {
            let _ = writeln!(
                out,
                "updraft_download_bytes_total{{representation=\"{label}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

impl Metrics {
    /// Records one finished request (`route` is the route pattern, from a fixed set).
    pub(crate) fn observe_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut shard = self.shard();
        let histogram = shard.requests.entry((route, status)).or_default();
        histogram.n += 1;
        histogram.sum += seconds;
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
    }

    /// Records the outcome of an update check (`protocol` is `capgo` or `expo`; `outcome` is `update`, `no_update`
    /// or a refusal code).
    pub(crate) fn observe_outcome(&self, protocol: &'static str, outcome: &str) {
        let mut shard = self.shard();
        let by_outcome = shard.outcomes.entry(protocol).or_default();
        // Looked up by &str first: no allocation once an outcome has been seen.
        match by_outcome.get_mut(outcome) {
            Some(count) => *count += 1,
            None => {
                by_outcome.insert(outcome.to_owned(), 1);
            }
        }
    }

    /// This thread's shard.
    fn shard(&self) -> MutexGuard<'_, Shard> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        let index = INDEX.with(|index| *index);
        self.shards[index].0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shards(&self) -> impl Iterator<Item = MutexGuard<'_, Shard>> {
        self.shards.iter().map(|shard| shard.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records how long the last release-index refresh took (write committed → index swapped).
    pub(crate) fn observe_refresh(&self, elapsed: Duration) {
        self.refresh_micros.store(elapsed.as_micros().try_into().unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts one app reloaded because another instance changed it.
    pub(crate) fn count_remote_change(&self) {
        self.remote_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a rollout halt this instance made (`automatic`: by the health rule).
    pub(crate) fn count_halt(&self, automatic: bool) {
        let counter = if automatic { &self.halts_automatic } else { &self.halts_operator };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one active rollout's figures judged by the health rule (whatever the verdict).
    pub(crate) fn count_health_check(&self) {
        self.health_checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Judgements of active rollouts' figures by the health rule, by this instance's decider.
    pub(crate) fn health_checks(&self) -> u64 {
        self.health_checks.load(Ordering::Relaxed)
    }

    /// Rollout halts this instance made: (by the health rule, by an operator).
    pub(crate) fn halts(&self) -> (u64, u64) {
        (self.halts_automatic.load(Ordering::Relaxed), self.halts_operator.load(Ordering::Relaxed))
    }

    /// Apps reloaded because another instance changed them.
    pub(crate) fn remote_changes(&self) -> u64 {
        self.remote_changes.load(Ordering::Relaxed)
    }

    /// Renders everything, plus the gauges passed in.
    pub(crate) fn render(&self, gauges: &[(&str, &str, &str, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP updraft_http_requests_total Requests by route and status.\n# TYPE updraft_http_requests_total counter\n");
        let mut requests: BTreeMap<(&str, u16), Histogram> = BTreeMap::new();
        for shard in self.shards() {
            for (key, histogram) in &shard.requests {
                requests.entry(*key).or_default().add(histogram);
            }
        }
        for ((route, status), histogram) in &requests {
            let _ =
                writeln!(out, "updraft_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {}", histogram.n);
        }
        out.push_str(
            "# HELP updraft_http_request_duration_seconds Request latency by route and status.\n# TYPE updraft_http_request_duration_seconds histogram\n",
        );
        for ((route, status), histogram) in &requests {
            let labels = format!("route=\"{route}\",status=\"{status}\"");
            for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                let _ =
                    writeln!(out, "updraft_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ =
                writeln!(out, "updraft_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", histogram.n);
            let _ = writeln!(out, "updraft_http_request_duration_seconds_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "updraft_http_request_duration_seconds_count{{{labels}}} {}", histogram.n);
        }
        out.push_str("# HELP updraft_update_checks_total Update-check answers by protocol and outcome.\n# TYPE updraft_update_checks_total counter\n");
        let mut outcomes: BTreeMap<(&str, String), u64> = BTreeMap::new();
        for shard in self.shards() {
            for (protocol, by_outcome) in &shard.outcomes {
                for (outcome, n) in by_outcome {
                    *outcomes.entry((protocol, outcome.clone())).or_default() += n;
                }
            }
        }
        for ((protocol, outcome), count) in &outcomes {
            let _ =
                writeln!(out, "updraft_update_checks_total{{protocol=\"{protocol}\",outcome=\"{outcome}\"}} {count}");
        }
        out.push_str("# HELP updraft_index_refresh_seconds Duration of the last release-index refresh (write to visible).\n# TYPE updraft_index_refresh_seconds gauge\n");
        let _ =
            writeln!(out, "updraft_index_refresh_seconds {}", self.refresh_micros.load(Ordering::Relaxed) as f64 / 1e6);
        self.served.render(&mut out);
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.observe_request("/updates", 200, Duration::from_micros(700));
        metrics.observe_request("/updates", 200, Duration::from_millis(30));
        metrics.observe_outcome("capgo", "update");
        let text = metrics.render(&[("updraft_x", "gauge", "An example.", 3)]);
        assert!(text.contains("updraft_http_requests_total{route=\"/updates\",status=\"200\"} 2"), "{text}");
        assert!(text.contains(
            "updraft_http_request_duration_seconds_bucket{route=\"/updates\",status=\"200\",le=\"0.001\"} 1"
        ));
        assert!(
            text.contains(
                "updraft_http_request_duration_seconds_bucket{route=\"/updates\",status=\"200\",le=\"0.05\"} 2"
            )
        );
        assert!(text.contains("updraft_update_checks_total{protocol=\"capgo\",outcome=\"update\"} 1"));
        assert!(text.contains("updraft_x 3"));
    }
}
