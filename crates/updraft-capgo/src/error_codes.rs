//! The error codes of the Capgo-compatible API, in one place. Tests and `docs/api.md` refer to these.

/// The body is not JSON at all.
pub const INVALID_JSON_PARSE_BODY: &str = "invalid_json_parse_body";
/// The body is JSON but a field is missing, has the wrong type or an invalid value.
pub const INVALID_JSON_BODY: &str = "invalid_json_body";
/// `device_id` is missing.
pub const MISSING_DEVICE_ID: &str = "missing_device_id";
/// `app_id` is missing.
pub const MISSING_APP_ID: &str = "missing_app_id";
/// `app_id` is not reverse-domain style.
pub const INVALID_APP_ID: &str = "invalid_app_id";
/// `version_build` cannot be read as a version.
pub const SEMVER_ERROR: &str = "semver_error";
/// The body is larger than the endpoint accepts.
pub const BODY_TOO_LARGE: &str = "body_too_large";
/// No API key was sent.
pub const NO_KEY_PROVIDED: &str = "no_key_provided";
/// The API key is unknown.
pub const INVALID_APIKEY: &str = "invalid_apikey";
/// The API key may not touch this app.
pub const CANNOT_ACCESS_APP: &str = "cannot_access_app";
/// The app does not exist.
pub const APP_NOT_FOUND: &str = "app_not_found";
/// The app already exists.
pub const APP_ALREADY_EXISTS: &str = "app_already_exists";
/// A channel write names a bundle version that does not exist.
pub const CANNOT_FIND_VERSION: &str = "cannot_find_version";
/// The channel does not exist.
pub const CHANNEL_NOT_FOUND: &str = "channel_not_found";
/// `channel` is missing from a channel operation.
pub const MISSING_CHANNEL_NAME: &str = "missing_channel_name";
/// A bundle with that version exists already.
pub const VERSION_ALREADY_EXISTS: &str = "version_already_exists";
/// A bundle version is not semver.
pub const INVALID_VERSION: &str = "invalid_version";
/// The uploaded file is not a usable bundle zip.
pub const INVALID_BUNDLE: &str = "invalid_bundle";
/// The given checksum does not match the uploaded bytes.
pub const CHECKSUM_MISMATCH: &str = "checksum_mismatch";
/// A multipart upload lacks a field.
pub const MISSING_FIELD: &str = "missing_field";
/// A request is malformed in a way no other code covers.
pub const INVALID_REQUEST: &str = "invalid_request";
/// The device does not exist.
pub const DEVICE_NOT_FOUND: &str = "device_not_found";
/// An unknown route.
pub const NOT_FOUND: &str = "not_found";
/// The database or storage is unavailable.
pub const SERVICE_UNAVAILABLE: &str = "service_unavailable";
/// An unexpected failure; details are in the server log.
pub const INTERNAL: &str = "internal";

/// `setChannel` without a channel (a 200 refusal, as Capgo).
pub const MISSING_CHANNEL: &str = "missing_channel";
/// A bundle's `link` is not an http(s) URL.
pub const INVALID_LINK: &str = "invalid_link";
/// `/stats` found the write queue full: 429 with `Retry-After`.
pub const STATS_QUEUE_FULL: &str = "stats_queue_full";
/// `manifest_size`: no size is known for that file.
pub const SIZE_UNKNOWN: &str = "size_unknown";
