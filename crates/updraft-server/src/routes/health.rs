//! `GET /health`: 200 once the gateway can serve (the store is open and the release index loaded before the
//! listener starts).

use actix_web::HttpResponse;

pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
}
