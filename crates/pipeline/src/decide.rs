//! The decide step: the engine's request for a principal, with the context keys every
//! face sets, and the decision — with, for a denial, the sealed message AWS calls an
//! encoded authorization failure message.
//!
//! Every face sets the same global keys, in one place: the source address and listener
//! ([`Origin`]: `aws:SourceIp`, `aws:SourceVpce`, `aws:SecureTransport`), the time
//! (`aws:CurrentTime`, `aws:EpochTime`), the session's keys (session tags,
//! `aws:TokenIssueTime`, `aws:MultiFactorAuth*`, `aws:SourceIdentity`,
//! `aws:PrincipalType`), then the face's own keys (`iam:PolicyARN`, `ai:ModelId`, ...), and
//! last the keys derived from the principal (its tags, `aws:userid`, `aws:PrincipalArn`),
//! which never replace a key already set.

use crate::authenticate::Principal;
use crate::core::Core;
use crate::identity::Caller;
use crate::origin::Origin;
use chrono::{DateTime, Utc};
use gatehouse_policy::{ContextValue, Decision, DecisionKind, Request};

/// What the engine decided, and the request it decided.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The decision (kind, deciding statements, what was missing).
    pub decision: Decision,
    /// The request, with every context key the decision saw.
    pub request: Request,
}

impl Decided {
    /// Whether the call is allowed.
    pub fn allowed(&self) -> bool {
        self.decision.decision == DecisionKind::Allow
    }

    /// The deciding statement (the first), for the audit record.
    pub fn statement(&self) -> Option<String> {
        self.decision.statements.first().map(ToString::to_string)
    }

    /// The decision for the audit record.
    pub fn audit_decision(&self) -> gatehouse_audit::Decision {
        self.decision.decision.into()
    }

    /// The denial's details sealed for `sts:DecodeAuthorizationMessage` (see
    /// [`Core::seal_denial`]).
    pub fn sealed_denial(&self, core: &Core) -> Option<String> {
        core.seal_denial(&self.request, &self.decision)
    }
}

impl Core {
    /// A denial's details (matched statements, what was missing, the request context) in
    /// the shape of AWS's decoded authorization messages, sealed with the session key ring
    /// so that only `sts:DecodeAuthorizationMessage` (or an operator with the store)
    /// reveals them. Every face's denials carry one. `None` if sealing fails.
    pub fn seal_denial(&self, req: &Request, decision: &Decision) -> Option<String> {
        let conditions: Vec<serde_json::Value> = req
            .context
            .iter()
            .map(|(k, v)| {
                let values: Vec<serde_json::Value> = v
                    .as_slice()
                    .iter()
                    .map(|s| serde_json::json!({"value": s}))
                    .collect();
                serde_json::json!({"key": k, "values": {"items": values}})
            })
            .collect();
        let message = serde_json::json!({
            "allowed": false,
            "explicitDeny": decision.decision == DecisionKind::ExplicitDeny,
            "decision": decision,
            "matchedStatements": {"items": decision
                .statements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()},
            "failures": {"items": decision.missing.iter().map(ToString::to_string).collect::<Vec<_>>()},
            "context": {
                "principal": {"arn": req.principal},
                "action": req.action,
                "resource": req.resource,
                "conditions": {"items": conditions},
            },
        });
        gatehouse_auth::session::seal_message(&self.ring(), message.to_string().as_bytes()).ok()
    }
}

/// The engine's request for `action` on `resource` by `principal`, with every key the
/// module docs list (for a face that evaluates it with more policies than the
/// principal's, as the STS does with a role's trust policy).
pub fn request<K, V>(
    principal: &Principal,
    origin: &Origin,
    now: DateTime<Utc>,
    action: &str,
    resource: &str,
    keys: impl IntoIterator<Item = (K, V)>,
) -> Request
where
    K: Into<String>,
    V: Into<ContextValue>,
{
    let mut req = Request::new(principal.arn.clone(), action, resource);
    let c = &mut req.context;
    origin.fill_context(c);
    c.insert(
        "aws:CurrentTime",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    c.insert("aws:EpochTime", now.timestamp().to_string());
    if let Some(s) = &principal.session {
        s.fill_context(&mut req, now);
    }
    for (k, v) in keys {
        req.context.insert(k, v);
    }
    if let Some(p) = &principal.policies {
        p.fill_context(&mut req);
    }
    req
}

/// Decides `action` on `resource` for `principal`, at `now`, from `origin`, with the
/// face's own context `keys`. Root is allowed (not subject to policy, as in AWS); an
/// unsigned caller is denied everything. Needs no [`Core`]: a stream's watcher task decides
/// again with what it holds.
pub fn decide<K, V>(
    principal: &Principal,
    origin: &Origin,
    now: DateTime<Utc>,
    action: &str,
    resource: &str,
    keys: impl IntoIterator<Item = (K, V)>,
) -> Decided
where
    K: Into<String>,
    V: Into<ContextValue>,
{
    let mut req = request(principal, origin, now, action, resource, keys);
    let decision = match (&principal.policies, &principal.caller) {
        (Some(p), _) => {
            // Standing policies, then any just-in-time grant active now (whose keys the
            // returned request then carries).
            let d = p.decide_at(&req, None, principal.session_policy(), now);
            if let Some(elevated) = d.request {
                req = elevated;
            }
            d.decision
        }
        (None, Caller::Anonymous { .. }) => Decision {
            decision: DecisionKind::ImplicitDeny,
            statements: Vec::new(),
            missing: None,
        },
        (None, _) => Decision {
            decision: DecisionKind::Allow,
            statements: Vec::new(),
            missing: None,
        },
    };
    Decided {
        decision,
        request: req,
    }
}
