//! API keys: minting (`upd_<id>_<secret>`, shown once), hashing (only the SHA-256 is stored) and verifying in
//! constant time. The key's public id is embedded in it so it can be looked up without scanning.

use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use updraft_core::{ApiKeyRecord, ApiKeyScope, Grant};

const PREFIX: &str = "upd_";

/// Lowercase hex SHA-256 of a key.
pub(crate) fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Mints a new key: returns the full key (to print once) and the record to store.
pub(crate) fn mint(name: &str, grant: &Grant) -> (String, ApiKeyRecord) {
    let mut id_bytes = [0u8; 6];
    let mut secret_bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut id_bytes);
    rand::rng().fill_bytes(&mut secret_bytes);
    let id = hex::encode(id_bytes);
    let key = format!("{PREFIX}{id}_{}", hex::encode(secret_bytes));
    let record = ApiKeyRecord {
        id,
        name: name.to_owned(),
        secret_sha256: hash_key(&key),
        scope: match &grant.app {
            None => ApiKeyScope::All,
            Some(app_id) => ApiKeyScope::App(app_id.clone()),
        },
        role: grant.role,
        channel: grant.channel.clone(),
        created_at: Utc::now(),
        revoked_at: None,
    };
    (key, record)
}

/// The public id inside a minted key, if it has our shape.
pub(crate) fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && !secret.is_empty()).then_some(id)
}

/// Whether `key` hashes to the stored hash, compared in constant time.
pub(crate) fn verify(key: &str, record: &ApiKeyRecord) -> bool {
    constant_time_eq::constant_time_eq(hash_key(key).as_bytes(), record.secret_sha256.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_verify_and_carry_their_id() {
        let (key, record) = mint("ci", &Grant::everything());
        assert_eq!(key_id(&key), Some(record.id.as_str()));
        assert!(verify(&key, &record));
        assert!(!verify(&format!("{key}x"), &record));
        assert!(!record.secret_sha256.contains(&key[4..]));
    }

    #[test]
    fn foreign_strings_have_no_id() {
        assert_eq!(key_id("Bearer x"), None);
        assert_eq!(key_id("upd_short_x"), None);
        assert_eq!(key_id("upd_0123456789ab_"), None);
    }
}
