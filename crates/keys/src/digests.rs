//! Signing the audit chain's head, exporting the digests, and checking a log against them.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_store::{
    AuditDigest, DigestVerification, KeyManagerError, KeyManagerOperation, Store, StoreError,
};

use crate::config::AuditDigestConfig;
use crate::{DigestSigner, PublicKey};

/// Where digests go besides the database.
#[derive(Debug, Clone, Default)]
pub struct DigestExport {
    /// Appended to, one JSON line per digest.
    pub file: Option<PathBuf>,
    /// Run once per digest with the JSON line on its standard input.
    pub command: Option<Vec<String>>,
}

impl From<&AuditDigestConfig> for DigestExport {
    fn from(c: &AuditDigestConfig) -> Self {
        DigestExport {
            file: c.digest_file.clone(),
            command: c.digest_command.clone(),
        }
    }
}

impl DigestExport {
    /// Writes `d` to the file (synced) and the command.
    pub async fn export(&self, d: &AuditDigest) -> Result<(), String> {
        let line = serde_json::to_string(d).map_err(|e| e.to_string())?;
        if let Some(path) = &self.file {
            let path = path.clone();
            let line = line.clone();
            tokio::task::spawn_blocking(move || append_line(&path, &line))
                .await
                .map_err(|e| e.to_string())??;
        }
        if let Some(cmd) = &self.command
            && let Some((program, args)) = cmd.split_first()
        {
            use tokio::io::AsyncWriteExt as _;
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("{program}: {e}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .map_err(|e| format!("{program}: {e}"))?;
            }
            let status = child.wait().await.map_err(|e| format!("{program}: {e}"))?;
            if !status.success() {
                return Err(format!("{program} exited with {status}"));
            }
        }
        Ok(())
    }
}

fn append_line(path: &Path, line: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Why a digest was not signed, stored or exported.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The store could not read the chain's head or keep the digest.
    #[error("audit digest: {0}")]
    Store(#[from] StoreError),
    /// The key manager could not sign (or give its public key).
    #[error("audit digest: {0}")]
    KeyManager(#[from] KeyManagerError),
    /// The digest is stored but its export (file or command) failed.
    #[error("audit digest export: {0}")]
    Export(String),
}

/// Signs the chain's head now and stores the digest (retrying once when another node
/// stored one at the same moment), then exports it.
pub async fn sign_digest(
    store: &Store,
    signer: &dyn DigestSigner,
    export: &DigestExport,
) -> Result<AuditDigest, DigestError> {
    let mut attempt = 0;
    let digest = loop {
        let body = store.next_audit_digest().await?;
        let signature = signer.sign(&body.message()).await?;
        let algorithm = signer.public_key().await?.algorithm();
        let d = AuditDigest::new(body, signer.descriptor(), algorithm.to_owned(), &signature);
        match store.append_audit_digest(&d).await {
            Ok(()) => break d,
            Err(StoreError::EntityAlreadyExists { .. }) if attempt == 0 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    export.export(&digest).await.map_err(DigestError::Export)?;
    Ok(digest)
}

/// Signs a digest every `config.digest_interval_secs` (skipping a tick when no record was
/// added since the last one); a failure is logged (and, when the key manager failed,
/// counted in the store's key manager health), and the next tick tries again.
pub fn spawn_digest_task(
    store: Store,
    signer: Arc<dyn DigestSigner>,
    config: &AuditDigestConfig,
) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(config.digest_interval_secs.max(1));
    let export = DigestExport::from(config);
    let health = store.key_manager_health();
    tokio::spawn(async move {
        let mut tick = crate::ticker(every).await;
        loop {
            tick.tick().await;
            let unchanged = match (
                store.next_audit_digest().await,
                store.audit_digests_tail().await,
            ) {
                (Ok(next), Ok(Some(last))) => next.audit_seq == last.body.audit_seq,
                _ => false,
            };
            if unchanged {
                continue;
            }
            match sign_digest(&store, signer.as_ref(), &export).await {
                Ok(d) => {
                    health.record(KeyManagerOperation::Sign, Ok(()));
                    tracing::info!(
                        digest = d.body.seq,
                        records = d.body.audit_seq,
                        "signed an audit digest"
                    );
                }
                Err(e) => {
                    if let DigestError::KeyManager(km) = &e {
                        health.record(KeyManagerOperation::Sign, Err(km));
                    }
                    tracing::error!(error = %e, "could not sign an audit digest; retrying at the next interval");
                }
            }
        }
    })
}

/// Reads digests exported as JSON lines; an error names the file and line.
pub fn read_digest_file(path: &Path) -> Result<Vec<AuditDigest>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let d: AuditDigest = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: not a digest: {e}", path.display(), i + 1))?;
        out.push(d);
    }
    out.sort_by_key(|d| d.body.seq);
    Ok(out)
}

/// Where digests to check come from, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestSource {
    /// The database's own digest chain.
    Database,
    /// An exported file.
    File(PathBuf),
}

