//! The Expo device endpoints: `GET /expo/{app_id}/manifest` (and seed 004's `GET /api/manifest?app=…`, the same
//! handler) and `GET /expo/{app_id}/assets/{sha256}.{ext}`.
//!
//! A manifest answer is built from the in-memory release index and the loaded signing keys, with bodies and
//! signatures cached, so a check does no database read and no RSA operation after the first.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use updraft_core::sha256_hex;
use updraft_core::{AppId, DeviceIdentity, ExpoCheck, ExpoDecision, select_expo_release_in_rollout};
use updraft_expo::health_headers::HealthHeaders;
use updraft_expo::multipart::{self, Part};
use updraft_expo::request::{AcceptedForm, parse_manifest_request};
use updraft_expo::{directive, manifest};
use updraft_oss::ObjectKey;

use crate::expo_cache::CachedAnswer;
use crate::release_health::{ExpoCheckSignals, record_expo_check};
use crate::routes::download::{Served, serve};
use crate::state::AppState;
use crate::storage_layout::StorageKey;

fn error(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(updraft_expo::failure::device_error_body(message))
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

/// The answer to one manifest request, whether the router or [`crate::routes::hot_path`] took it. Any store call it
/// made would count in `updraft_store_calls_during_checks_total`.
pub(crate) async fn answer_manifest(request: &HttpRequest, state: &AppState, app: &str) -> HttpResponse {
    updraft_store::answering_a_check(manifest_answer(request, state, app)).await
}

async fn manifest_answer(request: &HttpRequest, state: &AppState, app: &str) -> HttpResponse {
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
        Some(key_id) => match state.expo.keys(&app_id).get(key_id) {
            Some(key) => Some(key.clone()),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "code signing was requested with keyid {key_id:?}, but app {app_id} has no such key; add it with `updraft keys generate --app {app_id} --key-id {key_id} --out DIR` or `updraft keys import --app {app_id} --key-id {key_id} --private-key PEM`"
                    ),
                );
            }
        },
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
    // A channel's rollout decides by the device's `EAS-Client-ID` (read only when there is one to decide).
    let rollout = catalog.rollout(&check.channel);
    let identity = rollout
        .and_then(|_| request.headers().get(&EAS_CLIENT_ID))
        .and_then(|value| value.to_str().ok())
        .and_then(DeviceIdentity::from_eas_client_id);
    let decision = select_expo_release_in_rollout(catalog.expo_releases(), &check, rollout, identity.as_ref());
    let signals = ExpoCheckSignals {
        headers: HealthHeaders::read(|name| health_header(request, name)),
        platform: check.platform,
        runtime_version: &check.runtime_version,
        channel: &check.channel,
        current_update_id: check.current_update_id.as_deref(),
        embedded_update_id: check.embedded_update_id.as_deref(),
    };
    let offered = match &decision {
        ExpoDecision::Serve(release) => Some(*release),
        _ => None,
    };
    record_expo_check(&state.writes, &app_id, &signals, offered, updraft_core::check_time());
    let outcome = match &decision {
        ExpoDecision::Serve(_) => "update",
        ExpoDecision::RollBackToEmbedded(_) => "roll_back_to_embedded",
        ExpoDecision::NoUpdate => "no_update",
        ExpoDecision::NotAvailable => "not_available",
    };
    state.metrics.observe_outcome("expo", outcome);
    // A device that runs another release is a base worth a patch to the one it is sent (computed in the background).
    if let (ExpoDecision::Serve(release), Some(current)) = (&decision, check.current_update_id.as_deref())
        && !current.eq_ignore_ascii_case(&release.id)
    {
        state.bytes.patches.offer(&app_id, current, &release.id);
    }
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
    let cache_key = (app_id.clone(), answer_id, key.as_deref().map(crate::expo_cache::key_identity), json_only);
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

/// The device's identity, which buckets it in a rollout (expo-updates sends it on every request).
const EAS_CLIENT_ID: HeaderName = HeaderName::from_static("eas-client-id");
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

/// A release-health header's first value ([`HealthHeaders`]), by a constant name.
fn health_header<'r>(request: &'r HttpRequest, name: &'static str) -> Option<&'r str> {
    static NAMES: [HeaderName; 3] = [
        HeaderName::from_static("eas-client-id"),
        HeaderName::from_static("expo-recent-failed-update-ids"),
        HeaderName::from_static("expo-fatal-error"),
    ];
    let known = NAMES.iter().find(|known| known.as_str() == name)?;
    request.headers().get(known).and_then(|value| value.to_str().ok())
}

/// `GET /expo/{app_id}/assets/{sha256}.{ext}`: the stable URL every manifest names. Immutable, so cached for a
/// year.
///
/// Served as stored, with its `Content-Length`, never compressed on the fly: the Android client always offers
/// `zstd, br, gzip` and drops the length of any encoded answer (`loader/CompressionInterceptor.kt`), and
/// `useUpdates().downloadProgress` is only reported when the length is known (`FileDownloadProgressListener` in
/// `loader/FileDownloader.kt`; iOS `FileDownloader.swift` reads `task.progress`). The content type is the one the
/// manifest announced for that file, not one guessed from the URL, and `nosniff` keeps browsers from guessing.
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
    let Some(sha256) = sha256_hex(sha256) else { return not_found() };
    let key: ObjectKey = StorageKey::ExpoAsset { app_id: &app_id, sha256: &sha256 }.object_key();
    let launch = state.index.get(&app_id).and_then(|catalog| catalog.expo_file_is_launch(&sha256, ext));
    // A bsdiff patch from the update the device runs, when it asks for one and one is ready (`routes::expo_patch`).
    if let Some(answer) =
        crate::routes::expo_patch::patch_answer(&request, &state, &app_id, &sha256, launch == Some(true)).await
    {
        return answer;
    }
    let content_type = match launch {
        Some(launch) => manifest::asset_content_type(launch, ext),
        // Stored but named by no release under this extension (or not yet known here): bytes, nothing more.
        None => "application/octet-stream",
    };
    let served = Served { key: &key, digest: &sha256, content_type, nosniff: true };
    match serve(&request, &state, &served).await {
        Ok(Some(response)) => response,
        Ok(None) => not_found(),
        Err(problem) => actix_web::ResponseError::error_response(&problem),
    }
}
