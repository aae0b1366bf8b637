//! `/bundle`: upload a bundle zip (POST `multipart/form-data`), register one hosted elsewhere (POST JSON with
//! `external_url`), list (GET) and delete (DELETE).
//!
//! The handlers read Capgo's fields and render its answers; checking, storing and recording a bundle is
//! `crate::ops::bundles`. An upload is staged to disk while hashed, and refused as early as its fields allow.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use updraft_capgo::management::{PAGE_SIZE, bundle_json, page_field, string_field};
use updraft_core::{AppId, BundleMetadata, BundleSource, BundleVersion, ChannelName, codes, coerce_version_build};

use crate::api_error::ApiError;
use crate::auth::{Caller, authenticate};
use crate::ops::bundles::{self, BundleFields, DeleteTarget, RecordedBundle, UploadOptions};
use crate::routes::body::SharedBody;
use crate::routes::call::{AppCall, app_params_call, json_params};
use crate::state::AppState;
use crate::upload::{StagedFile, stage};

const TEXT_FIELD_LIMIT: usize = 4096;
/// What may follow the upload limit in a multipart body (boundaries, part headers, text fields).
const DRAIN_SLACK_BYTES: u64 = crate::limits::MULTIPART_SLACK_BYTES;
/// How long a refused upload may take to finish sending before the connection is closed instead.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// A refused upload that stops sending for this long is not waited for: the answer goes out and the connection
/// closes (a client that declared more than it sends gets its refusal at once).
const DRAIN_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);
const TEXT_FIELDS: [&str; 10] = [
    "app_id",
    "version",
    "checksum",
    "min_update_version",
    "channel",
    "session_key",
    "key_id",
    "delta",
    "link",
    "comment",
];

/// POST: a multipart upload, or a JSON registration of an externally hosted bundle.
pub(crate) async fn post_bundle(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.starts_with("multipart/form-data") {
        // Whatever the outcome, the client gets to send its whole body and then reads the answer.
        let body = SharedBody::new(payload);
        let result = match authenticate(&request, &state).await {
            Ok(caller) => upload(caller, &state, Multipart::new(request.headers(), body.reader()), &body).await,
            Err(refused) => Err(refused),
        };
        // A client that stopped sending is told so, whatever the parser made of the missing bytes.
        let result = if body.timed_out() { Err(crate::routes::body::body_timed_out()) } else { result };
        let drained =
            body.drain(state.settings.max_upload_bytes + DRAIN_SLACK_BYTES, DRAIN_DEADLINE, DRAIN_PAUSE).await;
        let mut response = result.unwrap_or_else(|error| actix_web::ResponseError::error_response(&error));
        if !drained {
            response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        }
        Ok(response)
    } else {
        register_external(&request, &state, payload).await
    }
}

