//! AWS's policy evaluation logic across policy types, and the decisions it produces.
//!
//! The order, from AWS's "Policy evaluation logic":
//! 1. an explicit `Deny` in any applicable policy decides (`ExplicitDeny`);
//! 2. every level of organization guardrails must have a statement that allows;
//! 3. a resource-based policy that allows the caller's own ARN (a user or a role session)
//!    grants on its own within the account; one that allows the caller's role still needs
//!    the boundary and the session policy; one that allows the caller's account delegates
//!    to the identity policies; across accounts both sides must allow;
//! 4. otherwise an identity-based policy must allow;
//! 5. the permissions boundary, when there is one, must allow;
//! 6. the session policy, when there is one, must allow.
//!
//! Anything else is an `ImplicitDeny`. A decision names the statements that decided it and,
//! for a deny, what was missing.

use crate::model::Effect;
use crate::request::{Prepared, Request};
use crate::set::{PolicySet, PrincipalMatch, Scan, StatementRef};
use serde::Serialize;
use std::fmt;

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum DecisionKind {
    /// Every policy that must allow does, and nothing denies.
    Allow,
    /// A statement with `"Effect": "Deny"` matched.
    ExplicitDeny,
    /// Nothing denies, but something that must allow does not.
    ImplicitDeny,
}

impl DecisionKind {
    /// The name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "Allow",
            DecisionKind::ExplicitDeny => "ExplicitDeny",
            DecisionKind::ImplicitDeny => "ImplicitDeny",
        }
    }

    /// True for `Allow`.
    pub fn is_allow(self) -> bool {
        self == DecisionKind::Allow
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an implicit deny lacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Missing {
    /// No identity-based policy (nor a resource-based policy) allows the request.
    IdentityAllow,
    /// The resource is in another account and its resource-based policy does not allow.
    ResourceAllow,
    /// No statement in this level of guardrails allows (0-based level).
    GuardrailAllow {
        /// The level, 0-based.
        level: usize,
    },
    /// The permissions boundary does not allow.
    BoundaryAllow,
    /// The session policy does not allow.
    SessionAllow,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::IdentityAllow => {
                f.write_str("no identity-based or resource-based policy allows the request")
            }
            Missing::ResourceAllow => f.write_str(
                "the resource is in another account and its resource-based policy does not allow the request",
            ),
            Missing::GuardrailAllow { level } => {
                write!(f, "no guardrail at level {} allows the request", level + 1)
            }
            Missing::BoundaryAllow => f.write_str("the permissions boundary does not allow the request"),
            Missing::SessionAllow => f.write_str("the session policy does not allow the request"),
        }
    }
}

impl Missing {
    /// A stable code for machines.
    pub fn code(self) -> &'static str {
        match self {
            Missing::IdentityAllow => "identity_allow",
            Missing::ResourceAllow => "resource_allow",
            Missing::GuardrailAllow { .. } => "guardrail_allow",
            Missing::BoundaryAllow => "boundary_allow",
            Missing::SessionAllow => "session_allow",
        }
    }
}

impl Serialize for Missing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", self.code())?;
        if let Missing::GuardrailAllow { level } = self {
            m.serialize_entry("level", level)?;
        }
        m.serialize_entry("message", &self.to_string())?;
        m.end()
    }
}

/// A decision and the statements behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `Allow`, `ExplicitDeny` or `ImplicitDeny`.
    pub decision: DecisionKind,
    /// For `ExplicitDeny`, the deny statement; for `Allow`, one allowing statement from each
    /// policy type that had to allow.
    pub statements: Vec<StatementRef>,
    /// For `ImplicitDeny`, what was missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Missing>,
}

impl Decision {
    fn deny(missing: Missing) -> Decision {
        Decision {
            decision: DecisionKind::ImplicitDeny,
            statements: Vec::new(),
            missing: Some(missing),
        }
    }

    /// True for `Allow`.
    pub fn is_allow(&self) -> bool {
        self.decision.is_allow()
    }
}

/// The full account of a decision: every statement that matched, and the statements that
/// nearly matched (action, resource and principal did, conditions did not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// Every statement that matched the request, of every policy type.
    pub matched: Vec<StatementRef>,
    /// Statements that would have matched but for their conditions.
    pub near_misses: Vec<NearMiss>,
}

/// A statement whose conditions kept it from matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    /// The statement.
    pub statement: StatementRef,
    /// The conditions that were false, as `Operator key`.
    pub failed_conditions: Vec<String>,
}

/// The policies that apply to one request, by type. Build one per principal (and resource),
/// then decide any number of requests with it.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'a> {
    /// The principal's identity-based policies.
    pub identity: &'a PolicySet,
    /// The resource's resource-based policy (or a role's trust policy).
    pub resource: Option<&'a PolicySet>,
    /// The principal's permissions boundary.
    pub boundary: Option<&'a PolicySet>,
    /// Guardrail levels, outermost first; at every level some statement must allow.
    pub guardrails: &'a [PolicySet],
    /// The session policy of a role session.
    pub session: Option<&'a PolicySet>,
}

