//! Capgo update replies, serialized once per (bundle, variant) and reused: a bundle never changes, and the reply
//! depends only on it and on the checksum form and manifest support of the asking plugin
//! (`updraft_capgo::updates::answer_variant`). The replies that depend on nothing at all (`no_new_version_available`,
//! the answer to most checks, and the revert to builtin) are serialized once too.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use bytes::Bytes;
use serde_json::Value;

/// Serialized update replies.
#[derive(Default)]
pub(crate) struct CapgoAnswers {
    bodies: RwLock<HashMap<(i64, u8), Bytes>>,
    no_new_version: OnceLock<Bytes>,
    revert_to_builtin: OnceLock<Bytes>,
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

    /// The cached reply, or `build` it and keep it.
    pub(crate) fn get_or_build(&self, bundle_id: i64, variant: u8, build: impl FnOnce() -> Value) -> Bytes {
        if let Some(body) =
            self.bodies.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&(bundle_id, variant))
        {
            return body.clone();
        }
        let body = Bytes::from(build().to_string());
        self.bodies
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((bundle_id, variant), body.clone());
        body
    }
}
