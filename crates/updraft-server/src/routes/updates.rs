//! `POST /updates`: the Capgo update check. Answers from the in-memory release index only; the device report is
//! queued for the background writer.

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use updraft_capgo::manifest_size::{manifest_size_body, parse_manifest_size};
use updraft_capgo::refusal_body;
use updraft_capgo::updates::{RequestProblem, answer_variant, parse_update_request, update_body};
use updraft_core::{BundleSource, Refusal, UpdateDecision, check_time, codes, select_update};

use crate::api_error::{ApiError, capgo_code};
use crate::rate_limit::RateLimits;
use crate::routes::body::{BodyStream, JSON_BODY_LIMIT, read_limited};
use crate::state::AppState;
use updraft_capgo::device_error_body;

/// Reads a plugin body, or the answer for one that cannot be read.
async fn read_body(payload: impl BodyStream) -> Result<Bytes, HttpResponse> {
    match read_limited(payload, JSON_BODY_LIMIT).await {
        Ok(body) => Ok(body),
        Err(ApiError::Client(error)) => {
            Err(HttpResponse::build(actix_web::http::StatusCode::from_u16(error.kind.status()).unwrap_or_default())
                .json(device_error_body(capgo_code(&error), &error.message)))
        }
        Err(_) => {
            Err(HttpResponse::BadRequest().json(device_error_body(codes::INVALID_REQUEST, "could not read the body")))
        }
    }
}

pub(crate) async fn updates(
    state: web::Data<AppState>,
    limits: web::Data<RateLimits>,
    payload: web::Payload,
) -> HttpResponse {
    answer_check(&state, &limits, payload).await
}

/// The answer to one update check, whether the router or [`crate::routes::hot_path`] took the request. Any store
/// call it made would count in `updraft_store_calls_during_checks_total`.
pub(crate) async fn answer_check(state: &AppState, limits: &RateLimits, payload: impl BodyStream) -> HttpResponse {
    updraft_store::answering_a_check(check_answer(state, limits, payload)).await
}

async fn check_answer(state: &AppState, limits: &RateLimits, payload: impl BodyStream) -> HttpResponse {
    let body = match read_body(payload).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let request = match parse_update_request(&body, check_time()) {
        Ok(request) => request,
        Err(RequestProblem::BadRequest { code, message }) => {
            return HttpResponse::BadRequest().json(device_error_body(code, &message));
        }
        Err(RequestProblem::Refusal(refusal)) => {
            return HttpResponse::Ok().json(refusal_body(&refusal));
        }
    };
    if let Err(retry_after) = limits.device(request.app_id.as_str(), request.check.device_id.as_str()) {
        return RateLimits::device_refusal(retry_after);
    }
    let catalog = state.index.get(&request.app_id);
    let decision = select_update(catalog.as_deref(), &request.check);
    let offered = match decision {
        UpdateDecision::Update(bundle) => Some(bundle),
        _ => None,
    };
    let answer: Bytes = match decision {
        UpdateDecision::Update(bundle) => {
            state.metrics.observe_outcome("capgo", "update");
            // An update body depends only on the bundle and the form the plugin reads, so it is built once.
            let variant = answer_variant(bundle, &request.check);
            let build = || {
                let url = match &bundle.source {
                    BundleSource::Stored { object_key, .. } => state.object_url(object_key),
                    BundleSource::External { url } => url.clone(),
                };
                update_body(bundle, &request.check, &url, |entry, form| match form {
                    updraft_core::DeltaFileForm::Plain => state.object_url(&entry.object_key),
                    updraft_core::DeltaFileForm::Brotli => state.object_url(&format!("{}.br", entry.object_key)),
                })
            };
            match &catalog {
                Some(catalog) => state.capgo_answers.get_or_build(catalog, bundle.id, variant, build),
                None => Bytes::from(build().to_string()),
            }
        }
        UpdateDecision::RevertToBuiltin => {
            state.metrics.observe_outcome("capgo", "revert_to_builtin");
            state.capgo_answers.revert_to_builtin()
        }
        // The answer to most checks: the device runs what it should.
        UpdateDecision::Refuse(Refusal::NoNewVersion) => {
            state.metrics.observe_outcome("capgo", "no_new_version_available");
            state.capgo_answers.no_new_version()
        }
        UpdateDecision::Refuse(refusal) => {
            let body = refusal_body(&refusal);
            state.metrics.observe_outcome("capgo", body["error"].as_str().unwrap_or("refusal"));
            Bytes::from(body.to_string())
        }
    };
    if let Some(catalog) = catalog.as_deref() {
        let signals =
            crate::release_health::capgo_check_signals(catalog, &request.check, offered, request.report.seen_at());
        state.writes.push(request.report, signals);
    }
    const JSON: actix_web::http::header::HeaderValue =
        actix_web::http::header::HeaderValue::from_static("application/json");
    HttpResponse::Ok().content_type(JSON).body(answer)
}

/// `POST /updates/manifest_size`: the download size of each file of an offered delta manifest, from the release
/// index (sizes recorded at upload). Files no live bundle has, or stored before sizes were kept, are
/// `size_unknown`; so is everything of an unknown app.
pub(crate) async fn manifest_size(state: web::Data<AppState>, payload: web::Payload) -> HttpResponse {
    let body = match read_body(payload).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let request = match parse_manifest_size(&body) {
        Ok(request) => request,
        Err(RequestProblem::BadRequest { code, message }) => {
            return HttpResponse::BadRequest().json(device_error_body(code, &message));
        }
        Err(RequestProblem::Refusal(refusal)) => {
            let refused = refusal_body(&refusal);
            return HttpResponse::BadRequest().json(device_error_body(
                refused["error"].as_str().unwrap_or_default(),
                refused["message"].as_str().unwrap_or_default(),
            ));
        }
    };
    let catalog = state.index.get(&request.app_id);
    let sizes = |file: &updraft_capgo::manifest_size::SizeQuery| {
        let (catalog, hash) = (catalog.as_deref()?, file.file_hash.to_ascii_lowercase());
        // An entry whose URL is a brotli copy downloads that copy (`update_body`'s manifests).
        match file.download_url.as_deref().is_some_and(|url| url.ends_with(".br")) {
            true => catalog.delta_file_br_size(&hash),
            false => catalog.delta_file_size(&hash),
        }
    };
    HttpResponse::Ok().json(manifest_size_body(&request.files, sizes))
}
