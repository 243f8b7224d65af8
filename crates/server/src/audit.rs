//! The control plane's audit record: what a Query API call's record says, built from what
//! the call gathered ([`AuditFacts`]) by [`ControlRecord`] into the one record type of
//! Gatehouse ([`gatehouse_audit::AuditRecord`]).
//!
//! A call's record reaches the hash chain one of two ways, and exactly one:
//!
//! - A call that changes something stages its record ([`gatehouse_store::PendingAudit`])
//!   when authorization allows it; the store appends it inside the write's own
//!   transaction, so the change is never durable without its record (or the reverse).
//! - Every other call — reads, denials, failures, writes that found nothing to change —
//!   hands its final record to the pipeline's [`GroupCommit`]: the call answers only after
//!   the batch holding its record committed. If the batch fails, so do its calls.
//!
//! `gatehouse audit verify` recomputes the chain.

pub use gatehouse_pipeline::audit::{AuditError, GroupCommit};

use gatehouse_audit::{AuditRecord, ControlDetail, Decision, FaceDetail};

/// The parts of a control-plane call's record (see [`ControlRecord::at`]).
#[derive(Debug, Clone, Copy)]
pub struct ControlRecord<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The caller's ARN (empty when unauthenticated).
    pub principal: &'a str,
    /// The access key the request was signed with (claimed, when authentication failed).
    pub access_key_id: Option<&'a str>,
    /// Where the call came from.
    pub source: &'a crate::origin::SourceAddress,
    /// The action as requested (recorded for calls that ended before a decision).
    pub requested_action: &'a str,
    /// What authorization decided.
    pub facts: &'a AuditFacts,
    /// How the call ended: the AWS error code, `None` for success.
    pub error_code: Option<&'a str>,
}

impl ControlRecord<'_> {
    /// The record, at `now` (the server's clock).
    pub fn at(self, now: chrono::DateTime<chrono::Utc>) -> AuditRecord {
        let facts = self.facts;
        AuditRecord {
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            request_id: self.request_id.to_owned(),
            principal: self.principal.to_owned(),
            action: if facts.action.is_empty() {
                self.requested_action.to_owned()
            } else {
                facts.action.clone()
            },
            resource: facts.resource.clone(),
            decision: match (facts.decision, self.error_code) {
                (Some(d), _) => d,
                (None, None) => Decision::Allow,
                (None, Some(_)) => Decision::Error,
            },
            statement: facts.statement.clone(),
            source_ip: self.source.audit_ip(),
            source_unknown_via: self.source.audit_via(),
            error_code: self.error_code.map(str::to_owned),
            elevation_id: facts.elevation_id.clone(),
            face: FaceDetail::Control(ControlDetail {
                access_key_id: self.access_key_id.map(str::to_owned),
            }),
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
    pub decision: Option<Decision>,
    /// The deciding statement.
    pub statement: Option<String>,
    /// The just-in-time grant the call is made under ([`AuditRecord::elevation_id`]).
    pub elevation_id: Option<String>,
}
