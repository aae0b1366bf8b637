//! The bucket layout: which object key each stored thing lives under, and how it is served. Bundle zips are
//! content-addressed (`bundles/<app>/<sha256>.zip`), so their URLs are immutable and identical uploads share bytes.

use updraft_core::AppId;
use updraft_oss::ObjectKey;

/// A thing the gateway stores.
pub(crate) enum StorageKey<'a> {
    /// A Capgo bundle zip (or its encrypted bytes), by the SHA-256 of the stored bytes.
    Bundle { app_id: &'a AppId, sha256: &'a str },
}

impl StorageKey<'_> {
    /// The object key.
    pub(crate) fn object_key(&self) -> ObjectKey {
        let raw = match self {
            Self::Bundle { app_id, sha256 } => format!("bundles/{app_id}/{sha256}.zip"),
        };
        ObjectKey::parse(&raw).expect("app ids and hex digests make valid keys")
    }
}

/// Whether `key` is one the download route may serve, with the content type to serve it as.
pub(crate) fn servable(key: &str) -> Option<&'static str> {
    let mut parts = key.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("bundles"), Some(app), Some(file), None) if AppId::parse(app).is_ok() => {
            let digest = file.strip_suffix(".zip")?;
            (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
                .then_some("application/zip")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bundle_objects_are_servable() {
        let digest = "a".repeat(64);
        assert_eq!(
            servable(&format!("bundles/com.example.app/{digest}.zip")),
            Some("application/zip")
        );
        assert_eq!(servable("bundles/com.example.app/x.zip"), None);
        assert_eq!(servable(&format!("staging/{digest}.zip")), None);
        assert_eq!(
            servable(&format!("bundles/com.example.app/{digest}.zip/x")),
            None
        );
        assert_eq!(servable(&format!("bundles/nope/{digest}.zip")), None);
    }

    #[test]
    fn bundle_keys_round_trip_through_servable() {
        let app = AppId::parse("com.example.app").unwrap();
        let digest = "0123456789abcdef".repeat(4);
        let key = StorageKey::Bundle {
            app_id: &app,
            sha256: &digest,
        }
        .object_key();
        assert!(servable(key.as_str()).is_some());
    }
}
