//! The one secret type and the one authenticated-encryption primitive of the workspace.
//!
//! Every crate that holds a secret (access-key secrets, session secrets, TOTP seeds,
//! signing keys, provider keys, data keys) holds it as a [`Secret`], and every crate
//! that encrypts (the store sealing secrets at rest, session tokens carrying their
//! secret, sealed authorization messages) encrypts with a [`SealingKey`]. Having one of
//! each means one place decides how a secret is redacted, compared and wiped, and one
//! place draws nonces, so none of those rules can drift between two copies.
//!
//! - [`Secret`]: its memory is wiped when dropped, its `Debug` is `Secret(<redacted>)`,
//!   it has no `Display`, equality is constant-time, and reading it takes an explicit,
//!   greppable [`Secret::expose`] or [`Secret::expose_str`].
//! - [`SealingKey`]: AES-256-GCM with a fresh random 96-bit nonce per message, additional
//!   authenticated data binding a ciphertext to where it belongs, and output
//!   `nonce || ciphertext || tag`. Its key bytes and its expanded key schedule are wiped
//!   on drop; its `Debug` shows only the key id.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret byte string (usually UTF-8 text such as a secret access key).
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes (or a `String`, or a `&str`) as a secret. A `String` or `Vec` is moved
    /// in without a copy, so no unwiped duplicate is left behind.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// Wraps a string as a secret.
    pub fn from_string(s: String) -> Self {
        Self::new(s.into_bytes())
    }

    /// The secret bytes. Callers must not log or return them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, when it is valid UTF-8 (secret access keys always are).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for Secret {}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::from_string(s)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

/// Why a key could not be read or a value could not be sealed or opened. Says nothing
/// about the value or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The encoded key is not base64 or hex of 32 bytes.
    #[error("a key must be 32 bytes written as base64 or 64 hex digits")]
    BadKeyEncoding,
    /// The value does not open with this key and binding: another key sealed it, it
    /// belongs to another row, or it was altered.
    #[error("sealed value does not open with this key (wrong key, wrong binding, or altered)")]
    Open,
    /// The value is too short to be a sealed value.
    #[error("sealed value is truncated")]
    Truncated,
    /// The cipher refused to encrypt (cannot happen with a valid key and sane lengths).
    #[error("encryption failed")]
    Seal,
}

/// Bytes of the random nonce each sealed message starts with.
pub const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag each sealed message ends with.
pub const TAG_LEN: usize = 16;

/// A 32-byte AES-256-GCM key: the one AEAD primitive of the workspace.
#[derive(Clone)]
pub struct SealingKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
    cipher: Aes256Gcm,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingKey {{ id: {}, bytes: <redacted> }}", self.id)
    }
}

impl PartialEq for SealingKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes[..].ct_eq(&other.bytes[..]).into()
    }
}

impl Eq for SealingKey {}

impl SealingKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]);
        Self::from_zeroizing(bytes)
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self::from_zeroizing(Zeroizing::new(bytes))
    }

    /// A key from 32 raw bytes held in a secret (an unwrapped data key).
    pub fn from_secret(secret: &Secret) -> Result<Self, SealError> {
        let bytes: [u8; 32] = secret
            .expose()
            .try_into()
            .map_err(|_| SealError::BadKeyEncoding)?;
        Ok(Self::from_zeroizing(Zeroizing::new(bytes)))
    }

    fn from_zeroizing(bytes: Zeroizing<[u8; 32]>) -> Self {
        let digest = Sha256::digest(&bytes[..]);
        let id = hex::encode(&digest[..8]);
        let cipher = Aes256Gcm::new(&(*bytes).into());
        SealingKey { bytes, id, cipher }
    }

    /// Parses a key written as base64 (standard or URL-safe, padded or not) or as 64
    /// hex digits.
    pub fn from_encoded(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let decoded: Option<Zeroizing<Vec<u8>>> =
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(text).ok().map(Zeroizing::new)
            } else {
                let unified = Zeroizing::new(
                    text.trim_end_matches('=')
                        .replace('+', "-")
                        .replace('/', "_"),
                );
                URL_SAFE_NO_PAD
                    .decode(unified.as_bytes())
                    .ok()
                    .map(Zeroizing::new)
            };
        let decoded = decoded.ok_or(SealError::BadKeyEncoding)?;
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| SealError::BadKeyEncoding)?;
        Ok(Self::from_zeroizing(Zeroizing::new(bytes)))
    }

    /// The key as standard base64 (the format of a key file). Handle with care.
    pub fn to_base64(&self) -> Secret {
        Secret::from_string(STANDARD.encode(&self.bytes[..]))
    }

    /// The raw key, for wrapping it under a key-encryption key. Handle with care.
    pub fn to_secret(&self) -> Secret {
        Secret::new(self.bytes.to_vec())
    }

    /// The key id: the first 8 bytes of SHA-256 of the key, in hex. Not secret; names
    /// the key in everything it seals.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Encrypts `plaintext`, binding it to `aad`: `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// Decrypts a message made by [`SealingKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Secret, SealError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Truncated);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Truncated)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let d = format!("{s:?}");
        assert!(!d.contains("wJalr"));
        assert!(d.contains("redacted"));
    }

    #[test]
    fn secret_equality() {
        assert_eq!(Secret::from("a"), Secret::from("a"));
        assert_ne!(Secret::from("a"), Secret::from("b"));
        assert_ne!(Secret::from("a"), Secret::from("ab"));
        assert_eq!(Secret::from("é").expose_str(), Some("é"));
        assert_eq!(Secret::new(vec![0xff]).expose_str(), None);
    }

    #[test]
    fn seal_round_trip_and_binding() {
        let key = SealingKey::generate();
        let sealed = key.seal(b"row/1", b"hello").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(key.open(b"row/1", &sealed).unwrap().expose(), b"hello");
        assert_eq!(key.open(b"row/2", &sealed), Err(SealError::Open));
        assert_eq!(
            SealingKey::generate().open(b"row/1", &sealed),
            Err(SealError::Open)
        );
        let mut altered = sealed.clone();
        altered[NONCE_LEN] ^= 1;
        assert_eq!(key.open(b"row/1", &altered), Err(SealError::Open));
        assert_eq!(key.open(b"row/1", &sealed[..20]), Err(SealError::Truncated));
        // A fresh nonce each time: two seals of the same value differ.
        assert_ne!(sealed, key.seal(b"row/1", b"hello").unwrap());
    }

    #[test]
    fn key_encodings_and_debug() {
        let key = SealingKey::generate();
        let b64 = key.to_base64();
        let again = SealingKey::from_encoded(b64.expose_str().unwrap()).unwrap();
        assert_eq!(again, key);
        assert_eq!(again.key_id(), key.key_id());
        assert_eq!(
            SealingKey::from_encoded(&hex::encode(&key.bytes[..])).unwrap(),
            key
        );
        assert_eq!(SealingKey::from_secret(&key.to_secret()).unwrap(), key);
        assert_eq!(
            SealingKey::from_encoded("c2hvcnQ="),
            Err(SealError::BadKeyEncoding)
        );
        let debug = format!("{key:?}");
        assert!(!debug.contains(b64.expose_str().unwrap()));
        assert!(debug.contains(key.key_id()));
    }
}
