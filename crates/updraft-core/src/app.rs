//! The App: one mobile application whose bundles and releases the gateway serves.

use chrono::{DateTime, Utc};

use crate::ids::AppId;

/// An application registered with the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Reverse-domain id, the `app_id` devices send.
    pub id: AppId,
    /// Human-readable name.
    pub name: String,
    /// PKCS#1 PEM public key that encrypted bundles of this app must decrypt with (`@capgo/cli key create`).
    pub public_key: Option<String>,
    /// The Expo channel for clients that send no `expo-channel-name` header.
    pub default_channel: String,
    /// When the app was created.
    pub created_at: DateTime<Utc>,
}
