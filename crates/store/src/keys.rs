//! Envelope encryption: the data keys secrets are sealed under, each stored in the
//! database only wrapped by a key-encryption key that never leaves a key manager.
//!
//! Why: a key kept beside the data it protects protects nothing. The store therefore
//! keeps, per data key, only `wrapped` (the key encrypted by the key manager) and
//! `wrapped_by` (which key-encryption key did it, e.g. `file:3f1c…`,
//! `kms:arn:aws:kms:…:key/…`, `pkcs11:gatehouse-kek`). At open every data key is unwrapped
//! once through a [`KeyEncryption`] and held in memory only (a [`SealingKey`], wiped on
//! drop); a key manager that cannot be reached then makes the open fail (fail closed).
//! Afterwards sealing and opening never call the key manager, except for a data key
//! another node created after this one started (unwrapped once, on first use).
//!
//! Exactly one data key is `active` (new values are sealed under it); during a reseal
//! the previous one is `retiring` until no value is sealed under it any more. Every
//! sealing write reads the active key's id inside its own transaction (`FOR SHARE` on
//! PostgreSQL), so switching keys waits for writes still sealing under the old one and
//! no write seals under a retired key afterwards.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_secret::{SealingKey, Secret};

use crate::db::{Arg, Conn, Row, args};
use crate::error::{Result, StoreError};
use crate::key_health::{KeyManagerHealth, KeyManagerOperation};
use crate::model::{Timestamp, now_ms, ts};
use crate::seal::{open_text, seal_text, sealed_key_id};
use crate::store::Store;

/// What a key manager answers, later: wrapping and unwrapping may go over the network.
pub type KeyFuture<'a, T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, KeyManagerError>> + Send + 'a>>;

/// Why a key manager could not wrap, unwrap or sign. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyManagerError {
    /// The key manager could not be reached (network, HSM token absent, module error).
    #[error("{provider}: key manager unreachable: {detail}")]
    Unavailable {
        /// `file`, `pkcs11` or `kms`.
        provider: &'static str,
        /// What failed.
        detail: String,
    },
    /// The key manager answered but refused (access denied, wrong key, bad ciphertext).
    #[error("{provider}: {detail}")]
    Refused {
        /// `file`, `pkcs11` or `kms`.
        provider: &'static str,
        /// What it said.
        detail: String,
    },
    /// A data key is wrapped by a key-encryption key that this key manager does not hold.
    #[error(
        "the data key is wrapped by {wrapped_by}, which the configured key manager does not hold"
    )]
    NotHeld {
        /// The descriptor of the key that wrapped it.
        wrapped_by: String,
    },
    /// The key manager's configuration is unusable.
    #[error("key manager configuration: {0}")]
    Config(String),
}

impl KeyManagerError {
    /// Whether the failure is the key manager being out of reach (as opposed to a refusal).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyManagerError::Unavailable { .. })
    }
}

/// A key-encryption key held by a key manager: wraps new data keys and unwraps stored
/// ones. Implemented by the `file` key ([`crate::MasterKey`]) here and by the PKCS#11
/// and AWS KMS providers in `gatehouse-keys`.
pub trait KeyEncryption: Send + Sync + fmt::Debug {
    /// The descriptor of the key new data keys are wrapped under (stored beside them).
    fn wrapping_key(&self) -> String;

    /// Wraps a data key (32 bytes) under [`KeyEncryption::wrapping_key`].
    fn wrap<'a>(&'a self, data_key: &'a Secret) -> KeyFuture<'a, Vec<u8>>;

    /// Unwraps a data key that the key `wrapped_by` wrapped. Providers that can open
    /// data keys wrapped by other keys of theirs (an older KMS key, another HSM key
    /// label) do; a key they cannot use is [`KeyManagerError::NotHeld`].
    fn unwrap<'a>(&'a self, wrapped_by: &'a str, wrapped: &'a [u8]) -> KeyFuture<'a, Secret>;

    /// The key values were sealed under directly before envelope encryption (the
    /// `file` key only): a store sealed that way is moved onto a data key when opened.
    fn legacy_key(&self) -> Option<SealingKey> {
        None
    }
}

