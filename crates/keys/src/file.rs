//! The `file` provider: `master.key` wraps the data keys (see `gatehouse_store::MasterKey`)
//! and `audit-signing.key` (Ed25519, mode 0600) signs audit digests. Both are created on
//! first start, so a fresh machine runs with nothing installed. The keys sit beside the
//! data, so this mode protects digests only once they are exported out of reach.

use std::io::Write as _;
use std::path::Path;

use ed25519_dalek::Signer as _;
use gatehouse_secret::Secret;
use std::sync::Arc;

use gatehouse_store::{KeyEncryption, KeyFuture, KeyManagerError, MasterKey};
use zeroize::Zeroizing;

use crate::{DigestSigner, PublicKey};

/// The Ed25519 audit signing key's file name in the data directory.
pub const AUDIT_SIGNING_KEY_FILE: &str = "audit-signing.key";

fn config_error(e: impl std::fmt::Display) -> KeyManagerError {
    KeyManagerError::Config(e.to_string())
}

pub(crate) fn master_key_exists(data_dir: &Path) -> bool {
    MasterKey::file_path(data_dir).exists()
}

/// Opens (creating on first start) both keys of the `file` provider. A `master.key.new`
/// left by a `rotate-master-key` that stopped between committing the re-wrap and
/// renaming the file also unwraps, so such a store still opens.
pub(crate) fn open(
    data_dir: &Path,
) -> Result<(Arc<dyn KeyEncryption>, FileSigner), KeyManagerError> {
    let kek = MasterKey::load_or_create(data_dir).map_err(config_error)?;
    let staged = MasterKey::file_path(data_dir).with_extension("new");
    let kek: Arc<dyn KeyEncryption> = match MasterKey::read_existing(&staged)
        .map_err(config_error)?
    {
        Some(new) => {
            tracing::warn!(path = %staged.display(), "a master key rotation did not finish; run rotate-master-key again");
            Arc::new(gatehouse_store::KeyChain::new(kek).or_unwrap_with(new))
        }
        None => Arc::new(kek),
    };
    let signer = FileSigner::load_or_create(&data_dir.join(AUDIT_SIGNING_KEY_FILE))?;
    Ok((kek, signer))
}

/// An Ed25519 key in a file.
pub struct FileSigner {
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileSigner({})", self.descriptor())
    }
}

impl FileSigner {
    /// Reads the key at `path` (hex of the 32-byte seed), creating it (0600) if missing.
    pub fn load_or_create(path: &Path) -> Result<FileSigner, KeyManagerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let seed = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
                    config_error(format!("{}: not a hex Ed25519 seed", path.display()))
                })?);
                let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
                    config_error(format!("{}: an Ed25519 seed is 32 bytes", path.display()))
                })?;
                Ok(FileSigner {
                    key: ed25519_dalek::SigningKey::from_bytes(&seed),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rand::fill(&mut seed[..]);
                let signer = FileSigner {
                    key: ed25519_dalek::SigningKey::from_bytes(&seed),
                };
                let encoded = Secret::from_string(hex::encode(&seed[..]));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut f) => {
                        f.write_all(encoded.expose())
                            .and_then(|()| f.write_all(b"\n"))
                            .and_then(|()| f.sync_all())
                            .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
                        tracing::info!(path = %path.display(), key = %signer.descriptor(), "created the audit signing key");
                        Ok(signer)
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(config_error(format!("{}: {e}", path.display()))),
                }
            }
            Err(e) => Err(config_error(format!("{}: {e}", path.display()))),
        }
    }

    fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }
}

impl DigestSigner for FileSigner {
    fn descriptor(&self) -> String {
        format!(
            "file:ed25519:{}",
            hex::encode(self.verifying_key().as_bytes())
        )
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> KeyFuture<'a, Vec<u8>> {
        gatehouse_store::seal::ready(Ok(self.key.sign(message).to_bytes().to_vec()))
    }

    fn public_key(&self) -> KeyFuture<'_, PublicKey> {
        gatehouse_store::seal::ready(Ok(PublicKey::Ed25519(self.verifying_key())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn signing_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_SIGNING_KEY_FILE);
        let a = FileSigner::load_or_create(&path).unwrap();
        let b = FileSigner::load_or_create(&path).unwrap();
        assert_eq!(a.descriptor(), b.descriptor());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sig = a.sign(b"digest").await.unwrap();
        let public = b.public_key().await.unwrap();
        assert!(public.verify(b"digest", &sig));
        assert!(!public.verify(b"digest!", &sig));
        assert!(!format!("{a:?}").contains(&std::fs::read_to_string(&path).unwrap()[..16]));
    }
}
