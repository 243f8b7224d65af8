//! The one audit record of Gatehouse.
//!
//! Every face (the Query API of the control plane, the AI gateway, and the faces to come)
//! writes an [`AuditRecord`] per call into the store's hash-chained log; the CLI prints
//! them and the analyzer reads them back (usage against grants, generated policies). One
//! type for all of them, so a field cannot mean one thing to the writer and another to the
//! reader, and the decision is a [`Decision`], not a string to compare.
//!
//! The JSON is what the log has always held: the fields common to every face, then the
//! face's own ([`FaceDetail`]). Readers accept records with only the common fields
//! (`time`, `principal`, `action`, `decision`), as older tools and hand-written fixtures
//! have them.
//!
//! It must not know the store, HTTP, or how a face decides; it depends on the policy crate
//! only for the engine's [`gatehouse_policy::DecisionKind`].

use serde::{Deserialize, Serialize};

/// What was decided for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// A policy allowed the call (or the bootstrap root made it).
    Allow,
    /// A statement denied it.
    ExplicitDeny,
    /// Nothing allowed it.
    ImplicitDeny,
    /// The call failed before a decision (bad signature, malformed input, store failure).
    Error,
}

impl Decision {
    /// The word written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "Allow",
            Decision::ExplicitDeny => "ExplicitDeny",
            Decision::ImplicitDeny => "ImplicitDeny",
            Decision::Error => "Error",
        }
    }

    /// The decision a face reports by the engine's word (`Allow`, `ExplicitDeny`,
    /// `ImplicitDeny`); `None` for anything else (recorded as [`Decision::Error`]).
    pub fn of_engine_word(word: &str) -> Option<Decision> {
        match word {
            "Allow" => Some(Decision::Allow),
            "ExplicitDeny" => Some(Decision::ExplicitDeny),
            "ImplicitDeny" => Some(Decision::ImplicitDeny),
            _ => None,
        }
    }

    /// Whether the call was allowed.
    pub fn is_allow(self) -> bool {
        self == Decision::Allow
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl From<gatehouse_policy::DecisionKind> for Decision {
    fn from(d: gatehouse_policy::DecisionKind) -> Decision {
        match d {
            gatehouse_policy::DecisionKind::Allow => Decision::Allow,
            gatehouse_policy::DecisionKind::ExplicitDeny => Decision::ExplicitDeny,
            gatehouse_policy::DecisionKind::ImplicitDeny => Decision::ImplicitDeny,
        }
    }
}

/// One audited call, as every face writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 time, milliseconds, UTC.
    pub time: String,
    /// Request id (the `x-request-id` header / the Query API's `RequestId`).
    #[serde(default)]
    pub request_id: String,
    /// Caller ARN (empty when unauthenticated).
    pub principal: String,
    /// `iam:CreateUser`, `ai:InvokeModel`, ... (the requested action for calls that ended
    /// before a decision).
    pub action: String,
    /// Resource ARN (or `*`; empty when the call ended before naming one).
    #[serde(default)]
    pub resource: String,
    /// What was decided.
    pub decision: Decision,
    /// The deciding statement, when there was one.
    #[serde(default)]
    pub statement: Option<String>,
    /// Caller address (`aws:SourceIp`); `null` when it could not be determined (see
    /// `source_unknown_via`).
    #[serde(default)]
    pub source_ip: Option<String>,
    /// When the source could not be determined: the trusted proxy whose
    /// `X-Forwarded-For` header could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_unknown_via: Option<String>,
    /// The error code the caller got (AWS's for the Query API, OpenAI's for `/v1`), when
    /// the call failed or was refused.
    #[serde(default)]
    pub error_code: Option<String>,
    /// The just-in-time grant (access request `REQ...`) the call was made under — allowed
    /// by it, or in a role session opened under it — or that a `gatehouse:` access step
    /// acted on. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_id: Option<String>,
    /// What only one face records.
    #[serde(flatten)]
    pub face: FaceDetail,
}

impl AuditRecord {
    /// Whether the call was allowed.
    pub fn allowed(&self) -> bool {
        self.decision.is_allow()
    }

    /// The record as one JSON line of the log.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// The face-specific part of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FaceDetail {
    /// A model call, listing or job of the AI gateway.
    Gateway(GatewayDetail),
    /// A Query API call of the control plane (IAM, STS, `ai` actions).
    Control(ControlDetail),
}

impl Default for FaceDetail {
    fn default() -> FaceDetail {
        FaceDetail::Control(ControlDetail::default())
    }
}

/// What a control-plane record adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlDetail {
    /// The access key the request was signed with (claimed, when authentication failed).
    #[serde(default)]
    pub access_key_id: Option<String>,
}

