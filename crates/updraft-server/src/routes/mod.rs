//! HTTP routes. Handlers are thin: parse the request, call core, render the answer.
//!
//! Device endpoints (`/updates`, bundle downloads) are open and answer in the exact shapes the plugin parses;
//! management endpoints take an API key. Plugin endpoints answer with and without a trailing slash and never
//! redirect (a redirected POST becomes a bodiless GET on Android).

mod apps;
mod body;
mod bundles;
mod channels;
mod devices;
mod files;
mod health;
mod updates;

use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::error_codes;
use updraft_capgo::management::error_body;

/// Registers every route.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/health")
                .get(health::health)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/updates", "/updates/"])
                .post(updates::updates)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/app", "/app/"])
                .post(apps::create_app)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/channel", "/channel/"])
                .post(channels::set_channel)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/device", "/device/"])
                .post(devices::link_device)
                .get(devices::get_device)
                .delete(devices::unlink_device)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/bundle", "/bundle/"])
                .post(bundles::upload_bundle)
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
        &format!(
            "no route for {} {}; see docs/compatibility.md for the endpoints",
            request.method(),
            request.path()
        ),
    ))
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed().json(error_body(
        "method_not_allowed",
        &format!(
            "{} is not supported on {}",
            request.method(),
            request.path()
        ),
    ))
}
