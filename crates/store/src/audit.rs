//! The audit log: append-only and hash-chained.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and the entry's own record,
//! so editing or deleting an entry breaks the chain from there on; a head row kept in the
//! same transaction catches a deleted tail. Appends do not bump the policy generation (an
//! audit record changes nobody's permissions), and they serialise on the head row so that
//! several nodes writing to one PostgreSQL keep one chain.
//!
//! A record reaches the chain one of two ways: inside the transaction of the write it
//! describes ([`PendingAudit`], carried by a [`Store::with_audit`] handle, appended by the
//! store's commit), so that a change is never durable without its record; or on its own
//! ([`Store::append_audit`], or [`Store::append_audit_batch`] for many at once) for calls
//! that wrote nothing.

use crate::db::{Conn, args};
use crate::error::{Result, StoreError};
use crate::model::{Timestamp, now_ms, ts};
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was appended.
    pub time: Timestamp,
    /// The caller's record (JSON text).
    pub record: String,
    /// The previous entry's hash (empty for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerification {
    /// Every entry is intact; the count of entries checked.
    Intact(i64),
    /// The first entry found broken, and why.
    Broken {
        /// Sequence number where the chain breaks.
        seq: i64,
        /// What is wrong there.
        reason: String,
    },
}

/// The chain hash of `record` after `prev_hash`.
pub fn chain_hash(prev_hash: &str, record: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update([0u8]);
    h.update(record.as_bytes());
    hex::encode(h.finalize())
}

/// One call's audit record, waiting for the call's write (see [`Store::with_audit`]).
///
/// The server stages the record a successful call will have (who, what, which decision)
/// once authorization allows it; the first write that commits through a handle carrying
/// it appends it in the same transaction and notes where. When no write did (a read, a
/// denial, a failure, a write that found nothing to change), the record was never
/// appended and the caller appends the call's final record on its own.
#[derive(Debug, Default)]
pub struct PendingAudit {
    state: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    record: Option<String>,
    appended: Option<Appended>,
}

/// Where a staged record went: its entry, and the generation of the write it went with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The entry's position in the chain.
    pub seq: i64,
    /// The policy generation the write committed (see [`Store::policy_generation`]).
    pub generation: i64,
}

impl PendingAudit {
    fn state(&self) -> MutexGuard<'_, Pending> {
        // A poisoned lock still holds consistent data: every update is one assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stages (replacing any earlier one) the record that a write committing through the
    /// handle is to append. Has no effect once a record has been appended.
    pub fn stage(&self, record: String) {
        let mut s = self.state();
        if s.appended.is_none() {
            s.record = Some(record);
        }
    }

    /// Withdraws the staged record (the call is no longer going to succeed as staged).
    pub fn unstage(&self) {
        self.state().record = None;
    }

    /// Where the record was appended, if a write committed it.
    pub fn appended(&self) -> Option<Appended> {
        self.state().appended
    }

    /// The staged record, if there is one and it is not in the log yet.
    pub(crate) fn unappended(&self) -> Option<String> {
        let s = self.state();
        match s.appended {
            Some(_) => None,
            None => s.record.clone(),
        }
    }

    /// Records that the transaction holding the record committed.
    pub(crate) fn mark_appended(&self, seq: i64, generation: i64) {
        self.state().appended = Some(Appended { seq, generation });
    }
}

