//! The [`Store`] handle: opening a backend, applying migrations, the write-transaction
//! discipline, the change counter and its notifications, master-key rotation, accounts,
//! and the `meta` key/value table. The entity operations live in sibling modules
//! (`identity`, `policies`, `credentials`) as further `impl Store` blocks.
//!
//! Every mutating method runs in one transaction that starts by bumping the
//! `generation` row. That single row lock serializes writers on both backends, so the
//! existence and limit checks each method makes before writing cannot race, and an
//! error anywhere before commit leaves nothing behind (the transaction is rolled back
//! when dropped). The commit is also where a call's audit record joins its write (see
//! [`Store::with_audit`]): every mutating method commits through it, so none can forget.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::broadcast;

use crate::audit::PendingAudit;
use crate::db::{Conn, Pool, Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::key_health::KeyManagerHealth;
use crate::keys::{DataKeys, KeyEncryption};
use crate::model::{
    Account, new_account_id, now_ms, ts, validate_account_id, validate_account_name,
};
use crate::seal::Secret;

/// The PostgreSQL notification channel a committed write is announced on; the payload
/// is the new generation number.
pub const CHANGES_CHANNEL: &str = "gatehouse_changes";

/// The SQLite database file name inside the data directory.
pub const SQLITE_FILE: &str = "gatehouse.db";

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "audit",
        include_str!("../migrations/sqlite/0002_audit.sql"),
    ),
    (3, "sts", include_str!("../migrations/sqlite/0003_sts.sql")),
    (
        10,
        "gateway",
        include_str!("../migrations/sqlite/0010_gateway.sql"),
    ),
    (
        11,
        "gateway_usage",
        include_str!("../migrations/sqlite/0011_gateway_usage.sql"),
    ),
    (
        12,
        "lifecycle",
        include_str!("../migrations/sqlite/0012_lifecycle.sql"),
    ),
    (
        20,
        "keys",
        include_str!("../migrations/sqlite/0020_keys.sql"),
    ),
    (
        30,
        "tag_key_folding",
        include_str!("../migrations/sqlite/0030_tag_key_folding.sql"),
    ),
    (40, "mcp", include_str!("../migrations/sqlite/0040_mcp.sql")),
    (
        50,
        "access",
        include_str!("../migrations/sqlite/0050_access.sql"),
    ),
    (
        51,
        "access_eligibility_deleted",
        include_str!("../migrations/sqlite/0051_access_eligibility_deleted.sql"),
    ),
    (
        60,
        "signin",
        include_str!("../migrations/sqlite/0060_signin.sql"),
    ),
    (
        61,
        "signin_codes",
        include_str!("../migrations/sqlite/0061_signin_codes.sql"),
    ),
    (
        70,
        "knowledge_bases",
        include_str!("../migrations/sqlite/0070_knowledge_bases.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "audit",
        include_str!("../migrations/postgres/0002_audit.sql"),
    ),
    (
        3,
        "sts",
        include_str!("../migrations/postgres/0003_sts.sql"),
    ),
    (
        10,
        "gateway",
        include_str!("../migrations/postgres/0010_gateway.sql"),
    ),
    (
        11,
        "gateway_usage",
        include_str!("../migrations/postgres/0011_gateway_usage.sql"),
    ),
    (
        12,
        "lifecycle",
        include_str!("../migrations/postgres/0012_lifecycle.sql"),
    ),
    (
        20,
        "keys",
        include_str!("../migrations/postgres/0020_keys.sql"),
    ),
    (
        30,
        "tag_key_folding",
        include_str!("../migrations/postgres/0030_tag_key_folding.sql"),
    ),
    (
        40,
        "mcp",
        include_str!("../migrations/postgres/0040_mcp.sql"),
    ),
    (
        50,
        "access",
        include_str!("../migrations/postgres/0050_access.sql"),
    ),
    (
        51,
        "access_eligibility_deleted",
        include_str!("../migrations/postgres/0051_access_eligibility_deleted.sql"),
    ),
    (
        60,
        "signin",
        include_str!("../migrations/postgres/0060_signin.sql"),
    ),
    (
        61,
        "signin_codes",
        include_str!("../migrations/postgres/0061_signin_codes.sql"),
    ),
    (
        70,
        "knowledge_bases",
        include_str!("../migrations/postgres/0070_knowledge_bases.sql"),
    ),
];

