//! Capgo update replies, serialized once per (bundle, variant) and reused: a bundle never changes, and the reply
//! depends only on it and on the checksum form and manifest support of the asking plugin
//! (`updraft_capgo::updates::answer_variant`).

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;
use serde_json::Value;

/// Serialized update replies.
#[derive(Default)]
pub(crate) struct CapgoAnswers {
    bodies: RwLock<HashMap<(i64, u8), Bytes>>,
}

impl CapgoAnswers {
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