/// Appends `records`, in order, after the chain's head inside `conn`'s transaction, and
/// moves the head; returns the last new entry (`None` when there were no records).
/// Serialises on the head row: `FOR UPDATE` on PostgreSQL (one chain across nodes), the
/// database write lock on SQLite (write transactions begin `IMMEDIATE`).
pub(crate) async fn append_in<I>(conn: &mut Conn, records: I) -> Result<Option<AuditEntry>>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut records = records.into_iter().peekable();
    if records.peek().is_none() {
        return Ok(None);
    }
    let sql = if conn.is_postgres() {
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT seq, hash FROM audit_head WHERE id = 1"
    };
    let (mut seq, mut hash) = match conn.opt(sql, vec![]).await? {
        Some(r) => (r.i64(0)?, r.text(1)?),
        None => (0, String::new()),
    };
    let time = now_ms();
    let mut last = None;
    // Many rows per INSERT: on PostgreSQL each statement is a round trip, and a batch
    // holds the head row's lock for all of them.
    let mut rows = Rows::default();
    for item in records {
        let record = item.as_ref();
        seq += 1;
        let prev_hash = std::mem::take(&mut hash);
        hash = chain_hash(&prev_hash, record);
        rows.push(args![seq, time, record, prev_hash.as_str(), hash.as_str()]);
        if rows.count == ROWS_PER_INSERT {
            rows.insert(conn).await?;
        }
        last = Some((item, prev_hash));
    }
    rows.insert_rest(conn).await?;
    conn.exec(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        args![seq, hash.as_str()],
    )
    .await?;
    Ok(last.map(|(record, prev_hash)| AuditEntry {
        seq,
        time: ts(time),
        record: record.as_ref().to_owned(),
        prev_hash,
        hash,
    }))
}

/// The most audit rows one `INSERT` carries (5 parameters each: well inside both
/// backends' limits on bound parameters).
const ROWS_PER_INSERT: usize = 100;

/// Columns of an audit row.
const COLUMNS: usize = 5;

/// Audit rows waiting to be inserted with one statement.
#[derive(Default)]
struct Rows {
    values: String,
    params: Vec<crate::db::Arg>,
    count: usize,
}

impl Rows {
    fn push(&mut self, row: Vec<crate::db::Arg>) {
        let n = self.params.len();
        let placeholders: Vec<String> = (1..=row.len()).map(|i| format!("${}", n + i)).collect();
        if self.count > 0 {
            self.values.push_str(", ");
        }
        self.values.push('(');
        self.values.push_str(&placeholders.join(", "));
        self.values.push(')');
        self.params.extend(row);
        self.count += 1;
    }

    /// Inserts what is waiting (nothing when empty) and starts over.
    async fn insert(&mut self, conn: &mut Conn) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO audit_log (seq, time_ms, record, prev_hash, hash) VALUES {}",
            self.values
        );
        conn.exec(&sql, std::mem::take(&mut self.params)).await?;
        self.values.clear();
        self.count = 0;
        Ok(())
    }

    /// Inserts what is waiting (fewer than [`ROWS_PER_INSERT`] rows) in statements of
    /// power-of-two row counts, largest first. Each connection keeps every statement it
    /// prepared (sqlx's cache, up to 100 per connection), and one statement per batch size
    /// from 1 to 100 — large ones, with hundreds of parameters — made the gateway's memory
    /// creep for as long as new batch sizes came up under load; this way an `INSERT` has
    /// one of 8 row counts (100, 64, 32, ..., 1).
    async fn insert_rest(&mut self, conn: &mut Conn) -> Result<()> {
        let mut params = std::mem::take(&mut self.params).into_iter();
        let mut left = self.count;
        self.values.clear();
        self.count = 0;
        while left > 0 {
            let n = 1 << left.ilog2();
            for _ in 0..n {
                let row: Vec<crate::db::Arg> = params.by_ref().take(COLUMNS).collect();
                self.push(row);
            }
            self.insert(conn).await?;
            left -= n;
        }
        Ok(())
    }
}