/// Advisory-lock key that serializes migrations of concurrently starting nodes.
const MIGRATION_LOCK: i64 = 0x6761_7465_686f;

/// The default [`StoreOptions::acquire_timeout`]. Short, because a control-plane call
/// waits for a connection twice (the caller's key, then its audit record): with sqlx's
/// 30 s default a call took about 47 s to fail while PostgreSQL was down. Five seconds is
/// far above a healthy pool's wait, even at its connection limit under load.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default [`DatabaseTls::sqlite_page_cache_kib`]: SQLite's own default (2000 KiB),
/// made explicit.
pub const DEFAULT_SQLITE_PAGE_CACHE_KIB: u32 = 2000;

/// Where the store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Data directory; holds the SQLite file when no `database_url` is given.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; `None` for SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL schema to use (created if missing); `None` for the server default.
    pub postgres_schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// How long a call waits for a PostgreSQL connection before it fails with a store
    /// error (the caller answers `ServiceFailure`). Refused connection attempts are retried
    /// within it; with the database gone, every call that needs it waits this long.
    pub acquire_timeout: Duration,
    /// TLS to PostgreSQL.
    pub tls: DatabaseTls,
}

/// `[database]` of the config file: TLS to PostgreSQL (the URL's own `sslmode` and
/// `sslrootcert` apply when these are not set), and SQLite's page cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseTls {
    /// `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full` (libpq's).
    pub sslmode: Option<String>,
    /// The CA certificate (PEM) the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// Refuse to start with a mode that can fall back to plain text (`disable`, `allow`,
    /// `prefer`): only `require`, `verify-ca` and `verify-full` pass.
    #[serde(default)]
    pub require_tls: bool,
    /// SQLite's page cache per pooled connection, in KiB (`PRAGMA cache_size = -N`;
    /// default [`DEFAULT_SQLITE_PAGE_CACHE_KIB`]). Each connection fills its cache up to
    /// this as the audit log grows, so the store's SQLite memory settles at about this
    /// times the pool size.
    pub sqlite_page_cache_kib: Option<u32>,
}

impl DatabaseTls {
    /// Applies these settings to `opts`, refusing a plain-text-capable mode when TLS is
    /// required.
    fn apply(&self, mut opts: PgConnectOptions) -> Result<PgConnectOptions> {
        use sqlx::postgres::PgSslMode;
        if let Some(mode) = &self.sslmode {
            let mode = PgSslMode::from_str(mode).map_err(|_| {
                StoreError::Validation(format!(
                    "database.sslmode {mode:?}: expected disable, allow, prefer, require, verify-ca or verify-full"
                ))
            })?;
            opts = opts.ssl_mode(mode);
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(StoreError::Validation(format!(
                    "database.ca_file {}: no such file",
                    ca.display()
                )));
            }
            opts = opts.ssl_root_cert(ca);
        }
        if self.require_tls
            && matches!(
                opts.get_ssl_mode(),
                PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer
            )
        {
            return Err(StoreError::Validation(
                "database.require_tls is set but the connection may fall back to plain text: \
                 set sslmode to verify-full (or require, verify-ca)"
                    .into(),
            ));
        }
        Ok(opts)
    }
}

impl StoreOptions {
    /// SQLite in `data_dir`.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            database_url: None,
            postgres_schema: None,
            max_connections: 8,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            tls: DatabaseTls::default(),
        }
    }

    /// PostgreSQL at `url`.
    pub fn postgres(url: impl Into<String>) -> Self {
        StoreOptions {
            data_dir: PathBuf::from("."),
            database_url: Some(url.into()),
            postgres_schema: None,
            max_connections: 16,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            tls: DatabaseTls::default(),
        }
    }
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The identity and policy store. Cheap to clone; clones share the pool.
///
/// A handle may carry one call's [`PendingAudit`] ([`Store::with_audit`]): every write
/// made through that handle then appends the call's audit record to the hash chain inside
/// its own transaction, so a change and its record commit (or roll back) together.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    /// The audit record of the call this handle serves, if any (see [`Store::with_audit`]).
    pending: Option<Arc<PendingAudit>>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) pool: Pool,
    /// The key manager's key-encryption key (see `keys.rs`).
    pub(crate) kek: Arc<dyn KeyEncryption>,
    /// The data keys unwrapped so far.
    pub(crate) data_keys: RwLock<DataKeys>,
    /// Whether the key manager still answers (see `key_health.rs`).
    pub(crate) key_health: Arc<KeyManagerHealth>,
    changes: broadcast::Sender<i64>,
}

