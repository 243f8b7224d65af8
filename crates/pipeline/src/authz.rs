//! Authorization of every call by the policy engine, with compiled policy sets cached per
//! principal.
//!
//! A principal's policies (identity, group, boundary, account guardrails) are read from the
//! store once, compiled once, and reused until the store's generation moves: every write
//! bumps it, this node clears its cache at once, and other nodes learn of it through
//! PostgreSQL `LISTEN/NOTIFY` (or a one-second poll on SQLite). A policy that fails to
//! compile fails the whole principal closed: every request is denied and the cause logged.
//!
//! Just-in-time grants (`gatehouse-access`) are compiled with the principal: each activated
//! grant is the principal's identity policies plus the grant's policy (a managed policy, or
//! the right to `sts:AssumeRole` the role), with its window. A decision that the standing
//! policies do not allow is tried again under each grant whose window holds the decision's
//! time ([`CompiledPrincipal::decide_at`]), with the grant's condition keys in the context;
//! at the window's end it stops applying at once, on every node and in every session, with
//! no cleanup job: the time is compared at each decision, so a node that missed the expiry
//! cannot resurrect a grant.

use chrono::{DateTime, Utc};
use gatehouse_policy::{
    Decision, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use gatehouse_store::{ActiveElevation, PolicySource, PrincipalPolicies};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Why a principal's stored policies could not be compiled (the principal is then denied
/// everything: fail closed).
#[derive(Debug, thiserror::Error)]
pub enum PrincipalCompileError {
    /// A stored document does not parse.
    #[error("stored policy {policy} does not parse: {message}")]
    Parse {
        /// The policy's name (`user/alice/inline-name`, a managed policy's ARN...).
        policy: String,
        /// The parser's message.
        message: String,
    },
    /// The documents parse but do not compile into a policy set.
    #[error(transparent)]
    Compile(#[from] gatehouse_policy::CompileError),
}

/// A principal's policies, compiled.
#[derive(Debug)]
pub struct CompiledPrincipal {
    /// What the store said about the principal.
    pub info: PrincipalPolicies,
    identity: PolicySet,
    boundary: Option<PolicySet>,
    guardrails: Vec<PolicySet>,
    elevations: Vec<CompiledElevation>,
}

/// One activated grant: the principal's identity policies with the grant's policy.
#[derive(Debug)]
struct CompiledElevation {
    grant: ActiveElevation,
    identity: PolicySet,
}

/// The condition keys of a call made under an elevation.
pub const ELEVATION_ID: &str = "gatehouse:ElevationId";
/// The grant's justification.
pub const ELEVATION_JUSTIFICATION: &str = "gatehouse:ElevationJustification";
/// Who approved the grant (absent for one that needed no approval).
pub const ELEVATION_APPROVED_BY: &str = "gatehouse:ElevationApprovedBy";

/// Adds the condition keys of a call made under `grant` (`gatehouse:ElevationId`, its
/// justification and approver) to `request`: for a decision tried under a grant, and for
/// every call of a role session opened under one.
pub fn insert_elevation_keys(request: &mut Request, grant: &ActiveElevation) {
    let c = &mut request.context;
    c.insert(ELEVATION_ID, grant.request_id.as_str());
    c.insert(ELEVATION_JUSTIFICATION, grant.justification.as_str());
    if let Some(by) = &grant.approved_by {
        c.insert(ELEVATION_APPROVED_BY, by.as_str());
    }
}

/// The elevation id of a call from its record's deciding statement (as displayed: a
/// decision allowed under a grant names the grant as the policy of every statement,
/// `` `elevation:REQ.../...` ``, see [`CompiledPrincipal::decide_at`]; stored policy names
/// cannot hold a colon, so no other policy reads as one).
pub fn elevation_of_statement(statement: &str) -> Option<&str> {
    let at = statement.find("`elevation:")?;
    let rest = &statement[at + "`elevation:".len()..];
    let end = rest.find(['/', ':', '`']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|id| !id.is_empty())
}

/// The policy a grant adds: the managed policy's document, or for a role the right to
/// assume it (its trust policy must still admit the principal). `None`: it grants nothing
/// (a policy deleted since the grant).
fn grant_document(grant: &ActiveElevation) -> Option<String> {
    match grant.target_kind.as_str() {
        "policy" => grant.document.clone(),
        "role" => Some(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": grant.target_arn,
                }],
            })
            .to_string(),
        ),
        _ => None,
    }
}

