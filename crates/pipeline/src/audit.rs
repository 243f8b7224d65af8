//! The record step's writers: how an [`AuditRecord`] that no write carried reaches the
//! store's hash-chained log. Every face writes through these two, and only these two:
//!
//! - [`GroupCommit`] — the caller waits until its record is durable (the control plane,
//!   whose answer must not claim what the log does not hold): one task appends whatever
//!   records are waiting in one transaction (one fsync for many calls), and each call
//!   answers only after the batch holding its record committed. If the batch fails, so
//!   do its calls (fail closed).
//! - [`AuditQueue`] — the caller does not wait (the gateways, whose answers stream): a
//!   record is accepted into a bounded queue that a task appends in batches, retrying while
//!   the store is down; when the queue is full the caller refuses the request rather than
//!   let a decision go unrecorded.
//!
//! A call that changes something carries its record in the write's own transaction
//! instead (`gatehouse_store::PendingAudit`), so the change is never durable without it.

use crate::counts::BatchCounts;
use gatehouse_audit::AuditRecord;
use gatehouse_store::Store;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Both writers of one process.
#[derive(Debug, Default)]
pub struct AuditWriters {
    /// The writer whose callers wait for their batch's commit.
    pub group: GroupCommit,
    /// The writer whose callers do not wait.
    pub queue: AuditQueue,
}

/// Why a record could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The record could not be written as JSON.
    #[error("the audit record could not be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
    /// The writer task is gone (the runtime is shutting down).
    #[error("the audit writer is not running")]
    WriterGone,
    /// The batch holding the record failed to commit.
    #[error("the audit batch did not commit")]
    BatchFailed,
    /// The queue is full: the caller refuses the request (fail closed).
    #[error("the audit queue is full")]
    QueueFull,
}

/// The most records one group commit appends.
const GROUP_BATCH: usize = 512;
/// Records waiting for the group writer before callers wait for room.
const GROUP_QUEUE: usize = 4096;

/// One record waiting for its batch, and whom to tell when the batch has committed.
#[derive(Debug)]
struct Job {
    record: String,
    done: oneshot::Sender<bool>,
}

/// Group commit: appends a record in the next batch and answers once it committed.
#[derive(Debug, Default)]
pub struct GroupCommit {
    tx: OnceLock<mpsc::Sender<Job>>,
    batches: Arc<BatchCounts>,
}

impl GroupCommit {
    /// Appends `record` to the chain in the next batch and returns once that batch has
    /// committed.
    pub async fn append_record(
        &self,
        store: &Store,
        record: &AuditRecord,
    ) -> Result<(), AuditError> {
        self.append(store, record.to_json()?).await
    }

    /// Appends a record already written as JSON (as [`gatehouse_store::PendingAudit`]
    /// holds it) in the next batch and returns once that batch has committed. The writer
    /// task starts on first use, on the caller's runtime.
    pub async fn append(&self, store: &Store, record: String) -> Result<(), AuditError> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(GROUP_QUEUE);
            tokio::spawn(group_writer(store.clone(), rx, Arc::clone(&self.batches)));
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

    /// Records waiting for the writer (for `/metrics`).
    pub fn depth(&self) -> usize {
        self.tx.get().map_or(0, |t| t.max_capacity() - t.capacity())
    }

    /// Batches committed and failed so far.
    pub fn batches(&self) -> &BatchCounts {
        &self.batches
    }
}

/// Appends what is waiting, one batch per transaction, and answers each waiting call.
async fn group_writer(store: Store, mut rx: mpsc::Receiver<Job>, counts: Arc<BatchCounts>) {
    let mut jobs = Vec::with_capacity(GROUP_BATCH);
    let mut records = Vec::with_capacity(GROUP_BATCH);
    while rx.recv_many(&mut jobs, GROUP_BATCH).await > 0 {
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

/// The queue to the writer whose callers do not wait.
#[derive(Debug, Default)]
pub struct AuditQueue {
    tx: OnceLock<mpsc::Sender<String>>,
    batches: Arc<BatchCounts>,
}

const QUEUE: usize = 65_536;
const QUEUE_BATCH: usize = 512;

impl AuditQueue {
    /// Queues a record; [`AuditError::QueueFull`] when it could not be (the caller
    /// refuses).
    pub fn push(&self, store: &Store, record: &AuditRecord) -> Result<(), AuditError> {
        let json = record.to_json()?;
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(queue_writer(store.clone(), rx, Arc::clone(&self.batches)));
            tx
        });
        tx.try_send(json).map_err(|_| AuditError::QueueFull)
    }

    /// Room left in the queue (to refuse before doing work when it is full).
    pub fn has_room(&self) -> bool {
        self.tx.get().is_none_or(|t| t.capacity() > 0)
    }

    /// Records waiting for the writer (for `/metrics`).
    pub fn depth(&self) -> usize {
        self.tx.get().map_or(0, |t| t.max_capacity() - t.capacity())
    }

    /// Batches committed and failed so far (a failed one is retried).
    pub fn batches(&self) -> &BatchCounts {
        &self.batches
    }
}

async fn queue_writer(store: Store, mut rx: mpsc::Receiver<String>, counts: Arc<BatchCounts>) {
    let mut batch = Vec::with_capacity(QUEUE_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < QUEUE_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut delay = std::time::Duration::from_millis(50);
        loop {
            let appended = store.append_audit_batch(&batch).await;
            counts.record(appended.is_ok());
            match appended {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, pending = batch.len(), "audit append failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        batch.clear();
    }
}
