//! The audit log: every call, allowed or denied, as a hash-chained record.
//!
//! The chain itself (each entry's hash covers the previous entry's hash) is kept by the
//! store; this module defines what a record says and how a record that no write carried
//! reaches the chain. A call's record goes one of two ways, and exactly one:
//!
//! - A call that changes something stages its record ([`gatehouse_store::PendingAudit`])
//!   when authorization allows it; the store appends it inside the write's own
//!   transaction, so the change is never durable without its record (or the reverse).
//! - Every other call — reads, denials, failures, writes that found nothing to change —
//!   hands its final record to [`GroupCommit`]: one task appends whatever records are
//!   waiting in one transaction (one fsync for many calls), and each call answers only
//!   after the batch holding its record committed. If the batch fails, so do its calls.
//!
//! `gatehouse audit verify` recomputes the chain.

use gatehouse_store::Store;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 time.
    pub time: String,
    /// Request id.
    pub request_id: String,
    /// Caller ARN (empty when unauthenticated).
    pub principal: String,
    /// The access key the request was signed with (claimed, when authentication failed).
    pub access_key_id: Option<String>,
    /// `iam:CreateUser`, ...
    pub action: String,
    /// Resource ARN (or `*`).
    pub resource: String,
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`, or `Error` when the call failed before a decision.
    pub decision: String,
    /// The deciding statement, when there was one.
    pub statement: Option<String>,
    /// Caller address (`aws:SourceIp`); `null` when it could not be determined (see
    /// `source_unknown_via`).
    pub source_ip: Option<String>,
    /// When the source could not be determined: the trusted proxy whose
    /// `X-Forwarded-For` header could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_unknown_via: Option<String>,
    /// AWS error code, when the call failed.
    pub error_code: Option<String>,
    /// The just-in-time grant the call was made under (allowed by it, or in a session
    /// opened under it), or the access request a `gatehouse:` access action acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_id: Option<String>,
}

impl AuditRecord {
    /// The record of a call, now: who called (`principal`, `access_key_id`, `source_ip`),
    /// what was decided (`facts`; `action` is the requested one, for calls that ended
    /// before a decision), and how the call ended (`error_code`, `None` for success), at
    /// `now` (the server's clock).
    #[allow(clippy::too_many_arguments)]
    pub fn of_call(
        request_id: &str,
        principal: &str,
        access_key_id: Option<&str>,
        source: &crate::origin::SourceAddress,
        action: &str,
        facts: &AuditFacts,
        error_code: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AuditRecord {
        AuditRecord {
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            request_id: request_id.to_owned(),
            principal: principal.to_owned(),
            access_key_id: access_key_id.map(str::to_owned),
            action: if facts.action.is_empty() {
                action.to_owned()
            } else {
                facts.action.clone()
            },
            resource: facts.resource.clone(),
            decision: match (&facts.decision, error_code) {
                (Some(d), _) => d.clone(),
                (None, None) => "Allow".to_owned(),
                (None, Some(_)) => "Error".to_owned(),
            },
            statement: facts.statement.clone(),
            source_ip: source.audit_ip(),
            source_unknown_via: source.audit_via(),
            error_code: error_code.map(str::to_owned),
            elevation_id: facts.elevation_id.clone(),
        }
    }
}

/// What authorization decided, kept for the audit record.
#[derive(Debug, Clone, Default)]
pub struct AuditFacts {
    /// The `iam:` action decided last.
    pub action: String,
    /// Its resource.
    pub resource: String,
    /// The decision.
    pub decision: Option<String>,
    /// The deciding statement.
    pub statement: Option<String>,
    /// The just-in-time grant the call is made under ([`AuditRecord::elevation_id`]).
    pub elevation_id: Option<String>,
}

/// Why a record could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The writer task is gone (the runtime is shutting down).
    #[error("the audit writer is not running")]
    WriterGone,
    /// The batch holding the record failed to commit.
    #[error("the audit batch did not commit")]
    BatchFailed,
}

/// The most records one group commit appends.
const BATCH: usize = 512;
/// Records waiting for the writer before callers wait for room.
const QUEUE: usize = 4096;

/// One record waiting for its batch, and whom to tell when the batch has committed.
#[derive(Debug)]
struct Job {
    record: String,
    done: oneshot::Sender<bool>,
}

/// Group commit of the control plane's audit records that no write carried.
///
/// One task per process appends records in batches with
/// [`Store::append_audit_batch`]: while one batch commits, the records of concurrent
/// calls queue up and become the next batch, so throughput no longer pays one commit
/// (one fsync on SQLite, one commit serialised on the chain's head row on PostgreSQL)
/// per call, and a lone call waits for nothing but its own commit. Unlike the gateway's
/// queue (which acknowledges on enqueue and retries), a call here is acknowledged only
/// once its record is durable, and a failed batch fails every call in it (fail closed).
#[derive(Debug, Default)]
pub struct GroupCommit {
    tx: OnceLock<mpsc::Sender<Job>>,
    batches: Arc<crate::metrics::BatchCounts>,
}

impl GroupCommit {
    /// Appends `record` (JSON text) to the chain in the next batch and returns once that
    /// batch has committed. The writer task starts on first use, on the caller's runtime.
    pub async fn append(&self, store: &Store, record: String) -> Result<(), AuditError> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(store.clone(), rx, Arc::clone(&self.batches)));
            tx
        });
        let (done, committed) = oneshot::channel();
        tx.send(Job { record, done })
            .await
            .map_err(|_| AuditError::WriterGone)?;
        match committed.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuditError::BatchFailed),
            Err(_) => Err(AuditError::WriterGone),
        }
    }
}

impl GroupCommit {
    /// Records waiting for the writer (for `/metrics`).
    pub fn depth(&self) -> usize {
        self.tx.get().map_or(0, |t| t.max_capacity() - t.capacity())
    }

    /// Batches committed and failed so far.
    pub fn batches(&self) -> &crate::metrics::BatchCounts {
        &self.batches
    }
}

/// Appends what is waiting, one batch per transaction, and answers each waiting call.
async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    counts: Arc<crate::metrics::BatchCounts>,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    let mut records = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        records.extend(jobs.iter_mut().map(|j| std::mem::take(&mut j.record)));
        let committed = match store.append_audit_batch(&records).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "audit batch append failed");
                false
            }
        };
        counts.record(committed);
        records.clear();
        for job in jobs.drain(..) {
            // A caller that went away (client disconnected) is fine: its record is in.
            let _ = job.done.send(committed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_with_every_field() {
        let r = AuditRecord {
            time: "t".into(),
            request_id: "r".into(),
            principal: "p".into(),
            access_key_id: Some("AKIA".into()),
            action: "iam:GetUser".into(),
            resource: "*".into(),
            decision: "Allow".into(),
            statement: None,
            source_ip: Some("127.0.0.1".into()),
            source_unknown_via: None,
            error_code: None,
            elevation_id: None,
        };
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(v["action"], "iam:GetUser");
        assert_eq!(v.as_object().map(|o| o.len()), Some(10));
        // Only a call under a grant has the field.
        let under = AuditRecord {
            elevation_id: Some("REQ1".into()),
            ..r
        };
        let v = serde_json::to_value(&under).unwrap_or_default();
        assert_eq!(v["elevation_id"], "REQ1");
    }
}
