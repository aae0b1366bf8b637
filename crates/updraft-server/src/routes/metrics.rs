//! `GET /metrics`: Prometheus text format (see `crate::metrics`), plus the RSA signature count (one per cached body
//! and key, not one per request), the write-behind queue's depth and shed count, and what became of the device
//! reports written behind (`updraft_coalesced_reports_total`, one `signal` label per kind of keyed report).

use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;

pub(crate) async fn metrics(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refused) = refuse_without_metrics_key(&request, &state) {
        return refused;
    }
    let cache = state.object_cache.figures();
    let mut body = state.metrics.render(&[
        (
            "updraft_expo_signatures_total",
            "counter",
            "RSA signatures made for Expo manifests and directives.",
            state.expo.signatures_made(),
        ),
        (
            "updraft_catalog_changes_applied_total",
            "counter",
            "App catalogs reloaded on a change notification (PostgreSQL LISTEN/NOTIFY).",
            state.metrics.remote_changes(),
        ),
        (
            "updraft_catalog_stale_apps",
            "gauge",
            "Apps whose reload after a change keeps failing (retried every 2 s; their older catalog is served).",
            state.index.stale().len() as u64,
        ),
        ("updraft_store_reads_total", "counter", "Metadata store calls that read.", state.store_calls.reads()),
        ("updraft_store_writes_total", "counter", "Metadata store calls that write.", state.store_calls.writes()),
        (
            "updraft_store_calls_during_checks_total",
            "counter",
            "Metadata store calls made while answering an update check (0: checks answer from memory).",
            state.store_calls.during_checks(),
        ),
        (
            "updraft_write_queue_depth",
            "gauge",
            "Device reports and stats waiting to be written.",
            state.writes.depth() as u64,
        ),
        (
            "updraft_write_queue_shed_total",
            "counter",
            "Device reports lost (shed or refused by the database) and stats events refused because the queue was full.",
            state.writes.shed_count(),
        ),
        // The object cache (`crate::object_cache`).
        ("updraft_object_cache_hits_total", "counter", "Downloads answered from the object cache.", cache.hits),
        (
            "updraft_object_cache_misses_total",
            "counter",
            "Downloads of objects not in the object cache (read from storage).",
            cache.misses,
        ),
        ("updraft_object_cache_evictions_total", "counter", "Objects evicted from the object cache.", cache.evictions),
        ("updraft_object_cache_bytes", "gauge", "Bytes held by the object cache.", cache.bytes),
        (
            "updraft_object_cache_capacity_bytes",
            "gauge",
            "The object cache's capacity (UPDRAFT_OBJECT_CACHE_MB).",
            cache.capacity,
        ),
    ]);
    let signals = state.writes.signals();
    body.push_str(
        "# HELP updraft_coalesced_reports_total Reports written behind, by what became of them: queued, replaced (by \
         a newer one of the same key before it was written), unchanged (nothing new to write), written; shed (the \
         map was full) and dropped (refused for good by the database) are lost.\n\
         # TYPE updraft_coalesced_reports_total counter\n",
    );
    for (signal, counts, _, _) in &signals {
        for (outcome, n) in [
            ("queued", counts.queued),
            ("replaced", counts.replaced),
            ("unchanged", counts.unchanged),
            ("written", counts.written),
            ("shed", counts.shed),
            ("dropped", counts.dropped),
        ] {
            let _ = writeln!(body, "updraft_coalesced_reports_total{{signal=\"{signal}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    body.push_str(
        "# HELP updraft_coalesced_pending Keys whose newest report waits to be written (or is being written).\n\
         # TYPE updraft_coalesced_pending gauge\n",
    );
    for (signal, _, pending, _) in &signals {
        let _ = writeln!(body, "updraft_coalesced_pending{{signal=\"{signal}\"}} {pending}");
    }
    body.push_str(
        "# HELP updraft_coalesced_remembered Keys whose last report is remembered, so an unchanged one is not \
         written.\n# TYPE updraft_coalesced_remembered gauge\n",
    );
    for (signal, _, _, remembered) in &signals {
        let _ = writeln!(body, "updraft_coalesced_remembered{{signal=\"{signal}\"}} {remembered}");
    }
    let (automatic, operator) = state.metrics.halts();
    body.push_str(
        "# HELP updraft_rollout_halts_total Rollouts this instance halted, by who decided: automatic (the health \
         rule) or operator.\n# TYPE updraft_rollout_halts_total counter\n",
    );
    let _ = writeln!(body, "updraft_rollout_halts_total{{by=\"automatic\"}} {automatic}");
    let _ = writeln!(body, "updraft_rollout_halts_total{{by=\"operator\"}} {operator}");
    body.push_str(
        "# HELP updraft_rollout_health_checks_total Judgements of an active rollout's figures by the health rule, by \
         this instance's decider (at most once a round, after this instance wrote health rows of the app or \
         reloaded its catalog).\n# TYPE updraft_rollout_health_checks_total counter\n",
    );
    let _ = writeln!(body, "updraft_rollout_health_checks_total {}", state.metrics.health_checks());
    body.push_str(
        "# HELP updraft_webhooks_total Webhook events, by what became of them: delivered (2xx), retried (an attempt \
         failed and another follows), failed (given up), dropped (the queue was full).\n\
         # TYPE updraft_webhooks_total counter\n",
    );
    for (outcome, n) in state.webhooks.counts().outcomes() {
        let _ = writeln!(body, "updraft_webhooks_total{{outcome=\"{outcome}\"}} {n}");
    }
    state.device_ageing.render(&mut body);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

/// With `metrics_api_key` set, `/metrics` answers only a request carrying it (`authorization: Bearer <key>` or the
/// raw key), compared in constant time: 401 JSON otherwise.
fn refuse_without_metrics_key(request: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let expected = state.settings.metrics_api_key.as_ref()?;
    let presented = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().strip_prefix("Bearer ").unwrap_or(v.trim()).trim())
        .unwrap_or_default();
    if constant_time_eq::constant_time_eq(expected.expose().as_bytes(), presented.as_bytes()) {
        return None;
    }
    Some(HttpResponse::Unauthorized().insert_header(("WWW-Authenticate", "Bearer")).json(serde_json::json!({
        "error": updraft_core::codes::INVALID_API_KEY,
        "message": "/metrics needs the metrics key (UPDRAFT_METRICS_API_KEY): send `authorization: Bearer <key>`",
    })))
}
