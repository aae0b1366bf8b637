//! Bundles: the web-asset zips that Capacitor devices download, and where their bytes live.

use chrono::{DateTime, Utc};

use crate::ids::{AppId, BundleVersion};

/// Where a bundle's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// In the gateway's object storage.
    Stored {
        /// Object key inside the store.
        object_key: String,
        /// Size of the stored bytes.
        size_bytes: u64,
        /// Lowercase hex SHA-256 of the stored bytes (the ETag).
        sha256: String,
    },
    /// Hosted elsewhere; devices download it from this https URL.
    External {
        /// The download URL.
        url: String,
    },
}

/// How an encrypted bundle was encrypted (by `@capgo/cli bundle encrypt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEncryption {
    /// `ivB64:rsaKeyB64` as the CLI printed it.
    pub session_key: String,
    /// First 20 characters of the public key body, when known.
    pub key_id: Option<String>,
}

/// One file of a bundle's delta manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Relative POSIX path inside the bundle.
    pub file_name: String,
    /// Lowercase hex SHA-256 of the file's content.
    pub file_hash: String,
    /// Object key of the stored (content-addressed) file.
    pub object_key: String,
    /// Size of the stored file; `None` for files recorded before sizes were kept.
    pub size_bytes: Option<u64>,
    /// Size of its stored brotli copy (`<object_key>.br`); `None` for files stored before copies existed.
    pub br_size_bytes: Option<u64>,
}

/// A published bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Numeric id.
    pub id: i64,
    /// Owning app.
    pub app_id: AppId,
    /// The version name devices receive.
    pub version: BundleVersion,
    /// What current devices compare: lowercase hex SHA-256 of the plain zip, or the encrypted checksum for
    /// encrypted bundles.
    pub checksum: String,
    /// Lowercase 8-hex CRC32 of the plain zip, for plugins older than 5.10 / 6.25 / 7.0.30.
    pub crc32: Option<String>,
    /// Set when the stored bytes are encrypted.
    pub encryption: Option<BundleEncryption>,
    /// Lowest native version this bundle may be delivered to (`disableAutoUpdate: version_number`).
    pub min_update_version: Option<semver::Version>,
    /// Where the bytes are.
    pub source: BundleSource,
    /// Every file of the bundle, when it was uploaded for delta updates; empty otherwise.
    pub manifest: Vec<ManifestEntry>,
    /// Release notes, as Capgo's `link` and `comment` (see [`BundleMetadata`]).
    pub metadata: BundleMetadata,
    /// Upload time.
    pub created_at: DateTime<Utc>,
}

/// A bundle about to be recorded: everything but the id, which the store assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBundle {
    /// Owning app.
    pub app_id: AppId,
    /// Version name.
    pub version: BundleVersion,
    /// See [`Bundle::checksum`].
    pub checksum: String,
    /// See [`Bundle::crc32`].
    pub crc32: Option<String>,
    /// See [`Bundle::encryption`].
    pub encryption: Option<BundleEncryption>,
    /// See [`Bundle::min_update_version`].
    pub min_update_version: Option<semver::Version>,
    /// See [`Bundle::source`].
    pub source: BundleSource,
    /// See [`Bundle::manifest`].
    pub manifest: Vec<ManifestEntry>,
    /// See [`Bundle::metadata`].
    pub metadata: BundleMetadata,
}

/// The release notes an operator attaches to a bundle at upload (Capgo's `link` and `comment`). Plugins from
/// 5.35.0 / 6.35.0 / 7.35.0 / 8.35.0 receive them in the update reply and hand them to the app (`getLatest()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleMetadata {
    /// A URL to the release notes; `None` when not set.
    pub link: Option<String>,
    /// A free-text comment; `None` when not set.
    pub comment: Option<String>,
}
