//! Audit records of gateway decisions, written in batches off the request path.
//!
//! A request is answered only after its record is accepted into a bounded queue; a
//! background task appends queued records to the hash-chained log in one transaction per
//! batch (retrying while the store is down). When the queue is full the gateway refuses
//! requests with 503 rather than let a decision go unrecorded (fail closed).

use gatehouse_store::Store;
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// One gateway decision, as written to the audit log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayAuditRecord {
    /// RFC 3339 time of the decision.
    pub time: String,
    /// Request id (also the `x-request-id` response header).
    pub request_id: String,
    /// Caller ARN (empty when unauthenticated).
    pub principal: String,
    /// `ai:InvokeModel`, ...
    pub action: String,
    /// Resource ARN.
    pub resource: String,
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`, or `Error` before a decision.
    pub decision: String,
    /// The deciding statement.
    pub statement: Option<String>,
    /// `aws:SourceIp`; `null` when it could not be determined (see `source_unknown_via`).
    pub source_ip: Option<String>,
    /// When the source could not be determined: the trusted proxy whose
    /// `X-Forwarded-For` header could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_unknown_via: Option<String>,
    /// OpenAI error code when refused or failed.
    pub error_code: Option<String>,
    /// Model id.
    pub model: Option<String>,
    /// Listener name (`aws:SourceVpce`).
    pub listener: String,
    /// HTTP status answered.
    pub status: u16,
    /// Streamed answer.
    pub stream: bool,
    /// Tokens from the upstream's `usage`.
    pub prompt_tokens: Option<u64>,
    /// Tokens from the upstream's `usage`.
    pub completion_tokens: Option<u64>,
    /// Tokens from the upstream's `usage`.
    pub total_tokens: Option<u64>,
    /// Tokens reserved in the caller's token budgets at admission.
    pub reserved_tokens: Option<u64>,
    /// Tokens the call was charged.
    pub charged_tokens: Option<u64>,
    /// Where the charge comes from: `measured` (the upstream's usage), `estimated` (from
    /// the text), `reserved` (the reservation: the upstream may have generated unseen
    /// tokens), `none` (nothing was generated).
    pub usage_source: Option<String>,
    /// Milliseconds from request to the end of the answer.
    pub latency_ms: f64,
    /// The just-in-time grant the call was made under: allowed by it, or in a session
    /// opened under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevation_id: Option<String>,
    /// An MCP request's detail (server, method, tool, argument digest, client session,
    /// upstream outcome).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<serde_json::Value>,
    /// A retrieval request's detail (knowledge base, query digest, returned document ids,
    /// refused and fetched counts; or a batch decision's person and counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<serde_json::Value>,
}

/// The queue to the background writer.
#[derive(Debug, Default)]
pub struct AuditQueue {
    tx: OnceLock<mpsc::Sender<String>>,
    batches: Arc<crate::metrics::BatchCounts>,
}

const QUEUE: usize = 65_536;
const BATCH: usize = 512;

impl AuditQueue {
    /// Queues a record; `false` when it could not be (queue full: the caller refuses).
    pub fn push(&self, store: &Store, record: &GatewayAuditRecord) -> bool {
        let Ok(json) = serde_json::to_string(record) else {
            return false;
        };
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(store.clone(), rx, Arc::clone(&self.batches)));
            tx
        });
        tx.try_send(json).is_ok()
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
    pub fn batches(&self) -> &crate::metrics::BatchCounts {
        &self.batches
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<String>,
    counts: Arc<crate::metrics::BatchCounts>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
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
