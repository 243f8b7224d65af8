//! Secrets at rest. Access-key secrets, signing keys and other sensitive values are
//! sealed with AES-256-GCM under a 32-byte master key before they reach the database,
//! so a copied database file or a database dump reveals nothing.
//!
//! A sealed value is text: `gh1.<key id>.<base64(nonce || ciphertext+tag)>`. The key id
//! (first 8 bytes of SHA-256 of the key, hex) says which master key sealed it; a fresh
//! random 96-bit nonce is drawn for every value; the additional authenticated data names
//! the row the value belongs to, so a sealed value moved to another row does not open.
//!
//! [`Secret`] and [`MasterKey`] zero their memory on drop and print `<redacted>` in
//! `Debug`; neither implements `Display`.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// The environment variable that, when set, provides the master key (base64 or hex of
/// 32 bytes) instead of the `master.key` file.
pub const MASTER_KEY_ENV: &str = "GATEHOUSE_MASTER_KEY";

/// The file name of the master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const PREFIX: &str = "gh1";
const NONCE_LEN: usize = 12;

/// A secret value (an access-key secret, a signing key). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself. Call sites are easy to grep for.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The 32-byte AES-256-GCM key every sealed value is encrypted under.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey {{ id: {}, bytes: <redacted> }}", self.id)
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl MasterKey {
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

    fn from_zeroizing(bytes: Zeroizing<[u8; 32]>) -> Self {
        let digest = Sha256::digest(&bytes[..]);
        let id = hex::encode(&digest[..8]);
        MasterKey { bytes, id }
    }

    /// Parses a key written as base64 (standard or URL-safe, padded or not) or as 64
    /// hex digits.
    pub fn from_encoded(text: &str) -> Result<Self> {
        let text = text.trim();
        let decoded: Option<Zeroizing<Vec<u8>>> =
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(text).ok().map(Zeroizing::new)
            } else {
                let trimmed = text.trim_end_matches('=');
                let unified: Zeroizing<String> =
                    Zeroizing::new(trimmed.replace('+', "-").replace('/', "_"));
                URL_SAFE_NO_PAD
                    .decode(unified.as_bytes())
                    .ok()
                    .map(Zeroizing::new)
            };
        let decoded = decoded.ok_or_else(|| {
            StoreError::MasterKey("master key is neither base64 nor hex".to_string())
        })?;
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            StoreError::MasterKey(format!(
                "master key must be 32 bytes, got {}",
                decoded.len()
            ))
        })?;
        let key = Zeroizing::new(bytes);
        Ok(Self::from_zeroizing(key))
    }

    /// The key as standard base64, the format of `master.key`. Handle with care.
    pub fn to_base64(&self) -> Secret {
        Secret::new(STANDARD.encode(&self.bytes[..]))
    }

    /// The key id written into every value this key seals (not secret).
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Loads the master key: from `GATEHOUSE_MASTER_KEY` when set, else from
    /// `DATA_DIR/master.key`, creating that file (mode 0600, and the directory) with a
    /// fresh random key on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
            let value = Zeroizing::new(value);
            if !value.trim().is_empty() {
                return Self::from_encoded(&value);
            }
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match Self::read_file(&path) {
            Ok(key) => return Ok(key),
            Err(ReadError::NotFound) => {}
            Err(ReadError::Other(e)) => return Err(e),
        }
        create_private_dir(data_dir)?;
        let key = Self::generate();
        match key.write_new_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), key_id = %key.id, "created master key");
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(StoreError::EntityAlreadyExists { .. }) => {
                Self::read_file(&path).map_err(|e| match e {
                    ReadError::NotFound => {
                        StoreError::MasterKey(format!("{} vanished", path.display()))
                    }
                    ReadError::Other(e) => e,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn read_file(path: &Path) -> std::result::Result<Self, ReadError> {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::NotFound),
            Err(e) => {
                return Err(ReadError::Other(StoreError::MasterKey(format!(
                    "cannot read {}: {e}",
                    path.display()
                ))));
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = file.metadata() {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{:o}", mode & 0o777),
                        "master key file is readable by group or others; chmod 600 it"
                    );
                }
            }
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(|e| {
            ReadError::Other(StoreError::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        })?;
        Self::from_encoded(&text).map_err(ReadError::Other)
    }

    /// Writes this key to a new file with mode 0600 (fails with `EntityAlreadyExists`
    /// if the file exists) and syncs it to disk.
    pub fn write_new_file(&self, path: &Path) -> Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::exists(crate::EntityKind::Meta, path.display().to_string())
            } else {
                StoreError::MasterKey(format!("cannot create {}: {e}", path.display()))
            }
        })?;
        let encoded = self.to_base64();
        file.write_all(encoded.expose_secret().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::MasterKey(format!("cannot write {}: {e}", path.display())))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir);
        }
        Ok(())
    }

    /// Where [`MasterKey::load_or_create`] keeps the key for a data directory.
    pub fn file_path(data_dir: &Path) -> PathBuf {
        data_dir.join(MASTER_KEY_FILE)
    }

    fn cipher(&self) -> Result<Aes256Gcm> {
        Aes256Gcm::new_from_slice(&self.bytes[..]).map_err(|_| StoreError::Crypto)
    }

    /// Seals `plaintext`, binding it to `aad` (the identity of the row it belongs to).
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        rand::fill(&mut nonce_bytes[..]);
        let nonce = Nonce::from(nonce_bytes);
        let ciphertext = self
            .cipher()?
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ciphertext);
        Ok(format!(
            "{PREFIX}.{}.{}",
            self.id,
            URL_SAFE_NO_PAD.encode(&blob)
        ))
    }

    /// Opens a value sealed by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(PREFIX), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(StoreError::Crypto);
        };
        if key_id != self.id {
            return Err(StoreError::Crypto);
        }
        let blob = URL_SAFE_NO_PAD
            .decode(body.as_bytes())
            .map_err(|_| StoreError::Crypto)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(StoreError::Crypto);
        }
        let (nonce_bytes, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce_arr: [u8; NONCE_LEN] = nonce_bytes.try_into().map_err(|_| StoreError::Crypto)?;
        let plaintext = self
            .cipher()?
            .decrypt(
                &Nonce::from(nonce_arr),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto)?;
        Ok(Zeroizing::new(plaintext))
    }

    /// Seals a [`Secret`].
    pub fn seal_secret(&self, aad: &str, secret: &Secret) -> Result<String> {
        self.seal(aad, secret.expose_secret().as_bytes())
    }

    /// Opens a value sealed by [`MasterKey::seal_secret`].
    pub fn open_secret(&self, aad: &str, sealed: &str) -> Result<Secret> {
        let bytes = self.open(aad, sealed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| StoreError::Crypto)?;
        Ok(Secret::new(text))
    }
}

