//! Secrets at rest: the sealed-value format, and the `file` key-encryption key.
//!
//! Access-key secrets, signing keys and other sensitive values are sealed with
//! AES-256-GCM ([`gatehouse_secret::SealingKey`], the workspace's one AEAD primitive)
//! under a *data key* before they reach the database, so a copied database file or a
//! dump reveals nothing. The data key itself is stored only wrapped by a
//! key-encryption key that a key manager holds (see `keys.rs`); this module holds the
//! simplest one, [`MasterKey`]: a 32-byte key in `master.key` in the data directory (or
//! `GATEHOUSE_MASTER_KEY`), the embedded default that needs nothing installed.
//!
//! A sealed value is text: `gh1.<key id>.<base64url(nonce || ciphertext+tag)>`. The key
//! id (first 8 bytes of SHA-256 of the data key, hex) says which data key sealed it; the
//! additional authenticated data names the row the value belongs to, so a sealed value
//! moved to another row does not open.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use gatehouse_secret::{SealError, SealingKey, Secret};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::keys::{KeyEncryption, KeyFuture, KeyManagerError};

/// The environment variable that, when set, provides the master key (base64 or hex of
/// 32 bytes) instead of the `master.key` file.
pub const MASTER_KEY_ENV: &str = "GATEHOUSE_MASTER_KEY";

/// The file name of the master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const PREFIX: &str = "gh1";

/// The additional authenticated data a data key is wrapped with by the `file` provider.
const DATA_KEY_AAD: &[u8] = b"gatehouse/data-key/v1";

/// Seals `plaintext` under `key` in the text format above.
pub(crate) fn seal_text(key: &SealingKey, aad: &str, plaintext: &[u8]) -> Result<String> {
    let blob = key
        .seal(aad.as_bytes(), plaintext)
        .map_err(|_| StoreError::Crypto)?;
    Ok(format!(
        "{PREFIX}.{}.{}",
        key.key_id(),
        URL_SAFE_NO_PAD.encode(&blob)
    ))
}

/// Opens a value sealed by [`seal_text`] with the same `aad` (the key must be the one
/// its key id names).
pub(crate) fn open_text(key: &SealingKey, aad: &str, sealed: &str) -> Result<Secret> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(PREFIX), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(StoreError::Crypto);
    };
    if key_id != key.key_id() {
        return Err(StoreError::Crypto);
    }
    let blob = URL_SAFE_NO_PAD
        .decode(body.as_bytes())
        .map_err(|_| StoreError::Crypto)?;
    key.open(aad.as_bytes(), &blob)
        .map_err(|_| StoreError::Crypto)
}

