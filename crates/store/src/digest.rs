//! Signed digests of the audit chain: the audit log's anchor outside the database.
//!
//! The hash chain (`audit.rs`) proves nothing against someone who can write the database:
//! they can rewrite every record and re-hash the chain. So Gatehouse periodically (and at
//! shutdown) signs the chain's head — how many records, the last hash, when — with a key
//! that only the key manager holds, and keeps the signed digests as a chain of their own
//! (each names the previous digest's hash). Whoever rewrites, truncates or replaces
//! records cannot make a digest that signs the new head, so [`Store::verify_audit_digests`]
//! recomputing the records' chain finds the first digest that disagrees. Digests exported
//! to a file the database admin cannot reach also catch a deleted digest tail.
//!
//! The store only keeps and checks digests; signing and checking signatures is the key
//! manager's (`gatehouse-keys`), passed in.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::audit::chain_hash;
use crate::db::args;
use crate::error::{Result, StoreError};
use crate::model::now_ms;
use crate::store::Store;

/// What a digest signs: the audit chain's head at a moment, after the previous digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestBody {
    /// Position in the digest chain, from 1.
    pub seq: i64,
    /// When it was made (ms since the epoch).
    pub time_ms: i64,
    /// How many audit records the chain had.
    pub audit_seq: i64,
    /// The hash of the last of them (empty for none).
    pub audit_hash: String,
    /// The previous digest's hash (empty for the first).
    pub prev_digest: String,
}

impl DigestBody {
    /// The exact bytes that are signed.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "gatehouse-audit-digest-v1\nseq={}\ntime_ms={}\naudit_seq={}\naudit_hash={}\nprev_digest={}\n",
            self.seq, self.time_ms, self.audit_seq, self.audit_hash, self.prev_digest
        )
        .into_bytes()
    }
}

/// A signed digest, as stored and as exported (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDigest {
    /// What was signed.
    #[serde(flatten)]
    pub body: DigestBody,
    /// The signing key's descriptor (`file:ed25519:…`, `pkcs11:…`, `kms:…`).
    pub signing_key: String,
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// The signature, hex.
    pub signature: String,
    /// This digest's hash: SHA-256 over the message and the signature, hex.
    pub digest: String,
}

impl AuditDigest {
    /// Seals `body` with its signature into a digest.
    pub fn new(body: DigestBody, signing_key: String, algorithm: String, signature: &[u8]) -> Self {
        let signature = hex::encode(signature);
        let digest = digest_hash(&body, &signature);
        AuditDigest {
            body,
            signing_key,
            algorithm,
            signature,
            digest,
        }
    }

    /// The signature's bytes (empty when it is not hex).
    pub fn signature_bytes(&self) -> Vec<u8> {
        hex::decode(&self.signature).unwrap_or_default()
    }
}

fn digest_hash(body: &DigestBody, signature_hex: &str) -> String {
    let mut h = Sha256::new();
    h.update(body.message());
    h.update([0u8]);
    h.update(signature_hex.as_bytes());
    hex::encode(h.finalize())
}

/// The first place where the records and the signed digests disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestFinding {
    /// The digest from which on the log is not what was signed.
    pub digest_seq: i64,
    /// The audit record count that digest signed.
    pub audit_seq: i64,
    /// What is wrong.
    pub reason: String,
}

/// The outcome of checking the records against signed digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestVerification {
    /// Records in the log.
    pub records: i64,
    /// Digests checked.
    pub digests: usize,
    /// The records covered by the last digest that matched.
    pub anchored_records: i64,
    /// The first disagreement, if any.
    pub broken: Option<DigestFinding>,
}

fn digest_from(r: &crate::db::Row) -> Result<AuditDigest> {
    Ok(AuditDigest {
        body: DigestBody {
            seq: r.i64(0)?,
            time_ms: r.i64(1)?,
            audit_seq: r.i64(2)?,
            audit_hash: r.text(3)?,
            prev_digest: r.text(4)?,
        },
        signing_key: r.text(5)?,
        algorithm: r.text(6)?,
        signature: r.text(7)?,
        digest: r.text(8)?,
    })
}

const DIGEST_COLS: &str =
    "seq, time_ms, audit_seq, audit_hash, prev_digest, signing_key, algorithm, signature, digest";

impl Store {
    /// The next digest to sign: the chain's head now, after the last stored digest.
    pub async fn next_audit_digest(&self) -> Result<DigestBody> {
        let mut c = self.inner.pool.conn().await?;
        let (audit_seq, audit_hash) = match c
            .opt("SELECT seq, hash FROM audit_head WHERE id = 1", vec![])
            .await?
        {
            Some(r) => (r.i64(0)?, r.text(1)?),
            None => (0, String::new()),
        };
        let (seq, prev_digest) = match c
            .opt(
                "SELECT seq, digest FROM audit_digests ORDER BY seq DESC LIMIT 1",
                vec![],
            )
            .await?
        {
            Some(r) => (r.i64(0)? + 1, r.text(1)?),
            None => (1, String::new()),
        };
        Ok(DigestBody {
            seq,
            time_ms: now_ms(),
            audit_seq,
            audit_hash,
            prev_digest,
        })
    }

