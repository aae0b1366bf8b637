//! Code signing: RSASSA-PKCS1-v1_5 with SHA-256 over the exact bytes of a manifest or directive part, sent as
//! `expo-signature: sig="<base64>", keyid="<keyid>", alg="rsa-v1_5-sha256"`; importing a private key (PKCS#1 or
//! PKCS#8 PEM) and generating a key pair with the self-signed code-signing certificate `expo-updates` accepts as
//! `codeSigningCertificate`.
//!
//! Signatures are deterministic, so the server signs each body once and caches the header value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;

use crate::structured_fields::serialize_string_dictionary;

/// The only algorithm the client knows.
pub const ALGORITHM: &str = "rsa-v1_5-sha256";

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not an RSA private key PEM.
    #[error(
        "not an RSA private key in PEM form (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----), such as keys/private-key.pem from `npx expo-updates codesigning:generate`"
    )]
    NotAPrivateKey,
    /// Too small to be trusted.
    #[error("the key is {0}-bit; use a 2048-bit (or larger) RSA key")]
    TooSmall(usize),
    /// The key id is unusable.
    #[error("key id {0:?} is not valid; use 1 to 64 characters from letters, digits, '-', '_' and '.'")]
    BadKeyId(String),
    /// Generating or encoding failed.
    #[error("{0}")]
    Crypto(String),
}

/// Checks a key id (it is echoed inside a structured-field string).
pub fn check_key_id(key_id: &str) -> Result<(), KeyError> {
    let ok = !key_id.is_empty()
        && key_id.len() <= 64
        && key_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(KeyError::BadKeyId(key_id.to_owned())) }
}

/// An app's signing key.
pub struct SigningKey {
    key_id: String,
    pair: RsaKeyPair,
    fingerprint: [u8; 32],
    public_key_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Reads a PKCS#1 or PKCS#8 PEM private key.
fn parse_private_key(pem: &str) -> Result<rsa::RsaPrivateKey, KeyError> {
    let pem = pem.trim();
    rsa::RsaPrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(pem))
        .map_err(|_| KeyError::NotAPrivateKey)
}

/// Normalises an imported private key to PKCS#8 PEM (what is stored).
///
/// # Errors
/// [`KeyError`] when it is not a usable RSA key.
pub fn normalise_private_key(pem: &str) -> Result<String, KeyError> {
    let key = parse_private_key(pem)?;
    let bits = key.n().bits();
    if bits < 2048 {
        return Err(KeyError::TooSmall(bits));
    }
    Ok(key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Crypto(e.to_string()))?.to_string())
}

impl SigningKey {
    /// Loads a key from PEM (PKCS#1 or PKCS#8).
    ///
    /// # Errors
    /// [`KeyError`].
    pub fn from_pem(key_id: &str, pem: &str) -> Result<Self, KeyError> {
        check_key_id(key_id)?;
        let key = parse_private_key(pem)?;
        let der = key.to_pkcs8_der().map_err(|e| KeyError::Crypto(e.to_string()))?;
        let pair = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let public = key.to_public_key();
        let spki = public.to_public_key_der().map_err(|e| KeyError::Crypto(e.to_string()))?;
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, spki.as_bytes()).as_ref());
        let public_key_pem = public.to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Crypto(e.to_string()))?;
        Ok(Self { key_id: key_id.to_owned(), pair, fingerprint, public_key_pem })
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// SHA-256 of the public key (DER SubjectPublicKeyInfo): what identifies the key material, whatever its id.
    /// The same value as `openssl x509 -in certificate.pem -pubkey -noout | openssl pkey -pubin -outform der |
    /// sha256sum`.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// [`Self::fingerprint`] as lowercase hex.
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The public key, SPKI PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// The standard-base64 signature of `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> String {
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), bytes, &mut signature)
            .expect("signing with a loaded RSA key cannot fail");
        BASE64.encode(signature)
    }

    /// The `expo-signature` header value for `bytes`.
    pub fn signature_header(&self, bytes: &[u8]) -> String {
        serialize_string_dictionary(&[("sig", &self.sign(bytes)), ("keyid", &self.key_id), ("alg", ALGORITHM)])
    }
}

/// A generated key pair and its certificate, all PEM.
pub struct GeneratedKeys {
    /// PKCS#1 private key (what `codesigning:generate` writes).
    pub private_key_pem: String,
    /// SPKI public key.
    pub public_key_pem: String,
    /// Self-signed code-signing certificate for `updates.codeSigningCertificate`.
    pub certificate_pem: String,
}

/// Generates a 2048-bit RSA key and a self-signed certificate with keyUsage digitalSignature and extKeyUsage
/// codeSigning, valid from now for `validity_years`.
///
/// # Errors
/// [`KeyError::Crypto`].
pub fn generate(common_name: &str, validity_years: u32) -> Result<GeneratedKeys, KeyError> {
    let crypto = |e: &dyn std::fmt::Display| KeyError::Crypto(e.to_string());
    let mut rng = rsa::rand_core::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| crypto(&e))?;
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| crypto(&e))?;
    let private_key_pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| crypto(&e))?.to_string();
    let public_key_pem = key.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| crypto(&e))?;
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).map_err(|e| crypto(&e))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let now =
        rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(chrono::Utc::now().timestamp().max(0) as u64);
    params.not_before = now - std::time::Duration::from_secs(60);
    params.not_after = now + std::time::Duration::from_secs(u64::from(validity_years) * 365 * 24 * 3600);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let certificate = params.self_signed(&pair).map_err(|e| crypto(&e))?;
    Ok(GeneratedKeys { private_key_pem, public_key_pem, certificate_pem: certificate.pem() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structured_fields::{Item, parse_dictionary};

    #[test]
    fn generated_keys_sign_and_import() {
        let keys = generate("Updraft test", 1).unwrap();
        assert!(keys.private_key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(keys.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(keys.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = SigningKey::from_pem("main", &keys.private_key_pem).unwrap();
        let header = key.signature_header(b"{\"id\":\"x\"}");
        let members = parse_dictionary(&header).unwrap();
        let Item::String(sig) = &members["sig"] else { panic!("sig must be a string: {header}") };
        assert_eq!(sig.len(), 344);
        assert_eq!(members["keyid"], Item::String("main".into()));
        assert_eq!(members["alg"], Item::String(ALGORITHM.into()));
        // Deterministic.
        assert_eq!(key.sign(b"abc"), key.sign(b"abc"));
        // PKCS#8 import gives the same signatures.
        let pkcs8 = normalise_private_key(&keys.private_key_pem).unwrap();
        let reloaded = SigningKey::from_pem("main", &pkcs8).unwrap();
        assert_eq!(reloaded.sign(b"abc"), key.sign(b"abc"));
        // The fingerprint identifies the key material, whatever its PEM form; the public key is the generated one.
        assert_eq!(reloaded.fingerprint(), key.fingerprint());
        assert_eq!(key.fingerprint_hex().len(), 64);
        assert_eq!(key.public_key_pem(), keys.public_key_pem);
        let other = generate("Updraft test", 1).unwrap();
        assert_ne!(SigningKey::from_pem("main", &other.private_key_pem).unwrap().fingerprint(), key.fingerprint());
    }

    #[test]
    fn bad_keys_and_key_ids() {
        assert!(matches!(SigningKey::from_pem("main", "nope"), Err(KeyError::NotAPrivateKey)));
        assert!(matches!(check_key_id("a b"), Err(KeyError::BadKeyId(_))));
        assert!(matches!(check_key_id(""), Err(KeyError::BadKeyId(_))));
        assert!(check_key_id("main").is_ok());
    }
}
