//! The key manager, the store and the audit digests as the CLI opens them from the config
//! file's `[keys]`, `[audit]` and `[database]` tables: one path for `serve` and for the
//! `admin`/`audit` commands, so both open a store the same way (and fail the same way
//! when the key manager cannot be reached).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gatehouse_keys::{AuditDigestConfig, DigestExport, KeyManager, KeysConfig};
use gatehouse_store::{DatabaseTls, Store, StoreOptions};
use serde::Deserialize;

/// The parts of the config file this module reads (other tables are `serve`'s).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeySettings {
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) database_url: Option<String>,
    #[serde(default)]
    pub(crate) keys: KeysConfig,
    #[serde(default)]
    pub(crate) audit: AuditDigestConfig,
    #[serde(default)]
    pub(crate) database: DatabaseTls,
}

impl KeySettings {
    /// Reads `path` (defaults when there is no config file).
    pub(crate) fn read(path: Option<&Path>) -> Result<KeySettings> {
        let Some(path) = path else {
            return Ok(KeySettings::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: invalid config", path.display()))
    }
}

/// Opens the key manager, saying which and why it failed: the start stops there.
pub(crate) async fn open_key_manager(keys: &KeysConfig, data_dir: &Path) -> Result<KeyManager> {
    KeyManager::open(keys, data_dir).await.with_context(|| {
        format!(
            "cannot open the {} key manager; Gatehouse does not start without its keys",
            keys.provider
        )
    })
}

/// Opens the store with `kek`.
pub(crate) async fn open_store(
    data_dir: &Path,
    database_url: Option<&str>,
    tls: &DatabaseTls,
    kek: impl gatehouse_store::KeyEncryption + 'static,
) -> Result<Store> {
    let mut opts = match database_url {
        Some(url) => StoreOptions::postgres(url.to_owned()),
        None => StoreOptions::sqlite(data_dir.to_path_buf()),
    };
    opts.tls = tls.clone();
    Store::open(&opts, kek).await.map_err(|e| {
        let hint = match &e {
            gatehouse_store::StoreError::KeyManager(
                gatehouse_store::KeyManagerError::NotHeld { .. },
            ) => {
                "; if the store is moving to another key manager, describe both in [keys] and run `gatehouse admin rotate-master-key`"
            }
            _ => "",
        };
        anyhow::anyhow!("open store: {e}{hint}")
    })
}

/// The audit digest task of a running server: started after the store is open, and
/// asked for one last digest at shutdown.
#[derive(Debug)]
pub(crate) struct DigestSigning {
    manager: KeyManager,
    export: DigestExport,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DigestSigning {
    pub(crate) fn start(
        manager: KeyManager,
        store: &Store,
        config: &AuditDigestConfig,
        health_every: std::time::Duration,
    ) -> Self {
        let tasks = vec![
            gatehouse_keys::spawn_digest_task(store.clone(), manager.signer(), config),
            manager.spawn_health(store.key_manager_health(), health_every),
        ];
        DigestSigning {
            manager,
            export: DigestExport::from(config),
            tasks,
        }
    }

    /// Signs the chain's head as it is at shutdown.
    pub(crate) async fn finish(self, store: &Store) {
        for t in &self.tasks {
            t.abort();
        }
        let signer: Arc<dyn gatehouse_keys::DigestSigner> = self.manager.signer();
        match gatehouse_keys::sign_digest(store, signer.as_ref(), &self.export).await {
            Ok(d) => tracing::info!(
                digest = d.body.seq,
                records = d.body.audit_seq,
                "signed the audit digest at shutdown"
            ),
            Err(e) => tracing::error!(error = %e, "could not sign the audit digest at shutdown"),
        }
    }
}
