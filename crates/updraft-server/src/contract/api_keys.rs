//! Bodies of `/apikey`: mint (`POST`), list (`GET`) and revoke (`DELETE`) the gateway's API keys.

use serde::{Deserialize, Serialize};
use updraft_core::{ApiKeyRecord, ApiKeyScope};

/// `POST /apikey`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKey {
    /// A name to recognise the key by, unique among active keys.
    pub(crate) name: String,
    /// Restrict the key to this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<String>,
    /// `read`, `publish` or `admin` (the default, what keys could do before roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<String>,
    /// Restrict the key's changes to this channel (of its app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<String>,
}

/// `DELETE /apikey`: the key to revoke, by name or by id.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeApiKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
}

/// What is shown of a key: never its secret or hash.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ApiKeyView {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The one app the key may touch; `null`: every app.
    pub(crate) app_id: Option<String>,
    /// `read`, `publish` or `admin`.
    pub(crate) role: String,
    /// The one channel the key may change; `null`: every channel of its apps.
    pub(crate) channel: Option<String>,
    pub(crate) created_at: String,
    pub(crate) revoked_at: Option<String>,
}

impl ApiKeyView {
    pub(crate) fn of(record: &ApiKeyRecord) -> Self {
        let time = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            app_id: match &record.scope {
                ApiKeyScope::All => None,
                ApiKeyScope::App(app_id) => Some(app_id.as_str().to_owned()),
            },
            role: record.role.as_str().to_owned(),
            channel: record.channel.as_ref().map(|channel| channel.as_str().to_owned()),
            created_at: time(record.created_at),
            revoked_at: record.revoked_at.map(time),
        }
    }
}

/// The answer to `POST /apikey`: the key itself, shown this once.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CreatedApiKey {
    pub(crate) status: String,
    pub(crate) key: String,
    #[serde(flatten)]
    pub(crate) view: ApiKeyView,
}

/// The answer to `DELETE /apikey`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RevokedApiKey {
    pub(crate) status: String,
    #[serde(flatten)]
    pub(crate) view: ApiKeyView,
}

/// The answer to `GET /apikey`: every key, revoked ones included.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ApiKeyList {
    pub(crate) keys: Vec<ApiKeyView>,
}
