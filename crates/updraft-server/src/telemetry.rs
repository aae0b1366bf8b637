//! Logging: `tracing` to stderr, filtered by `UPDRAFT_LOG` (or `RUST_LOG`), `info` by default; and the access-log
//! middleware, which logs method, path (never the query string, which may carry credentials), status and duration.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub(crate) fn init_tracing() {
    let filter =
        std::env::var("UPDRAFT_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// One access line per request.
pub(crate) async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    // The route pattern, not the path, keeps the label set small (`/files/{key:.+}`, `/expo/{app_id}/manifest`).
    let route = crate::routes::route_label(request.path());
    // The line itself is only built when it is logged (`info` and below).
    let line = tracing::enabled!(tracing::Level::INFO).then(|| (request.method().clone(), request.path().to_owned()));
    let response = next.call(request).await?;
    let status = response.status().as_u16();
    if let Some(state) = response.request().app_data::<actix_web::web::Data<crate::state::AppState>>() {
        state.metrics.observe_request(route, status, started.elapsed());
    }
    if let Some((method, path)) = line {
        tracing::info!(
            http.method = %method,
            http.path = %path,
            http.status = status,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "{method} {path} {status}"
        );
    }
    Ok(response)
}