impl<T: KeyEncryption + ?Sized> KeyEncryption for Arc<T> {
    fn wrapping_key(&self) -> String {
        (**self).wrapping_key()
    }
    fn wrap<'a>(&'a self, data_key: &'a Secret) -> KeyFuture<'a, Vec<u8>> {
        (**self).wrap(data_key)
    }
    fn unwrap<'a>(&'a self, wrapped_by: &'a str, wrapped: &'a [u8]) -> KeyFuture<'a, Secret> {
        (**self).unwrap(wrapped_by, wrapped)
    }
    fn legacy_key(&self) -> Option<SealingKey> {
        (**self).legacy_key()
    }
}

/// A key-encryption key to wrap with, and others that may unwrap: what re-wrapping
/// needs (a new `file` key and the old one; a KMS key and the `file` key a store is
/// migrating from). Unwrapping asks each in turn, passing over those that do not hold
/// the key a data key names.
#[derive(Debug)]
pub struct KeyChain {
    wrap_with: Arc<dyn KeyEncryption>,
    unwrap_also: Vec<Arc<dyn KeyEncryption>>,
}

impl KeyChain {
    /// A chain that wraps (and first unwraps) with `kek`.
    pub fn new(kek: impl KeyEncryption + 'static) -> Self {
        KeyChain {
            wrap_with: Arc::new(kek),
            unwrap_also: Vec::new(),
        }
    }

    /// Also unwraps with `kek` (tried after those before it).
    pub fn or_unwrap_with(mut self, kek: impl KeyEncryption + 'static) -> Self {
        self.unwrap_also.push(Arc::new(kek));
        self
    }
}

impl KeyEncryption for KeyChain {
    fn wrapping_key(&self) -> String {
        self.wrap_with.wrapping_key()
    }

    fn wrap<'a>(&'a self, data_key: &'a Secret) -> KeyFuture<'a, Vec<u8>> {
        self.wrap_with.wrap(data_key)
    }

    fn unwrap<'a>(&'a self, wrapped_by: &'a str, wrapped: &'a [u8]) -> KeyFuture<'a, Secret> {
        Box::pin(async move {
            let mut last = KeyManagerError::NotHeld {
                wrapped_by: wrapped_by.to_owned(),
            };
            for kek in std::iter::once(&self.wrap_with).chain(&self.unwrap_also) {
                match kek.unwrap(wrapped_by, wrapped).await {
                    Err(e @ KeyManagerError::NotHeld { .. }) => last = e,
                    other => return other,
                }
            }
            Err(last)
        })
    }

    fn legacy_key(&self) -> Option<SealingKey> {
        std::iter::once(&self.wrap_with)
            .chain(&self.unwrap_also)
            .find_map(|k| k.legacy_key())
    }
}

/// One stored data key, as `gatehouse admin rotate-master-key` reports it (no key
/// material).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataKeyInfo {
    /// The key id every value it sealed names.
    pub key_id: String,
    /// The key-encryption key that wraps it.
    pub wrapped_by: String,
    /// `active` or `retiring`.
    pub state: String,
    /// When it was made.
    pub created: Timestamp,
}

/// Where a reseal stands (see [`Store::begin_reseal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealProgress {
    /// The data key values are being moved to.
    pub key_id: String,
    /// Whether an interrupted reseal was found and continued rather than a new key made.
    pub resumed: bool,
    /// Values still sealed under another key.
    pub remaining: i64,
}

/// A column of sealed values: which table, how a row is named, how its value is bound.
struct SealedColumn {
    table: &'static str,
    column: &'static str,
    /// Columns naming the row, `(name, is_integer)`.
    keys: &'static [(&'static str, bool)],
    /// Further columns the binding is made of, after the keys.
    extra: &'static [&'static str],
    /// The binding (additional authenticated data), from the key and extra columns as text.
    aad: fn(&[String]) -> String,
    /// A further condition on the rows that hold sealed values.
    filter: &'static str,
}

