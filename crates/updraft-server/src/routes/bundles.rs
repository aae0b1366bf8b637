//! `POST /bundle`: upload a Capgo bundle zip as `multipart/form-data` (`app_id`, `version`, `file`, optional
//! `checksum`, `min_update_version`, `channel`).
//!
//! The zip is staged to disk while hashed, checked (checksum, zip layout), stored under its content address, and
//! only then recorded in one transaction (optionally pointing a channel at it), so a half-finished upload is never
//! served.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use updraft_capgo::bundle_zip::inspect_bundle_zip;
use updraft_capgo::error_codes;
use updraft_core::{
    AppId, BundleSource, BundleVersion, ChannelName, NewBundle, StoreError, coerce_version_build,
};
use updraft_oss::{PutMode, PutOptions};

use crate::api_error::ApiError;
use crate::auth::authenticate;
use crate::state::AppState;
use crate::storage_layout::StorageKey;
use crate::upload::{StagedFile, stage};

const TEXT_FIELD_LIMIT: usize = 4096;
const TEXT_FIELDS: [&str; 7] = [
    "app_id",
    "version",
    "checksum",
    "min_update_version",
    "channel",
    "session_key",
    "key_id",
];

pub(crate) async fn upload_bundle(
    request: HttpRequest,
    state: web::Data<AppState>,
    mut multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&request, &state).await?;
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut staged: Option<StagedFile> = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| {
            ApiError::bad_request(
                error_codes::INVALID_REQUEST,
                format!("the body is not valid multipart/form-data ({e}); send the fields app_id, version and file"),
            )
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let body = (&mut field).map_err(|e| e.to_string());
            staged = Some(
                stage(
                    &state.settings.staging_dir(),
                    Box::pin(body),
                    state.settings.max_upload_bytes,
                )
                .await?,
            );
        } else if TEXT_FIELDS.contains(&name.as_str()) {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_request(error_codes::INVALID_REQUEST, e.to_string())
                })?;
                if value.len() + chunk.len() > TEXT_FIELD_LIMIT {
                    return Err(ApiError::bad_request(
                        error_codes::INVALID_REQUEST,
                        format!("field `{name}` is too long"),
                    ));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| {
                ApiError::bad_request(
                    error_codes::INVALID_REQUEST,
                    format!("field `{name}` is not UTF-8 text"),
                )
            })?;
            fields.insert(name, value.trim().to_owned());
        } else {
            return Err(ApiError::bad_request(
                error_codes::INVALID_REQUEST,
                format!(
                    "unknown field `{name}`; the fields are file, {}",
                    TEXT_FIELDS.join(", ")
                ),
            ));
        }
    }
    let field = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let missing = |name: &str, hint: &str| {
        ApiError::bad_request(
            error_codes::MISSING_FIELD,
            format!("multipart field `{name}` is required ({hint})"),
        )
    };
    let app_id = field("app_id").ok_or_else(|| missing("app_id", "such as com.example.app"))?;
    let app_id = AppId::parse(&app_id)
        .map_err(|e| ApiError::bad_request(error_codes::INVALID_APP_ID, e.to_string()))?;
    caller.require_app(&app_id)?;
    let catalog = state.catalog(&app_id)?;
    let version = field("version")
        .ok_or_else(|| missing("version", "the bundle's semver version, such as 1.0.1"))?;
    let version = BundleVersion::parse(&version)
        .map_err(|e| ApiError::bad_request(error_codes::INVALID_VERSION, e.to_string()))?;
    if catalog.bundle_by_version(version.as_str()).is_some() {
        return Err(version_exists(&app_id, &version));
    }
    let channel = field("channel")
        .map(|raw| ChannelName::parse(&raw))
        .transpose()
        .map_err(|e| {
            ApiError::bad_request(
                error_codes::INVALID_REQUEST,
                format!("field `channel`: {e}"),
            )
        })?;
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
    if field("session_key").is_some() {
        return Err(ApiError::bad_request(
            "encryption_not_supported",
            "encrypted bundles need the app's public key on the server, which this server does not support yet; upload the plain zip",
        ));
    }
    let staged = staged
        .ok_or_else(|| missing("file", "the bundle zip made by `npx @capgo/cli bundle zip`"))?;
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
    let zip_path = staged.file.path().to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&zip_path).map(inspect_bundle_zip))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("reopening a staged upload"))
        })?
        .map_err(|e| ApiError::bad_request(error_codes::INVALID_BUNDLE, e.to_string()))?;

    let object_key = StorageKey::Bundle {
        app_id: &app_id,
        sha256: &staged.sha256,
    }
    .object_key();
    let reader = tokio::fs::File::open(staged.file.path())
        .await
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("reopening a staged upload"))
        })?;
    let body = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).boxed();
    let options = PutOptions {
        mode: PutMode::Create,
        content_type: Some("application/zip".into()),
        cache_control: None,
    };
    let created_object = match state.objects.put(&object_key, body, options).await {
        Ok(_) => true,
        Err(updraft_oss::Error::AlreadyExists { .. }) => false,
        Err(error) => return Err(error.into()),
    };
    let new_bundle = NewBundle {
        app_id: app_id.clone(),
        version: version.clone(),
        checksum: staged.sha256.clone(),
        crc32: Some(staged.crc32.clone()),
        encryption: None,
        min_update_version,
        source: BundleSource::Stored {
            object_key: object_key.to_string(),
            size_bytes: staged.size_bytes,
            sha256: staged.sha256.clone(),
        },
    };
    let channel_write = channel.map(|name| {
        let update = catalog.channel_update_for_publish(name.as_str());
        (name, update)
    });
    let bundle = match state
        .store
        .insert_bundle(&new_bundle, channel_write.as_ref())
        .await
    {
        Ok(bundle) => bundle,
        Err(error) => {
            if created_object {
                let _ = state.objects.delete(&object_key).await;
            }
            return Err(match error {
                StoreError::Conflict(_) => version_exists(&app_id, &version),
                other => other.into(),
            });
        }
    };
    state.refresh(&app_id).await?;
    tracing::info!(
        app.id = %app_id,
        bundle.version = %version,
        size_bytes = staged.size_bytes,
        "stored bundle {version} of {app_id}"
    );
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "id": bundle.id,
        "app_id": app_id.as_str(),
        "version": version.as_str(),
        "checksum": staged.sha256,
        "size": staged.size_bytes,
        "channel": channel_write.map(|(name, _)| name.as_str().to_owned()),
    })))
}

fn version_exists(app_id: &AppId, version: &BundleVersion) -> ApiError {
    ApiError::status(
        409,
        error_codes::VERSION_ALREADY_EXISTS,
        format!(
            "bundle {version} already exists for {app_id}; bump the version (bundles are immutable)"
        ),
    )
}
