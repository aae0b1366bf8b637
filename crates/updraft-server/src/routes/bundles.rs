//! `/bundle`: upload a bundle zip (POST `multipart/form-data`), register one hosted elsewhere (POST JSON with
//! `external_url`), list (GET) and delete (DELETE).
//!
//! An upload is staged to disk while hashed, checked (checksum, zip layout, decryption for encrypted bundles),
//! stored under its content address (and, with `delta=true`, file by file), and only then recorded in one
//! transaction, so a half-finished upload is never served.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use updraft_capgo::encryption::AppPublicKey;
use updraft_capgo::error_codes;
use updraft_capgo::management::{PAGE_SIZE, bundle_json, page_field, string_field};
use updraft_core::{
    AppCatalog, AppId, BundleEncryption, BundleMetadata, BundleSource, BundleVersion, ChannelName, ManifestEntry,
    NewBundle, StoreError, coerce_version_build, delta_manifest_files,
};
use updraft_oss::{ObjectKey, PutMode, PutOptions};

use crate::api_error::ApiError;
use crate::auth::{Caller, authenticate};
use crate::bundle_ingest::{check_plain_zip, decrypt_and_check, unpack_files};
use crate::routes::body::SharedBody;
use crate::routes::call::{AppCall, app_params_call, json_call};
use crate::state::AppState;
use crate::storage_layout::StorageKey;
use crate::upload::{StagedFile, stage};

const TEXT_FIELD_LIMIT: usize = 4096;
/// What may follow the upload limit in a multipart body (boundaries, part headers, text fields).
const DRAIN_SLACK_BYTES: u64 = 1024 * 1024;
/// How long a refused upload may take to finish sending before the connection is closed instead.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
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
            Ok(caller) => upload(caller, &state, Multipart::new(request.headers(), body.reader())).await,
            Err(refused) => Err(refused),
        };
        let drained = body.drain(state.settings.max_upload_bytes + DRAIN_SLACK_BYTES, DRAIN_DEADLINE).await;
        let mut response = result.unwrap_or_else(|error| actix_web::ResponseError::error_response(&error));
        if !drained {
            response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        }
        Ok(response)
    } else {
        register_external(&request, &state, payload).await
    }
}

/// The fields every new bundle has, however it arrives.
struct BundleFields {
    app_id: AppId,
    catalog: std::sync::Arc<AppCatalog>,
    version: BundleVersion,
    channel: Option<ChannelName>,
    min_update_version: Option<semver::Version>,
    metadata: BundleMetadata,
}

fn read_bundle_fields(
    state: &AppState,
    caller: &Caller,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<BundleFields, ApiError> {
    let missing = |name: &str, hint: &str| {
        ApiError::bad_request(error_codes::MISSING_FIELD, format!("field `{name}` is required ({hint})"))
    };
    let app_id = field("app_id").ok_or_else(|| missing("app_id", "such as com.example.app"))?;
    let app_id =
        AppId::parse(&app_id).map_err(|e| ApiError::bad_request(error_codes::INVALID_APP_ID, e.to_string()))?;
    caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    let version = field("version").ok_or_else(|| missing("version", "the bundle's semver version, such as 1.0.1"))?;
    let version = BundleVersion::parse(&version)
        .map_err(|e| ApiError::bad_request(error_codes::INVALID_VERSION, e.to_string()))?;
    if catalog.bundle_by_version(version.as_str()).is_some() {
        return Err(version_exists(&app_id, &version));
    }
    let channel = field("channel")
        .map(|raw| ChannelName::parse(&raw))
        .transpose()
        .map_err(|e| ApiError::bad_request(error_codes::INVALID_REQUEST, format!("field `channel`: {e}")))?;
    let min_update_version = field("min_update_version")
        .map(|raw| {
            coerce_version_build(&raw).ok_or_else(|| {
                ApiError::bad_request(
                    error_codes::INVALID_VERSION,
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
                error_codes::INVALID_LINK,
                format!("field `link` must be an http(s) URL such as https://example.com/releases/1.0.1, got {link:?}"),
            ));
        }
    }
    for (name, value) in [("link", &link), ("comment", &field("comment"))] {
        if value.as_ref().is_some_and(|v| v.len() > TEXT_FIELD_LIMIT) {
            return Err(ApiError::bad_request(
                error_codes::INVALID_REQUEST,
                format!("field `{name}` is longer than {TEXT_FIELD_LIMIT} bytes; shorten it"),
            ));
        }
    }
    Ok(BundleMetadata { link, comment: field("comment") })
}

fn app_key(catalog: &AppCatalog) -> Result<AppPublicKey, ApiError> {
    let pem = catalog.app().public_key.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "encryption_key_missing",
            "this app has no public key, so an encrypted bundle cannot be checked; set it first with PUT /app {\"app_id\",\"public_key\"} (the PKCS#1 PEM from .capgo_key_v2.pub)",
        )
    })?;
    AppPublicKey::parse(pem).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored public key is invalid: {e}")))
}