/// Every sealed value of the store. A new sealed column joins this list, and with that
/// master-key rotation, reseal and the first-open upgrade all cover it.
const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "access_keys",
        column: "secret_sealed",
        keys: &[("access_key_id", false)],
        extra: &[],
        aad: |v| crate::store::access_key_aad(&v[0]),
        filter: "",
    },
    SealedColumn {
        table: "meta",
        column: "value",
        keys: &[("meta_key", false)],
        extra: &[],
        aad: |v| crate::store::meta_aad(&v[0]),
        filter: " AND sealed = 1",
    },
    SealedColumn {
        table: "mfa_devices",
        column: "seed_sealed",
        keys: &[("serial_number", false)],
        extra: &[],
        aad: |v| crate::federation::mfa_aad(&v[0]),
        filter: "",
    },
    SealedColumn {
        table: "ai_deployments",
        column: "key_sealed",
        keys: &[("account_id", false), ("model_id", false)],
        extra: &[],
        aad: |v| crate::gateway::key_aad(&v[0], &v[1]),
        filter: "",
    },
    SealedColumn {
        table: "ai_invocation_logs",
        column: "sealed",
        keys: &[("id", true)],
        extra: &["account_id", "model_id", "request_id"],
        aad: |v| crate::gateway::log_aad(&v[1], &v[2], &v[3]),
        filter: "",
    },
    SealedColumn {
        table: "mcp_servers",
        column: "secrets_sealed",
        keys: &[("account_id", false), ("name", false)],
        extra: &[],
        aad: |v| crate::mcp::secrets_aad(&v[0], &v[1]),
        filter: "",
    },
    SealedColumn {
        table: "signin_sources",
        column: "client_secret_sealed",
        keys: &[("account_id", false), ("name", false)],
        extra: &[],
        aad: |v| crate::signin::client_secret_aad(&v[0], &v[1]),
        filter: "",
    },
    SealedColumn {
        table: "knowledge_bases",
        column: "credential_sealed",
        keys: &[("account_id", false), ("name", false)],
        extra: &[],
        aad: |v| crate::knowledge::credential_aad(&v[0], &v[1]),
        filter: "",
    },
];

impl SealedColumn {
    fn pending_condition(&self) -> String {
        format!(
            "{c} IS NOT NULL AND {c} NOT LIKE $1{f}",
            c = self.column,
            f = self.filter
        )
    }

    async fn count_pending(&self, c: &mut Conn, active_prefix: &str) -> Result<i64> {
        c.scalar_i64(
            &format!(
                "SELECT count(*) FROM {} WHERE {}",
                self.table,
                self.pending_condition()
            ),
            args![active_prefix],
        )
        .await
    }

    /// Re-seals up to `limit` values not sealed under `new`; returns how many. Each
    /// update is conditional on the value being unchanged, so a concurrent write of a
    /// fresh value (sealed under `new` already) is never overwritten with an old one.
    async fn reseal(
        &self,
        c: &mut Conn,
        old_keys: &HashMap<String, Arc<SealingKey>>,
        new: &SealingKey,
        limit: i64,
    ) -> Result<usize> {
        let key_cols: Vec<&str> = self.keys.iter().map(|(k, _)| *k).collect();
        let mut select_cols = vec![self.column];
        select_cols.extend(&key_cols);
        select_cols.extend(self.extra);
        let rows = c
            .all(
                &format!(
                    "SELECT {} FROM {} WHERE {} LIMIT $2",
                    select_cols.join(", "),
                    self.table,
                    self.pending_condition()
                ),
                args![active_prefix(new), limit],
            )
            .await?;
        let where_keys: Vec<String> = key_cols
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 3))
            .collect();
        let update = format!(
            "UPDATE {} SET {c} = $1 WHERE {c} = $2 AND {}",
            self.table,
            where_keys.join(" AND "),
            c = self.column
        );
        let mut count = 0;
        for r in &rows {
            let sealed = r.text(0)?;
            let (binding, key_args) = self.row_binding(r)?;
            let old = sealed_key_id(&sealed)
                .and_then(|id| old_keys.get(id))
                .ok_or(StoreError::Crypto)?;
            let value = open_text(old, &binding, &sealed)?;
            let resealed = seal_text(new, &binding, value.expose())?;
            let mut a: Vec<Arg> = args![resealed, sealed];
            a.extend(key_args);
            count += usize::try_from(c.exec(&update, a).await?).unwrap_or(0);
        }
        Ok(count)
    }

    /// The row's binding and the arguments naming it.
    fn row_binding(&self, r: &Row) -> Result<(String, Vec<Arg>)> {
        let mut texts = Vec::new();
        let mut key_args = Vec::new();
        for (i, (_, is_int)) in self.keys.iter().enumerate() {
            if *is_int {
                let v = r.i64(i + 1)?;
                texts.push(v.to_string());
                key_args.push(Arg::from(v));
            } else {
                let v = r.text(i + 1)?;
                texts.push(v.clone());
                key_args.push(Arg::from(v));
            }
        }
        for i in 0..self.extra.len() {
            texts.push(r.text(1 + self.keys.len() + i)?);
        }
        Ok(((self.aad)(&texts), key_args))
    }
}

