//! Key managers: where Gatehouse's key-encryption key and audit signing key live.
//!
//! A key kept next to the data it protects protects nothing, so the store keeps its data
//! keys only wrapped ([`gatehouse_store::KeyEncryption`]) and the audit log is anchored by
//! digests signed with a key the database admin cannot use. This crate opens the key
//! manager the config file names and gives both:
//!
//! - `file` (the zero-config default): `master.key` (AES-256, wraps the data keys) and
//!   `audit-signing.key` (Ed25519) in the data directory, created on first start;
//! - `pkcs11`: any HSM through its PKCS#11 module — an AES key wraps the data keys
//!   (AES-GCM inside the token), an EC P-256 key pair signs digests (`CKM_ECDSA`);
//! - `kms`: the AWS KMS API (`Encrypt`/`Decrypt` with a symmetric key, `Sign` with an
//!   `ECC_NIST_P256` key), at AWS or any endpoint speaking that API.
//!
//! Every provider is opened once at start and checked (fail closed: a key manager out of
//! reach refuses the start). Later failures never touch requests — the data keys are
//! already unwrapped — and are recorded by [`KeyManager::spawn_health`] and the digest
//! task in the store's [`KeyManagerHealth`]: the log, `/metrics` and `/readyz` read it.

mod config;
mod digests;
mod file;
mod kms;
mod pkcs11;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use config::{AuditDigestConfig, KeysConfig, KmsConfig, Pkcs11Config, Provider};
pub use digests::{
    DigestError, DigestExport, DigestSource, TrustedSigners, read_digest_file, sign_digest,
    spawn_digest_task, verify_log,
};
pub use file::{AUDIT_SIGNING_KEY_FILE, FileSigner};
pub use gatehouse_store::{
    KeyEncryption, KeyFuture, KeyManagerError, KeyManagerHealth, KeyManagerOperation,
};

/// A public key that verifies audit digests.
#[derive(Clone)]
pub enum PublicKey {
    /// Ed25519 (the `file` provider).
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA over P-256 with SHA-256 (PKCS#11 and KMS).
    P256(p256::ecdsa::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKey::Ed25519(k) => write!(f, "Ed25519({})", hex::encode(k.as_bytes())),
            PublicKey::P256(_) => f.write_str("P256"),
        }
    }
}

impl PublicKey {
    /// The algorithm name digests record.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::P256(_) => "ecdsa-p256-sha256",
        }
    }

    /// Whether `signature` is this key's signature of `message`. ECDSA signatures are
    /// accepted in DER (KMS) or fixed 64-byte (PKCS#11) form.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                k.verify_strict(message, &sig).is_ok()
            }
            PublicKey::P256(k) => {
                use p256::ecdsa::signature::Verifier as _;
                let sig = if signature.len() == 64 {
                    p256::ecdsa::Signature::from_slice(signature)
                } else {
                    p256::ecdsa::Signature::from_der(signature)
                };
                sig.is_ok_and(|s| k.verify(message, &s).is_ok())
            }
        }
    }
}

/// What signs audit digests: a key a key manager holds.
pub trait DigestSigner: Send + Sync + fmt::Debug {
    /// How digests name the key (`file:ed25519:…`, `pkcs11:TOKEN/LABEL`, `kms:KEY`).
    fn descriptor(&self) -> String;
    /// Signs `message`.
    fn sign<'a>(&'a self, message: &'a [u8]) -> KeyFuture<'a, Vec<u8>>;
    /// The public key, asked of the key manager (never of the database).
    fn public_key(&self) -> KeyFuture<'_, PublicKey>;
}

/// The configured key manager: the key-encryption key for the store and the audit
/// signing key, opened and checked.
#[derive(Debug, Clone)]
pub struct KeyManager {
    provider: Provider,
    kek: Arc<dyn KeyEncryption>,
    signer: Arc<dyn DigestSigner>,
}

