//! `Failure`: why a use case could not be carried out, in terms no protocol owns. Each protocol crate renders it in
//! its own wire shape (`updraft_capgo::failure`, `updraft_expo::failure`) and status; the server adds nothing but
//! the HTTP plumbing.
//!
//! The neutral codes live in [`codes`]. A protocol may answer with its own spelling of a code (Capgo's clients
//! expect `invalid_apikey`, for instance); the kind decides the status.

/// What sort of failure, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The request is malformed or names something impossible (400).
    Invalid,
    /// No credentials, or unknown ones (401).
    Unauthenticated,
    /// The credentials do not cover this (403).
    Forbidden,
    /// The thing asked about does not exist (404).
    NotFound,
    /// It exists already, or is in use (409).
    Conflict,
    /// The body is larger than accepted (413).
    TooLarge,
    /// The database or storage cannot be reached right now; retry (503).
    Unavailable,
    /// A bug or an unexpected backend failure (500); the message is for the log only.
    Internal,
    /// The request did not arrive in time: a stalled or trickling body (408).
    TimedOut,
    /// The caller sends faster than its rate limit; retry after the time the answer says (429).
    RateLimited,
    /// The object store has no room left for the upload (507).
    InsufficientStorage,
}

impl FailureKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> u16 {
        match self {
            Self::Invalid => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooLarge => 413,
            Self::Unavailable => 503,
            Self::Internal => 500,
            Self::TimedOut => 408,
            Self::RateLimited => 429,
            Self::InsufficientStorage => 507,
        }
    }
}

/// A failed use case: its kind, a stable snake_case code (from [`codes`] or one of a use case's own) and a message
/// that says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    /// The kind (the status).
    pub kind: FailureKind,
    /// The neutral code.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Failure {
    /// A failure of this kind.
    pub fn new(kind: FailureKind, code: &'static str, message: impl Into<String>) -> Self {
        Self { kind, code, message: message.into() }
    }

    /// An [`FailureKind::Invalid`] failure.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(FailureKind::Invalid, code, message)
    }

    /// A [`FailureKind::NotFound`] failure.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(FailureKind::NotFound, code, message)
    }

    /// A [`FailureKind::Conflict`] failure.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(FailureKind::Conflict, code, message)
    }

    /// The kind of an HTTP status (what a 4xx from a protocol parser means).
    pub fn kind_of_status(status: u16) -> FailureKind {
        match status {
            401 => FailureKind::Unauthenticated,
            403 => FailureKind::Forbidden,
            404 => FailureKind::NotFound,
            409 => FailureKind::Conflict,
            413 => FailureKind::TooLarge,
            503 => FailureKind::Unavailable,
            500..=599 => FailureKind::Internal,
            _ => FailureKind::Invalid,
        }
    }
}

/// The neutral codes shared by every protocol. Use cases may add their own (`cannot_delete_linked_version`); a
/// protocol renders the ones it spells differently (see `updraft_capgo::failure`).
pub mod codes {
    /// No API key was sent.
    pub const MISSING_API_KEY: &str = "missing_api_key";
    /// The API key is unknown or revoked.
    pub const INVALID_API_KEY: &str = "invalid_api_key";
    /// The API key may not touch this app (or may not do this).
    pub const FORBIDDEN: &str = "forbidden";
    /// The body is not JSON (or not a JSON object).
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// A field is missing, has the wrong type or an invalid value.
    pub const INVALID_FIELD: &str = "invalid_field";
    /// A required field is missing.
    pub const MISSING_FIELD: &str = "missing_field";
    /// A request is malformed in a way no other code covers.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// `app_id` is missing.
    pub const MISSING_APP_ID: &str = "missing_app_id";
    /// `device_id` is missing.
    pub const MISSING_DEVICE_ID: &str = "missing_device_id";
    /// A channel name is missing.
    pub const MISSING_CHANNEL_NAME: &str = "missing_channel_name";
    /// `app_id` is not reverse-domain style.
    pub const INVALID_APP_ID: &str = "invalid_app_id";
    /// The app does not exist.
    pub const APP_NOT_FOUND: &str = "app_not_found";
    /// The app already exists.
    pub const APP_ALREADY_EXISTS: &str = "app_already_exists";
    /// The channel does not exist.
    pub const CHANNEL_NOT_FOUND: &str = "channel_not_found";
    /// A write names a bundle version that does not exist.
    pub const BUNDLE_VERSION_NOT_FOUND: &str = "bundle_version_not_found";
    /// A bundle with that version exists already.
    pub const VERSION_ALREADY_EXISTS: &str = "version_already_exists";
    /// A version is not semver.
    pub const INVALID_VERSION: &str = "invalid_version";
    /// The uploaded file is not usable.
    pub const INVALID_BUNDLE: &str = "invalid_bundle";
    /// The given checksum or digest does not match the uploaded bytes.
    pub const CHECKSUM_MISMATCH: &str = "checksum_mismatch";
    /// The device does not exist.
    pub const DEVICE_NOT_FOUND: &str = "device_not_found";
    /// Something else does not exist.
    pub const NOT_FOUND: &str = "not_found";
    /// The body is larger than the endpoint accepts.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The database or storage is unavailable.
    pub const SERVICE_UNAVAILABLE: &str = "service_unavailable";
    /// The body did not arrive within the read timeout.
    pub const BODY_TIMEOUT: &str = "body_timeout";
    /// Too many requests from this device, address or key.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The object store is full.
    pub const INSUFFICIENT_STORAGE: &str = "insufficient_storage";
    /// An unexpected failure; details are in the server log.
    pub const INTERNAL: &str = "internal";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip() {
        for kind in [
            FailureKind::Invalid,
            FailureKind::Unauthenticated,
            FailureKind::Forbidden,
            FailureKind::NotFound,
            FailureKind::Conflict,
            FailureKind::TooLarge,
            FailureKind::Unavailable,
            FailureKind::Internal,
        ] {
            assert_eq!(Failure::kind_of_status(kind.status()), kind, "{kind:?}");
        }
        assert_eq!(Failure::kind_of_status(422), FailureKind::Invalid);
    }
}