/// The keys `audit verify` trusts, each asked of its key manager (never read from the
/// database): the configured key manager's signing key, and the signing keys of the key
/// managers a store moved away from (described in the config, or `audit-signing.key` left
/// in the data directory).
#[derive(Debug, Clone)]
pub struct TrustedSigners {
    /// The configured key manager's key: trusted for every digest.
    pub current: (String, PublicKey),
    /// Keys of earlier key managers: trusted only for digests that a later digest signed
    /// by `current` follows (the digests are chained, so that later digest vouches for
    /// them). A key left behind (a file key still on disk, a backup) therefore cannot
    /// extend the chain after the move.
    pub previous: Vec<(String, PublicKey)>,
    /// Key managers the config describes whose signing key could not be read (why, per
    /// provider): digests they signed do not verify.
    pub unreadable: Vec<String>,
}

impl TrustedSigners {
    fn signed_by(key: &(String, PublicKey), d: &AuditDigest) -> bool {
        let (descriptor, key) = key;
        *descriptor == d.signing_key
            && key.algorithm() == d.algorithm
            && key.verify(&d.body.message(), &d.signature_bytes())
    }
}

/// Checks the log against `digests` with the keys `trusted` says, as it says.
pub async fn verify_log(
    store: &Store,
    digests: &[AuditDigest],
    trusted: &TrustedSigners,
) -> Result<DigestVerification, StoreError> {
    let last_by_current = digests
        .iter()
        .filter(|d| TrustedSigners::signed_by(&trusted.current, d))
        .map(|d| d.body.seq)
        .max();
    let check = |d: &AuditDigest| {
        TrustedSigners::signed_by(&trusted.current, d)
            || (last_by_current.is_some_and(|last| d.body.seq < last)
                && trusted
                    .previous
                    .iter()
                    .any(|k| TrustedSigners::signed_by(k, d)))
    };
    store.verify_audit_digests(digests, &check).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::FileSigner;

    async fn trusted(s: &FileSigner) -> (String, PublicKey) {
        (s.descriptor(), s.public_key().await.unwrap())
    }

    /// After a move between key managers the earlier key vouches only for the digests
    /// before the current key's last one: a key left behind (a file key on disk, a
    /// backup) cannot extend the chain after the move.
    #[tokio::test]
    async fn a_previous_key_is_trusted_only_before_the_current_keys_last_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path(), gatehouse_store::MasterKey::generate())
            .await
            .unwrap();
        let old = FileSigner::load_or_create(&dir.path().join("old.key")).unwrap();
        let new = FileSigner::load_or_create(&dir.path().join("new.key")).unwrap();
        let none = DigestExport::default();
        sign_digest(&store, &old, &none).await.unwrap();
        sign_digest(&store, &old, &none).await.unwrap();
        let only_new = TrustedSigners {
            current: trusted(&new).await,
            previous: Vec::new(),
            unreadable: Vec::new(),
        };
        let both = TrustedSigners {
            previous: vec![trusted(&old).await],
            ..only_new.clone()
        };
        // Nothing signed by the current key yet: the old key vouches for nothing.
        let digests = store.audit_digests().await.unwrap();
        let v = verify_log(&store, &digests, &both).await.unwrap();
        assert_eq!(v.broken.map(|f| f.digest_seq), Some(1));

        sign_digest(&store, &new, &none).await.unwrap();
        let digests = store.audit_digests().await.unwrap();
        assert!(
            verify_log(&store, &digests, &both)
                .await
                .unwrap()
                .broken
                .is_none()
        );
        let v = verify_log(&store, &digests, &only_new).await.unwrap();
        assert_eq!(v.broken.map(|f| f.digest_seq), Some(1));

        // The old key signs after the move: refused from there on.
        sign_digest(&store, &old, &none).await.unwrap();
        let digests = store.audit_digests().await.unwrap();
        let v = verify_log(&store, &digests, &both).await.unwrap();
        assert_eq!(v.broken.map(|f| f.digest_seq), Some(4));
        store.close().await;
    }
}