/// A write transaction in progress; see the module docs.
pub(crate) struct WriteTx {
    pub(crate) conn: Conn,
    generation: i64,
}

/// A stream of change notifications from [`Store::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    inner: SubscriptionInner,
}

#[derive(Debug)]
enum SubscriptionInner {
    Postgres(Box<PgListener>),
    Local(broadcast::Receiver<i64>),
}

impl Subscription {
    /// Waits for the next committed write and returns its generation. On PostgreSQL the
    /// listener reconnects by itself and notifications sent meanwhile are lost, so a
    /// consumer should treat any value as "something changed" and compare with
    /// [`Store::policy_generation`] rather than count. Returns `None` when the store is
    /// gone (SQLite).
    pub async fn next(&mut self) -> Result<Option<i64>> {
        match &mut self.inner {
            SubscriptionInner::Postgres(l) => {
                let n = l.recv().await?;
                Ok(Some(n.payload().parse::<i64>().unwrap_or(-1)))
            }
            SubscriptionInner::Local(rx) => loop {
                match rx.recv().await {
                    Ok(g) => return Ok(Some(g)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(None),
                }
            },
        }
    }
}

/// Makes the SQLite database readable by this user only: created 0600 when missing, and
/// an existing file (or `-wal`/`-shm` beside it) with group or other bits narrowed to
/// 0600. SQLite gives the `-wal` and `-shm` files it creates the database file's mode, so
/// they follow. Secrets in it are sealed, but names, policies and the audit log are not.
fn private_sqlite_files(db: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |p: &Path, e: std::io::Error| {
            StoreError::Database(format!("cannot make {} private: {e}", p.display()))
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(db)
            .map_err(|e| fail(db, e))?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let path = PathBuf::from(name);
            match std::fs::metadata(&path) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| fail(&path, e))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(fail(&path, e)),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// SHA-256 of a migration's text, as recorded in `gatehouse_migrations.checksum`.
fn migration_checksum(sql: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(sql.as_bytes()))
}

/// Adds `gatehouse_migrations.checksum` to a database made before it existed.
async fn add_checksum_column(tx: &mut Conn) -> Result<()> {
    if tx.is_postgres() {
        tx.exec_script("ALTER TABLE gatehouse_migrations ADD COLUMN IF NOT EXISTS checksum TEXT")
            .await
    } else {
        let has = tx
            .opt(
                "SELECT 1 FROM pragma_table_info('gatehouse_migrations') WHERE name = 'checksum'",
                vec![],
            )
            .await?
            .is_some();
        if has {
            Ok(())
        } else {
            tx.exec_script("ALTER TABLE gatehouse_migrations ADD COLUMN checksum TEXT")
                .await
        }
    }
}

fn valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Store {
    /// Opens (creating and migrating as needed) the store described by `options`, and
    /// unwraps its data keys with `kek` (fails when the key manager cannot be reached
    /// or does not hold the key that wrapped them: fail closed).
    pub async fn open(options: &StoreOptions, kek: impl KeyEncryption + 'static) -> Result<Store> {
        let pool = match &options.database_url {
            None => {
                let cache_kib = options
                    .tls
                    .sqlite_page_cache_kib
                    .unwrap_or(DEFAULT_SQLITE_PAGE_CACHE_KIB);
                Self::sqlite_pool(&options.data_dir, options.max_connections, cache_kib).await?
            }
            Some(url) => {
                Self::pg_pool(
                    url,
                    options.postgres_schema.as_deref(),
                    options.max_connections,
                    options.acquire_timeout,
                    &options.tls,
                )
                .await?
            }
        };
        let (changes, _) = broadcast::channel(64);
        let wrapping_key = kek.wrapping_key();
        let provider = wrapping_key.split(':').next().unwrap_or_default();
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                key_health: Arc::new(KeyManagerHealth::new(provider)),
                kek: Arc::new(kek),
                data_keys: RwLock::new(DataKeys::default()),
                changes,
            }),
            pending: None,
        };
        store.migrate().await?;
        store.init_data_keys().await?;
        Ok(store)
    }

    /// SQLite in `data_dir` (created with mode 0700 if missing).
    pub async fn open_sqlite(data_dir: &Path, kek: impl KeyEncryption + 'static) -> Result<Store> {
        Self::open(&StoreOptions::sqlite(data_dir), kek).await
    }

    /// PostgreSQL at `url`.
    pub async fn open_postgres(url: &str, kek: impl KeyEncryption + 'static) -> Result<Store> {
        Self::open(&StoreOptions::postgres(url), kek).await
    }

    async fn sqlite_pool(data_dir: &Path, max: u32, cache_kib: u32) -> Result<Pool> {
        crate::seal::create_private_dir(data_dir)?;
        private_sqlite_files(&data_dir.join(SQLITE_FILE))?;
        let opts = SqliteConnectOptions::new()
            .filename(data_dir.join(SQLITE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(15))
            .pragma("cache_size", format!("-{}", cache_kib.max(1)));
        let pool = SqlitePoolOptions::new()
            .max_connections(max.max(1))
            .after_release(|conn, _| {
                Box::pin(async move {
                    // SQLite may end a transaction on its own (a full disk rolls back a failed
                    // COMMIT); the rollback sqlx then sends fails, and the connection stays
                    // "in a transaction" for sqlx, refusing every later BEGIN. The ping runs
                    // after any rollback a dropped transaction queued; a connection still in
                    // a transaction then is closed instead of going back to the pool.
                    if conn.is_in_transaction() {
                        conn.ping().await?;
                    }
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Pool::Sqlite(pool))
    }

    async fn pg_pool(
        url: &str,
        schema: Option<&str>,
        max: u32,
        acquire_timeout: Duration,
        tls: &DatabaseTls,
    ) -> Result<Pool> {
        let mut opts = tls.apply(PgConnectOptions::from_str(url)?)?;
        if let Some(schema) = schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::Validation(format!(
                    "invalid PostgreSQL schema name {schema:?}"
                )));
            }
            let setup = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&setup)
            .await?;
            setup.close().await;
            opts = opts.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(Pool::Postgres(pool))
    }

    async fn migrate(&self) -> Result<()> {
        let migrations = if self.inner.pool.is_postgres() {
            POSTGRES_MIGRATIONS
        } else {
            SQLITE_MIGRATIONS
        };
        self.apply_migrations(migrations).await
    }

    /// Applies the `migrations` the database lacks, and refuses (before applying any) when
    /// one it already applied has other text now: each applied migration's SHA-256 is
    /// recorded with it. A database from before checksums were recorded gets them from
    /// this build's text, once.
    async fn apply_migrations(&self, migrations: &[(i64, &str, &str)]) -> Result<()> {
        let pool = &self.inner.pool;
        let mut tx = pool.write_tx().await?;
        if tx.is_postgres() {
            tx.exec("SELECT pg_advisory_xact_lock($1)", args![MIGRATION_LOCK])
                .await?;
        }
        tx.exec_script(
            "CREATE TABLE IF NOT EXISTS gatehouse_migrations (\
             version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_ms BIGINT NOT NULL, \
             checksum TEXT)",
        )
        .await?;
        add_checksum_column(&mut tx).await?;
        let applied: Vec<(i64, Option<String>)> = tx
            .all(
                "SELECT version, checksum FROM gatehouse_migrations ORDER BY version",
                vec![],
            )
            .await?
            .iter()
            .map(|r| Ok((r.i64(0)?, r.opt_text(1)?)))
            .collect::<Result<_>>()?;
        for (version, recorded) in &applied {
            let Some((_, description, sql)) = migrations.iter().find(|(v, _, _)| v == version)
            else {
                continue;
            };
            let current = migration_checksum(sql);
            match recorded {
                Some(recorded) if *recorded != current => {
                    return Err(StoreError::MigrationChanged {
                        version: *version,
                        description: (*description).to_owned(),
                        recorded: recorded.clone(),
                        current,
                    });
                }
                Some(_) => {}
                None => {
                    tx.exec(
                        "UPDATE gatehouse_migrations SET checksum = $1 WHERE version = $2",
                        args![current, *version],
                    )
                    .await?;
                }
            }
        }
        for (version, description, sql) in migrations {
            if applied.iter().any(|(v, _)| v == version) {
                continue;
            }
            tracing::info!(version, description, "applying store migration");
            tx.exec_script(sql).await?;
            tx.exec(
                "INSERT INTO gatehouse_migrations (version, description, applied_ms, checksum) \
                 VALUES ($1, $2, $3, $4)",
                args![*version, *description, now_ms(), migration_checksum(sql)],
            )
            .await?;
        }
        if let Some((newest, _)) = applied.last()
            && migrations.iter().all(|(v, _, _)| v < newest)
        {
            tracing::warn!(
                newest,
                "the database has migrations this build does not know; is it newer?"
            );
        }
        tx.commit().await
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> BackendKind {
        if self.inner.pool.is_postgres() {
            BackendKind::Postgres
        } else {
            BackendKind::Sqlite
        }
    }

    // -----------------------------------------------------------------------------
    // write transactions and change notification

    /// Begins a write transaction and bumps the generation (taking the writers' lock).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let mut conn = self.inner.pool.write_tx().await?;
        let generation = conn
            .scalar_i64(
                "UPDATE generation SET value = value + 1 WHERE id = 1 RETURNING value",
                vec![],
            )
            .await?;
        Ok(WriteTx { conn, generation })
    }

    /// Commits, then tells subscribers. On PostgreSQL the `NOTIFY` is queued inside the
    /// transaction, so it is delivered exactly when (and only if) the commit succeeds.
    ///
    /// When this handle carries a call's [`PendingAudit`] whose record is staged and not
    /// yet in the log, the record is appended to the chain here, as the transaction's
    /// last statement: the head row is locked only for the commit itself, and the change
    /// and its record become durable together or not at all.
    pub(crate) async fn commit(&self, mut tx: WriteTx) -> Result<()> {
        let staged = self.pending.as_deref().and_then(PendingAudit::unappended);
        let entry = match &staged {
            Some(record) => crate::audit::append_in(&mut tx.conn, [record.as_str()]).await?,
            None => None,
        };
        if tx.conn.is_postgres() {
            tx.conn
                .exec(
                    "SELECT pg_notify($1, $2)",
                    args![CHANGES_CHANNEL, tx.generation.to_string()],
                )
                .await?;
        }
        tx.conn.commit().await?;
        if let (Some(p), Some(entry)) = (&self.pending, entry) {
            p.mark_appended(entry.seq, tx.generation);
        }
        // Nobody listening is fine.
        let _ = self.inner.changes.send(tx.generation);
        Ok(())
    }

    /// This store, as a handle whose writes carry `pending`'s record: the first write
    /// that commits through it appends the record in its own transaction (and later
    /// ones append nothing more). Reads are unaffected. The caller appends the record
    /// itself (e.g. [`Store::append_audit_batch`]) when [`PendingAudit::appended`] says
    /// no write did: a call that failed, changed nothing, or only read.
    pub fn with_audit(&self, pending: Arc<PendingAudit>) -> Store {
        Store {
            inner: Arc::clone(&self.inner),
            pending: Some(pending),
        }
    }

    /// A number that grows with every committed write of identity or policy data
    /// (access-key last-used bookkeeping excluded). Caches compare it to know whether
    /// what they compiled is current.
    pub async fn policy_generation(&self) -> Result<i64> {
        let mut c = self.inner.pool.conn().await?;
        c.scalar_i64("SELECT value FROM generation WHERE id = 1", vec![])
            .await
    }

    /// Notifications of committed writes: `LISTEN gatehouse_changes` on PostgreSQL
    /// (writes of every node), this process's own writes on SQLite.
    pub async fn subscribe(&self) -> Result<Subscription> {
        let inner = match &self.inner.pool {
            Pool::Postgres(p) => {
                let mut l = PgListener::connect_with(p).await?;
                l.listen(CHANGES_CHANNEL).await?;
                SubscriptionInner::Postgres(Box::new(l))
            }
            Pool::Sqlite(_) => SubscriptionInner::Local(self.inner.changes.subscribe()),
        };
        Ok(Subscription { inner })
    }

    // -----------------------------------------------------------------------------
    // meta key/value

    async fn put_meta_raw(&self, key: &str, value: MetaValue<'_>) -> Result<()> {
        if key.is_empty() || key.len() > 256 {
            return Err(StoreError::Validation(
                "meta key must be 1 to 256 characters".to_string(),
            ));
        }
        let mut tx = self.begin_write().await?;
        let (value, sealed) = match value {
            MetaValue::Plain(v) => (v.to_owned(), false),
            MetaValue::Secret(v) => (self.seal_in(&mut tx.conn, &meta_aad(key), v).await?, true),
        };
        tx.conn
            .exec(
                "INSERT INTO meta (meta_key, value, sealed, updated_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (meta_key) DO UPDATE SET value = excluded.value, \
                 sealed = excluded.sealed, updated_ms = excluded.updated_ms",
                args![key, value, i64::from(sealed), now_ms()],
            )
            .await?;
        self.commit(tx).await
    }

    /// Stores a plain value under `key`.
    pub async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        self.put_meta_raw(key, MetaValue::Plain(value)).await
    }

    /// Stores a secret under `key`, sealed.
    pub async fn put_meta_secret(&self, key: &str, value: &Secret) -> Result<()> {
        self.put_meta_raw(key, MetaValue::Secret(value)).await
    }

    async fn get_meta_raw(&self, key: &str) -> Result<Option<(String, bool)>> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                "SELECT value, sealed FROM meta WHERE meta_key = $1",
                args![key],
            )
            .await?;
        row.map(|r| Ok((r.text(0)?, r.i64(1)? != 0))).transpose()
    }

    /// A plain value (a sealed one is refused with `Validation`).
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        match self.get_meta_raw(key).await? {
            None => Ok(None),
            Some((_, true)) => Err(StoreError::Validation(format!(
                "meta key {key} holds a secret; use get_meta_secret"
            ))),
            Some((v, false)) => Ok(Some(v)),
        }
    }

    /// A sealed value, opened.
    pub async fn get_meta_secret(&self, key: &str) -> Result<Option<Secret>> {
        match self.get_meta_raw(key).await? {
            None => Ok(None),
            Some((_, false)) => Err(StoreError::Validation(format!(
                "meta key {key} is not a secret; use get_meta"
            ))),
            Some((v, true)) => self.open_sealed(&meta_aad(key), &v).await.map(Some),
        }
    }

    /// Removes `key`; true if it existed.
    pub async fn delete_meta(&self, key: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec("DELETE FROM meta WHERE meta_key = $1", args![key])
            .await?;
        self.commit(tx).await?;
        Ok(n > 0)
    }

    // -----------------------------------------------------------------------------
    // accounts

    /// Makes sure the default account `account_id` exists (creating it with `name`) and
    /// returns it. Fails if a different account is already the default.
    pub async fn ensure_default_account(&self, account_id: &str, name: &str) -> Result<Account> {
        validate_account_id(account_id)?;
        validate_account_name(name)?;
        let mut tx = self.begin_write().await?;
        if let Some(current) = tx
            .conn
            .opt(
                &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE is_default = 1"),
                vec![],
            )
            .await?
        {
            let current = account_from(&current)?;
            if current.account_id == account_id {
                // Nothing to change; the generation bump is rolled back with the drop.
                return Ok(current);
            }
            return Err(StoreError::Validation(format!(
                "the default account is {}, not {account_id}",
                current.account_id
            )));
        }
        let existing = tx
            .conn
            .opt(
                "SELECT 1 FROM accounts WHERE account_id = $1",
                args![account_id],
            )
            .await?;
        if existing.is_some() {
            tx.conn
                .exec(
                    "UPDATE accounts SET is_default = 1 WHERE account_id = $1",
                    args![account_id],
                )
                .await?;
        } else {
            insert_account(&mut tx.conn, account_id, name, true).await?;
        }
        let acct = get_account_in(&mut tx.conn, account_id).await?;
        self.commit(tx).await?;
        Ok(acct)
    }

    /// Creates an account; a random 12-digit id is drawn when `account_id` is `None`.
    pub async fn create_account(&self, account_id: Option<&str>, name: &str) -> Result<Account> {
        validate_account_name(name)?;
        let id = match account_id {
            Some(id) => {
                validate_account_id(id)?;
                id.to_string()
            }
            None => new_account_id(),
        };
        let mut tx = self.begin_write().await?;
        insert_account(&mut tx.conn, &id, name, false).await?;
        let acct = get_account_in(&mut tx.conn, &id).await?;
        self.commit(tx).await?;
        Ok(acct)
    }

    /// An account by id.
    pub async fn get_account(&self, account_id: &str) -> Result<Account> {
        let mut c = self.inner.pool.conn().await?;
        get_account_in(&mut c, account_id).await
    }

    /// The default account.
    pub async fn default_account(&self) -> Result<Account> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE is_default = 1"),
                vec![],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::Account, "default"))?;
        account_from(&row)
    }

    /// Every account, by id.
    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        let mut c = self.inner.pool.conn().await?;
        c.all(
            &format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY account_id"),
            vec![],
        )
        .await?
        .iter()
        .map(account_from)
        .collect()
    }

    /// Deletes an empty, non-default account (its guardrails go with it).
    pub async fn delete_account(&self, account_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let acct = get_account_in(&mut tx.conn, account_id).await?;
        if acct.is_default {
            return Err(StoreError::DeleteConflict(
                "Cannot delete the default account.".to_string(),
            ));
        }
        for table in ["users", "iam_groups", "roles", "policies"] {
            let n = tx
                .conn
                .scalar_i64(
                    &format!("SELECT count(*) FROM {table} WHERE account_id = $1"),
                    args![account_id],
                )
                .await?;
            if n > 0 {
                return Err(StoreError::DeleteConflict(format!(
                    "Cannot delete account {account_id}: it still has {table}."
                )));
            }
        }
        tx.conn
            .exec(
                "DELETE FROM guardrails WHERE account_id = $1",
                args![account_id],
            )
            .await?;
        tx.conn
            .exec(
                "DELETE FROM accounts WHERE account_id = $1",
                args![account_id],
            )
            .await?;
        self.commit(tx).await
    }
}

