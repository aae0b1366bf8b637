//! HTTP routes. Handlers are thin: parse the request, call core, render the answer.
//!
//! Device endpoints (`/updates`, bundle downloads) are open and answer in the exact shapes the plugin parses;
//! management endpoints take an API key. Plugin endpoints answer with and without a trailing slash and never
//! redirect (a redirected POST becomes a bodiless GET on Android).

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

use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::error_codes;
use updraft_capgo::management::error_body;

/// Registers every route.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    let resource = |paths: &[&'static str]| web::resource(paths.to_vec()).default_service(web::to(method_not_allowed));
    config
        .service(resource(&["/health"]).get(health::health))
        .service(resource(&["/updates", "/updates/"]).post(updates::updates))
        .service(resource(&["/stats", "/stats/"]).post(stats::post_stats).get(stats::get_stats))
        .service(
            resource(&["/channel_self", "/channel_self/"])
                .post(channel_self::set_channel)
                .put(channel_self::get_channel)
                .get(channel_self::list_channels)
                .delete(channel_self::unset_channel),
        )
        .service(resource(&["/app", "/app/"]).post(apps::create_app).put(apps::update_app))
        .service(
            resource(&["/channel", "/channel/"])
                .post(channels::set_channel)
                .get(channels::get_channels)
                .delete(channels::delete_channel),
        )
        .service(
            resource(&["/device", "/device/"])
                .post(devices::link_device)
                .get(devices::get_devices)
                .delete(devices::unlink_device),
        )
        .service(
            resource(&["/bundle", "/bundle/"])
                .post(bundles::post_bundle)
                .get(bundles::list_bundles)
                .delete(bundles::delete_bundles),
        )
        .service(resource(&["/metrics"]).get(metrics::metrics))
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
