//! The Expo device endpoints: `GET /expo/{app_id}/manifest` (and seed 004's `GET /api/manifest?app=…`, the same
//! handler) and `GET /expo/{app_id}/assets/{sha256}.{ext}`.
//!
//! A manifest answer is built from the in-memory release index, with bodies and signatures cached, so a check does
//! no database read (keys are reloaded at most every few seconds) and no RSA operation after the first.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use updraft_core::{AppId, ExpoCheck, ExpoDecision, select_expo_release};
use updraft_expo::multipart::{self, Part};
use updraft_expo::request::{AcceptedForm, parse_manifest_request};
use updraft_expo::{directive, manifest};
use updraft_oss::{GetOptions, ObjectKey};

use crate::expo_cache::CachedAnswer;
use crate::state::AppState;
use crate::storage_layout::StorageKey;

fn error(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// `GET /expo/{app_id}/manifest`.
pub(crate) async fn manifest_by_path(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    answer_manifest(&request, &state, &path.into_inner()).await
}

/// `GET /api/manifest?app={app_id}`.
pub(crate) async fn manifest_by_query(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let app = web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
        .ok()
        .and_then(|q| q.get("app").cloned());
    match app {
        Some(app) => answer_manifest(&request, &state, &app).await,
        None => error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "query parameter app is required: /api/manifest?app=<app id>",
        ),
    }
}

/// Any other method on a manifest URL.
pub(crate) async fn manifest_method_not_allowed(request: HttpRequest) -> HttpResponse {
    error(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        &format!("{} is not supported; expo-updates fetches the manifest with GET", request.method()),
    )
}

pub(crate) async fn answer_manifest(request: &HttpRequest, state: &AppState, app: &str) -> HttpResponse {
    use actix_web::http::StatusCode;
    let headers = |name: &'static str| request.headers().get_all(header_name(name)).filter_map(|v| v.to_str().ok());
    let parsed = match parse_manifest_request(headers) {
        Ok(parsed) => parsed,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem.0),
    };
    let Ok(app_id) = AppId::parse(app) else {
        return error(StatusCode::NOT_FOUND, &format!("app {app:?} does not exist on this update server"));
    };
    let Some(catalog) = state.index.get(&app_id) else {
        return error(StatusCode::NOT_FOUND, &format!("app {app_id} does not exist on this update server"));
    };
    let key = match &parsed.expected_key_id {
        None => None,
        Some(key_id) => {
            let keys = match state.expo.keys(state.store.as_ref(), &app_id).await {
                Ok(keys) => keys,
                Err(problem) => {
                    return actix_web::ResponseError::error_response(&crate::api_error::ApiError::from(problem));
                }
            };
            match keys.get(key_id) {
                Some(key) => Some(key.clone()),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "code signing was requested with keyid {key_id:?}, but app {app_id} has no such key; add it with `updraft keys generate` or `updraft keys import --key-id {key_id}`"
                        ),
                    );
                }
            }
        }
    };
    let check = ExpoCheck {
        protocol: parsed.protocol,
        platform: parsed.platform,
        runtime_version: parsed.runtime_version,
        channel: parsed.channel.unwrap_or_else(|| catalog.app().default_channel.clone()),
        current_update_id: parsed.current_update_id,
        embedded_update_id: parsed.embedded_update_id,
    };
    let sign = |body: &[u8]| key.as_ref().map(|key| state.expo.signature(&app_id, key, body));
    let decision = select_expo_release(catalog.expo_releases(), &check);
    let outcome = match &decision {
        ExpoDecision::Serve(_) => "update",
        ExpoDecision::RollBackToEmbedded(_) => "roll_back_to_embedded",
        ExpoDecision::NoUpdate => "no_update",
        ExpoDecision::NotAvailable => "not_available",
    };
    state.metrics.observe_outcome("expo", outcome);
    let json_only = parsed.accepted == AcceptedForm::JsonOnly;
    let answer_id = match decision {
        ExpoDecision::NotAvailable => {
            return error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no update for channel {:?}, runtime version {:?} and {}",
                    check.channel, check.runtime_version, check.platform
                ),
            );
        }
        ExpoDecision::NoUpdate if json_only => {
            // A JSON-only client cannot take a directive; 204 with the protocol header means "no update".
            return HttpResponse::NoContent()
                .insert_header((EXPO_PROTOCOL_VERSION, protocol_value(parsed.protocol)))
                .insert_header((EXPO_SFV_VERSION, HeaderValue::from_static("0")))
                .insert_header((header::CACHE_CONTROL, PRIVATE_NO_CACHE))
                .finish();
        }
        ExpoDecision::RollBackToEmbedded(_) if json_only => {
            return error(
                StatusCode::NOT_ACCEPTABLE,
                "the answer is a rollBackToEmbedded directive, which needs accept: multipart/mixed",
            );
        }
        ExpoDecision::Serve(release) => ["manifest:", &release.id].concat(),
        ExpoDecision::RollBackToEmbedded(release) => ["rollback:", &release.id].concat(),
        ExpoDecision::NoUpdate => "no_update".to_owned(),
    };
    // The whole answer is built and signed once, then served from memory.
    let cache_key = (app_id.clone(), answer_id, key.as_ref().map(|k| k.key_id().to_owned()), json_only);
    let answer = state.expo.answer(cache_key, || {
        let (part_name, body) = match decision {
            ExpoDecision::Serve(release) => {
                let body = state.expo.manifest(&release.id, || {
                    manifest::manifest_json(release, |asset| state.expo_asset_url(&app_id, &asset.sha256, &asset.ext))
                })?;
                ("manifest", body.to_vec())
            }
            ExpoDecision::RollBackToEmbedded(release) => {
                ("directive", directive::roll_back_to_embedded(release.created_at))
            }
            _ => ("directive", directive::no_update_available()),
        };
        let signature = sign(&body);
        if json_only {
            return Some(CachedAnswer { body: body.into(), signature });
        }
        let extensions: &[u8] = br#"{"assetRequestHeaders":{}}"#;
        let mut parts = vec![Part { name: part_name, body: &body, signature: signature.as_deref() }];
        if part_name == "manifest" {
            parts.push(Part { name: "extensions", body: extensions, signature: None });
        }
        Some(CachedAnswer { body: multipart::write(&parts).into(), signature: None })
    });
    let Some(answer) = answer else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the release's manifest could not be built; see the server log",
        );
    };
    // Header names and values are constants, so an answer from the cache builds no header on the way out.
    let mut response = HttpResponse::Ok();
    response
        .insert_header((EXPO_PROTOCOL_VERSION, protocol_value(parsed.protocol)))
        .insert_header((EXPO_SFV_VERSION, HeaderValue::from_static("0")))
        .insert_header((header::CACHE_CONTROL, PRIVATE_NO_CACHE));
    if json_only {
        if let Some(signature) = &answer.signature {
            response.insert_header(("expo-signature", signature.as_ref()));
        }
        return response.content_type("application/expo+json").body(answer.body.clone());
    }
    static MULTIPART: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
        HeaderValue::from_str(&multipart::content_type()).unwrap_or(HeaderValue::from_static("multipart/mixed"))
    });
    response.insert_header((header::CONTENT_TYPE, MULTIPART.clone())).body(answer.body.clone())
}