/// A decision, and the grant it was allowed under (if any).
#[derive(Debug)]
pub struct ElevatedDecision<'a> {
    /// What the engine decided.
    pub decision: Decision,
    /// The grant the request was allowed under, when the standing policies did not allow
    /// it.
    pub elevation: Option<&'a ActiveElevation>,
    /// The request as decided (with the grant's condition keys when under one).
    pub request: Option<Request>,
}

impl CompiledPrincipal {
    /// Compiles the policies; any document that does not compile is an error (fail closed).
    pub fn compile(info: PrincipalPolicies) -> Result<CompiledPrincipal, PrincipalCompileError> {
        let named =
            |p: &gatehouse_store::SourcedPolicy| -> Result<NamedPolicy, PrincipalCompileError> {
                let name = source_name(&p.source);
                match PolicyDocument::parse(&p.document) {
                    Ok(doc) => Ok(NamedPolicy::new(name, doc)),
                    Err(e) => Err(PrincipalCompileError::Parse {
                        policy: name,
                        message: e.to_string(),
                    }),
                }
            };
        let identity = info
            .identity_policies
            .iter()
            .map(named)
            .collect::<Result<Vec<_>, _>>()?;
        let identity = PolicySet::new(PolicyType::Identity, identity)?;
        let boundary = match &info.boundary {
            Some(b) => Some(PolicySet::new(PolicyType::Boundary, [named(b)?])?),
            None => None,
        };
        let guardrails = if info.guardrails.is_empty() {
            Vec::new()
        } else {
            let docs = info
                .guardrails
                .iter()
                .map(named)
                .collect::<Result<Vec<_>, _>>()?;
            vec![PolicySet::new(PolicyType::Guardrail, docs)?]
        };
        let mut elevations = Vec::new();
        for grant in &info.elevations {
            let Some(text) = grant_document(grant) else {
                continue;
            };
            let name = format!("elevation:{}:{}", grant.request_id, grant.target_arn);
            let doc = PolicyDocument::parse(&text).map_err(|e| PrincipalCompileError::Parse {
                policy: name.clone(),
                message: e.to_string(),
            })?;
            let mut docs = info
                .identity_policies
                .iter()
                .map(named)
                .collect::<Result<Vec<_>, _>>()?;
            docs.push(NamedPolicy::new(name, doc));
            elevations.push(CompiledElevation {
                grant: grant.clone(),
                identity: PolicySet::new(PolicyType::Identity, docs)?,
            });
        }
        Ok(CompiledPrincipal {
            info,
            identity,
            boundary,
            guardrails,
            elevations,
        })
    }

