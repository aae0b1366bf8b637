//! `GET /metrics`: Prometheus text format (see `crate::metrics`), plus the RSA signature count (one per cached body
//! and key, not one per request) and the write-behind queue's depth and shed count.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = state.metrics.render(&[
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
        ("updraft_store_reads_total", "counter", "Metadata store calls that read.", state.store_calls.reads()),
        ("updraft_store_writes_total", "counter", "Metadata store calls that write.", state.store_calls.writes()),
        (
            "updraft_write_queue_depth",
            "gauge",
            "Device reports and stats waiting to be written.",
            state.writes.depth() as u64,
        ),
        (
            "updraft_write_queue_shed_total",
            "counter",
            "Device reports and stats dropped because the queue was full.",
            state.writes.shed_count(),
        ),
    ]);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}
