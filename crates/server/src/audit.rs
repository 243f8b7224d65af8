//! The audit log: every call, allowed or denied, as a hash-chained record.
//!
//! The chain itself (each entry's hash covers the previous entry's hash) is kept by the
//! store; this module defines what a record says. `gatehouse audit verify` recomputes the
//! chain.

use serde::{Deserialize, Serialize};

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
    /// Caller address.
    pub source_ip: String,
    /// AWS error code, when the call failed.
    pub error_code: Option<String>,
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
            source_ip: "127.0.0.1".into(),
            error_code: None,
        };
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(v["action"], "iam:GetUser");
        assert_eq!(v.as_object().map(|o| o.len()), Some(10));
    }
}