/// A meta value to store: plain, or a secret to seal.
enum MetaValue<'a> {
    Plain(&'a str),
    Secret(&'a Secret),
}

pub(crate) fn access_key_aad(id: &str) -> String {
    format!("access-key/{id}")
}

pub(crate) fn meta_aad(key: &str) -> String {
    format!("meta/{key}")
}

const ACCOUNT_COLS: &str = "account_id, name, is_default, created_ms";

fn account_from(r: &Row) -> Result<Account> {
    Ok(Account {
        account_id: r.text(0)?,
        name: r.text(1)?,
        is_default: r.i64(2)? != 0,
        created: ts(r.i64(3)?),
    })
}

async fn insert_account(c: &mut Conn, id: &str, name: &str, is_default: bool) -> Result<()> {
    let lower = name.to_lowercase();
    if c.opt(
        "SELECT 1 FROM accounts WHERE account_id = $1 OR name_lower = $2",
        args![id, lower.as_str()],
    )
    .await?
    .is_some()
    {
        return Err(StoreError::exists(
            EntityKind::Account,
            format!("{id} ({name})"),
        ));
    }
    c.exec(
        "INSERT INTO accounts (account_id, name, name_lower, is_default, created_ms) \
         VALUES ($1, $2, $3, $4, $5)",
        args![id, name, lower, i64::from(is_default), now_ms()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_account_in(c: &mut Conn, id: &str) -> Result<Account> {
    let row = c
        .opt(
            &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id = $1"),
            args![id],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::Account, id))?;
    account_from(&row)
}

/// Fails with `NoSuchEntity` unless the account exists.
pub(crate) async fn require_account(c: &mut Conn, id: &str) -> Result<()> {
    if c.opt("SELECT 1 FROM accounts WHERE account_id = $1", args![id])
        .await?
        .is_none()
    {
        return Err(StoreError::no_such(EntityKind::Account, id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// The text of an applied migration changed: refused before anything else runs, even
    /// a new migration listed after it.
    #[tokio::test]
    async fn an_edited_applied_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path(), crate::seal::MasterKey::generate())
            .await
            .unwrap();
        let first: &[(i64, &str, &str)] = &[(900, "probe", "CREATE TABLE probe (a INTEGER)")];
        store.apply_migrations(first).await.unwrap();
        // Applying the same list again is a no-op.
        store.apply_migrations(first).await.unwrap();

        let edited: &[(i64, &str, &str)] = &[
            (900, "probe", "CREATE TABLE probe (a INTEGER, b INTEGER)"),
            (901, "later", "CREATE TABLE later (a INTEGER)"),
        ];
        match store.apply_migrations(edited).await {
            Err(StoreError::MigrationChanged {
                version: 900,
                description,
                recorded,
                current,
            }) => {
                assert_eq!(description, "probe");
                assert_eq!(recorded, migration_checksum(first[0].2));
                assert_eq!(current, migration_checksum(edited[0].2));
            }
            other => panic!("not refused: {other:?}"),
        }
        let mut conn = store.inner.pool.conn().await.unwrap();
        let later = conn
            .opt(
                "SELECT 1 FROM gatehouse_migrations WHERE version = 901",
                vec![],
            )
            .await
            .unwrap();
        assert!(later.is_none(), "a migration after the edited one ran");
    }
}
