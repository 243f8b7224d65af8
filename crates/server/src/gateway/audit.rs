//! The gateway's audit record as a call builds it, field by field as the call proceeds,
//! then turned into the one record of Gatehouse ([`gatehouse_audit::AuditRecord`] with a
//! [`GatewayDetail`]) for the pipeline's queue writer
//! (`gatehouse_pipeline::audit::AuditQueue`): a request is answered only after its record
//! is accepted; when the queue is full the gateway refuses requests with 503 rather than
//! let a decision go unrecorded (fail closed).

use gatehouse_audit::{AuditRecord, Decision, FaceDetail, GatewayDetail};

/// One gateway decision, as the call gathers it.
#[derive(Debug, Clone, Default)]
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
    /// What was decided; `None` (recorded as `Error`) before a decision.
    pub decision: Option<Decision>,
    /// The deciding statement.
    pub statement: Option<String>,
    /// `aws:SourceIp`; `null` when it could not be determined (see `source_unknown_via`).
    pub source_ip: Option<String>,
    /// When the source could not be determined: the trusted proxy whose
    /// `X-Forwarded-For` header could not be read.
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
    /// opened under it (when `None`, the deciding statement names the grant that allowed
    /// the call, if one did).
    pub elevation_id: Option<String>,
    /// An MCP request's detail (server, method, tool, argument digest, client session,
    /// upstream outcome).
    pub mcp: Option<serde_json::Value>,
    /// A retrieval request's detail (knowledge base, query digest, returned document ids,
    /// refused and fetched counts; or a batch decision's person and counts).
    pub retrieval: Option<serde_json::Value>,
}

impl GatewayAuditRecord {
    /// The record as the log holds it.
    pub fn into_record(self) -> AuditRecord {
        // A call allowed by a just-in-time grant names it in its deciding statement; every
        // face's record gets the grant's id as its own field from there.
        let elevation_id = self.elevation_id.or_else(|| {
            self.statement
                .as_deref()
                .and_then(crate::authz::elevation_of_statement)
                .map(str::to_owned)
        });
        AuditRecord {
            time: self.time,
            request_id: self.request_id,
            principal: self.principal,
            action: self.action,
            resource: self.resource,
            decision: self.decision.unwrap_or(Decision::Error),
            statement: self.statement,
            source_ip: self.source_ip,
            source_unknown_via: self.source_unknown_via,
            error_code: self.error_code,
            elevation_id,
            face: FaceDetail::Gateway(GatewayDetail {
                model: self.model,
                listener: self.listener,
                status: self.status,
                stream: self.stream,
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
                total_tokens: self.total_tokens,
                reserved_tokens: self.reserved_tokens,
                charged_tokens: self.charged_tokens,
                usage_source: self.usage_source,
                latency_ms: self.latency_ms,
                mcp: self.mcp.map(Box::new),
                retrieval: self.retrieval.map(Box::new),
            }),
        }
    }
}
