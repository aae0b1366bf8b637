//! Capgo update replies, serialized once per (bundle, variant) and reused while the app's catalog stays the same:
//! the reply depends only on the bundle and on the checksum form and manifest support of the asking plugin
//! (`updraft_capgo::updates::answer_variant`), and a bundle's row changes only through a catalog reload (the sizes of
//! its files' brotli copies, which `updraft storage encode` fills in later). The replies that depend on nothing at
//! all (`no_new_version_available`, the answer to most checks, and the revert to builtin) are serialized once too.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, Weak};

use bytes::Bytes;
use serde_json::Value;
use updraft_core::AppCatalog;

/// Serialized update replies.
#[derive(Default)]
pub(crate) struct CapgoAnswers {
    bodies: RwLock<HashMap<(i64, u8), Built>>,
    no_new_version: OnceLock<Bytes>,
    revert_to_builtin: OnceLock<Bytes>,
}

/// A reply and the catalog it was built from. The `Weak` keeps the catalog's allocation (not its contents) alive,
/// so no later catalog can sit at the same address and pass for it.
struct Built {
    catalog: Weak<AppCatalog>,
    body: Bytes,
}

impl CapgoAnswers {
    /// The `no_new_version_available` refusal.
    pub(crate) fn no_new_version(&self) -> Bytes {
        let build = || updraft_capgo::refusal_body(&updraft_core::Refusal::NoNewVersion).to_string().into();
        self.no_new_version.get_or_init(build).clone()
    }

    /// The reply that sends a device back to its builtin bundle.
    pub(crate) fn revert_to_builtin(&self) -> Bytes {
        let build = || updraft_capgo::updates::revert_to_builtin_body().to_string().into();
        self.revert_to_builtin.get_or_init(build).clone()
    }

    /// The reply built from `catalog`'s bundle, or `build` it and keep it. A reply built from an earlier catalog
    /// of the app is built again.
    pub(crate) fn get_or_build(
        &self,
        catalog: &Arc<AppCatalog>,
        bundle_id: i64,
        variant: u8,
        build: impl FnOnce() -> Value,
    ) -> Bytes {
        let built_from_this = |built: &Built| std::ptr::eq(built.catalog.as_ptr(), Arc::as_ptr(catalog));
        if let Some(built) =
            self.bodies.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&(bundle_id, variant))
            && built_from_this(built)
        {
            return built.body.clone();
        }
        let body = Bytes::from(build().to_string());
        let built = Built { catalog: Arc::downgrade(catalog), body: body.clone() };
        self.bodies.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert((bundle_id, variant), built);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Arc<AppCatalog> {
        let app = updraft_core::App {
            id: updraft_core::AppId::parse("com.example.app").unwrap(),
            name: "x".into(),
            public_key: None,
            default_channel: "production".into(),
            created_at: chrono::Utc::now(),
        };
        Arc::new(AppCatalog::new(app, vec![], vec![], vec![]))
    }

    #[test]
    fn a_reply_is_built_once_per_catalog() {
        let answers = CapgoAnswers::default();
        let first = catalog();
        let mut builds = 0;
        for _ in 0..3 {
            answers.get_or_build(&first, 7, 0, || {
                builds += 1;
                serde_json::json!({"version": "1.0.1"})
            });
        }
        assert_eq!(builds, 1);
        // The app's catalog is reloaded (the bundle's row may have changed): the reply is built again, from it.
        let reloaded = catalog();
        let body = answers.get_or_build(&reloaded, 7, 0, || serde_json::json!({"version": "1.0.1", "manifest": []}));
        assert_eq!(&body[..], br#"{"manifest":[],"version":"1.0.1"}"#);
        drop(first);
        let again = answers.get_or_build(&reloaded, 7, 0, || unreachable!("built once for this catalog"));
        assert_eq!(again, body);
    }
}