/// The key id a sealed value names, if it is a sealed value at all.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(PREFIX), Some(id)) => Some(id),
        _ => None,
    }
}

enum ReadError {
    NotFound,
    Other(StoreError),
}

/// Creates `dir` (and parents); a directory created here gets mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| StoreError::MasterKey(format!("cannot create {}: {e}", dir.display())))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let key = MasterKey::generate();
        let sealed = key.seal("row/1", b"hello").unwrap();
        assert!(!sealed.contains("hello"));
        assert_eq!(sealed_key_id(&sealed), Some(key.key_id()));
        assert_eq!(&key.open("row/1", &sealed).unwrap()[..], b"hello");
        assert!(matches!(
            key.open("row/2", &sealed),
            Err(StoreError::Crypto)
        ));
        let other = MasterKey::generate();
        assert!(matches!(
            other.open("row/1", &sealed),
            Err(StoreError::Crypto)
        ));
        // Two seals of the same value differ (fresh nonce).
        assert_ne!(sealed, key.seal("row/1", b"hello").unwrap());
    }

    #[test]
    fn encodings_and_debug() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        let again = MasterKey::from_encoded(b64.expose_secret()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let hex_text = hex::encode(&key.bytes[..]);
        assert_eq!(MasterKey::from_encoded(&hex_text).unwrap(), key);
        assert!(MasterKey::from_encoded("c2hvcnQ=").is_err());
        assert!(!format!("{key:?}").contains(b64.expose_secret()));
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }

    #[test]
    fn key_file_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The env var would override the file; this test relies on it being unset.
        if std::env::var(MASTER_KEY_ENV).is_ok() {
            return;
        }
        let k1 = MasterKey::load_or_create(&data).unwrap();
        let k2 = MasterKey::load_or_create(&data).unwrap();
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