/// What can be refused from the fields sent before the file, so the file need not be staged to be refused: the
/// caller's right to the app, the version, and an app key for an encrypted bundle.
fn check_fields_before_file(
    state: &AppState,
    caller: &Caller,
    fields: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let field = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    if field("app_id").is_none() || field("version").is_none() {
        return Ok(());
    }
    let bundle = read_bundle_fields(state, caller, &field)?;
    if field("session_key").is_some() {
        app_key(&bundle.catalog)?;
    }
    Ok(())
}

async fn read_multipart(
    state: &AppState,
    caller: &Caller,
    mut multipart: Multipart,
) -> Result<(HashMap<String, String>, Option<StagedFile>), ApiError> {
    let mut fields = HashMap::new();
    let mut staged = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| {
            ApiError::bad_request(
                error_codes::INVALID_REQUEST,
                format!("the body is not valid multipart/form-data ({e}); send the fields app_id, version and file"),
            )
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            check_fields_before_file(state, caller, &fields)?;
            let body = (&mut field).map_err(|e| e.to_string());
            staged = Some(stage(&state.settings.staging_dir(), Box::pin(body), state.settings.max_upload_bytes).await?);
        } else if TEXT_FIELDS.contains(&name.as_str()) {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_request(error_codes::INVALID_REQUEST, e.to_string()))?;
                if value.len() + chunk.len() > TEXT_FIELD_LIMIT {
                    return Err(ApiError::bad_request(
                        error_codes::INVALID_REQUEST,
                        format!("field `{name}` is too long"),
                    ));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::bad_request(error_codes::INVALID_REQUEST, format!("field `{name}` is not UTF-8 text"))
            })?;
            fields.insert(name, value.trim().to_owned());
        } else {
            return Err(ApiError::bad_request(
                error_codes::INVALID_REQUEST,
                format!("unknown field `{name}`; the fields are file, {}", TEXT_FIELDS.join(", ")),
            ));
        }
    }
    Ok((fields, staged))
}

async fn upload(caller: Caller, state: &AppState, multipart: Multipart) -> Result<HttpResponse, ApiError> {
    let (fields, staged) = read_multipart(state, &caller, multipart).await?;
    let field = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let bundle = read_bundle_fields(state, &caller, &field)?;
    let delta = matches!(field("delta").as_deref(), Some("true" | "1"));
    let staged = staged.ok_or_else(|| {
        ApiError::bad_request(
            error_codes::MISSING_FIELD,
            "field `file` is required (the bundle zip made by `npx @capgo/cli bundle zip`)",
        )
    })?;
    let staged_path = staged.file.path().to_path_buf();
    let staging_dir = state.settings.staging_dir();

    // Check the bytes: plain zips directly, encrypted ones after decryption with the app's key.
    let (checksum, crc32, encryption, plain_zip) = match field("session_key") {
        Some(session_key) => {
            if delta {
                return Err(ApiError::bad_request(
                    "delta_not_supported",
                    "delta updates of encrypted bundles need every file encrypted with your private key; upload without delta=true",
                ));
            }
            let key = app_key(&bundle.catalog)?;
            let checksum = field("checksum").ok_or_else(|| {
                ApiError::bad_request(
                    error_codes::MISSING_FIELD,
                    "field `checksum` is required for encrypted bundles (the checksum printed by `npx @capgo/cli bundle encrypt`)",
                )
            })?;
            let (path, dir, key_for_check, sk, sum) =
                (staged_path.clone(), staging_dir.clone(), key.clone(), session_key.clone(), checksum.clone());
            let decrypted = blocking(move || decrypt_and_check(&path, &dir, &key_for_check, &sk, &sum)).await?;
            tracing::debug!(plain.sha256 = %decrypted.plain_sha256, form = ?decrypted.checksum_form, "encrypted upload checks out");
            let encryption = BundleEncryption { session_key, key_id: Some(key.key_id().to_owned()) };
            (checksum, None, Some(encryption), Some(decrypted.plain))
        }
        None => {
            if let Some(expected) = field("checksum") {
                let expected = expected.to_ascii_lowercase();
                if expected != staged.sha256 && expected != staged.crc32 {
                    return Err(ApiError::bad_request(
                        error_codes::CHECKSUM_MISMATCH,
                        format!(
                            "checksum {expected} does not match the uploaded bytes (sha256 {}); the file was changed or truncated on the way, upload it again",
                            staged.sha256
                        ),
                    ));
                }
            }
            let path = staged_path.clone();
            blocking(move || check_plain_zip(&path)).await?;
            (staged.sha256.clone(), Some(staged.crc32.clone()), None, None)
        }
    };
    drop(plain_zip);

    // Store the files of a delta bundle, then the zip, all content-addressed.
    let manifest = if delta { store_files(state, &bundle.app_id, &staged_path).await? } else { Vec::new() };
    let object_key = StorageKey::Bundle { app_id: &bundle.app_id, sha256: &staged.sha256 }.object_key();
    let created_object = put_file(state, &object_key, &staged_path, "application/zip").await?;
    let source = BundleSource::Stored {
        object_key: object_key.to_string(),
        size_bytes: staged.size_bytes,
        sha256: staged.sha256.clone(),
    };
    let new_bundle = NewBundle {
        app_id: bundle.app_id.clone(),
        version: bundle.version.clone(),
        checksum,
        crc32,
        encryption,
        min_update_version: bundle.min_update_version.clone(),
        source,
        manifest,
        metadata: bundle.metadata.clone(),
    };
    let recorded = record(state, &bundle, &new_bundle).await;
    if recorded.is_err() && created_object {
        let _ = state.objects.delete(&object_key).await;
    }
    let answer = recorded?;
    tracing::info!(app.id = %bundle.app_id, bundle.version = %bundle.version, size_bytes = staged.size_bytes, "stored bundle");
    Ok(answer)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(e.into()))?
}

