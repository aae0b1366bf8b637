//! The bucket layout: which object key each stored thing lives under, and how it is served. Everything is
//! content-addressed (`bundles/<app>/<sha256>.zip`, `files/<app>/<sha256>`), so URLs are immutable and identical
//! uploads share bytes.

use updraft_core::AppId;
use updraft_oss::ObjectKey;

/// A thing the gateway stores.
pub(crate) enum StorageKey<'a> {
    /// A Capgo bundle zip (or its encrypted bytes), by the SHA-256 of the stored bytes.
    Bundle { app_id: &'a AppId, sha256: &'a str },
    /// One file of a delta manifest, by the SHA-256 of its content.
    File { app_id: &'a AppId, sha256: &'a str },
    /// An Expo asset (launch bundle, image, font…), by the SHA-256 of its content; served by the Expo asset route.
    ExpoAsset { app_id: &'a AppId, sha256: &'a str },
    /// A bsdiff patch between two Expo launch assets, by the SHA-256 of the patch; served only through the Expo
    /// asset route, to a device that asked for a patch from the base it runs.
    ExpoPatch { app_id: &'a AppId, sha256: &'a str },
}

impl StorageKey<'_> {
    /// The object key.
    pub(crate) fn object_key(&self) -> ObjectKey {
        let raw = match self {
            Self::Bundle { app_id, sha256 } => format!("bundles/{app_id}/{sha256}.zip"),
            Self::File { app_id, sha256 } => format!("files/{app_id}/{sha256}"),
            Self::ExpoAsset { app_id, sha256 } => format!("assets/{app_id}/{sha256}"),
            Self::ExpoPatch { app_id, sha256 } => format!("patches/{app_id}/{sha256}"),
        };
        ObjectKey::parse(&raw).expect("app ids and hex digests make valid keys")
    }
}

/// Whether `key` is one the download route may serve, with the content type to serve it as and its digest (the
/// strong ETag).
pub(crate) fn servable(key: &str) -> Option<(&'static str, &str)> {
    let is_digest = |s: &str| updraft_core::sha256_hex(s).is_some();
    let mut parts = key.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("bundles"), Some(app), Some(file), None) if AppId::parse(app).is_ok() => {
            let digest = file.strip_suffix(".zip")?;
            is_digest(digest).then_some(("application/zip", digest))
        }
        (Some("files"), Some(app), Some(digest), None) if AppId::parse(app).is_ok() && is_digest(digest) => {
            Some(("application/octet-stream", digest))
        }
        // A delta file's brotli copy, as a Capgo plugin downloads it to decode it itself: plain bytes (never with a
        // `Content-Encoding`, which a client would undo), validated as `"<sha256>.br"`.
        (Some("files"), Some(app), Some(file), None) if AppId::parse(app).is_ok() => {
            let digest = file.strip_suffix(".br")?;
            is_digest(digest).then_some(("application/x-brotli", file))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_addressed_objects_are_servable() {
        let digest = "a".repeat(64);
        assert_eq!(
            servable(&format!("bundles/com.example.app/{digest}.zip")),
            Some(("application/zip", digest.as_str()))
        );
        assert_eq!(
            servable(&format!("files/com.example.app/{digest}")),
            Some(("application/octet-stream", digest.as_str()))
        );
        assert_eq!(servable(&format!("files/com.example.app/{digest}.zip")), None);
        assert_eq!(
            servable(&format!("files/com.example.app/{digest}.br")),
            Some(("application/x-brotli", format!("{digest}.br").as_str()))
        );
        assert_eq!(servable(&format!("files/com.example.app/{digest}.gz")), None);
        assert_eq!(servable("bundles/com.example.app/x.zip"), None);
        assert_eq!(servable(&format!("staging/{digest}.zip")), None);
        assert_eq!(servable(&format!("bundles/com.example.app/{digest}.zip/x")), None);
        assert_eq!(servable(&format!("bundles/nope/{digest}.zip")), None);
    }

    #[test]
    fn keys_round_trip_through_servable() {
        let app = AppId::parse("com.example.app").unwrap();
        let digest = "0123456789abcdef".repeat(4);
        assert!(servable(StorageKey::Bundle { app_id: &app, sha256: &digest }.object_key().as_str()).is_some());
        assert!(servable(StorageKey::File { app_id: &app, sha256: &digest }.object_key().as_str()).is_some());
    }
}
