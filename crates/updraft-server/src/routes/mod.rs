//! HTTP routes. Handlers are thin: parse the request, call core, render the answer.
//!
//! Device endpoints (`/updates`, bundle downloads) are open and answer in the exact shapes the plugin parses;
//! management endpoints take an API key. Plugin endpoints answer with and without a trailing slash and never
//! redirect (a redirected POST becomes a bodiless GET on Android).

mod access;
mod apikeys;
mod apps;
mod audit;
pub(crate) mod body;
mod bundles;
mod call;
mod channel_self;
mod channels;
mod console;
mod devices;
mod download;
mod encoded;
mod expo;
mod expo_keys;
mod expo_patch;
mod expo_releases;
mod files;
mod health;
mod metrics;
mod release_health;
mod rollouts;
mod stats;
mod updates;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use updraft_capgo::management::error_body;
use updraft_core::codes;

pub(crate) use access::access_of;

/// One row of the route table: its pattern (which is also its metrics label), whether it answers with a trailing
/// slash too, and its methods.
struct Route {
    pattern: &'static str,
    trailing_slash: bool,
    methods: fn(actix_web::Resource) -> actix_web::Resource,
}

impl Route {
    const fn plain(pattern: &'static str, methods: fn(actix_web::Resource) -> actix_web::Resource) -> Self {
        Self { pattern, trailing_slash: false, methods }
    }

    /// Plugin endpoints answer with and without a trailing slash, and never redirect.
    const fn with_slash(pattern: &'static str, methods: fn(actix_web::Resource) -> actix_web::Resource) -> Self {
        Self { pattern, trailing_slash: true, methods }
    }
}

/// The routes of the update checks (and the floor they are measured against), which [`route_label`] names
/// without scanning the table.
const HEALTH: &str = "/health";
const UPDATES: &str = "/updates";
const EXPO_MANIFEST: &str = "/expo/{app_id}/manifest";

/// Every route, in matching order: `configure` registers them and `route_label` names requests by them, so the two
/// cannot drift apart.
const ROUTES: &[Route] = &[
    Route::plain(HEALTH, |r| r.get(health::health)),
    Route::with_slash(UPDATES, |r| r.post(updates::updates)),
    Route::with_slash("/updates/manifest_size", |r| r.post(updates::manifest_size)),
    Route::with_slash("/stats", |r| r.post(stats::post_stats).get(stats::get_stats)),
    Route::with_slash("/channel_self", |r| {
        r.post(channel_self::set_channel)
            .put(channel_self::get_channel)
            .get(channel_self::list_channels)
            .delete(channel_self::unset_channel)
    }),
    Route::with_slash("/app", |r| r.post(apps::create_app).put(apps::update_app)),
    Route::with_slash("/apikey", |r| r.post(apikeys::create).get(apikeys::list).delete(apikeys::revoke)),
    Route::with_slash("/channel", |r| {
        r.post(channels::set_channel).get(channels::get_channels).delete(channels::delete_channel)
    }),
    Route::with_slash("/device", |r| {
        r.post(devices::link_device).get(devices::get_devices).delete(devices::unlink_device)
    }),
    Route::with_slash("/bundle", |r| {
        r.post(bundles::post_bundle).get(bundles::list_bundles).delete(bundles::delete_bundles)
    }),
    Route::plain("/metrics", |r| r.get(metrics::metrics)),
    Route::plain("/api/manifest", |r| {
        r.get(expo::manifest_by_query).default_service(web::to(expo::manifest_method_not_allowed))
    }),
    Route::plain(EXPO_MANIFEST, |r| {
        r.get(expo::manifest_by_path).default_service(web::to(expo::manifest_method_not_allowed))
    }),
    Route::plain("/expo/{app_id}/assets/missing", |r| r.post(expo_releases::missing_assets)),
    Route::plain("/expo/{app_id}/assets/{file}", |r| r.get(expo::asset).put(expo_releases::upload_asset)),
    Route::plain("/expo/{app_id}/releases", |r| r.get(expo_releases::list).post(expo_releases::publish)),
    Route::plain("/expo/{app_id}/releases/rollback", |r| r.post(expo_releases::rollback)),
    Route::plain("/expo/{app_id}/releases/promote", |r| r.post(expo_releases::promote)),
    Route::plain("/expo/{app_id}/keys", |r| r.get(expo_keys::list_keys).post(expo_keys::put_key)),
    // Rollouts.
    Route::plain("/rollout", |r| r.get(rollouts::status).post(rollouts::start_or_set)),
    Route::plain("/rollout/halt", |r| r.post(rollouts::halt)),
    Route::plain("/rollout/resume", |r| r.post(rollouts::resume)),
    Route::plain("/rollout/complete", |r| r.post(rollouts::complete)),
    // Release health (issue #14, part B).
    Route::with_slash("/release_health", |r| r.get(release_health::get_release_health)),
    Route::plain("/files/{key:.+}", |r| r.route(web::get().to(files::download)).route(web::head().to(files::download))),
    // The audit log and the console.
    Route::plain("/audit", |r| r.get(audit::list)),
    Route::plain("/console", |r| r.get(console::index)),
    Route::plain("/console/signin", |r| r.post(console::sign_in)),
    Route::plain("/console/signout", |r| r.post(console::sign_out)),
    Route::plain("/console/assets/{file}", |r| r.get(console::asset)),
    Route::plain("/console/apps", |r| r.get(console::apps)),
    Route::plain("/console/apps/{app_id}", |r| r.get(console::app)),
    Route::plain("/console/apps/{app_id}/devices", |r| r.get(console::devices)),
    Route::plain("/console/apps/{app_id}/audit", |r| r.get(console::audit)),
    Route::plain("/console/apps/{app_id}/actions/{action}", |r| r.post(console::action)),
];