/// Stores a file under `key` unless it is there already (content-addressed); returns whether it was created.
async fn put_file(
    state: &AppState,
    key: &ObjectKey,
    path: &std::path::Path,
    content_type: &str,
) -> Result<bool, ApiError> {
    let reader = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reopening a staged file")))?;
    let body = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).boxed();
    let options = PutOptions { mode: PutMode::Create, content_type: Some(content_type.into()), cache_control: None };
    match state.objects.put(key, body, options).await {
        Ok(_) => Ok(true),
        Err(updraft_oss::Error::AlreadyExists { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Unpacks a plain zip and stores each file content-addressed; returns the complete manifest, with one entry per
/// path the device writes (`updraft_core::delta_manifest_files`: a `.br` copy next to its original is left out).
async fn store_files(
    state: &AppState,
    app_id: &AppId,
    zip_path: &std::path::Path,
) -> Result<Vec<ManifestEntry>, ApiError> {
    let workdir = tempfile::tempdir_in(state.settings.staging_dir())
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("unpacking a bundle")))?;
    let (path, into, cap) = (zip_path.to_path_buf(), workdir.path().to_path_buf(), state.settings.max_upload_bytes * 4);
    let files = blocking(move || {
        let layout = check_plain_zip(&path)?;
        let files = unpack_files(&path, &layout, &into, cap)?;
        let names: Vec<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
        let kept: std::collections::HashSet<String> = delta_manifest_files(&names)
            .map_err(|e| ApiError::bad_request(error_codes::INVALID_BUNDLE, e.to_string()))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(files.into_iter().filter(|f| kept.contains(&f.file_name)).collect::<Vec<_>>())
    })
    .await?;
    let mut manifest = Vec::with_capacity(files.len());
    for file in files {
        let key = StorageKey::File { app_id, sha256: &file.sha256 }.object_key();
        put_file(state, &key, &file.path, "application/octet-stream").await?;
        manifest.push(ManifestEntry {
            file_name: file.file_name,
            file_hash: file.sha256,
            object_key: key.to_string(),
            size_bytes: Some(file.size_bytes),
        });
    }
    manifest.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(manifest)
}

/// Records a bundle (pointing the named channel at it) and refreshes the release index.
async fn record(state: &AppState, bundle: &BundleFields, new_bundle: &NewBundle) -> Result<HttpResponse, ApiError> {
    let channel_write = bundle.channel.clone().map(|name| {
        let update = bundle.catalog.channel_update_for_publish(name.as_str());
        (name, update)
    });
    let stored = match state.store.insert_bundle(new_bundle, channel_write.as_ref()).await {
        Ok(stored) => stored,
        Err(StoreError::Conflict(_)) => return Err(version_exists(&bundle.app_id, &bundle.version)),
        Err(other) => return Err(other.into()),
    };
    state.refresh(&bundle.app_id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "id": stored.id,
        "app_id": bundle.app_id.as_str(),
        "version": bundle.version.as_str(),
        "checksum": stored.checksum,
        "size": match &stored.source { BundleSource::Stored { size_bytes, .. } => json!(size_bytes), BundleSource::External { .. } => Value::Null },
        "encrypted": stored.encryption.is_some(),
        "manifest_files": stored.manifest.len(),
        "channel": channel_write.map(|(name, _)| name.as_str().to_owned()),
    })))
}

