//! The Expo management API (API key): content-addressed asset uploads, which assets are missing, release creation,
//! listing, rollback (to an earlier release or to the embedded update) and promotion to another channel.
//!
//! The handlers read the bodies of `crate::contract::expo`, call `crate::ops::expo_releases` and render; failures
//! answer in the Expo management shape with neutral codes (`ExpoApiError`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use updraft_core::{ChannelName, ExpoRelease, Platform, check_asset_extension, codes, sha256_hex};

use crate::api_error::{ApiError, ExpoApiError};
use crate::auth::AllowedApp;
use crate::contract::expo::{
    MissingAssetsRequest, MissingAssetsResponse, PromoteRequest, PublishRequest, ReleaseView, ReleasesRecorded,
    RollbackRequest,
};
use crate::ops::expo_releases::{self, AssetName, PlatformAssets, Publish, Rollback, RollbackTarget};
use crate::routes::call::{json_params, read_params};
use crate::state::AppState;

/// `PUT /expo/{app_id}/assets/{sha256}`: the raw bytes of one asset. The digest in the path must match.
pub(crate) async fn upload_asset(
    state: web::Data<AppState>,
    app: AllowedApp,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let AllowedApp { app_id, .. } = app;
    let (_, sha256) = path.into_inner();
    if sha256_hex(&sha256).is_none_or(|digest| digest != sha256) {
        return Err(ApiError::bad_request(
            "invalid_digest",
            "the path must end in the lowercase hex SHA-256 of the body",
        )
        .into());
    }
    let stored = expo_releases::upload_asset(&state, &app_id, &sha256, payload).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "status": "ok", "sha256": sha256, "md5": stored.md5, "size": stored.size_bytes })))
}

/// `POST /expo/{app_id}/assets/missing {"sha256": [...]}`: which of these the server does not have yet.
pub(crate) async fn missing_assets(
    state: web::Data<AppState>,
    app: AllowedApp,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let app_id = app.app_id;
    let asked: MissingAssetsRequest = serde_json::from_value(Value::Object(json_params(payload).await?))
        .map_err(|e| ApiError::bad_request(codes::INVALID_FIELD, format!("expected {{\"sha256\": [...]}}: {e}")))?;
    let missing = expo_releases::missing_assets(&state, &app_id, &asked.sha256).await?;
    Ok(HttpResponse::Ok().json(MissingAssetsResponse { missing }))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_FIELD, message)
}

fn checked_runtime(runtime_version: &str) -> Result<(), ApiError> {
    if runtime_version.is_empty() || runtime_version.len() > 256 || runtime_version.chars().any(char::is_control) {
        return Err(bad("runtime_version must be the app's runtime version (1 to 256 printable characters)"));
    }
    Ok(())
}

fn checked_channel(channel: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(channel).map_err(|e| bad(e.to_string()))
}

fn recorded(releases: &[ExpoRelease]) -> HttpResponse {
    let releases = releases.iter().map(ReleaseView::of).collect();
    HttpResponse::Ok().json(ReleasesRecorded { status: "ok".to_owned(), releases })
}

/// The body of a JSON release operation, read as `T`.
async fn json_body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(json_params(payload).await?)).map_err(|e| bad(e.to_string()))
}

/// `POST /expo/{app_id}/releases`: record a publish whose assets are all stored.
pub(crate) async fn publish(
    state: web::Data<AppState>,
    app: AllowedApp,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let AllowedApp { caller, app_id, .. } = app;
    let publish: PublishRequest = json_body(payload).await?;
    let channel = checked_channel(&publish.channel)?;
    caller.require_channel(&app_id, &channel)?;
    if let Some(runtime_version) = &publish.runtime_version {
        checked_runtime(runtime_version)?;
    }
    if !publish.expo_client.is_object() {
        return Err(
            bad("expo_client must be the public app config object (`npx expo config --json --type public`)").into()
        );
    }
    if publish.platforms.is_empty() {
        return Err(bad("platforms must name at least one of ios and android").into());
    }
    // Refused before anything else: expo-updates names each file <key>.<ext> on the device.
    for asset in publish.platforms.iter().flat_map(|p| std::iter::once(&p.launch_asset).chain(&p.assets)) {
        check_asset_extension(asset.extension())
            .map_err(|problem| ApiError::bad_request("unsafe_file_extension", problem.to_string()))?;
    }
    let expo_client = serde_json::to_string(&publish.expo_client).map_err(|e| bad(e.to_string()))?;
    let name = |asset: &crate::contract::expo::AssetRef| AssetName {
        sha256: asset.sha256.to_ascii_lowercase(),
        ext: asset.extension().to_owned(),
    };
    let mut platforms: Vec<PlatformAssets> = Vec::with_capacity(publish.platforms.len());
    for files in &publish.platforms {
        let platform = match Platform::parse(&files.platform) {
            Ok(platform @ (Platform::Ios | Platform::Android)) => platform,
            _ => return Err(bad(format!("platform must be ios or android, got {:?}", files.platform)).into()),
        };
        if platforms.iter().any(|p| p.platform == platform) {
            return Err(bad(format!("platform {platform} is listed twice")).into());
        }
        let runtime_version = files.runtime_version.as_ref().or(publish.runtime_version.as_ref()).ok_or_else(|| {
            bad(format!("no runtime version for {platform}: give runtime_version for the publish or for the platform"))
        })?;
        checked_runtime(runtime_version)?;
        platforms.push(PlatformAssets {
            platform,
            runtime_version: runtime_version.clone(),
            launch_asset: name(&files.launch_asset),
            assets: files.assets.iter().map(name).collect(),
        });
    }
    let rollout = match &publish.rollout {
        None => None,
        Some(plan) => {
            let percent =
                updraft_core::RolloutPercent::from_percent(plan.percent).map_err(updraft_core::Failure::from)?;
            let defaults = updraft_core::HaltPolicy::default();
            let policy = updraft_core::HaltPolicy::new(
                plan.max_failure_rate.unwrap_or(defaults.max_failure_rate()),
                plan.min_devices.unwrap_or(defaults.min_devices()),
            )
            .map_err(updraft_core::Failure::from)?;
            Some((percent, policy))
        }
    };
    let publish = Publish { channel, message: publish.message, expo_client, platforms, rollout };
    Ok(recorded(&expo_releases::publish(&state, &caller, &app_id, publish).await?))
}

