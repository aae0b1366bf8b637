//! In-process metrics, rendered by `GET /metrics` in Prometheus text format: requests and latency per route and
//! status, update-check outcomes, and the last release-index refresh time. Recording is a short uncontended lock
//! or an atomic add, cheap enough for the hot path.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    n: u64,
    sum: f64,
}

/// The gateway's metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<HashMap<String, HashMap<u16, Histogram>>>,
    outcomes: Mutex<HashMap<&'static str, HashMap<String, u64>>>,
    refresh_micros: AtomicU64,
    remote_changes: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub(crate) fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Look up by &str first: no allocation once a route has been seen.
        let by_status = match requests.get_mut(route) {
            Some(by_status) => by_status,
            None => requests.entry(route.to_owned()).or_default(),
        };
        let histogram = by_status.entry(status).or_default();
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
        let mut outcomes = self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_outcome = outcomes.entry(protocol).or_default();
        match by_outcome.get_mut(outcome) {
            Some(count) => *count += 1,
            None => {
                by_outcome.insert(outcome.to_owned(), 1);
            }
        }
    }

    /// Records how long the last release-index refresh took (write committed → index swapped).
    pub(crate) fn observe_refresh(&self, elapsed: Duration) {
        self.refresh_micros.store(elapsed.as_micros().try_into().unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts one app reloaded because another instance changed it.
    pub(crate) fn count_remote_change(&self) {
        self.remote_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Apps reloaded because another instance changed them.
    pub(crate) fn remote_changes(&self) -> u64 {
        self.remote_changes.load(Ordering::Relaxed)
    }

    /// Renders everything, plus the gauges passed in.
    pub(crate) fn render(&self, gauges: &[(&str, &str, &str, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP updraft_http_requests_total Requests by route and status.\n# TYPE updraft_http_requests_total counter\n");
        let requests: BTreeMap<(String, u16), Histogram> = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .flat_map(|(route, by_status)| by_status.iter().map(|(status, h)| ((route.clone(), *status), h.clone())))
            .collect();
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
        let outcomes: BTreeMap<(&str, String), u64> = self
            .outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .flat_map(|(protocol, by_outcome)| by_outcome.iter().map(|(outcome, n)| ((*protocol, outcome.clone()), *n)))
            .collect();
        for ((protocol, outcome), count) in &outcomes {
            let _ =
                writeln!(out, "updraft_update_checks_total{{protocol=\"{protocol}\",outcome=\"{outcome}\"}} {count}");
        }
        out.push_str("# HELP updraft_index_refresh_seconds Duration of the last release-index refresh (write to visible).\n# TYPE updraft_index_refresh_seconds gauge\n");
        let _ =
            writeln!(out, "updraft_index_refresh_seconds {}", self.refresh_micros.load(Ordering::Relaxed) as f64 / 1e6);
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