    /// Decides `request` at `now`: with the standing policies, and when they do not allow
    /// it, under each grant whose window holds `now` (the grant's policy added, its keys in
    /// the context); the first grant that allows decides. Otherwise the standing decision.
    pub fn decide_at<'s>(
        &'s self,
        request: &Request,
        resource: Option<&PolicySet>,
        session: Option<&PolicySet>,
        now: DateTime<Utc>,
    ) -> ElevatedDecision<'s> {
        self.decide_at_for_some(request, resource, session, now, None)
    }

    /// [`CompiledPrincipal::decide_at`]; with `open_prefix`, whether the request is allowed
    /// for some values of the context keys starting with it (`Evaluation::decide_for_some`:
    /// the MCP gateway's listing).
    pub fn decide_at_for_some<'s>(
        &'s self,
        request: &Request,
        resource: Option<&PolicySet>,
        session: Option<&PolicySet>,
        now: DateTime<Utc>,
        open_prefix: Option<&str>,
    ) -> ElevatedDecision<'s> {
        let decide = |eval: &Evaluation<'_>, req: &Request| match open_prefix {
            Some(prefix) => eval.decide_for_some(req, prefix),
            None => eval.decide(req),
        };
        let standing = decide(&self.evaluation(resource, session), request);
        if standing.is_allow() {
            return ElevatedDecision {
                decision: standing,
                elevation: None,
                request: None,
            };
        }
        for e in self.active_elevations(now) {
            let mut elevated = request.clone();
            insert_elevation_keys(&mut elevated, &e.grant);
            let eval = Evaluation {
                identity: &e.identity,
                resource,
                boundary: self.boundary.as_ref(),
                guardrails: &self.guardrails,
                session,
            };
            let mut decision = decide(&eval, &elevated);
            if decision.is_allow() {
                // The deciding statements name the grant, so the call's audit record
                // carries the elevation id whichever statement allowed it.
                for s in &mut decision.statements {
                    if !s.policy.starts_with("elevation:") {
                        s.policy = format!("elevation:{}/{}", e.grant.request_id, s.policy).into();
                    }
                }
                return ElevatedDecision {
                    decision,
                    elevation: Some(&e.grant),
                    request: Some(elevated),
                };
            }
        }
        ElevatedDecision {
            decision: standing,
            elevation: None,
            request: None,
        }
    }

    /// The grants whose window holds `now`.
    fn active_elevations(&self, now: DateTime<Utc>) -> impl Iterator<Item = &CompiledElevation> {
        self.elevations
            .iter()
            .filter(move |e| e.grant.active_from <= now && now < e.grant.active_until)
    }

    /// The grant of this principal a call at `now` may run under, with the given id.
    pub fn elevation(&self, request_id: &str, now: DateTime<Utc>) -> Option<&ActiveElevation> {
        self.active_elevations(now)
            .map(|e| &e.grant)
            .find(|g| g.request_id == request_id)
    }

    /// The evaluation for this principal, with optional resource and session policies.
    pub fn evaluation<'a>(
        &'a self,
        resource: Option<&'a PolicySet>,
        session: Option<&'a PolicySet>,
    ) -> Evaluation<'a> {
        Evaluation {
            identity: &self.identity,
            resource,
            boundary: self.boundary.as_ref(),
            guardrails: &self.guardrails,
            session,
        }
    }

    /// Decides a request with the principal's own policies.
    pub fn decide(&self, request: &Request) -> Decision {
        self.evaluation(None, None).decide(request)
    }

    /// Adds the context keys AWS derives from the principal (`aws:PrincipalTag/...`,
    /// `aws:userid`, ...) unless the request already has them.
    pub fn fill_context(&self, request: &mut Request) {
        let ctx = &mut request.context;
        for t in &self.info.tags {
            let key = format!("aws:PrincipalTag/{}", t.key);
            if ctx.get(&key).is_none() {
                ctx.insert(key, t.value.as_str());
            }
        }
        if ctx.get("aws:userid").is_none() {
            ctx.insert("aws:userid", self.info.principal_id.as_str());
        }
        if ctx.get("aws:PrincipalArn").is_none() {
            ctx.insert("aws:PrincipalArn", self.info.principal_arn.as_str());
        }
        if ctx.get("aws:PrincipalAccount").is_none() {
            ctx.insert("aws:PrincipalAccount", self.info.account_id.as_str());
        }
    }
}

/// The name a decision cites for a stored policy.
pub fn source_name(source: &PolicySource) -> String {
    match source {
        PolicySource::Inline {
            policy_name,
            via_group: None,
        } => format!("inline:{policy_name}"),
        PolicySource::Inline {
            policy_name,
            via_group: Some(g),
        } => format!("group:{g}/inline:{policy_name}"),
        PolicySource::Managed {
            arn,
            via_group: None,
            ..
        } => arn.clone(),
        PolicySource::Managed {
            arn,
            via_group: Some(g),
            ..
        } => format!("group:{g}/{arn}"),
        PolicySource::Boundary { arn, .. } => arn.clone(),
        PolicySource::Guardrail { name } => format!("guardrail:{name}"),
    }
}

