//! Bodies of `/expo/{app_id}/keys`: store a signing key (`POST`: generate one, or import a private key) and list
//! them (`GET`). A private key is in an answer only when a generate call asks to export it.

use serde::{Deserialize, Serialize};

/// The key id `expo-updates` asks for unless `codeSigningMetadata.keyid` says otherwise.
pub(crate) const DEFAULT_KEY_ID: &str = "main";

fn default_key_id() -> String {
    DEFAULT_KEY_ID.to_owned()
}

/// `POST /expo/{app_id}/keys`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreKeyRequest {
    #[serde(default = "default_key_id")]
    pub(crate) key_id: String,
    /// PEM of a private key to import; absent: the gateway generates one (and its certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) private_key: Option<String>,
    /// Replace a key stored under the same id.
    #[serde(default)]
    pub(crate) force: bool,
    /// Validity of a generated certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) validity_years: Option<u32>,
    /// Send a generated private key back in the answer.
    #[serde(default)]
    pub(crate) export_private_key: bool,
}

/// One key as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyView {
    pub(crate) key_id: String,
    /// Lowercase hex SHA-256 of the public key.
    pub(crate) fingerprint: String,
    pub(crate) public_key_pem: String,
    /// The certificate, for keys the gateway generated.
    pub(crate) certificate_pem: Option<String>,
    pub(crate) created_at: String,
}

/// The answer to `POST /expo/{app_id}/keys`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub(crate) status: String,
    /// Whether a key under the same id was replaced.
    pub(crate) replaced: bool,
    #[serde(flatten)]
    pub(crate) key: KeyView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) private_key_pem: Option<String>,
}