fn active_prefix(key: &SealingKey) -> String {
    format!("gh1.{}.%", key.key_id())
}

/// The data keys this process has unwrapped, by key id.
#[derive(Debug, Default)]
pub(crate) struct DataKeys {
    keys: HashMap<String, Arc<SealingKey>>,
}

const KEY_COLS: &str = "key_id, wrapped, wrapped_by, state, created_ms";

impl Store {
    fn cached_data_key(&self, key_id: &str) -> Option<Arc<SealingKey>> {
        let keys = self
            .inner
            .data_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.keys.get(key_id).cloned()
    }

    fn cache_data_key(&self, key: SealingKey) -> Arc<SealingKey> {
        let key = Arc::new(key);
        let mut keys = self
            .inner
            .data_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.keys
            .entry(key.key_id().to_owned())
            .or_insert(key)
            .clone()
    }

    fn forget_data_key(&self, key_id: &str) {
        let mut keys = self
            .inner
            .data_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.keys.remove(key_id);
    }

    /// Unwraps a stored data key through the key manager, checking that it is the key
    /// its id names.
    async fn unwrap_row(&self, r: &Row) -> Result<Arc<SealingKey>> {
        let (key_id, wrapped, wrapped_by) = (r.text(0)?, r.text(1)?, r.text(2)?);
        let wrapped = STANDARD
            .decode(wrapped.as_bytes())
            .map_err(|_| StoreError::MasterKey(format!("data key {key_id}: not base64")))?;
        let secret = self
            .inner
            .kek
            .unwrap(&wrapped_by, &wrapped)
            .await
            .inspect_err(|e| {
                self.inner
                    .key_health
                    .record(KeyManagerOperation::Unwrap, Err(e))
            })?;
        let key = SealingKey::from_secret(&secret)
            .map_err(|_| StoreError::MasterKey(format!("data key {key_id}: not 32 bytes")))?;
        if key.key_id() != key_id {
            return Err(StoreError::MasterKey(format!(
                "data key {key_id}: unwrapped to another key"
            )));
        }
        Ok(self.cache_data_key(key))
    }

    /// The data key `key_id`: from memory, else unwrapped once from its row.
    async fn data_key_in(&self, c: &mut Conn, key_id: &str) -> Result<Arc<SealingKey>> {
        if let Some(k) = self.cached_data_key(key_id) {
            return Ok(k);
        }
        let row = c
            .opt(
                &format!("SELECT {KEY_COLS} FROM data_keys WHERE key_id = $1"),
                args![key_id],
            )
            .await?
            .ok_or(StoreError::Crypto)?;
        let key = self.unwrap_row(&row).await?;
        self.inner
            .key_health
            .record(KeyManagerOperation::Unwrap, Ok(()));
        tracing::info!(key_id, "unwrapped a data key made by another node");
        Ok(key)
    }

    /// The active data key, read inside the caller's transaction (see the module docs).
    async fn active_key_in(&self, c: &mut Conn) -> Result<Arc<SealingKey>> {
        let sql = if c.is_postgres() {
            "SELECT key_id FROM data_keys WHERE state = 'active' FOR SHARE"
        } else {
            "SELECT key_id FROM data_keys WHERE state = 'active'"
        };
        let id = c
            .opt(sql, vec![])
            .await?
            .ok_or_else(|| StoreError::MasterKey("no active data key".into()))?
            .text(0)?;
        self.data_key_in(c, &id).await
    }

    /// Seals `value` for the row `aad` names under the active data key, inside `c`'s
    /// transaction.
    pub(crate) async fn seal_in(&self, c: &mut Conn, aad: &str, value: &Secret) -> Result<String> {
        let key = self.active_key_in(c).await?;
        seal_text(&key, aad, value.expose())
    }

    /// Opens a sealed value of the row `aad` names, with the data key it names.
    pub(crate) async fn open_sealed(&self, aad: &str, sealed: &str) -> Result<Secret> {
        let key_id = sealed_key_id(sealed).ok_or(StoreError::Crypto)?;
        let key = match self.cached_data_key(key_id) {
            Some(k) => k,
            None => {
                let mut c = self.inner.pool.conn().await?;
                self.data_key_in(&mut c, key_id).await?
            }
        };
        open_text(&key, aad, sealed)
    }