/// Compiled principals by ARN, valid for one store generation.
#[derive(Debug, Default)]
pub struct PolicyCache {
    inner: RwLock<CacheInner>,
    lookups: crate::counts::LookupCounts,
}

#[derive(Debug, Default)]
struct CacheInner {
    generation: i64,
    principals: HashMap<String, Arc<CompiledPrincipal>>,
}

impl PolicyCache {
    /// The cached principal, if compiled at the current generation.
    pub fn get(&self, arn: &str) -> Option<Arc<CompiledPrincipal>> {
        let found = self
            .inner
            .read()
            .ok()
            .and_then(|inner| inner.principals.get(arn).cloned());
        self.lookups.record(found.is_some());
        found
    }

    /// Hits and misses so far (for `/metrics`).
    pub fn lookups(&self) -> &crate::counts::LookupCounts {
        &self.lookups
    }

    /// Stores a compiled principal, unless the cache has moved to a newer generation.
    pub fn put(&self, arn: String, principal: Arc<CompiledPrincipal>) {
        if let Ok(mut inner) = self.inner.write()
            && principal.info.generation >= inner.generation
        {
            inner.principals.insert(arn, principal);
        }
    }

    /// Drops everything compiled before `generation`.
    pub fn invalidate(&self, generation: i64) {
        if let Ok(mut inner) = self.inner.write()
            && generation != inner.generation
        {
            inner.generation = generation;
            inner.principals.clear();
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.principals.clear();
        }
    }

