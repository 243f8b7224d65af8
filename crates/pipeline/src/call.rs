//! One call through the whole pipeline, for a face that wants the four steps without
//! writing any of them: authenticate → principal → decide → record.
//!
//! ```text
//! let mut call = core.call(request_id, origin);
//! call.authenticate(&parts, "mcp").await?;          // any credential kind
//! let allowed = call.decide("mcp:CallTool", &arn, [("mcp:ToolName", name)])?;
//! // ... do the work ...
//! call.record(None, FaceDetail::default())?;         // one audit record per call
//! ```
//!
//! A `Call` that failed to authenticate or was denied is still recorded: the face
//! answers with its own error shape and then calls [`Call::record`] with the error code.

use crate::authenticate::{Principal, RequestParts};
use crate::core::Core;
use crate::decide::Decided;
use crate::error::PipelineError;
use crate::origin::Origin;
use chrono::{DateTime, Utc};
use gatehouse_audit::{AuditRecord, Decision, FaceDetail};
use gatehouse_policy::ContextValue;

/// A call in progress (see the module docs).
#[derive(Debug)]
pub struct Call<'a> {
    core: &'a Core,
    /// Where the call comes from.
    pub origin: Origin,
    /// When the call is decided (the core's clock, read once).
    pub now: DateTime<Utc>,
    /// The caller, once authenticated.
    pub principal: Option<Principal>,
    record: AuditRecord,
}

/// A denied call: the decision, and the sealed message its answer carries.
#[derive(Debug, Clone)]
pub struct Denied {
    /// What the engine decided.
    pub decided: Decided,
    /// The encoded authorization failure message (`None` if sealing failed).
    pub sealed: Option<String>,
}

/// Why [`Call::decide`] did not allow.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The call was not authenticated first.
    #[error("the call has no authenticated principal")]
    NotAuthenticated,
    /// The engine denied it.
    #[error("User: {principal} is not authorized to perform: {action} on resource: {resource}", principal = .0.decided.request.principal, action = .0.decided.request.action, resource = .0.decided.request.resource)]
    Denied(Box<Denied>),
}

impl Core {
    /// Starts a call from `origin` with the face's request id.
    pub fn call(&self, request_id: String, origin: Origin) -> Call<'_> {
        let now = self.clock.now();
        let record = AuditRecord {
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            request_id,
            principal: String::new(),
            action: String::new(),
            resource: String::new(),
            decision: Decision::Error,
            statement: None,
            source_ip: origin.source.audit_ip(),
            source_unknown_via: origin.source.audit_via(),
            error_code: None,
            elevation_id: None,
            face: FaceDetail::default(),
        };
        Call {
            core: self,
            origin,
            now,
            principal: None,
            record,
        }
    }
}

impl Call<'_> {
    /// The authenticate and principal steps ([`Core::authenticate`]); the principal is
    /// kept for [`Call::decide`] and the record.
    pub async fn authenticate(
        &mut self,
        parts: &RequestParts<'_>,
        service: &str,
    ) -> Result<&Principal, PipelineError> {
        let principal = self.core.authenticate(parts, service).await?;
        self.record.principal.clone_from(&principal.arn);
        // Every call of a session opened under a just-in-time grant is made under it.
        self.record.elevation_id = principal.elevation_id().map(str::to_owned);
        Ok(self.principal.insert(principal))
    }

    /// The decide step ([`crate::decide::decide`]) for the authenticated principal; the decision is
    /// kept for the record (a denial always replaces an earlier allow, so the record
    /// names what refused the call).
    pub fn decide<K, V>(
        &mut self,
        action: &str,
        resource: &str,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Decided, DecideError>
    where
        K: Into<String>,
        V: Into<ContextValue>,
    {
        let Some(principal) = &self.principal else {
            return Err(DecideError::NotAuthenticated);
        };
        let decided =
            crate::decide::decide(principal, &self.origin, self.now, action, resource, keys);
        if !(decided.allowed() && self.record.decision.is_allow()) {
            self.record.action = action.to_owned();
            self.record.resource = resource.to_owned();
            self.record.decision = decided.audit_decision();
            self.record.statement = decided.statement();
        }
        if decided.allowed() {
            return Ok(decided);
        }
        let sealed = decided.sealed_denial(self.core);
        Err(DecideError::Denied(Box::new(Denied { decided, sealed })))
    }

    /// The record step: one audit record for the call, with how it ended (`error_code`:
    /// the face's error code, `None` for success) and the face's own detail, through the
    /// queue writer. An error means the record could not be queued: the face refuses the
    /// call (fail closed).
    pub fn record(
        mut self,
        error_code: Option<String>,
        face: FaceDetail,
    ) -> Result<(), crate::audit::AuditError> {
        self.record.error_code = error_code;
        self.record.face = face;
        // A call allowed by a just-in-time grant names it in its deciding statement.
        if self.record.elevation_id.is_none() {
            self.record.elevation_id = self
                .record
                .statement
                .as_deref()
                .and_then(crate::authz::elevation_of_statement)
                .map(str::to_owned);
        }
        self.core.audit.queue.push(&self.core.store, &self.record)
    }
}