/// POST JSON `{app_id, version, external_url, checksum, session_key?, min_update_version?, channel?}`.
async fn register_external(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let call = json_call(request, state, payload).await?;
    let params: &Map<String, Value> = &call.params;
    let text = |name: &str| {
        params.get(name).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    };
    let bundle = read_bundle_fields(state, &call.caller, &text)?;
    let url = text("external_url").ok_or_else(|| {
        ApiError::bad_request(
            error_codes::MISSING_FIELD,
            "field `external_url` is required for a JSON registration; to upload the zip itself, send multipart/form-data with a `file` field",
        )
    })?;
    if !url.starts_with("https://") || url.contains(char::is_whitespace) || url.len() <= "https://".len() {
        return Err(ApiError::bad_request(
            "invalid_external_url",
            format!("external_url must be an https:// URL (devices refuse cleartext), got {url:?}"),
        ));
    }
    let checksum = text("checksum").ok_or_else(|| {
        ApiError::bad_request(
            error_codes::MISSING_FIELD,
            "field `checksum` is required (the SHA-256 of the zip, or the encrypted checksum)",
        )
    })?;
    let encryption = match text("session_key") {
        Some(session_key) => {
            let key = app_key(&bundle.catalog)?;
            key.session_key(&session_key).map_err(|e| ApiError::bad_request("invalid_encryption", e.to_string()))?;
            Some(BundleEncryption { session_key, key_id: Some(key.key_id().to_owned()) })
        }
        None => None,
    };
    let checksum = if encryption.is_some() {
        checksum
    } else {
        let lower = checksum.to_ascii_lowercase();
        if lower.len() != 64 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request(
                "invalid_checksum",
                "checksum must be the lowercase hex SHA-256 of the zip (64 characters)",
            ));
        }
        lower
    };
    let new_bundle = NewBundle {
        app_id: bundle.app_id.clone(),
        version: bundle.version.clone(),
        checksum,
        crc32: None,
        encryption,
        min_update_version: bundle.min_update_version.clone(),
        source: BundleSource::External { url },
        manifest: Vec::new(),
        metadata: bundle.metadata.clone(),
    };
    record(state, &bundle, &new_bundle).await
}

/// GET `?app_id[&page]`: live bundles, newest first, 50 a page.
pub(crate) async fn list_bundles(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, catalog, .. } = app_params_call(&request, &state, payload).await?;
    let page = page_field(&params)?;
    let mut bundles: Vec<_> = catalog.bundles().collect();
    bundles.sort_by_key(|b| std::cmp::Reverse(b.id));
    let items: Vec<Value> = bundles.into_iter().skip(page * PAGE_SIZE).take(PAGE_SIZE).map(bundle_json).collect();
    Ok(HttpResponse::Ok().json(items))
}

/// DELETE `{app_id[, version]}`: one bundle, or every bundle no channel or device points at. Objects no live bundle
/// uses any more leave storage.
pub(crate) async fn delete_bundles(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let AppCall { params, app_id, catalog } = app_params_call(&request, &state, payload).await?;
    let targets: Vec<(i64, String)> = match string_field(&params, "version")? {
        Some(version) => {
            let bundle = catalog.bundle_by_version(&version).ok_or_else(|| {
                ApiError::status(404, "bundle_not_found", format!("bundle {version} does not exist for {app_id}"))
            })?;
            vec![(bundle.id, version)]
        }
        None => catalog.bundles().map(|b| (b.id, b.version.as_str().to_owned())).collect(),
    };
    let deleting_one = params.contains_key("version");
    let mut deleted = Vec::new();
    for (bundle_id, version) in targets {
        match state.store.delete_bundle(&app_id, bundle_id).await {
            Ok(orphaned) => {
                for key in orphaned.iter().filter_map(|k| ObjectKey::parse(k).ok()) {
                    if let Err(error) = state.objects.delete(&key).await {
                        tracing::warn!(object.key = %key, "could not remove a deleted bundle's object: {error}");
                    }
                }
                deleted.push(version);
            }
            Err(StoreError::Conflict(_)) if deleting_one => {
                return Err(ApiError::bad_request(
                    "cannot_delete_linked_version",
                    format!("bundle {version} is used by a channel or a device override; point them elsewhere first"),
                ));
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    state.refresh(&app_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok", "deleted": deleted })))
}

fn version_exists(app_id: &AppId, version: &BundleVersion) -> ApiError {
    ApiError::status(
        409,
        error_codes::VERSION_ALREADY_EXISTS,
        format!("bundle {version} already exists for {app_id}; bump the version (bundles are immutable)"),
    )
}