    /// The generation the cache is at.
    pub fn generation(&self) -> i64 {
        self.inner.read().map_or(-1, |i| i.generation)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gatehouse_policy::DecisionKind;
    use gatehouse_store::SourcedPolicy;

    const ACCT: &str = "111122223333";
    const USER: &str = "arn:gatehouse:iam::111122223333:user/deployer";
    const DEPLOYMENT: &str = "arn:gatehouse:ai:local:111122223333:deployment/prod";
    const ROLE: &str = "arn:gatehouse:iam::111122223333:role/ops";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn policy(name: &str, doc: &str) -> SourcedPolicy {
        SourcedPolicy {
            source: PolicySource::Inline {
                policy_name: name.into(),
                via_group: None,
            },
            document: doc.into(),
        }
    }

    fn grant(id: &str, kind: &str, target: &str, doc: Option<&str>) -> ActiveElevation {
        ActiveElevation {
            request_id: id.into(),
            target_kind: kind.into(),
            target_arn: target.into(),
            document: doc.map(str::to_owned),
            active_from: at("2030-01-01T10:00:00Z"),
            active_until: at("2030-01-01T11:00:00Z"),
            justification: "hotfix".into(),
            approved_by: Some("arn:gatehouse:iam::111122223333:user/alice".into()),
        }
    }

    fn principal(
        identity: Vec<SourcedPolicy>,
        guardrails: Vec<SourcedPolicy>,
        elevations: Vec<ActiveElevation>,
    ) -> CompiledPrincipal {
        CompiledPrincipal::compile(PrincipalPolicies {
            account_id: ACCT.into(),
            principal_arn: USER.into(),
            principal_id: "AIDADEPLOYER".into(),
            principal_name: "deployer".into(),
            tags: vec![],
            groups: vec![],
            group_arns: vec![],
            identity_policies: identity,
            boundary: None,
            guardrails,
            elevations,
            generation: 1,
        })
        .unwrap()
    }

    const UPDATE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:UpdateDeployment","Resource":"*"}]}"#;
    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    /// The grant applies exactly inside its window: not a millisecond before its start,
    /// not at its end.
    #[test]
    fn a_policy_grant_applies_only_inside_its_window() {
        let p = principal(
            vec![],
            vec![],
            vec![grant("REQ1", "policy", "arn:p", Some(UPDATE))],
        );
        let req = Request::new(USER, "ai:UpdateDeployment", DEPLOYMENT);
        let cases = [
            ("2030-01-01T09:59:59.999Z", DecisionKind::ImplicitDeny, None),
            ("2030-01-01T10:00:00Z", DecisionKind::Allow, Some("REQ1")),
            (
                "2030-01-01T10:59:59.999Z",
                DecisionKind::Allow,
                Some("REQ1"),
            ),
            ("2030-01-01T11:00:00Z", DecisionKind::ImplicitDeny, None),
        ];
        for (now, kind, elevation) in cases {
            let d = p.decide_at(&req, None, None, at(now));
            assert_eq!(d.decision.decision, kind, "{now}");
            assert_eq!(
                d.elevation.map(|e| e.request_id.as_str()),
                elevation,
                "{now}"
            );
            if let Some(r) = d.request {
                assert!(r.context.get(ELEVATION_ID).is_some());
                assert!(r.context.get(ELEVATION_APPROVED_BY).is_some());
            }
        }
        // Other actions gain nothing from the grant.
        let other = Request::new(USER, "ai:DeleteDeployment", DEPLOYMENT);
        let d = p.decide_at(&other, None, None, at("2030-01-01T10:30:00Z"));
        assert_eq!(d.decision.decision, DecisionKind::ImplicitDeny);
    }

    #[test]
    fn the_elevation_id_is_read_back_from_a_deciding_statement() {
        for (statement, id) in [
            (
                "identity-based policy `elevation:REQ1/inline:p` statement #0",
                Some("REQ1"),
            ),
            (
                "identity-based policy `elevation:REQ2:arn:gatehouse:iam::111122223333:policy/deploy` statement `Deploy`",
                Some("REQ2"),
            ),
            ("identity-based policy `elevation:` statement #0", None),
            ("identity-based policy `inline:p` statement #0", None),
            ("root", None),
        ] {
            assert_eq!(elevation_of_statement(statement), id, "{statement}");
        }
    }

    /// "Deny ai:UpdateGuardrail unless under an approved elevation": standing rights are
    /// denied by the guardrail; under a grant the condition key lifts the deny.
    #[test]
    fn policy_can_require_an_elevation() {
        let guardrail = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Deny","Action":"ai:UpdateGuardrail","Resource":"*",
             "Condition":{"Null":{"gatehouse:ElevationApprovedBy":"true"}}}]}"#;
        let only_guardrails = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:UpdateGuardrail","Resource":"*"}]}"#;
        let with = principal(
            vec![policy("standing", ALLOW_ALL)],
            vec![policy("g", guardrail)],
            vec![grant("REQ2", "policy", "arn:p", Some(only_guardrails))],
        );
        let req = Request::new(USER, "ai:UpdateGuardrail", "*");
        let outside = with.decide_at(&req, None, None, at("2030-01-01T12:00:00Z"));
        assert_eq!(outside.decision.decision, DecisionKind::ExplicitDeny);
        let inside = with.decide_at(&req, None, None, at("2030-01-01T10:30:00Z"));
        assert_eq!(inside.decision.decision, DecisionKind::Allow);
        assert_eq!(inside.elevation.unwrap().request_id, "REQ2");
    }

    /// A role grant is the right to assume that role, nothing else; a grant whose policy
    /// is gone grants nothing.
    #[test]
    fn a_role_grant_is_the_right_to_assume_the_role() {
        let p = principal(
            vec![],
            vec![],
            vec![
                grant("REQ3", "role", ROLE, None),
                grant("REQ4", "policy", "arn:gone", None),
            ],
        );
        let now = at("2030-01-01T10:30:00Z");
        let assume = Request::new(USER, "sts:AssumeRole", ROLE);
        assert!(p.decide_at(&assume, None, None, now).decision.is_allow());
        let other_role = Request::new(
            USER,
            "sts:AssumeRole",
            "arn:gatehouse:iam::111122223333:role/admin",
        );
        assert!(
            !p.decide_at(&other_role, None, None, now)
                .decision
                .is_allow()
        );
        let update = Request::new(USER, "ai:UpdateDeployment", DEPLOYMENT);
        assert!(!p.decide_at(&update, None, None, now).decision.is_allow());
        assert!(p.elevation("REQ3", now).is_some());
        assert!(p.elevation("REQ3", at("2030-01-01T11:00:00Z")).is_none());
    }
}
