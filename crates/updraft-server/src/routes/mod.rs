//! HTTP routes. Handlers are thin: parse the request, call core, render the answer.
//!
//! Device endpoints (`/updates`, bundle downloads) are open and answer in the exact shapes the plugin parses;
//! management endpoints take an API key. Plugin endpoints answer with and without a trailing slash and never
//! redirect (a redirected POST becomes a bodiless GET on Android).

mod apikeys;
mod apps;
mod body;
mod bundles;
mod call;
mod channel_self;
mod channels;
mod devices;
mod expo;
mod expo_releases;
mod files;
mod health;
mod metrics;
mod stats;
mod updates;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::error_codes;
use updraft_capgo::management::error_body;

/// Registers every route.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    // Each path is its own resource: a resource with one static path is matched by string comparison, while
    // several paths on one resource (or a `{…}` segment) go through a regex on every request.
    let plain =
        |config: &mut web::ServiceConfig, path: &str, build: &dyn Fn(actix_web::Resource) -> actix_web::Resource| {
            config.service(build(web::resource(path.to_owned()).default_service(web::to(method_not_allowed))));
        };
    let with_slash =
        |config: &mut web::ServiceConfig, path: &str, build: &dyn Fn(actix_web::Resource) -> actix_web::Resource| {
            plain(config, path, build);
            plain(config, &format!("{path}/"), build);
        };
    plain(config, "/health", &|r| r.get(health::health));
    with_slash(config, "/updates", &|r| r.post(updates::updates));
    with_slash(config, "/stats", &|r| r.post(stats::post_stats).get(stats::get_stats));
    with_slash(config, "/channel_self", &|r| {
        r.post(channel_self::set_channel)
            .put(channel_self::get_channel)
            .get(channel_self::list_channels)
            .delete(channel_self::unset_channel)
    });
    with_slash(config, "/app", &|r| r.post(apps::create_app).put(apps::update_app));
    with_slash(config, "/apikey", &|r| r.post(apikeys::create).get(apikeys::list).delete(apikeys::revoke));
    with_slash(config, "/channel", &|r| {
        r.post(channels::set_channel).get(channels::get_channels).delete(channels::delete_channel)
    });
    with_slash(config, "/device", &|r| {
        r.post(devices::link_device).get(devices::get_devices).delete(devices::unlink_device)
    });
    with_slash(config, "/bundle", &|r| {
        r.post(bundles::post_bundle).get(bundles::list_bundles).delete(bundles::delete_bundles)
    });
    plain(config, "/metrics", &|r| r.get(metrics::metrics));
    config
        .service(
            web::resource("/api/manifest")
                .get(expo::manifest_by_query)
                .default_service(web::to(expo::manifest_method_not_allowed)),
        )
        .service(
            web::resource("/expo/{app_id}/manifest")
                .get(expo::manifest_by_path)
                .default_service(web::to(expo::manifest_method_not_allowed)),
        )
        .service(
            web::resource("/expo/{app_id}/assets/missing")
                .post(expo_releases::missing_assets)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/expo/{app_id}/assets/{file}")
                .wrap(actix_web::middleware::Compress::default())
                .get(expo::asset)
                .put(expo_releases::upload_asset)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/expo/{app_id}/releases")
                .get(expo_releases::list)
                .post(expo_releases::publish)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/expo/{app_id}/releases/rollback")
                .post(expo_releases::rollback)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/expo/{app_id}/releases/promote")
                .post(expo_releases::promote)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/files/{key:.+}")
                .route(web::get().to(files::download))
                .route(web::head().to(files::download))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found));
}

/// Answers `GET /expo/{app_id}/manifest`, the Expo check every launch makes, before the router: actix matches a
/// route with a path parameter with a regex, which cost more than building the whole (cached) answer. Any other
/// request, and a manifest path the router would decode (`%`), goes on to the router, whose manifest route gives the
/// same answer.
pub(crate) async fn hot_path(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if request.method() == Method::GET
        && let Some(app) = manifest_app(request.path())
        && let Some(state) = request.app_data::<web::Data<crate::state::AppState>>()
    {
        let response = expo::answer_manifest(request.request(), state, app).await;
        return Ok(request.into_response(response));
    }
    next.call(request).await.map(ServiceResponse::map_into_boxed_body)
}

/// The app of a manifest path `/expo/{app_id}/manifest`, when it needs no decoding.
fn manifest_app(path: &str) -> Option<&str> {
    let app = path.strip_prefix("/expo/")?.strip_suffix("/manifest")?;
    (!app.is_empty() && !app.contains(['/', '%'])).then_some(app)
}

/// The metrics label of a request path: the route pattern it is served by, worked out with string operations.
/// (actix's `match_pattern` matches the whole route table again, regexes included, which cost more than the
/// update check itself.) Keep in step with `configure`.
pub(crate) fn route_label(path: &str) -> &'static str {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    match trimmed {
        "/health" => return "/health",
        "/updates" => return "/updates",
        "/stats" => return "/stats",
        "/channel_self" => return "/channel_self",
        "/app" => return "/app",
        "/apikey" => return "/apikey",
        "/channel" => return "/channel",
        "/device" => return "/device",
        "/bundle" => return "/bundle",
        "/metrics" => return "/metrics",
        "/api/manifest" => return "/api/manifest",
        _ => {}
    }
    if path.starts_with("/files/") {
        return "/files/{key:.+}";
    }
    let mut segments = path.split('/').skip(1);
    match (segments.next(), segments.next(), segments.next(), segments.next(), segments.next()) {
        (Some("expo"), Some(_), Some("manifest"), None, _) => "/expo/{app_id}/manifest",
        (Some("expo"), Some(_), Some("assets"), Some("missing"), None) => "/expo/{app_id}/assets/missing",
        (Some("expo"), Some(_), Some("assets"), Some(_), None) => "/expo/{app_id}/assets/{file}",
        (Some("expo"), Some(_), Some("releases"), None, _) => "/expo/{app_id}/releases",
        (Some("expo"), Some(_), Some("releases"), Some("rollback"), None) => "/expo/{app_id}/releases/rollback",
        (Some("expo"), Some(_), Some("releases"), Some("promote"), None) => "/expo/{app_id}/releases/promote",
        _ => "unmatched",
    }
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(error_body(
        error_codes::NOT_FOUND,
        &format!("no route for {} {}; see docs/compatibility.md for the endpoints", request.method(), request.path()),
    ))
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .json(error_body("method_not_allowed", &format!("{} is not supported on {}", request.method(), request.path())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels() {
        for (path, label) in [
            ("/updates/", "/updates"),
            ("/health", "/health"),
            ("/expo/com.example.app/manifest", "/expo/{app_id}/manifest"),
            ("/expo/com.example.app/assets/abc.png", "/expo/{app_id}/assets/{file}"),
            ("/expo/com.example.app/assets/missing", "/expo/{app_id}/assets/missing"),
            ("/expo/com.example.app/releases/rollback", "/expo/{app_id}/releases/rollback"),
            ("/files/bundles/a/b.zip", "/files/{key:.+}"),
            ("/nope", "unmatched"),
            ("/expo/x/manifest/extra", "unmatched"),
        ] {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn manifest_paths_taken_before_the_router() {
        assert_eq!(manifest_app("/expo/com.example.app/manifest"), Some("com.example.app"));
        for path in ["/expo//manifest", "/expo/a/b/manifest", "/expo/com%2Eexample/manifest", "/expo/x/manifest/"] {
            assert_eq!(manifest_app(path), None, "{path}");
        }
    }
}
