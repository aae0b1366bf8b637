//! Capgo "v2" bundle encryption, as `@capgo/cli bundle encrypt` produces it and the plugin undoes it: AES-128-CBC
//! over the whole zip with a random key and IV; `session_key` = `base64(iv):base64(RSA-private-encrypt(key))`; the
//! checksum is the SHA-256 of the plain zip, RSA-private-encrypted, as hex ("V3", plugins 5.30/6.30/7.30 and 8.x) or
//! base64 of the encryption of the hex digest read as base64 ("V2", older plugins).
//!
//! The gateway holds only the app's public key: it can recover the AES key and the checksum digest to verify an
//! upload, but it can never produce an encrypted checksum itself.

use std::io::{Read, Write};

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7, generic_array::GenericArray};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Why a key, session key or checksum does not check out. Messages say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionError {
    /// An SPKI (`BEGIN PUBLIC KEY`) key, which the plugin cannot use.
    #[error(
        "the public key is SPKI (-----BEGIN PUBLIC KEY-----), which @capgo/capacitor-updater cannot read; send the PKCS#1 key that `npx @capgo/cli key create` writes to .capgo_key_v2.pub, or convert with `openssl rsa -pubin -in key.pem -RSAPublicKey_out`"
    )]
    SpkiKey,
    /// Not a PKCS#1 RSA public key.
    #[error(
        "the public key is not a PKCS#1 PEM RSA public key (-----BEGIN RSA PUBLIC KEY-----) as written by `npx @capgo/cli key create`"
    )]
    BadKey,
    /// The key is not 2048-bit.
    #[error("the public key is {0}-bit; Capgo encryption uses 2048-bit RSA keys")]
    KeySize(usize),
    /// The `session_key` is not `ivB64:keyB64` or does not decrypt with the app's key.
    #[error("{0}")]
    SessionKey(String),
    /// The encrypted checksum does not decrypt to the plain zip's SHA-256.
    #[error("{0}")]
    Checksum(String),
    /// The encrypted bytes do not decrypt.
    #[error(
        "the file does not decrypt with the session key ({0}); upload the `_encrypted.zip` that `bundle encrypt` wrote, with its ivSessionKey"
    )]
    Ciphertext(String),
}

/// The form of an encrypted checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumForm {
    /// 512 hex characters (plugins ≥ 5.30.0 / 6.30.0 / 7.30.0 and 8.x).
    V3,
    /// Base64 (older plugins).
    V2,
}

impl ChecksumForm {
    /// Which form a checksum string is in: only hex digits means V3, as the plugin itself decides.
    pub fn of(checksum: &str) -> Self {
        if !checksum.is_empty() && checksum.bytes().all(|b| b.is_ascii_hexdigit()) { Self::V3 } else { Self::V2 }
    }
}

/// An app's encryption public key.
#[derive(Debug, Clone)]
pub struct AppPublicKey {
    key: RsaPublicKey,
    key_id: String,
}

/// The AES key and IV a bundle was encrypted with.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; 16],
    iv: [u8; 16],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

/// The plugin's key id: the first 20 characters of the PEM body (headers and whitespace removed).
pub fn key_id_of(pem: &str) -> String {
    pem.lines().filter(|line| !line.starts_with("-----")).flat_map(|line| line.trim().chars()).take(20).collect()
}