/// The `file` key-encryption key: 32 bytes in `master.key` (mode 0600) in the data
/// directory, or from `GATEHOUSE_MASTER_KEY`. It wraps data keys; before envelope
/// encryption it sealed values itself, so it also opens values a store sealed then
/// (they are re-sealed under a data key when such a store is first opened).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(SealingKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MasterKey {{ id: {}, bytes: <redacted> }}",
            self.0.key_id()
        )
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        MasterKey(SealingKey::generate())
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(SealingKey::from_bytes(bytes))
    }

    /// Parses a key written as base64 (standard or URL-safe, padded or not) or as 64
    /// hex digits.
    pub fn from_encoded(text: &str) -> Result<Self> {
        SealingKey::from_encoded(text)
            .map(MasterKey)
            .map_err(|e| StoreError::MasterKey(e.to_string()))
    }

    /// The key as standard base64, the format of `master.key`. Handle with care.
    pub fn to_base64(&self) -> Secret {
        self.0.to_base64()
    }

    /// The key id (not secret).
    pub fn key_id(&self) -> &str {
        self.0.key_id()
    }

    /// How the data keys this key wraps name it: `file:<key id>`.
    pub fn descriptor(&self) -> String {
        format!("file:{}", self.0.key_id())
    }

    /// Loads the master key: from `GATEHOUSE_MASTER_KEY` when set, else from
    /// `DATA_DIR/master.key`, creating that file (mode 0600, and the directory) with a
    /// fresh random key on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        if let Some(key) = Self::from_env()? {
            return Ok(key);
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
                tracing::info!(path = %path.display(), key_id = %key.key_id(), "created master key");
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

    /// The key of `GATEHOUSE_MASTER_KEY`, when it is set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(value) => {
                let value = Zeroizing::new(value);
                if value.trim().is_empty() {
                    Ok(None)
                } else {
                    Self::from_encoded(&value).map(Some)
                }
            }
            Err(_) => Ok(None),
        }
    }

    /// Reads a key file (`None` when it does not exist).
    pub fn read_existing(path: &Path) -> Result<Option<Self>> {
        match Self::read_file(path) {
            Ok(k) => Ok(Some(k)),
            Err(ReadError::NotFound) => Ok(None),
            Err(ReadError::Other(e)) => Err(e),
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
        file.write_all(encoded.expose())
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
}

impl KeyEncryption for MasterKey {
    fn wrapping_key(&self) -> String {
        self.descriptor()
    }

    fn wrap<'a>(&'a self, data_key: &'a Secret) -> KeyFuture<'a, Vec<u8>> {
        let wrapped =
            self.0
                .seal(DATA_KEY_AAD, data_key.expose())
                .map_err(|_| KeyManagerError::Refused {
                    provider: "file",
                    detail: "cannot wrap the data key".into(),
                });
        ready(wrapped)
    }

    fn unwrap<'a>(&'a self, wrapped_by: &'a str, wrapped: &'a [u8]) -> KeyFuture<'a, Secret> {
        if wrapped_by != self.descriptor() {
            return ready(Err(KeyManagerError::NotHeld {
                wrapped_by: wrapped_by.to_owned(),
            }));
        }
        ready(
            self.0
                .open(DATA_KEY_AAD, wrapped)
                .map_err(|_| KeyManagerError::Refused {
                    provider: "file",
                    detail: "the data key does not unwrap with this master key".into(),
                }),
        )
    }

    fn legacy_key(&self) -> Option<SealingKey> {
        Some(self.0.clone())
    }
}

/// A key-manager answer that is already known (the `file` provider does no I/O).
pub fn ready<'a, T: Send + 'a>(value: std::result::Result<T, KeyManagerError>) -> KeyFuture<'a, T> {
    Box::pin(std::future::ready(value))
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
    fn sealed_text_round_trip_and_binding() {
        let key = SealingKey::generate();
        let sealed = seal_text(&key, "row/1", b"hello").unwrap();
        assert!(!sealed.contains("hello"));
        assert_eq!(sealed_key_id(&sealed), Some(key.key_id()));
        assert_eq!(
            open_text(&key, "row/1", &sealed).unwrap().expose(),
            b"hello"
        );
        assert!(matches!(
            open_text(&key, "row/2", &sealed),
            Err(StoreError::Crypto)
        ));
        assert!(matches!(
            open_text(&SealingKey::generate(), "row/1", &sealed),
            Err(StoreError::Crypto)
        ));
    }

    #[tokio::test]
    async fn file_key_wraps_and_unwraps_data_keys() {
        let kek = MasterKey::generate();
        let dek = SealingKey::generate().to_secret();
        let wrapped = kek.wrap(&dek).await.unwrap();
        assert!(!wrapped.windows(8).any(|w| w == &dek.expose()[..8]));
        let back = kek.unwrap(&kek.descriptor(), &wrapped).await.unwrap();
        assert_eq!(back, dek);
        let other = MasterKey::generate();
        assert!(matches!(
            other.unwrap(&other.descriptor(), &wrapped).await,
            Err(KeyManagerError::Refused { .. })
        ));
        assert!(matches!(
            other.unwrap(&kek.descriptor(), &wrapped).await,
            Err(KeyManagerError::NotHeld { .. })
        ));
        assert!(!format!("{kek:?}").contains(kek.to_base64().expose_str().unwrap()));
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