impl<'a> Evaluation<'a> {
    /// Only identity-based policies.
    pub fn identity(identity: &'a PolicySet) -> Evaluation<'a> {
        Evaluation {
            identity,
            resource: None,
            boundary: None,
            guardrails: &[],
            session: None,
        }
    }

    /// Decides a request, using the compiled indexes.
    pub fn decide(&self, request: &Request) -> Decision {
        self.run(&self.prepare(request), Scan::Indexed)
    }

    /// Decides whether the request is allowed for *some* values of the context keys that
    /// start with `open_key_prefix` (ASCII case ignored), which the request does not carry
    /// yet: a condition on such a key is taken as met in an `Allow` statement and as unmet
    /// in a `Deny`, and everything else is decided as [`Evaluation::decide`] does. An
    /// over-approximation on purpose: an `Allow` and a `Deny` conditioned on the same open
    /// key may leave no value that is allowed (the MCP gateway lists a tool when a call of
    /// it may be allowed for some arguments, and decides each call on its arguments).
    pub fn decide_for_some(&self, request: &Request, open_key_prefix: &str) -> Decision {
        let mut req = self.prepare(request);
        req.open_key_prefix = Some(open_key_prefix);
        self.run(&req, Scan::Indexed)
    }

    /// Decides a request by scanning every statement: the reference implementation that
    /// [`Evaluation::decide`] must agree with (used by tests and differential checks).
    pub fn decide_linear(&self, request: &Request) -> Decision {
        self.run(&self.prepare(request), Scan::Linear)
    }

    /// Decides and explains: every matching statement and every near miss.
    pub fn explain(&self, request: &Request) -> Explanation {
        let req = self.prepare(request);
        let decision = self.run(&req, Scan::Indexed);
        let mut matched = Vec::new();
        let mut near_misses = Vec::new();
        for set in self.sets() {
            for effect in [Effect::Deny, Effect::Allow] {
                matched.extend(
                    set.all_matches(&req, effect)
                        .into_iter()
                        .map(|s| s.origin.clone()),
                );
                near_misses.extend(set.near_misses(&req, effect).into_iter().map(
                    |(st, failed)| {
                        NearMiss {
                            statement: st.origin.clone(),
                            failed_conditions: failed
                                .iter()
                                .map(|c| format!("{} {}", c.op, c.key))
                                .collect(),
                        }
                    },
                ));
            }
        }
        Explanation {
            decision,
            matched,
            near_misses,
        }
    }

    fn prepare<'r>(&self, request: &'r Request) -> Prepared<'r> {
        let mut req = Prepared::new(request);
        req.has_boundary = self.boundary.is_some();
        req
    }

    fn sets(&self) -> impl Iterator<Item = &'a PolicySet> {
        std::iter::once(self.identity)
            .chain(self.resource)
            .chain(self.boundary)
            .chain(self.guardrails.iter())
            .chain(self.session)
    }

    fn run(&self, req: &Prepared<'_>, scan: Scan) -> Decision {
        // 1. An explicit deny anywhere decides.
        for set in self.sets() {
            if let Some((st, _)) = set.first_match(req, Effect::Deny, scan) {
                return Decision {
                    decision: DecisionKind::ExplicitDeny,
                    statements: vec![st.origin.clone()],
                    missing: None,
                };
            }
        }
        let mut statements = Vec::new();
        // 2. Every guardrail level must allow.
        for (level, set) in self.guardrails.iter().enumerate() {
            match set.first_match(req, Effect::Allow, scan) {
                Some((st, _)) => statements.push(st.origin.clone()),
                None => return Decision::deny(Missing::GuardrailAllow { level }),
            }
        }
        // 3. Resource-based policy.
        let same_account = req.resource_account() == req.principal_account;
        let resource_allow = self
            .resource
            .and_then(|set| set.best_match(req, Effect::Allow, scan));
        if same_account
            && let Some((st, PrincipalMatch::Direct | PrincipalMatch::Wildcard)) = resource_allow
        {
            statements.push(st.origin.clone());
            return Decision {
                decision: DecisionKind::Allow,
                statements,
                missing: None,
            };
        }
        // 4. Identity-based policies (or, within the account, a resource policy naming the
        //    caller's role).
        let identity_allow = self.identity.first_match(req, Effect::Allow, scan);
        if same_account {
            match (identity_allow, resource_allow) {
                (Some((st, _)), _) | (None, Some((st, PrincipalMatch::Role))) => {
                    statements.push(st.origin.clone());
                }
                _ => return Decision::deny(Missing::IdentityAllow),
            }
        } else {
            let Some((rst, _)) = resource_allow else {
                return Decision::deny(Missing::ResourceAllow);
            };
            let Some((ist, _)) = identity_allow else {
                return Decision::deny(Missing::IdentityAllow);
            };
            statements.push(rst.origin.clone());
            statements.push(ist.origin.clone());
        }
        // 5. Permissions boundary.
        if let Some(b) = self.boundary {
            match b.first_match(req, Effect::Allow, scan) {
                Some((st, _)) => statements.push(st.origin.clone()),
                None => return Decision::deny(Missing::BoundaryAllow),
            }
        }
        // 6. Session policy.
        if let Some(s) = self.session {
            match s.first_match(req, Effect::Allow, scan) {
                Some((st, _)) => statements.push(st.origin.clone()),
                None => return Decision::deny(Missing::SessionAllow),
            }
        }
        Decision {
            decision: DecisionKind::Allow,
            statements,
            missing: None,
        }
    }
}