impl Store {
    /// Appends a record (JSON text) to the audit log, in a transaction of its own, and
    /// returns its entry.
    pub async fn append_audit(&self, record: &str) -> Result<AuditEntry> {
        let mut tx = self.inner.pool.write_tx().await?;
        let entry = append_in(&mut tx, [record])
            .await?
            .ok_or_else(|| StoreError::Database("no audit entry appended".into()))?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Appends several records in one transaction, in order: one commit (one fsync) for
    /// the batch instead of one per record. Used by the batched writers of the gateway
    /// and of the control plane (group commit).
    pub async fn append_audit_batch(&self, records: &[String]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.inner.pool.write_tx().await?;
        append_in(&mut tx, records).await?;
        tx.commit().await
    }

    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                "SELECT seq, time_ms, record, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                args![after, limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.i64(0)?,
                    time: ts(r.i64(1)?),
                    record: r.text(2)?,
                    prev_hash: r.text(3)?,
                    hash: r.text(4)?,
                })
            })
            .collect()
    }

    /// The last `n` entries, oldest first.
    pub async fn audit_tail(&self, n: i64) -> Result<Vec<AuditEntry>> {
        let mut c = self.inner.pool.conn().await?;
        let last = c
            .scalar_i64("SELECT seq FROM audit_head WHERE id = 1", vec![])
            .await?;
        drop(c);
        self.audit_entries((last - n).max(0), n).await
    }

    /// Recomputes the whole chain: detects an edited, inserted or deleted entry.
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        let mut prev_hash = String::new();
        let mut expected = 1i64;
        loop {
            let batch = self.audit_entries(expected - 1, 1000).await?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                let broken = |reason: String| Ok(AuditVerification::Broken { seq: e.seq, reason });
                if e.seq != expected {
                    return broken(format!("entry {expected} is missing"));
                }
                if e.prev_hash != prev_hash {
                    return broken("does not follow the previous entry".into());
                }
                if chain_hash(&e.prev_hash, &e.record) != e.hash {
                    return broken("its content does not match its hash (edited)".into());
                }
                prev_hash = e.hash;
                expected += 1;
            }
        }
        let mut c = self.inner.pool.conn().await?;
        let head = c
            .opt("SELECT seq, hash FROM audit_head WHERE id = 1", vec![])
            .await?;
        if let Some(r) = head {
            let (seq, hash) = (r.i64(0)?, r.text(1)?);
            if seq != expected - 1 || hash != prev_hash {
                return Ok(AuditVerification::Broken {
                    seq: expected,
                    reason: format!(
                        "the log ends at {} but the head says {seq} (entries deleted)",
                        expected - 1
                    ),
                });
            }
        }
        Ok(AuditVerification::Intact(expected - 1))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use crate::db::Pool;
    use crate::{MasterKey, Store, StoreOptions};
    use sqlx::Connection as _;

    /// Batches of every size from 1 to 100 records leave a handful of prepared `INSERT`s in
    /// the connection's statement cache, not one per size (before: 100, each with up to
    /// 500 parameters, on each pooled connection — the gateway soak's slow memory creep).
    #[tokio::test]
    async fn batches_of_any_size_prepare_a_bounded_set_of_statements() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            max_connections: 1,
            ..StoreOptions::sqlite(dir.path())
        };
        let store = Store::open(&options, MasterKey::generate()).await.unwrap();
        let Pool::Sqlite(pool) = &store.inner.pool else {
            panic!("not SQLite");
        };
        let before = pool.acquire().await.unwrap().cached_statements_size();
        let mut appended = 0i64;
        for size in 1..=super::ROWS_PER_INSERT + 3 {
            let batch: Vec<String> = (0..size).map(|i| format!("{{\"n\":{i}}}")).collect();
            store.append_audit_batch(&batch).await.unwrap();
            appended += i64::try_from(size).unwrap();
        }
        let cached = pool.acquire().await.unwrap().cached_statements_size() - before;
        // The row counts 100, 64, 32, 16, 8, 4, 2, 1, and reading and moving the chain's head.
        assert!(cached <= 10, "{cached} statements cached for audit batches");
        match store.verify_audit().await.unwrap() {
            crate::AuditVerification::Intact(n) => assert_eq!(n, appended),
            broken => panic!("{broken:?}"),
        }
    }
}
