//! What the Expo hot path reuses: each app's signing keys (loaded at start-up and when another instance changes the
//! app, then reloaded at most every few seconds, so a key imported with `updraft keys` is picked up without a
//! restart; if the database is down, the loaded keys keep signing) and every signed body, cached as the exact
//! `expo-signature` value per (app, key, body). RSA PKCS#1 v1.5 signatures are deterministic, so the cache is
//! exact; a body is signed once per key, not once per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use updraft_core::{AppId, MetadataStore, StoreResult};
use updraft_expo::signing::SigningKey;

/// How long loaded keys are trusted before the store is asked again.
const KEY_TTL: Duration = Duration::from_secs(5);

pub(crate) type Keys = Arc<HashMap<String, Arc<SigningKey>>>;

/// A signed body: (app, key id, SHA-256 of the body).
type SignatureKey = (AppId, String, [u8; 32]);

/// Identifies a complete answer: (app, what is answered, key id when signed, JSON-only form).
pub(crate) type AnswerKey = (AppId, String, Option<String>, bool);

/// A complete answer body, with the signature a JSON-only answer carries as a header.
pub(crate) struct CachedAnswer {
    pub(crate) body: bytes::Bytes,
    pub(crate) signature: Option<Arc<str>>,
}

/// Keys and signatures.
#[derive(Default)]
pub(crate) struct ExpoCache {
    keys: Mutex<HashMap<AppId, (Instant, Keys)>>,
    signatures: Mutex<HashMap<SignatureKey, Arc<str>>>,
    manifests: Mutex<HashMap<String, Arc<[u8]>>>,
    answers: std::sync::RwLock<HashMap<AnswerKey, Arc<CachedAnswer>>>,
    n_signatures: AtomicU64,
    /// Keys are reloaded when the change feed says an app changed (PostgreSQL), never on a timer: a signed answer
    /// then never waits for the database, even while it is down.
    keys_follow_changes: bool,
}

impl ExpoCache {
    /// A cache whose keys are reloaded only on [`Self::reload_keys`] (called by the change feed).
    pub(crate) fn following_changes() -> Self {
        Self { keys_follow_changes: true, ..Self::default() }
    }

    /// The app's signing keys by key id.
    pub(crate) async fn keys(&self, store: &dyn MetadataStore, app_id: &AppId) -> StoreResult<Keys> {
        if let Some((loaded, keys)) = lock(&self.keys).get(app_id)
            && (self.keys_follow_changes || loaded.elapsed() < KEY_TTL)
        {
            return Ok(keys.clone());
        }
        self.reload_keys(store, app_id).await
    }

    /// Loads the app's signing keys now (at start-up, and when another instance changed the app), so signed answers
    /// keep working from memory if the database goes away later.
    pub(crate) async fn reload_keys(&self, store: &dyn MetadataStore, app_id: &AppId) -> StoreResult<Keys> {
        let stored = match store.signing_keys(app_id).await {
            Ok(stored) => stored,
            // The database is down: keep signing with the keys already loaded; manifests are served from memory.
            Err(error) => match lock(&self.keys).get(app_id) {
                Some((_, keys)) => {
                    tracing::warn!(app.id = %app_id, "reloading signing keys failed, using the loaded ones: {error}");
                    return Ok(keys.clone());
                }
                None => return Err(error),
            },
        };
        let mut keys = HashMap::new();
        for (key_id, pem) in stored {
            match SigningKey::from_pem(&key_id, &pem) {
                Ok(key) => {
                    keys.insert(key_id, Arc::new(key));
                }
                Err(error) => {
                    tracing::error!(app.id = %app_id, key.id = %key_id, "stored signing key is unusable: {error}")
                }
            }
        }
        let keys = Arc::new(keys);
        lock(&self.keys).insert(app_id.clone(), (Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// The `expo-signature` value of `body` with `key`, signing only the first time.
    pub(crate) fn signature(&self, app_id: &AppId, key: &SigningKey, body: &[u8]) -> Arc<str> {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let cache_key = (app_id.clone(), key.key_id().to_owned(), digest);
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

    /// A complete answer, built (and signed) on first use. Releases are immutable and directives constant, so an
    /// answer never changes.
    pub(crate) fn answer(
        &self,
        key: AnswerKey,
        build: impl FnOnce() -> Option<CachedAnswer>,
    ) -> Option<Arc<CachedAnswer>> {
        if let Some(answer) = self.answers.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Some(answer.clone());
        }
        let answer = Arc::new(build()?);
        self.answers.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, answer.clone());
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
