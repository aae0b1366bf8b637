//! What the Expo hot path reuses: each app's signing keys and every signed body.
//!
//! Keys are loaded at start-up and reloaded only when they change: after a key is stored through this instance's
//! API, and when the change feed reports that another instance changed the app (PostgreSQL). A check therefore never
//! reads the database for keys, and if the database is down the loaded keys keep signing.
//!
//! Signatures and whole answers are cached under the key's id **and the fingerprint of its key material**, so a key
//! replaced under the same id can never be served an entry signed by the old one; the old entries of an app are
//! also dropped when its keys change. RSA PKCS#1 v1.5 signatures are deterministic, so a body is signed once per
//! key, not once per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use updraft_core::{AppId, MetadataStore, StoreResult};
use updraft_expo::signing::SigningKey;

type Keys = Arc<HashMap<String, Arc<SigningKey>>>;

/// Which key signs: its id (echoed in the header) and the fingerprint of its key material.
pub(crate) type KeyIdentity = (String, [u8; 32]);

/// A signed body: (app, key, SHA-256 of the body).
type SignatureKey = (AppId, KeyIdentity, [u8; 32]);

/// Identifies a complete answer: (app, what is answered, the signing key when signed, JSON-only form).
pub(crate) type AnswerKey = (AppId, String, Option<KeyIdentity>, bool);

/// The identity of a loaded key, for cache keys.
pub(crate) fn key_identity(key: &SigningKey) -> KeyIdentity {
    (key.key_id().to_owned(), *key.fingerprint())
}

/// A complete answer body, with the signature a JSON-only answer carries as a header.
pub(crate) struct CachedAnswer {
    pub(crate) body: bytes::Bytes,
    pub(crate) signature: Option<Arc<str>>,
}

/// Keys and signatures.
#[derive(Default)]
pub(crate) struct ExpoCache {
    keys: RwLock<HashMap<AppId, Keys>>,
    signatures: Mutex<HashMap<SignatureKey, Arc<str>>>,
    manifests: Mutex<HashMap<String, Arc<[u8]>>>,
    answers: RwLock<HashMap<AnswerKey, Arc<CachedAnswer>>>,
    n_signatures: AtomicU64,
    /// Held across a reload's read and swap, so reloads land in the order they read: a reload that started before
    /// a key change can never overwrite the keys loaded after it.
    reloading: tokio::sync::Mutex<()>,
}

impl ExpoCache {
    /// The app's loaded signing keys by key id (none for an app whose keys were never loaded: every key is loaded
    /// at start-up or when it is stored, so there is nothing to read).
    pub(crate) fn keys(&self, app_id: &AppId) -> Keys {
        read(&self.keys).get(app_id).cloned().unwrap_or_default()
    }

    /// Loads the app's signing keys now (at start-up, after a key is stored, and when another instance changed the
    /// app). When they changed, the app's cached signatures and answers are dropped.
    pub(crate) async fn reload_keys(&self, store: &dyn MetadataStore, app_id: &AppId) -> StoreResult<()> {
        let _in_order = self.reloading.lock().await;
        // When the database cannot be read, the keys already loaded stay in use (manifests are served from memory),
        // and the caller learns the reload failed: the change feed tries again, a key write reports it.
        let stored = store.signing_keys(app_id).await?;
        let mut keys = HashMap::new();
        for record in stored {
            match SigningKey::from_pem(&record.key_id, &record.private_key_pem) {
                Ok(key) => {
                    keys.insert(record.key_id, Arc::new(key));
                }
                Err(error) => {
                    tracing::error!(app.id = %app_id, key.id = %record.key_id, "stored signing key is unusable: {error}")
                }
            }
        }
        let identities = |keys: &HashMap<String, Arc<SigningKey>>| {
            let mut ids: Vec<KeyIdentity> = keys.values().map(|k| key_identity(k)).collect();
            ids.sort();
            ids
        };
        let new_identities = identities(&keys);
        let previous = write(&self.keys).insert(app_id.clone(), Arc::new(keys));
        if previous.is_some_and(|old| identities(&old) != new_identities) {
            self.forget_app(app_id);
            tracing::info!(app.id = %app_id, n_keys = new_identities.len(), "signing keys changed; cached signatures dropped");
        }
        Ok(())
    }

    /// Drops the cached signatures and answers of an app (they are keyed by key fingerprint, so this only frees
    /// memory; no stale entry could be served anyway).
    fn forget_app(&self, app_id: &AppId) {
        lock(&self.signatures).retain(|(app, _, _), _| app != app_id);
        write(&self.answers).retain(|(app, _, _, _), _| app != app_id);
    }

    /// The `expo-signature` value of `body` with `key`, signing only the first time.
    pub(crate) fn signature(&self, app_id: &AppId, key: &SigningKey, body: &[u8]) -> Arc<str> {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let cache_key = (app_id.clone(), key_identity(key), digest);
        if let Some(signature) = lock(&self.signatures).get(&cache_key) {
            return signature.clone();
        }
        let signature: Arc<str> = key.signature_header(body).into();
        self.n_signatures.fetch_add(1, Ordering::Relaxed);
        lock(&self.signatures).insert(cache_key, signature.clone());
        signature
    }

    /// A release's manifest body, built on first use (releases are immutable, so it never changes).
    pub(crate) fn manifest(&self, release_id: &str, build: impl FnOnce() -> Option<Vec<u8>>) -> Option<Arc<[u8]>> {
        if let Some(body) = lock(&self.manifests).get(release_id) {
            return Some(body.clone());
        }
        let body: Arc<[u8]> = build()?.into();
        lock(&self.manifests).insert(release_id.to_owned(), body.clone());
        Some(body)
    }

    /// A complete answer, built (and signed) on first use. Releases are immutable, directives constant and the
    /// signing key part of the cache key, so an answer never changes.
    pub(crate) fn answer(
        &self,
        key: AnswerKey,
        build: impl FnOnce() -> Option<CachedAnswer>,
    ) -> Option<Arc<CachedAnswer>> {
        if let Some(answer) = read(&self.answers).get(&key) {
            return Some(answer.clone());
        }
        let answer = Arc::new(build()?);
        write(&self.answers).insert(key, answer.clone());
        Some(answer)
    }

    /// RSA signatures made since start (each cached body is signed once per key).
    pub(crate) fn signatures_made(&self) -> u64 {
        self.n_signatures.load(Ordering::Relaxed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