    /// At open: unwraps every stored data key once (a key manager out of reach fails the
    /// open), or makes the first one. A store whose values were sealed before envelope
    /// encryption, directly under the `file` key, is moved onto the new data key in the
    /// same transaction.
    pub(crate) async fn init_data_keys(&self) -> Result<()> {
        if self.load_data_keys().await? > 0 {
            return Ok(());
        }
        let dek = SealingKey::generate();
        let wrapped = self.inner.kek.wrap(&dek.to_secret()).await?;
        let mut tx = self.begin_write().await?;
        let existing = tx
            .conn
            .scalar_i64("SELECT count(*) FROM data_keys", vec![])
            .await?;
        if existing > 0 {
            // Another node made it first; the generation bump rolls back with the drop.
            drop(tx);
            self.load_data_keys().await?;
            return Ok(());
        }
        let now = now_ms();
        tx.conn
            .exec(
                "INSERT INTO data_keys (key_id, wrapped, wrapped_by, state, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, 'active', $4, $4)",
                args![
                    dek.key_id(),
                    STANDARD.encode(&wrapped),
                    self.inner.kek.wrapping_key(),
                    now
                ],
            )
            .await?;
        let mut moved = 0;
        if let Some(legacy) = self.inner.kek.legacy_key() {
            let old = HashMap::from([(legacy.key_id().to_owned(), Arc::new(legacy))]);
            for col in SEALED_COLUMNS {
                moved += col.reseal(&mut tx.conn, &old, &dek, i64::MAX).await?;
            }
        }
        self.commit(tx).await?;
        let key_id = dek.key_id().to_owned();
        self.cache_data_key(dek);
        tracing::info!(
            key_id,
            wrapped_by = %self.inner.kek.wrapping_key(),
            moved,
            "created the data key"
        );
        Ok(())
    }

    async fn load_data_keys(&self) -> Result<usize> {
        let rows = {
            let mut c = self.inner.pool.conn().await?;
            c.all(&format!("SELECT {KEY_COLS} FROM data_keys"), vec![])
                .await?
        };
        for r in &rows {
            self.unwrap_row(r).await?;
        }
        Ok(rows.len())
    }

    /// Unwraps, through the key manager, every stored data key this node does not hold
    /// yet (made by another node's reseal since this one started); returns how many.
    /// What `/readyz` asks: a node that cannot open the values sealed under a stored data
    /// key cannot serve them.
    pub async fn unwrap_new_data_keys(&self) -> Result<usize> {
        let rows = {
            let mut c = self.inner.pool.conn().await?;
            c.all(&format!("SELECT {KEY_COLS} FROM data_keys"), vec![])
                .await?
        };
        let mut unwrapped = 0;
        for r in &rows {
            if self.cached_data_key(&r.text(0)?).is_none() {
                self.unwrap_row(r).await?;
                unwrapped += 1;
            }
        }
        if unwrapped > 0 {
            self.inner
                .key_health
                .record(KeyManagerOperation::Unwrap, Ok(()));
        }
        Ok(unwrapped)
    }

    /// The key manager's health as this node sees it (shared with the key manager's
    /// periodic check and the digest task, read by `/metrics` and `/readyz`).
    pub fn key_manager_health(&self) -> Arc<KeyManagerHealth> {
        Arc::clone(&self.inner.key_health)
    }

