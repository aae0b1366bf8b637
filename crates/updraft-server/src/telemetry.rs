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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        std::env::var("UPDRAFT_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".to_owned());
    let filter = capped(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")));
    let _ = tracing_subscriber::registry()
        .with(ClientMistakes)
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .try_init();
}

/// Targets whose `debug` and `trace` output carries credentials, kept at `info` whatever `UPDRAFT_LOG` says: the
/// AWS SDK's signing and request logs name the access key id (and the signed request).
const CREDENTIAL_TARGETS: [&str; 6] =
    ["aws_sigv4", "aws_smithy_runtime", "aws_smithy_runtime_api", "aws_config", "aws_sdk_s3", "aws_smithy_http"];

fn capped(mut filter: EnvFilter) -> EnvFilter {
    for target in CREDENTIAL_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Drops actix-http's `ERROR` line for a request it could not parse (a malformed head from a client, answered
/// 400): a client's mistake is not a server error, and at `ERROR` it would drown real ones.
struct ClientMistakes;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ClientMistakes {
    fn event_enabled(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != tracing::Level::ERROR || !meta.target().starts_with("actix_http") {
            return true;
        }
        let mut message = MessageText(String::new());
        event.record(&mut message);
        !is_client_mistake(&message.0)
    }
}

fn is_client_mistake(message: &str) -> bool {
    message.starts_with("stream error: request parse error") || message.starts_with("write zero")
}

struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
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