impl KeyManager {
    /// Opens the key manager `config` names (`data_dir` holds the `file` provider's
    /// keys) and checks that it answers and holds both keys: an error here must stop
    /// the start.
    pub async fn open(config: &KeysConfig, data_dir: &Path) -> Result<KeyManager, KeyManagerError> {
        let (kek, signer) = open_provider(config.provider, config, data_dir).await?;
        // Reachability and the signing key, checked now rather than at the first digest.
        signer.public_key().await?;
        Ok(KeyManager {
            provider: config.provider,
            kek,
            signer,
        })
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The key-encryption key, for [`gatehouse_store::Store::open`].
    pub fn kek(&self) -> Arc<dyn KeyEncryption> {
        Arc::clone(&self.kek)
    }

    /// The audit digest signer.
    pub fn signer(&self) -> Arc<dyn DigestSigner> {
        Arc::clone(&self.signer)
    }

    /// Checks the key manager every `every` (a public-key read: cheap, no key use) and
    /// records the outcome in `health` (the store's: see
    /// [`gatehouse_store::Store::key_manager_health`]), which logs a change.
    pub fn spawn_health(
        &self,
        health: Arc<KeyManagerHealth>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let signer = Arc::clone(&self.signer);
        tokio::spawn(async move {
            let mut tick = ticker(every).await;
            loop {
                tick.tick().await;
                let outcome = signer.public_key().await.map(|_| ());
                health.record(KeyManagerOperation::Check, outcome.as_ref().map(|_| ()));
            }
        })
    }

    /// The signing keys `audit verify` trusts: this key manager's, and those of the other
    /// key managers the config describes and of `audit-signing.key` when it is in the data
    /// directory (a store that moved keeps its earlier digests checkable). A described key
    /// manager that cannot be opened now is left out and named in
    /// [`TrustedSigners::unreadable`]: the digests it signed then do not verify (fail
    /// closed).
    pub async fn trusted_signers(
        &self,
        config: &KeysConfig,
        data_dir: &Path,
    ) -> Result<TrustedSigners, KeyManagerError> {
        let current = (self.signer.descriptor(), self.signer.public_key().await?);
        let mut previous = Vec::new();
        let mut unreadable = Vec::new();
        for other in [Provider::File, Provider::Pkcs11, Provider::Kms] {
            if other == self.provider {
                continue;
            }
            let signer: Result<Arc<dyn DigestSigner>, KeyManagerError> = match other {
                Provider::File => {
                    let path = data_dir.join(AUDIT_SIGNING_KEY_FILE);
                    if !path.exists() {
                        continue;
                    }
                    FileSigner::load_or_create(&path).map(|s| Arc::new(s) as Arc<dyn DigestSigner>)
                }
                Provider::Pkcs11 | Provider::Kms => {
                    let described = match other {
                        Provider::Pkcs11 => config.pkcs11.is_some(),
                        _ => config.kms.is_some(),
                    };
                    if !described {
                        continue;
                    }
                    open_provider(other, config, data_dir).await.map(|(_, s)| s)
                }
            };
            let key = match signer {
                Ok(s) => s.public_key().await.map(|k| (s.descriptor(), k)),
                Err(e) => Err(e),
            };
            match key {
                Ok(k) => previous.push(k),
                Err(e) => unreadable.push(format!("{other}: {e}")),
            }
        }
        Ok(TrustedSigners {
            current,
            previous,
            unreadable,
        })
    }

    /// A key-encryption key that wraps with this key manager and also unwraps with
    /// every other key manager the config describes (and `master.key` when it exists):
    /// what `rotate-master-key` re-wraps with when a store moves between providers.
    pub async fn migration_chain(
        &self,
        config: &KeysConfig,
        data_dir: &Path,
    ) -> Result<gatehouse_store::KeyChain, KeyManagerError> {
        let mut chain = gatehouse_store::KeyChain::new(Arc::clone(&self.kek));
        for other in [Provider::File, Provider::Pkcs11, Provider::Kms] {
            if other == self.provider {
                continue;
            }
            let described = match other {
                Provider::File => file::master_key_exists(data_dir),
                Provider::Pkcs11 => config.pkcs11.is_some(),
                Provider::Kms => config.kms.is_some(),
            };
            if described {
                let (kek, _) = open_provider(other, config, data_dir).await?;
                chain = chain.or_unwrap_with(kek);
            }
        }
        Ok(chain)
    }
}

/// An interval whose first tick is one period away (not at once), and that delays
/// rather than bursts after a slow tick: the periodic tasks' clock.
pub(crate) async fn ticker(every: std::time::Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    tick
}

async fn open_provider(
    provider: Provider,
    config: &KeysConfig,
    data_dir: &Path,
) -> Result<(Arc<dyn KeyEncryption>, Arc<dyn DigestSigner>), KeyManagerError> {
    match provider {
        Provider::File => {
            let (kek, signer) = file::open(data_dir)?;
            Ok((kek, Arc::new(signer)))
        }
        Provider::Pkcs11 => {
            let cfg = config.pkcs11.as_ref().ok_or_else(|| {
                KeyManagerError::Config("provider = \"pkcs11\" needs a [keys.pkcs11] table".into())
            })?;
            let hsm = Arc::new(pkcs11::Hsm::open(cfg).await?);
            Ok((hsm.clone(), hsm))
        }
        Provider::Kms => {
            let cfg = config.kms.as_ref().ok_or_else(|| {
                KeyManagerError::Config("provider = \"kms\" needs a [keys.kms] table".into())
            })?;
            let kms = Arc::new(kms::Kms::open(cfg)?);
            Ok((kms.clone(), kms))
        }
    }
}