/// Registers every route of [`ROUTES`].
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    // Each path is its own resource: a resource with one static path is matched by string comparison, while
    // several paths on one resource go through a regex on every request. A route's own default service (the
    // manifest's) replaces the generic 405.
    for route in ROUTES {
        let resource = |path: String| (route.methods)(web::resource(path).default_service(web::to(method_not_allowed)));
        config.service(resource(route.pattern.to_owned()));
        if route.trailing_slash {
            config.service(resource(format!("{}/", route.pattern)));
        }
    }
    config.default_service(web::to(not_found));
}

/// Answers the two update checks before the router, which costs them more than it is worth:
/// - `GET /expo/{app_id}/manifest`, the Expo check every launch makes: actix matches a route with a path parameter
///   with a regex, which cost more than building the whole (cached) answer. A manifest path the router would decode
///   (`%`) goes on to the router, whose manifest route gives the same answer.
/// - `POST /updates`, the Capgo check, when its body declares a length within [`body::JSON_BODY_LIMIT`]: the
///   router's resource, the handler's extractors and the body-size middleware around them cost a check about a
///   microsecond of the twenty it takes. A body of undeclared length (chunked) or an oversize one goes on to the
///   router, where the body-size middleware refuses what is too large.
///
/// Any other request goes on to the router.
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
    if request.method() == Method::POST
        && matches!(request.path(), "/updates" | "/updates/")
        && crate::limits::declared_length(request.headers()).is_some_and(|n| n <= body::JSON_BODY_LIMIT as u64)
    {
        let (http_request, payload) = request.into_parts();
        let state = http_request.app_data::<web::Data<crate::state::AppState>>();
        let limits = http_request.app_data::<web::Data<crate::rate_limit::RateLimits>>();
        if let (Some(state), Some(limits)) = (state, limits) {
            let response = updates::answer_check(state, limits, payload).await;
            return Ok(ServiceResponse::new(http_request, response));
        }
        let request = ServiceRequest::from_parts(http_request, payload);
        return next.call(request).await.map(ServiceResponse::map_into_boxed_body);
    }
    next.call(request).await.map(ServiceResponse::map_into_boxed_body)
}

