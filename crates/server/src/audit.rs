//! The audit log: every call, allowed or denied, as a hash-chained record.
//!
//! Each record's hash covers its fields and the previous record's hash, so editing or
//! deleting any record breaks every hash after it; `gatehouse audit verify` recomputes the
//! chain.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 time.
    pub time: String,
    /// Request id.
    pub request_id: String,
    /// Caller ARN (empty when unauthenticated).
    pub principal: String,
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

impl AuditRecord {
    /// The chain hash of this record after `prev` (hex SHA-256).
    pub fn chain_hash(&self, prev: &str) -> String {
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update([0u8]);
        // serde_json of a struct is deterministic (field order is declaration order).
        h.update(serde_json::to_vec(self).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_hash_covers_every_field_and_the_previous_hash() {
        let r = AuditRecord {
            time: "t".into(),
            request_id: "r".into(),
            principal: "p".into(),
            action: "iam:GetUser".into(),
            resource: "*".into(),
            decision: "Allow".into(),
            statement: None,
            source_ip: "127.0.0.1".into(),
            error_code: None,
        };
        let h = r.chain_hash("");
        assert_eq!(h.len(), 64);
        assert_ne!(h, r.chain_hash("x"));
        let mut r2 = r.clone();
        r2.decision = "ImplicitDeny".into();
        assert_ne!(h, r2.chain_hash(""));
    }
}
