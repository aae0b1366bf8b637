//! The manifest JSON of an Expo release, built once and served as exact bytes (they are what gets signed).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::value::RawValue;
use updraft_core::{ExpoAsset, ExpoRelease, ExpoReleaseKind, expo_time};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestAsset<'a> {
    hash: String,
    key: &'a str,
    content_type: &'static str,
    file_extension: String,
    url: String,
}

#[derive(Serialize)]
struct Extra<'a> {
    #[serde(rename = "expoClient")]
    expo_client: &'a RawValue,
    /// The app config's `extra.eas`, where `Constants.easConfig` looks (EAS manifests carry it there too).
    #[serde(skip_serializing_if = "Option::is_none")]
    eas: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    id: &'a str,
    created_at: String,
    runtime_version: &'a str,
    launch_asset: ManifestAsset<'a>,
    assets: Vec<ManifestAsset<'a>>,
    metadata: serde_json::Map<String, serde_json::Value>,
    extra: Extra<'a>,
}

/// The manifest `hash`: base64url (no padding) of the SHA-256 bytes.
pub fn asset_hash(sha256_hex: &str) -> String {
    let bytes: Vec<u8> =
        (0..sha256_hex.len() / 2).filter_map(|i| u8::from_str_radix(&sha256_hex[i * 2..i * 2 + 2], 16).ok()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The MIME type of an asset from its extension (the client ignores it, but the spec asks for a correct one).
pub fn content_type(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "js" | "hbc" | "bundle" | "mjs" => "application/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "bmp" => "image/bmp",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "html" => "text/html",
        "css" => "text/css",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// The content type an asset is announced with in the manifest, and served with by the asset route: the launch
/// asset (the JS or Hermes bundle) is `application/javascript`, whatever its extension.
pub fn asset_content_type(launch: bool, ext: &str) -> &'static str {
    if launch { "application/javascript" } else { content_type(ext) }
}

fn manifest_asset<'a>(
    asset: &'a ExpoAsset,
    launch: bool,
    asset_url: &impl Fn(&ExpoAsset) -> String,
) -> ManifestAsset<'a> {
    ManifestAsset {
        hash: asset_hash(&asset.sha256),
        key: &asset.md5,
        content_type: asset_content_type(launch, &asset.ext),
        // Android names the file on the device with the extension; an export without one gets `.bundle`.
        file_extension: if asset.ext.is_empty() { ".bundle".into() } else { format!(".{}", asset.ext) },
        url: asset_url(asset),
    }
}

/// Builds the manifest body of an update release; `asset_url` gives each asset's stable URL. `None` for a rollback
/// release (it has no manifest) or a stored app config that is not JSON.
pub fn manifest_json(release: &ExpoRelease, asset_url: impl Fn(&ExpoAsset) -> String) -> Option<Vec<u8>> {
    let ExpoReleaseKind::Update { launch_asset, assets, expo_client } = &release.kind else { return None };
    let expo_client: &RawValue = serde_json::from_str(expo_client).ok()?;
    let config: serde_json::Value = serde_json::from_str(expo_client.get()).ok()?;
    let eas = crate::app_config::eas_config(&config).cloned();
    let manifest = Manifest {
        id: &release.id,
        created_at: expo_time(release.created_at),
        runtime_version: &release.runtime_version,
        launch_asset: manifest_asset(launch_asset, true, &asset_url),
        assets: assets.iter().map(|a| manifest_asset(a, false, &asset_url)).collect(),
        metadata: serde_json::Map::new(),
        extra: Extra { expo_client, eas },
    };
    serde_json::to_vec(&manifest).ok()
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use updraft_core::{AppId, Platform};

    use super::*;

    #[test]
    fn hash_is_base64url_without_padding() {
        // sha256("") = e3b0c442…
        let hash = asset_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hash, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
        assert_eq!(hash.len(), 43);
    }

    #[test]
    fn manifest_has_the_fields_both_platforms_need() {
        let asset = |sha: char, md5: char, ext: &str| ExpoAsset {
            sha256: sha.to_string().repeat(64),
            md5: md5.to_string().repeat(32),
            ext: ext.into(),
        };
        let release = ExpoRelease {
            id: "0b9d3b1e-6f1c-4f77-9a3c-1f2e3d4c5b6a".into(),
            group_id: "g".into(),
            app_id: AppId::parse("com.example.app").unwrap(),
            channel: "production".into(),
            runtime_version: "1.0.0".into(),
            platform: Platform::Ios,
            created_at: DateTime::from_timestamp_millis(1_763_900_000_123).unwrap(),
            message: String::new(),
            kind: ExpoReleaseKind::Update {
                launch_asset: asset('a', 'b', "hbc"),
                assets: vec![asset('c', 'd', "png")],
                expo_client: r#"{"name":"Café ✓","slug":"x","extra":{"eas":{"projectId":"0b9d"}}}"#.into(),
            },
        };
        let bytes = manifest_json(&release, |a| format!("https://h/a/{}", a.sha256)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["createdAt"], "2025-11-23T12:13:20.123Z");
        assert_eq!(value["launchAsset"]["contentType"], "application/javascript");
        assert_eq!(value["launchAsset"]["fileExtension"], ".hbc");
        assert_eq!(value["assets"][0]["fileExtension"], ".png");
        assert_eq!(value["assets"][0]["contentType"], "image/png");
        assert_eq!(value["metadata"], serde_json::json!({}));
        assert_eq!(value["extra"]["expoClient"]["name"], "Café ✓");
        assert_eq!(value["extra"]["eas"], serde_json::json!({"projectId": "0b9d"}), "Constants.easConfig");
        // Deterministic bytes.
        assert_eq!(bytes, manifest_json(&release, |a| format!("https://h/a/{}", a.sha256)).unwrap());
    }
}