impl AppPublicKey {
    /// Parses a PKCS#1 PEM public key.
    ///
    /// # Errors
    /// [`EncryptionError::SpkiKey`], [`EncryptionError::BadKey`] or [`EncryptionError::KeySize`].
    pub fn parse(pem: &str) -> Result<Self, EncryptionError> {
        let pem = pem.trim();
        if pem.starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(EncryptionError::SpkiKey);
        }
        if !pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            return Err(EncryptionError::BadKey);
        }
        let key = RsaPublicKey::from_pkcs1_pem(pem).map_err(|_| EncryptionError::BadKey)?;
        let bits = key.n().bits();
        if bits != 2048 {
            return Err(EncryptionError::KeySize(bits));
        }
        Ok(Self { key, key_id: key_id_of(pem) })
    }

    /// The key id devices with this key send.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Undoes an RSA PKCS#1 v1.5 private-key encryption (type-1 padding), returning the payload.
    fn recover(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let size = self.key.size();
        if ciphertext.len() != size {
            return None;
        }
        let c = BigUint::from_bytes_be(ciphertext);
        if &c >= self.key.n() {
            return None;
        }
        let m = c.modpow(self.key.e(), self.key.n());
        let bytes = m.to_bytes_be();
        let mut block = vec![0u8; size - bytes.len()];
        block.extend_from_slice(&bytes);
        // 0x00 0x01 0xFF…0xFF 0x00 payload, with at least 8 bytes of 0xFF.
        if block[0] != 0 || block[1] != 1 {
            return None;
        }
        let separator = block[2..].iter().position(|&b| b != 0xFF)? + 2;
        (separator >= 10 && block[separator] == 0).then(|| block[separator + 1..].to_vec())
    }

    /// Recovers the AES key and IV from a `session_key` (`ivB64:rsaKeyB64`).
    ///
    /// # Errors
    /// [`EncryptionError::SessionKey`] when it is malformed or was made with another key.
    pub fn session_key(&self, session_key: &str) -> Result<SessionKey, EncryptionError> {
        let malformed = || {
            EncryptionError::SessionKey(
                "session_key must be the ivSessionKey printed by `npx @capgo/cli bundle encrypt` (base64 IV, ':', base64 key)"
                    .into(),
            )
        };
        let (iv, key) = session_key.split_once(':').ok_or_else(malformed)?;
        let iv: [u8; 16] = BASE64.decode(iv.trim()).ok().and_then(|v| v.try_into().ok()).ok_or_else(malformed)?;
        let encrypted_key = BASE64.decode(key.trim()).map_err(|_| malformed())?;
        let key: [u8; 16] = self
            .recover(&encrypted_key)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                EncryptionError::SessionKey(
                    "session_key does not decrypt with this app's public key; encrypt with the private key that matches the public key set on the app".into(),
                )
            })?;
        Ok(SessionKey { key, iv })
    }

    /// Checks an encrypted checksum against the plain zip's SHA-256 (lowercase hex) and tells its form.
    ///
    /// # Errors
    /// [`EncryptionError::Checksum`] when it does not decrypt to that digest.
    pub fn verify_checksum(&self, encrypted: &str, plain_sha256_hex: &str) -> Result<ChecksumForm, EncryptionError> {
        let form = ChecksumForm::of(encrypted);
        let (ciphertext, expected) = match form {
            ChecksumForm::V3 => (hex::decode(encrypted).ok(), hex::decode(plain_sha256_hex).ok()),
            ChecksumForm::V2 => (BASE64.decode(encrypted).ok(), BASE64.decode(plain_sha256_hex).ok()),
        };
        let recovered = ciphertext.and_then(|c| self.recover(&c));
        match (recovered, expected) {
            (Some(recovered), Some(expected)) if recovered == expected => Ok(form),
            _ => Err(EncryptionError::Checksum(format!(
                "the encrypted checksum does not decrypt to the SHA-256 of the decrypted zip ({plain_sha256_hex}); send the checksum printed by `npx @capgo/cli bundle encrypt` for this file"
            ))),
        }
    }
}

/// Decrypts AES-128-CBC/PKCS#7 `input` into `output`, streaming. Returns the plain length.
///
/// # Errors
/// [`EncryptionError::Ciphertext`] when the length or padding is wrong; I/O errors as `Ciphertext` too.
pub fn decrypt_stream(
    session: &SessionKey,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, EncryptionError> {
    let io = |e: std::io::Error| EncryptionError::Ciphertext(e.to_string());
    let mut decryptor = Aes128CbcDec::new(&session.key.into(), &session.iv.into());
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = input.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buffer[..n]);
        // Keep the last block back: it carries the padding.
        let ready =
            if pending.len().is_multiple_of(16) { pending.len().saturating_sub(16) } else { pending.len() / 16 * 16 };
        if ready > 0 {
            let mut blocks: Vec<u8> = pending.drain(..ready).collect();
            for chunk in blocks.chunks_exact_mut(16) {
                decryptor.decrypt_block_mut(GenericArray::from_mut_slice(chunk));
            }
            output.write_all(&blocks).map_err(io)?;
            written += blocks.len() as u64;
        }
    }
    if pending.len() != 16 {
        return Err(EncryptionError::Ciphertext("the length is not a whole number of AES blocks".into()));
    }
    let last = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut pending)
        .map_err(|_| EncryptionError::Ciphertext("bad padding".into()))?;
    output.write_all(last).map_err(io)?;
    Ok(written + last.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_first_20_chars_of_the_body() {
        let pem = "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAx8Q3rT2bXYZ\nabc\n-----END RSA PUBLIC KEY-----\n";
        assert_eq!(key_id_of(pem), "MIIBCgKCAQEAx8Q3rT2b");
    }

    #[test]
    fn spki_and_garbage_are_refused_with_advice() {
        let spki = AppPublicKey::parse("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----").unwrap_err();
        assert_eq!(spki, EncryptionError::SpkiKey);
        assert!(spki.to_string().contains("RSAPublicKey_out"));
        assert_eq!(AppPublicKey::parse("hello").unwrap_err(), EncryptionError::BadKey);
    }

    #[test]
    fn checksum_form_detection() {
        assert_eq!(ChecksumForm::of(&"ab".repeat(256)), ChecksumForm::V3);
        assert_eq!(ChecksumForm::of("q83vEjRWeJA="), ChecksumForm::V2);
    }

    #[test]
    fn decrypt_stream_rejects_partial_blocks() {
        let session = SessionKey { key: [1; 16], iv: [2; 16] };
        let error = decrypt_stream(&session, &b"short"[..], Vec::new()).unwrap_err();
        assert!(matches!(error, EncryptionError::Ciphertext(_)));
    }
}
