//! `GET /metrics`: Prometheus text format. Counters that show the hot path's properties: RSA signatures made (one
//! per cached body and key, not one per request), and the write-behind queue's depth and shed count.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = format!(
        "# HELP updraft_expo_signatures_total RSA signatures made for Expo manifests and directives.\n\
         # TYPE updraft_expo_signatures_total counter\n\
         updraft_expo_signatures_total {}\n\
         # HELP updraft_write_queue_depth Device reports and stats waiting to be written.\n\
         # TYPE updraft_write_queue_depth gauge\n\
         updraft_write_queue_depth {}\n\
         # HELP updraft_write_queue_shed_total Device reports and stats dropped because the queue was full.\n\
         # TYPE updraft_write_queue_shed_total counter\n\
         updraft_write_queue_shed_total {}\n",
        state.expo.signatures_made(),
        state.writes.depth(),
        state.writes.shed_count(),
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}