/// The app of a manifest path `/expo/{app_id}/manifest`, when it needs no decoding.
fn manifest_app(path: &str) -> Option<&str> {
    let app = path.strip_prefix("/expo/")?.strip_suffix("/manifest")?;
    (!app.is_empty() && !app.contains(['/', '%'])).then_some(app)
}

/// The metrics label of a request path: the pattern of the [`ROUTES`] row that serves it, found with string
/// comparisons (actix's `match_pattern` matches the whole route table again, regexes included, which cost more than
/// the update check itself). `unmatched` for a path no route serves.
pub(crate) fn route_label(path: &str) -> &'static str {
    // The update checks, labelled without scanning the table (the scan cost about 2 % of an Expo check's CPU).
    // Each answer is the pattern the scan finds; `hot_labels_agree_with_the_route_table` keeps them equal.
    match path {
        "/updates" | "/updates/" => UPDATES,
        "/health" => HEALTH,
        _ if manifest_app(path).is_some() => EXPO_MANIFEST,
        _ => scanned_label(path),
    }
}

/// The label [`route_label`] finds by scanning [`ROUTES`].
fn scanned_label(path: &str) -> &'static str {
    let without_slash = path.strip_suffix('/');
    ROUTES
        .iter()
        .find(|route| {
            pattern_matches(route.pattern, path)
                || (route.trailing_slash && without_slash.is_some_and(|p| pattern_matches(route.pattern, p)))
        })
        .map_or("unmatched", |route| route.pattern)
}

/// Whether `path` matches a route pattern: literal segments compare equal, `{name}` takes one non-empty segment and
/// `{name:.+}` the non-empty rest of the path.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (mut wanted, mut given) = (pattern.split('/'), path.split('/'));
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(segment), Some(first)) if segment.starts_with('{') && segment.ends_with(":.+}") => {
                return !first.is_empty() || given.next().is_some();
            }
            (Some(segment), Some(actual)) if segment.starts_with('{') => {
                if actual.is_empty() {
                    return false;
                }
            }
            (Some(segment), Some(actual)) if segment == actual => {}
            _ => return false,
        }
    }
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(error_body(
        codes::NOT_FOUND,
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
            ("/updates/manifest_size", "/updates/manifest_size"),
            ("/updates/manifest_size/", "/updates/manifest_size"),
            ("/health", "/health"),
            ("/expo/com.example.app/manifest", "/expo/{app_id}/manifest"),
            ("/expo/com.example.app/assets/abc.png", "/expo/{app_id}/assets/{file}"),
            ("/expo/com.example.app/assets/missing", "/expo/{app_id}/assets/missing"),
            ("/expo/com.example.app/releases/rollback", "/expo/{app_id}/releases/rollback"),
            ("/expo/com.example.app/keys", "/expo/{app_id}/keys"),
            ("/files/bundles/a/b.zip", "/files/{key:.+}"),
            ("/nope", "unmatched"),
            ("/expo/x/manifest/extra", "unmatched"),
            ("/expo/x/manifest/", "unmatched"),
            ("/expo//manifest", "unmatched"),
        ] {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn every_route_labels_its_own_requests() {
        for route in ROUTES {
            let example: Vec<&str> =
                route.pattern.split('/').map(|s| if s.starts_with('{') { "com.example.app" } else { s }).collect();
            let example = example.join("/");
            assert_eq!(route_label(&example), route.pattern, "{example}");
            let slashed = format!("{example}/");
            let expected = if route.trailing_slash { route.pattern } else { "unmatched" };
            if !route.pattern.ends_with(":.+}") {
                assert_eq!(route_label(&slashed), expected, "{slashed}");
            }
        }
    }

    #[test]
    fn hot_labels_agree_with_the_route_table() {
        for path in ["/updates", "/updates/", "/health", "/expo/com.example.app/manifest", "/expo/a.b-c_d/manifest"] {
            assert_ne!(route_label(path), "unmatched", "{path}");
            assert_eq!(route_label(path), scanned_label(path), "{path}");
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