const EXPO_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("expo-protocol-version");
const EXPO_SFV_VERSION: HeaderName = HeaderName::from_static("expo-sfv-version");
const PRIVATE_NO_CACHE: HeaderValue = HeaderValue::from_static("private, max-age=0");

fn protocol_value(protocol: u8) -> HeaderValue {
    match protocol {
        0 => HeaderValue::from_static("0"),
        _ => HeaderValue::from_static("1"),
    }
}

/// The request headers a manifest check reads, as constants (naming a header by `&str` parses the name on each
/// lookup).
fn header_name(name: &'static str) -> &'static HeaderName {
    static NAMES: [HeaderName; 8] = [
        HeaderName::from_static("expo-protocol-version"),
        HeaderName::from_static("expo-platform"),
        HeaderName::from_static("expo-runtime-version"),
        HeaderName::from_static("expo-expect-signature"),
        HeaderName::from_static("expo-channel-name"),
        HeaderName::from_static("expo-current-update-id"),
        HeaderName::from_static("expo-embedded-update-id"),
        header::ACCEPT,
    ];
    static OTHER: HeaderName = HeaderName::from_static("x-updraft-unknown");
    let index = match name {
        "expo-protocol-version" => 0,
        "expo-platform" => 1,
        "expo-runtime-version" => 2,
        "expo-expect-signature" => 3,
        "expo-channel-name" => 4,
        "expo-current-update-id" => 5,
        "expo-embedded-update-id" => 6,
        "accept" => 7,
        _ => {
            debug_assert!(false, "header {name} is read but has no constant name");
            return &OTHER;
        }
    };
    &NAMES[index]
}

/// `GET /expo/{app_id}/assets/{sha256}.{ext}`: the stable URL every manifest names. Immutable, so cached for a
/// year; compressed with gzip or br when the client offers them (the client checks the hash after decoding).
pub(crate) async fn asset(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let (app, file) = path.into_inner();
    let not_found = || error(StatusCode::NOT_FOUND, "no such asset");
    let Ok(app_id) = AppId::parse(&app) else { return not_found() };
    let (sha256, ext) = file.split_once('.').unwrap_or((file.as_str(), ""));
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return not_found();
    }
    let sha256 = sha256.to_ascii_lowercase();
    let etag = format!("\"{sha256}\"");
    if request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag)) {
        return HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish();
    }
    let key: ObjectKey = StorageKey::ExpoAsset { app_id: &app_id, sha256: &sha256 }.object_key();
    if let Some(url) = state.redirect_url(&key).await {
        return HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    }
    let result = match state.objects.get(&key, GetOptions::default()).await {
        Ok(result) => result,
        Err(updraft_oss::Error::NotFound { .. }) => return not_found(),
        Err(problem) => return actix_web::ResponseError::error_response(&crate::api_error::ApiError::from(problem)),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, manifest::content_type(ext)))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .streaming(result.body)
}