fn read_bundle_fields(
    state: &AppState,
    caller: &Caller,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<BundleFields, ApiError> {
    let missing = |name: &str, hint: &str| {
        ApiError::bad_request(codes::MISSING_FIELD, format!("field `{name}` is required ({hint})"))
    };
    let app_id = field("app_id").ok_or_else(|| missing("app_id", "such as com.example.app"))?;
    let app_id = AppId::parse(&app_id).map_err(|e| ApiError::bad_request(codes::INVALID_APP_ID, e.to_string()))?;
    caller.require_app(&app_id)?;
    // The channel scope is checked before anything about the bundle, so a refused key learns nothing more.
    let channel = field("channel")
        .map(|raw| ChannelName::parse(&raw))
        .transpose()
        .map_err(|e| ApiError::bad_request(codes::INVALID_REQUEST, format!("field `channel`: {e}")))?;
    if let Some(channel) = &channel {
        caller.require_channel(&app_id, channel)?;
    }
    let catalog = state.catalog(&app_id)?;
    let version = field("version").ok_or_else(|| missing("version", "the bundle's semver version, such as 1.0.1"))?;
    let version =
        BundleVersion::parse(&version).map_err(|e| ApiError::bad_request(codes::INVALID_VERSION, e.to_string()))?;
    bundles::check_new_version(&catalog, &app_id, &version)?;
    let min_update_version = field("min_update_version")
        .map(|raw| {
            coerce_version_build(&raw).ok_or_else(|| {
                ApiError::bad_request(
                    codes::INVALID_VERSION,
                    format!("field `min_update_version` must be a native version such as 1.2.0, got {raw:?}"),
                )
            })
        })
        .transpose()?;
    let metadata = read_metadata(field)?;
    Ok(BundleFields { app_id, catalog, version, channel, min_update_version, metadata })
}

/// Capgo's `link` and `comment`: a release-notes URL and a line of text, at most 4 KiB each.
fn read_metadata(field: &dyn Fn(&str) -> Option<String>) -> Result<BundleMetadata, ApiError> {
    let link = field("link");
    if let Some(link) = &link {
        let is_url = (link.starts_with("https://") || link.starts_with("http://"))
            && !link.contains(char::is_whitespace)
            && !link.ends_with("://");
        if !is_url {
            return Err(ApiError::bad_request(
                "invalid_link",
                format!("field `link` must be an http(s) URL such as https://example.com/releases/1.0.1, got {link:?}"),
            ));
        }
    }
    for (name, value) in [("link", &link), ("comment", &field("comment"))] {
        if value.as_ref().is_some_and(|v| v.len() > TEXT_FIELD_LIMIT) {
            return Err(ApiError::bad_request(
                codes::INVALID_REQUEST,
                format!("field `{name}` is longer than {TEXT_FIELD_LIMIT} bytes; shorten it"),
            ));
        }
    }
    Ok(BundleMetadata { link, comment: field("comment") })
}

/// What can be refused from the fields sent before the file, so the file need not be staged to be refused: the
/// caller's right to the app, the version, and an app key for an encrypted bundle. `app_id` and `version` must come
/// first, so a key scoped to another app never gets a file staged.
fn check_fields_before_file(
    state: &AppState,
    caller: &Caller,
    fields: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let field = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    if field("app_id").is_none() || field("version").is_none() {
        return Err(ApiError::bad_request(
            codes::MISSING_FIELD,
            "the fields `app_id` and `version` must come before `file` in the multipart body (so the upload can be \
             refused before the file is sent); send them first",
        ));
    }
    let bundle = read_bundle_fields(state, caller, &field)?;
    if field("session_key").is_some() {
        bundles::app_key(&bundle.catalog)?;
    }
    Ok(())
}

async fn read_multipart(
    state: &AppState,
    caller: &Caller,
    multipart: Multipart,
    body: &SharedBody,
) -> Result<(HashMap<String, String>, Option<StagedFile>), ApiError> {
    let mut fields = HashMap::new();
    let mut staged = None;
    let mut multipart = body.until_stuck(multipart);
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| {
            ApiError::bad_request(
                codes::INVALID_REQUEST,
                format!("the body is not valid multipart/form-data ({e}); send the fields app_id, version and file"),
            )
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            // Who may upload to which app is decided before a byte of the file is read or staged.
            check_fields_before_file(state, caller, &fields)?;
            let file = body.until_stuck((&mut field).map_err(|e| e.to_string()));
            staged = Some(stage(&state.settings.staging_dir(), Box::pin(file), state.settings.max_upload_bytes).await?);
        } else if TEXT_FIELDS.contains(&name.as_str()) {
            let mut value = Vec::new();
            let mut text = body.until_stuck(&mut field);
            while let Some(chunk) = text.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_request(codes::INVALID_REQUEST, e.to_string()))?;
                if value.len() + chunk.len() > TEXT_FIELD_LIMIT {
                    return Err(ApiError::bad_request(codes::INVALID_REQUEST, format!("field `{name}` is too long")));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::bad_request(codes::INVALID_REQUEST, format!("field `{name}` is not UTF-8 text"))
            })?;
            fields.insert(name, value.trim().to_owned());
        } else {
            return Err(ApiError::bad_request(
                codes::INVALID_REQUEST,
                format!("unknown field `{name}`; the fields are file, {}", TEXT_FIELDS.join(", ")),
            ));
        }
    }
    Ok((fields, staged))
}