/// What a gateway record adds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayDetail {
    /// Model id.
    #[serde(default)]
    pub model: Option<String>,
    /// Listener name (`aws:SourceVpce`).
    pub listener: String,
    /// HTTP status answered.
    pub status: u16,
    /// Streamed answer.
    pub stream: bool,
    /// Tokens from the upstream's `usage`.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Tokens from the upstream's `usage`.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// Tokens from the upstream's `usage`.
    #[serde(default)]
    pub total_tokens: Option<u64>,
    /// Tokens reserved in the caller's token budgets at admission.
    #[serde(default)]
    pub reserved_tokens: Option<u64>,
    /// Tokens the call was charged.
    #[serde(default)]
    pub charged_tokens: Option<u64>,
    /// Where the charge comes from: `measured` (the upstream's usage), `estimated` (from
    /// the text), `reserved` (the reservation: the upstream may have generated unseen
    /// tokens), `none` (nothing was generated).
    #[serde(default)]
    pub usage_source: Option<String>,
    /// Milliseconds from request to the end of the answer.
    pub latency_ms: f64,
    /// An MCP request's detail (server, method, tool, argument digest, client session,
    /// upstream outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<Box<serde_json::Value>>,
    /// A retrieval request's detail (knowledge base, query digest, returned document ids,
    /// refused and fetched counts; or a batch decision's person and counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Box<serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn common() -> AuditRecord {
        AuditRecord {
            time: "2026-12-03T12:00:00.000Z".into(),
            request_id: "r1".into(),
            principal: "arn:gatehouse:iam::111122223333:user/alice".into(),
            action: "iam:CreateUser".into(),
            resource: "arn:gatehouse:iam::111122223333:user/bob".into(),
            decision: Decision::ImplicitDeny,
            statement: None,
            source_ip: Some("127.0.0.1".into()),
            source_unknown_via: None,
            error_code: Some("AccessDenied".into()),
            elevation_id: None,
            face: FaceDetail::default(),
        }
    }

    /// The control plane's record keeps the fields it always wrote, `access_key_id: null`
    /// included, and reads back the same.
    #[test]
    fn a_control_record_round_trips_with_its_historic_fields() {
        let r = common();
        let v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"time": "2026-12-03T12:00:00.000Z", "request_id": "r1",
                "principal": "arn:gatehouse:iam::111122223333:user/alice",
                "action": "iam:CreateUser",
                "resource": "arn:gatehouse:iam::111122223333:user/bob",
                "decision": "ImplicitDeny", "statement": null, "source_ip": "127.0.0.1",
                "error_code": "AccessDenied", "access_key_id": null})
        );
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    /// A gateway record reads back as a gateway record (not as a control one that dropped
    /// its fields).
    #[test]
    fn a_gateway_record_round_trips_as_a_gateway_record() {
        let r = AuditRecord {
            action: "ai:InvokeModel".into(),
            decision: Decision::Allow,
            error_code: None,
            source_unknown_via: Some("10.0.0.1".into()),
            elevation_id: Some("REQ1".into()),
            face: FaceDetail::Gateway(GatewayDetail {
                model: Some("llama".into()),
                listener: "default".into(),
                status: 200,
                stream: true,
                prompt_tokens: Some(3),
                completion_tokens: Some(4),
                total_tokens: Some(7),
                reserved_tokens: Some(16),
                charged_tokens: Some(7),
                usage_source: Some("measured".into()),
                latency_ms: 1.5,
                mcp: None,
                retrieval: None,
            }),
            ..common()
        };
        let text = r.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["listener"], "default");
        assert_eq!(v["source_unknown_via"], "10.0.0.1");
        assert_eq!(v["elevation_id"], "REQ1");
        assert!(v.get("access_key_id").is_none(), "{v}");
        let back: AuditRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    /// What readers have always accepted: only the common fields.
    #[test]
    fn a_record_with_only_the_common_fields_reads() {
        let r: AuditRecord = serde_json::from_value(json!({
            "time": "2026-11-20T10:00:00.000Z", "principal": "p", "action": "ai:InvokeModel",
            "decision": "Allow"}))
        .unwrap();
        assert!(r.allowed());
        assert_eq!(r.resource, "");
        assert_eq!(r.face, FaceDetail::default());
    }

    /// A decision that is none of the four is not a record (fail closed: it is not read as
    /// a denial nor as an allow).
    #[test]
    fn an_unknown_decision_is_refused() {
        let r = serde_json::from_value::<AuditRecord>(json!({
            "time": "t", "principal": "p", "action": "a", "decision": "Maybe"}));
        assert!(r.is_err());
    }

    /// The CLI lays records out in columns: the decision pads like a string.
    #[test]
    fn a_decision_pads_like_its_word() {
        assert_eq!(format!("[{:<14}]", Decision::Allow), "[Allow         ]");
    }

    #[test]
    fn the_engine_decision_maps_one_to_one() {
        use gatehouse_policy::DecisionKind as K;
        for (k, d) in [
            (K::Allow, Decision::Allow),
            (K::ExplicitDeny, Decision::ExplicitDeny),
            (K::ImplicitDeny, Decision::ImplicitDeny),
        ] {
            assert_eq!(Decision::from(k), d);
            assert_eq!(d.as_str(), k.as_str());
        }
    }
}
