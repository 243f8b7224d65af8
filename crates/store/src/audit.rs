//! The audit log: append-only and hash-chained.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and the entry's own record,
//! so editing or deleting an entry breaks the chain from there on; a head row kept in the
//! same transaction catches a deleted tail. Appends do not bump the policy generation (an
//! audit record changes nobody's permissions), and they serialise on the head row so that
//! several nodes writing to one PostgreSQL keep one chain.

use crate::db::args;
use crate::error::Result;
use crate::model::{Timestamp, now_ms, ts};
use crate::store::Store;
use sha2::{Digest, Sha256};

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

impl Store {
    /// Appends a record (JSON text) to the audit log and returns its entry.
    pub async fn append_audit(&self, record: &str) -> Result<AuditEntry> {
        let mut tx = self.inner.pool.write_tx().await?;
        // Locks the head row (PostgreSQL) or holds the write lock (SQLite): one chain.
        let sql = if tx.is_postgres() {
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
        } else {
            "SELECT seq, hash FROM audit_head WHERE id = 1"
        };
        let head = tx.opt(sql, vec![]).await?;
        let (seq, prev_hash) = match head {
            Some(r) => (r.i64(0)?, r.text(1)?),
            None => (0, String::new()),
        };
        let seq = seq + 1;
        let hash = chain_hash(&prev_hash, record);
        let time = now_ms();
        tx.exec(
            "INSERT INTO audit_log (seq, time_ms, record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)",
            args![seq, time, record, prev_hash.as_str(), hash.as_str()],
        )
        .await?;
        tx.exec(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
            args![seq, hash.as_str()],
        )
        .await?;
        tx.commit().await?;
        Ok(AuditEntry {
            seq,
            time: ts(time),
            record: record.to_owned(),
            prev_hash,
            hash,
        })
    }

    /// Appends several records in one transaction, in order (the gateway's batched
    /// writer: one commit per batch instead of one per request).
    pub async fn append_audit_batch(&self, records: &[String]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.inner.pool.write_tx().await?;
        let sql = if tx.is_postgres() {
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
        } else {
            "SELECT seq, hash FROM audit_head WHERE id = 1"
        };
        let (mut seq, mut prev_hash) = match tx.opt(sql, vec![]).await? {
            Some(r) => (r.i64(0)?, r.text(1)?),
            None => (0, String::new()),
        };
        let time = now_ms();
        for record in records {
            seq += 1;
            let hash = chain_hash(&prev_hash, record);
            tx.exec(
                "INSERT INTO audit_log (seq, time_ms, record, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)",
                args![seq, time, record.as_str(), prev_hash.as_str(), hash.as_str()],
            )
            .await?;
            prev_hash = hash;
        }
        tx.exec(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
            args![seq, prev_hash.as_str()],
        )
        .await?;
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