/// `GET /expo/{app_id}/releases[?channel=&runtime_version=]`: newest first.
pub(crate) async fn list(
    request: HttpRequest,
    app: AllowedApp,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let AllowedApp { catalog, .. } = app;
    let params = read_params(&request, payload).await?;
    let text = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_owned);
    let (channel, runtime) = (text("channel"), text("runtime_version"));
    let mut releases: Vec<&ExpoRelease> = catalog
        .expo_releases()
        .iter()
        .filter(|r| channel.as_ref().is_none_or(|c| *c == r.channel))
        .filter(|r| runtime.as_ref().is_none_or(|v| *v == r.runtime_version))
        .collect();
    releases.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.platform.as_str().cmp(b.platform.as_str())));
    Ok(HttpResponse::Ok().json(releases.into_iter().map(ReleaseView::of).collect::<Vec<_>>()))
}

/// `POST /expo/{app_id}/releases/rollback {channel, to[, runtime_version] | embedded: true, runtime_version[,
/// platform]}`.
pub(crate) async fn rollback(
    state: web::Data<AppState>,
    app: AllowedApp,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let AllowedApp { caller, app_id, .. } = app;
    let rollback: RollbackRequest = json_body(payload).await?;
    let channel = checked_channel(&rollback.channel)?;
    caller.require_channel(&app_id, &channel)?;
    if let Some(runtime_version) = &rollback.runtime_version {
        checked_runtime(runtime_version)?;
    }
    let platforms: Vec<Platform> = match rollback.platform.as_deref() {
        None | Some("all") => vec![Platform::Ios, Platform::Android],
        Some(raw) => match Platform::parse(raw) {
            Ok(platform @ (Platform::Ios | Platform::Android)) => vec![platform],
            _ => return Err(bad(format!("platform must be ios, android or all, got {raw:?}")).into()),
        },
    };
    let target = match (rollback.to, rollback.embedded) {
        (Some(_), true) | (None, false) => {
            return Err(bad("give exactly one of `to` (a release or group id) and `embedded: true`").into());
        }
        (None, true) => {
            let runtime_version = rollback.runtime_version.ok_or_else(|| {
                bad("rolling back to the embedded update needs runtime_version (and platform, when the platforms' runtime versions differ)")
            })?;
            RollbackTarget::Embedded { runtime_version }
        }
        (Some(reference), false) => RollbackTarget::Release { reference, runtime_version: rollback.runtime_version },
    };
    let rollback = Rollback { channel, target, platforms };
    Ok(recorded(&expo_releases::rollback(&state, &caller, &app_id, rollback).await?))
}

/// `POST /expo/{app_id}/releases/promote {release, to_channel}`: the same files on another channel, as a new release.
pub(crate) async fn promote(
    state: web::Data<AppState>,
    app: AllowedApp,
    payload: web::Payload,
) -> Result<HttpResponse, ExpoApiError> {
    let AllowedApp { caller, app_id, .. } = app;
    let promote: PromoteRequest = json_body(payload).await?;
    let channel = checked_channel(&promote.to_channel)?;
    caller.require_channel(&app_id, &channel)?;
    Ok(recorded(&expo_releases::promote(&state, &caller, &app_id, &promote.release, &channel).await?))
}