    /// The stored data keys (no key material).
    pub async fn data_keys(&self) -> Result<Vec<DataKeyInfo>> {
        let mut c = self.inner.pool.conn().await?;
        c.all(
            &format!("SELECT {KEY_COLS} FROM data_keys ORDER BY created_ms, key_id"),
            vec![],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(DataKeyInfo {
                key_id: r.text(0)?,
                wrapped_by: r.text(2)?,
                state: r.text(3)?,
                created: ts(r.i64(4)?),
            })
        })
        .collect()
    }

    /// Re-wraps every data key not yet wrapped by the configured key-encryption key
    /// under it (the data keys, and so every sealed value, stay as they are: cheap).
    /// Returns how many were re-wrapped. This is how a store moves from one key manager
    /// to another, or to a new key of the same one.
    pub async fn rewrap_data_keys(&self) -> Result<usize> {
        let target = self.inner.kek.wrapping_key();
        let mut tx = self.begin_write().await?;
        let rows = tx
            .conn
            .all(
                &format!("SELECT {KEY_COLS} FROM data_keys WHERE wrapped_by <> $1"),
                args![target.as_str()],
            )
            .await?;
        for r in &rows {
            let key_id = r.text(0)?;
            let key = self.data_key_in(&mut tx.conn, &key_id).await?;
            let wrapped = self.inner.kek.wrap(&key.to_secret()).await?;
            tx.conn
                .exec(
                    "UPDATE data_keys SET wrapped = $1, wrapped_by = $2, updated_ms = $3 \
                     WHERE key_id = $4",
                    args![STANDARD.encode(&wrapped), target.as_str(), now_ms(), key_id],
                )
                .await?;
        }
        self.commit(tx).await?;
        Ok(rows.len())
    }

    /// Starts moving every value onto a new data key, or finds the one an interrupted
    /// reseal started: the new key becomes `active` (every node seals under it from
    /// then on) and the previous one `retiring`. Follow with [`Store::reseal_batch`]
    /// until it returns 0, then [`Store::finish_reseal`].
    pub async fn begin_reseal(&self) -> Result<ResealProgress> {
        let mut c = self.inner.pool.conn().await?;
        let retiring = c
            .scalar_i64(
                "SELECT count(*) FROM data_keys WHERE state = 'retiring'",
                vec![],
            )
            .await?;
        drop(c);
        let resumed = retiring > 0;
        if !resumed {
            let dek = SealingKey::generate();
            let wrapped = self.inner.kek.wrap(&dek.to_secret()).await?;
            let mut tx = self.begin_write().await?;
            let now = now_ms();
            tx.conn
                .exec(
                    "UPDATE data_keys SET state = 'retiring', updated_ms = $1 WHERE state = 'active'",
                    args![now],
                )
                .await?;
            tx.conn
                .exec(
                    "INSERT INTO data_keys (key_id, wrapped, wrapped_by, state, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, 'active', $4, $4)",
                    args![
                        dek.key_id(),
                        STANDARD.encode(&wrapped),
                        self.inner.kek.wrapping_key(),
                        now
                    ],
                )
                .await?;
            self.commit(tx).await?;
            self.cache_data_key(dek);
        }
        let mut c = self.inner.pool.conn().await?;
        let active = self.active_key_in(&mut c).await?;
        let prefix = active_prefix(&active);
        let mut remaining = 0;
        for col in SEALED_COLUMNS {
            remaining += col.count_pending(&mut c, &prefix).await?;
        }
        Ok(ResealProgress {
            key_id: active.key_id().to_owned(),
            resumed,
            remaining,
        })
    }

    /// Moves up to `limit` values onto the active data key in one transaction (a crash
    /// loses at most this batch's work, never a value); returns how many moved.
    pub async fn reseal_batch(&self, limit: usize) -> Result<usize> {
        let mut c = self.inner.pool.write_tx().await?;
        let active = self.active_key_in(&mut c).await?;
        let old = {
            let keys = self
                .inner
                .data_keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.keys.clone()
        };
        let mut moved = 0;
        for col in SEALED_COLUMNS {
            let room = limit.saturating_sub(moved);
            if room == 0 {
                break;
            }
            moved += col
                .reseal(
                    &mut c,
                    &old,
                    &active,
                    i64::try_from(room).unwrap_or(i64::MAX),
                )
                .await?;
        }
        c.commit().await?;
        Ok(moved)
    }

    /// Ends a reseal: when no value is sealed under a retiring key any more, those keys
    /// are deleted (their wrapped copies in old backups still open old backups). Returns
    /// whether it ended; `false` means values remain (run [`Store::reseal_batch`] again).
    pub async fn finish_reseal(&self) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let active = self.active_key_in(&mut tx.conn).await?;
        let prefix = active_prefix(&active);
        for col in SEALED_COLUMNS {
            if col.count_pending(&mut tx.conn, &prefix).await? > 0 {
                return Ok(false);
            }
        }
        let retired: Vec<String> = tx
            .conn
            .all(
                "SELECT key_id FROM data_keys WHERE state = 'retiring'",
                vec![],
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_>>()?;
        tx.conn
            .exec("DELETE FROM data_keys WHERE state = 'retiring'", vec![])
            .await?;
        self.commit(tx).await?;
        for id in &retired {
            self.forget_data_key(id);
        }
        Ok(true)
    }
}
