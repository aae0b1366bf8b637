//! Bodies of the Expo management API: `POST /expo/{app}/assets/missing`, `POST /expo/{app}/releases`,
//! `.../releases/rollback`, `.../releases/promote`, and the release listing every one of them answers with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /expo/{app}/assets/missing`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MissingAssetsRequest {
    /// Lowercase hex SHA-256 digests.
    pub(crate) sha256: Vec<String>,
}

/// The answer: which of the digests the gateway does not have yet.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MissingAssetsResponse {
    pub(crate) missing: Vec<String>,
}

/// One asset of a publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AssetRef {
    pub(crate) sha256: String,
    /// The file extension (`png`, `.png` or empty).
    #[serde(default)]
    pub(crate) ext: String,
}

impl AssetRef {
    /// The extension without its one optional leading dot (`metadata.json` writes `png`; a manifest `.png`).
    pub(crate) fn extension(&self) -> &str {
        self.ext.strip_prefix('.').unwrap_or(&self.ext)
    }
}

/// The files of one platform of a publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlatformFiles {
    pub(crate) platform: String,
    /// This platform's runtime version (the fingerprint policy gives each platform its own); default: the
    /// publish's `runtime_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runtime_version: Option<String>,
    pub(crate) launch_asset: AssetRef,
    #[serde(default)]
    pub(crate) assets: Vec<AssetRef>,
}

/// `POST /expo/{app}/releases`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PublishRequest {
    pub(crate) channel: String,
    /// The default runtime version of every platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runtime_version: Option<String>,
    #[serde(default)]
    pub(crate) message: String,
    /// The public app config (`npx expo config --json --type public`).
    pub(crate) expo_client: Value,
    pub(crate) platforms: Vec<PlatformFiles>,
    /// Start a rollout of this publish on its channel, recorded with it (`publish expo --rollout P`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<crate::contract::rollouts::PublishRollout>,
}

/// `POST /expo/{app}/releases/rollback`: exactly one of `to` and `embedded: true`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RollbackRequest {
    pub(crate) channel: String,
    /// Needed to roll back to the embedded update; with `to`, only releases of this runtime version are taken
    /// (default: each referenced release keeps its own, so a publish group with per-platform runtime versions rolls
    /// back whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runtime_version: Option<String>,
    /// A release id or group id to roll back to.
    pub(crate) to: Option<String>,
    #[serde(default)]
    pub(crate) embedded: bool,
    /// `ios`, `android` or `all` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<String>,
}

/// `POST /expo/{app}/releases/promote`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PromoteRequest {
    /// A release id or group id.
    pub(crate) release: String,
    pub(crate) to_channel: String,
}

/// A release as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReleaseView {
    pub(crate) id: String,
    pub(crate) group_id: String,
    pub(crate) channel: String,
    pub(crate) runtime_version: String,
    pub(crate) platform: String,
    /// `toISOString()` form.
    pub(crate) created_at: String,
    pub(crate) message: String,
    /// `update` or `rollback_to_embedded`.
    pub(crate) kind: String,
    pub(crate) launch_asset_sha256: Option<String>,
    /// How many assets besides the launch asset.
    pub(crate) assets: usize,
}

impl ReleaseView {
    /// The view of a release.
    pub(crate) fn of(release: &updraft_core::ExpoRelease) -> Self {
        let (kind, launch_asset_sha256, assets) = match &release.kind {
            updraft_core::ExpoReleaseKind::Update { launch_asset, assets, .. } => {
                ("update", Some(launch_asset.sha256.clone()), assets.len())
            }
            updraft_core::ExpoReleaseKind::RollBackToEmbedded => ("rollback_to_embedded", None, 0),
        };
        Self {
            id: release.id.clone(),
            group_id: release.group_id.clone(),
            channel: release.channel.clone(),
            runtime_version: release.runtime_version.clone(),
            platform: release.platform.as_str().to_owned(),
            created_at: updraft_core::expo_time(release.created_at),
            message: release.message.clone(),
            kind: kind.to_owned(),
            launch_asset_sha256,
            assets,
        }
    }
}

/// The answer to a publish, rollback or promotion: `{"status":"ok","releases":[…]}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReleasesRecorded {
    pub(crate) status: String,
    pub(crate) releases: Vec<ReleaseView>,
}