    /// Stores a signed digest. Fails with `EntityAlreadyExists` when another node stored
    /// a digest first (sign the next one again).
    pub async fn append_audit_digest(&self, d: &AuditDigest) -> Result<()> {
        let mut tx = self.inner.pool.write_tx().await?;
        let last = tx
            .opt(
                "SELECT seq, digest FROM audit_digests ORDER BY seq DESC LIMIT 1",
                vec![],
            )
            .await?;
        let (expected_seq, expected_prev) = match last {
            Some(r) => (r.i64(0)? + 1, r.text(1)?),
            None => (1, String::new()),
        };
        if d.body.seq != expected_seq || d.body.prev_digest != expected_prev {
            return Err(StoreError::exists(
                crate::EntityKind::Meta,
                format!("audit digest {}", d.body.seq),
            ));
        }
        tx.exec(
            &format!(
                "INSERT INTO audit_digests ({DIGEST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            args![
                d.body.seq,
                d.body.time_ms,
                d.body.audit_seq,
                d.body.audit_hash.as_str(),
                d.body.prev_digest.as_str(),
                d.signing_key.as_str(),
                d.algorithm.as_str(),
                d.signature.as_str(),
                d.digest.as_str()
            ],
        )
        .await?;
        tx.commit().await
    }

    /// The last stored digest.
    pub async fn audit_digests_tail(&self) -> Result<Option<AuditDigest>> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                &format!("SELECT {DIGEST_COLS} FROM audit_digests ORDER BY seq DESC LIMIT 1"),
                vec![],
            )
            .await?;
        row.map(|r| digest_from(&r)).transpose()
    }

    /// Every stored digest, oldest first.
    pub async fn audit_digests(&self) -> Result<Vec<AuditDigest>> {
        let mut c = self.inner.pool.conn().await?;
        c.all(
            &format!("SELECT {DIGEST_COLS} FROM audit_digests ORDER BY seq"),
            vec![],
        )
        .await?
        .iter()
        .map(digest_from)
        .collect()
    }

    /// Checks the records against `digests` (oldest first): each digest's signature
    /// (`signature_valid`, the key manager's check against a key it trusts), the
    /// digests' own chain, and — recomputing the records' hash chain from the records
    /// themselves, never trusting a stored hash — that the log had, at each digest, the
    /// count and last hash it signed. Reports the first digest from which on it is not.
    pub async fn verify_audit_digests(
        &self,
        digests: &[AuditDigest],
        signature_valid: &(dyn Fn(&AuditDigest) -> bool + Sync),
    ) -> Result<DigestVerification> {
        let broken = |d: &AuditDigest, reason: String| DigestFinding {
            digest_seq: d.body.seq,
            audit_seq: d.body.audit_seq,
            reason,
        };
        let mut finding = None;
        let mut prev: Option<&AuditDigest> = None;
        for d in digests {
            let reason = if !signature_valid(d) {
                Some("its signature does not verify with the trusted signing key (forged or altered digest)".to_owned())
            } else if digest_hash(&d.body, &d.signature) != d.digest {
                Some("its hash does not match its content (altered digest)".to_owned())
            } else {
                match prev {
                    Some(p) if p.body.seq + 1 == d.body.seq && p.digest != d.body.prev_digest => {
                        Some(format!("it does not follow digest {}", p.body.seq))
                    }
                    Some(p) if d.body.audit_seq < p.body.audit_seq => Some(format!(
                        "it signs fewer records ({}) than digest {} ({})",
                        d.body.audit_seq, p.body.seq, p.body.audit_seq
                    )),
                    _ => None,
                }
            };
            if let Some(reason) = reason {
                finding = Some(broken(d, reason));
                break;
            }
            prev = Some(d);
        }
        // The digests checked so far, by the record count they signed.
        let checked: Vec<&AuditDigest> = match &finding {
            Some(f) => digests
                .iter()
                .take_while(|d| d.body.seq != f.digest_seq)
                .collect(),
            None => digests.iter().collect(),
        };
        let mut next = 0usize;
        let mut anchored = 0i64;
        let mut hash = String::new();
        let mut count = 0i64;
        // Digests of the empty log.
        while next < checked.len() && checked[next].body.audit_seq == 0 {
            if !checked[next].body.audit_hash.is_empty() {
                finding.get_or_insert(broken(checked[next], "the log it signed was empty".into()));
            }
            next += 1;
        }
        'records: loop {
            let batch = self.audit_entries(count, 1000).await?;
            if batch.is_empty() {
                break;
            }
            for e in batch {
                if next >= checked.len() || finding.is_some() {
                    break 'records;
                }
                if e.seq != count + 1 {
                    // A record is missing: whatever digest covers it cannot match.
                    let d = checked[next];
                    finding = Some(broken(
                        d,
                        format!(
                            "record {} is missing (deleted) before the {} records it signed",
                            count + 1,
                            d.body.audit_seq
                        ),
                    ));
                    continue;
                }
                hash = chain_hash(&hash, &e.record);
                count = e.seq;
                while next < checked.len() && checked[next].body.audit_seq == count {
                    let d = checked[next];
                    if d.body.audit_hash != hash {
                        let since = if next == 0 {
                            "the first record".to_owned()
                        } else {
                            format!("record {}", checked[next - 1].body.audit_seq + 1)
                        };
                        finding = Some(broken(
                            d,
                            format!(
                                "the {} records it signed are not the records in the log: \
                                 rewritten or replaced between {since} and record {count}",
                                d.body.audit_seq
                            ),
                        ));
                        break;
                    }
                    anchored = count;
                    next += 1;
                }
            }
        }
        if finding.is_none()
            && let Some(d) = checked.get(next)
        {
            finding = Some(broken(
                d,
                format!(
                    "it signed {} records but the log has only {count}: truncated",
                    d.body.audit_seq
                ),
            ));
        }
        Ok(DigestVerification {
            records: self.audit_record_count().await?,
            digests: digests.len(),
            anchored_records: anchored,
            broken: finding,
        })
    }

    async fn audit_record_count(&self) -> Result<i64> {
        let mut c = self.inner.pool.conn().await?;
        c.scalar_i64("SELECT count(*) FROM audit_log", vec![]).await
    }
}