async fn upload(
    caller: Caller,
    state: &AppState,
    multipart: Multipart,
    body: &SharedBody,
) -> Result<HttpResponse, ApiError> {
    let (fields, staged) = read_multipart(state, &caller, multipart, body).await?;
    if body.stuck() {
        // What was read is not the whole upload: nothing of it is kept.
        return Err(ApiError::bad_request(
            codes::INVALID_REQUEST,
            "the multipart body ended before its closing boundary; send the whole body, ending with --<boundary>--",
        ));
    }
    let field = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let bundle = read_bundle_fields(state, &caller, &field)?;
    let delta = matches!(field("delta").as_deref(), Some("true" | "1"));
    let staged = staged.ok_or_else(|| {
        ApiError::bad_request(
            codes::MISSING_FIELD,
            "field `file` is required (the bundle zip made by `npx @capgo/cli bundle zip`)",
        )
    })?;
    let options = UploadOptions { checksum: field("checksum"), session_key: field("session_key"), delta };
    let recorded = bundles::publish_upload(state, &caller, &bundle, staged, options).await?;
    Ok(recorded_json(&bundle, &recorded))
}

/// The answer to a recorded bundle.
fn recorded_json(bundle: &BundleFields, recorded: &RecordedBundle) -> HttpResponse {
    let stored = &recorded.bundle;
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "id": stored.id,
        "app_id": bundle.app_id.as_str(),
        "version": bundle.version.as_str(),
        "checksum": stored.checksum,
        "size": match &stored.source { BundleSource::Stored { size_bytes, .. } => json!(size_bytes), BundleSource::External { .. } => Value::Null },
        "encrypted": stored.encryption.is_some(),
        "manifest_files": stored.manifest.len(),
        "channel": recorded.channel.as_ref().map(|name| name.as_str().to_owned()),
    }))
}

/// POST JSON `{app_id, version, external_url, checksum, session_key?, min_update_version?, channel?}`.
async fn register_external(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(request, state).await?;
    let params = json_params(payload).await?;
    let params: &Map<String, Value> = &params;
    let text = |name: &str| {
        params.get(name).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    };
    let bundle = read_bundle_fields(state, &caller, &text)?;
    let url = text("external_url").ok_or_else(|| {
        ApiError::bad_request(
            codes::MISSING_FIELD,
            "field `external_url` is required for a JSON registration; to upload the zip itself, send multipart/form-data with a `file` field",
        )
    })?;
    let recorded =
        bundles::register_external(state, &caller, &bundle, url, text("checksum"), text("session_key")).await?;
    Ok(recorded_json(&bundle, &recorded))
}

/// GET `?app_id[&page]`: live bundles, newest first, 50 a page.
pub(crate) async fn list_bundles(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, catalog, .. } = app_params_call(&request, &state, &caller, payload).await?;
    let page = page_field(&params)?;
    let mut listed: Vec<_> = catalog.bundles().collect();
    listed.sort_by_key(|b| std::cmp::Reverse(b.id));
    let items: Vec<Value> = listed.into_iter().skip(page * PAGE_SIZE).take(PAGE_SIZE).map(bundle_json).collect();
    Ok(HttpResponse::Ok().json(items))
}

/// DELETE `{app_id[, version]}`: one bundle, or every bundle no channel or device points at. Objects no live bundle
/// uses any more leave storage.
pub(crate) async fn delete_bundles(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, .. } = app_params_call(&request, &state, &caller, payload).await?;
    let target = match string_field(&params, "version")? {
        Some(version) => DeleteTarget::Version(version),
        None => DeleteTarget::Unused,
    };
    caller.require_app_change(&app_id)?;
    let deleted = bundles::delete(&state, &caller, &app_id, target).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok", "deleted": deleted })))
}
