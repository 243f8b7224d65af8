//! A compiled, indexed set of policies of one type: what a decision reads.
//!
//! Compiling turns every statement into matchers with pre-parsed values, and files it in an
//! index by action (exact action, service prefix, or "could be anything") and, inside that,
//! by exact resource ARN. A decision looks up only the buckets its action and resource can
//! hit, so its cost does not grow with statements that cannot apply. The same set can also
//! be scanned linearly: that is the reference the index is tested against.

use crate::arn::ArnPattern;
use crate::condition::CompiledCondition;
use crate::model::{Effect, PolicyDocument, Principal, PrincipalKind, Statement};
use crate::operator::Operator;
use crate::pattern::{Glob, has_wildcard};
use crate::request::{Prepared, Request};
use crate::template;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// Where a policy sits in AWS's evaluation logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    /// Attached to the principal (inline, managed, through groups).
    Identity,
    /// Attached to the resource, naming principals (including role trust policies).
    Resource,
    /// The principal's permissions boundary.
    Boundary,
    /// An organization guardrail (SCP-like) on the principal's account.
    Guardrail,
    /// A session policy passed when the session was created.
    Session,
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyType::Identity => "identity-based policy",
            PolicyType::Resource => "resource-based policy",
            PolicyType::Boundary => "permissions boundary",
            PolicyType::Guardrail => "guardrail",
            PolicyType::Session => "session policy",
        })
    }
}

/// A policy document with the name decisions will cite.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPolicy {
    /// The name (policy name, ARN or file name).
    pub name: String,
    /// The document.
    pub document: PolicyDocument,
}

impl NamedPolicy {
    /// Pairs a name with a document.
    pub fn new(name: impl Into<String>, document: PolicyDocument) -> NamedPolicy {
        NamedPolicy {
            name: name.into(),
            document,
        }
    }
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StatementRef {
    /// The type of the policy it belongs to.
    pub policy_type: PolicyType,
    /// The policy's name.
    pub policy: Arc<str>,
    /// The statement's `Sid`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Arc<str>>,
    /// The statement's position in its policy (0-based).
    pub index: usize,
    /// The statement's effect.
    pub effect: Effect,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(
                f,
                "{} `{}` statement `{}`",
                self.policy_type, self.policy, sid
            ),
            None => write!(
                f,
                "{} `{}` statement #{}",
                self.policy_type, self.policy, self.index
            ),
        }
    }
}

/// A policy that could not be compiled (the same problems the validator reports as errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy `{policy}`: {path}: {message}")]
pub struct CompileError {
    /// The policy's name.
    pub policy: String,
    /// JSON path of the element at fault.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// How a resource-based policy's `Principal` matched the caller; decides whether the
/// resource policy can grant on its own (AWS's same-account rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PrincipalMatch {
    /// Through the caller's account (`123456789012` or `arn:...:root`): delegates to the
    /// account's own policies.
    Account,
    /// Through the role of a role session: the boundary and session policy still apply.
    Role,
    /// `*` or `NotPrincipal`.
    Wildcard,
    /// The caller's own ARN (user or session): grants on its own.
    Direct,
}

#[derive(Debug, Clone)]
struct ActionMatcher {
    negated: bool,
    globs: Box<[Glob]>,
}

impl ActionMatcher {
    fn matches(&self, action_lc: &str) -> bool {
        self.globs.iter().any(|g| g.matches(action_lc)) != self.negated
    }
}

#[derive(Debug, Clone)]
struct ResourceMatcher {
    negated: bool,
    patterns: Box<[ArnPattern]>,
}

#[derive(Debug, Clone)]
struct PrincipalMatcher {
    negated: bool,
    any: bool,
    entries: Box<[(PrincipalKind, ArnPattern)]>,
}

impl PrincipalMatcher {
    fn best_match(&self, req: &Prepared<'_>) -> Option<PrincipalMatch> {
        let found = if self.any {
            Some(PrincipalMatch::Wildcard)
        } else {
            self.entries
                .iter()
                .filter_map(|(kind, p)| entry_match(*kind, p, req))
                .max()
        };
        match (self.negated, found) {
            (false, m) => m,
            // NotPrincipal exempts only the principals it names: naming the account (or the
            // role of a session) does not exempt the account's users (AWS's NotPrincipal docs).
            (true, Some(PrincipalMatch::Direct | PrincipalMatch::Wildcard)) => None,
            (true, _) => Some(PrincipalMatch::Wildcard),
        }
    }
}

fn entry_match(kind: PrincipalKind, p: &ArnPattern, req: &Prepared<'_>) -> Option<PrincipalMatch> {
    let principal = req.req.principal.as_str();
    match kind {
        PrincipalKind::Aws => {
            if matches!(p, ArnPattern::Any) {
                return Some(PrincipalMatch::Wildcard);
            }
            if p.matches(req, principal) {
                return Some(PrincipalMatch::Direct);
            }
            if let Some(role) = req.role_arn()
                && p.matches(req, role)
            {
                return Some(PrincipalMatch::Role);
            }
            let account = req.principal_account;
            if account.is_empty() {
                return None;
            }
            match p {
                ArnPattern::Exact(e) if **e == *account => Some(PrincipalMatch::Account),
                ArnPattern::Exact(e) => {
                    let root = crate::request::Arn::parse(e)?;
                    (root.service == "iam" && root.resource == "root" && root.account == account)
                        .then_some(PrincipalMatch::Account)
                }
                _ => None,
            }
        }
        PrincipalKind::Service | PrincipalKind::Federated | PrincipalKind::CanonicalUser => {
            if matches!(p, ArnPattern::Any) {
                return Some(PrincipalMatch::Wildcard);
            }
            p.matches(req, principal).then_some(PrincipalMatch::Direct)
        }
    }
}

/// One statement, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledStatement {
    pub(crate) effect: Effect,
    actions: ActionMatcher,
    resources: Option<ResourceMatcher>,
    principal: Option<PrincipalMatcher>,
    pub(crate) conditions: Box<[CompiledCondition]>,
    pub(crate) origin: StatementRef,
}

impl CompiledStatement {
    fn compile(
        st: &Statement,
        index: usize,
        kind: PolicyType,
        name: &Arc<str>,
        substitute: bool,
    ) -> Result<CompiledStatement, CompileError> {
        let spath = format!("$.Statement[{index}]");
        let err = |path: String, message: String| CompileError {
            policy: name.to_string(),
            path,
            message,
        };
        let actions = ActionMatcher {
            negated: st.action.negated,
            globs: st
                .action
                .patterns
                .iter()
                .map(|a| Glob::new(&a.to_ascii_lowercase()))
                .collect(),
        };
        let resources = match &st.resource {
            Some(r) => {
                let mut patterns = Vec::with_capacity(r.patterns.len());
                for p in &r.patterns {
                    let parts = template::parse(p, substitute)
                        .map_err(|e| err(format!("{spath}.Resource"), e.0))?;
                    patterns.push(ArnPattern::new(&parts));
                }
                Some(ResourceMatcher {
                    negated: r.negated,
                    patterns: patterns.into(),
                })
            }
            None => None,
        };
        let principal = st.principal.as_ref().map(|pb| {
            let (any, entries) = match &pb.principal {
                Principal::Any => (true, Vec::new()),
                Principal::Typed(list) => (
                    false,
                    list.iter()
                        .flat_map(|(k, ids)| {
                            ids.iter().map(move |id| (*k, ArnPattern::from_static(id)))
                        })
                        .collect(),
                ),
            };
            PrincipalMatcher {
                negated: pb.negated,
                any,
                entries: entries.into(),
            }
        });
        let mut conditions = Vec::new();
        for block in &st.condition {
            let op = Operator::parse(&block.operator).map_err(|_| {
                err(
                    format!("{spath}.Condition.{}", block.operator),
                    format!("unknown condition operator `{}`", block.operator),
                )
            })?;
            for entry in &block.entries {
                let c = CompiledCondition::compile(op, &entry.key, &entry.values, substitute)
                    .map_err(|e| {
                        err(
                            format!("{spath}.Condition.{}.{}", block.operator, entry.key),
                            e.message,
                        )
                    })?;
                conditions.push(c);
            }
        }
        Ok(CompiledStatement {
            effect: st.effect,
            actions,
            resources,
            principal: if kind == PolicyType::Resource {
                principal
            } else {
                None
            },
            conditions: conditions.into(),
            origin: StatementRef {
                policy_type: kind,
                policy: name.clone(),
                sid: st.sid.as_deref().map(Arc::from),
                index,
                effect: st.effect,
            },
        })
    }

    fn action_matches(&self, req: &Prepared<'_>) -> bool {
        self.actions.matches(&req.action_lc)
    }

    fn resource_matches(&self, req: &Prepared<'_>) -> bool {
        match &self.resources {
            None => true,
            Some(r) => {
                let resource = req.req.resource.as_str();
                r.patterns
                    .iter()
                    .any(|p| p.matches_with(req, resource, || req.resource_segments()))
                    != r.negated
            }
        }
    }

    /// For resource policies: how the principal matched (`None`: it did not). Other policy
    /// types have no principal and always match as `Direct`.
    fn principal_match(&self, req: &Prepared<'_>, kind: PolicyType) -> Option<PrincipalMatch> {
        match (&self.principal, kind) {
            // "The NotPrincipal element with a Deny effect will always deny any IAM principal
            // that has a permissions boundary policy attached, regardless of the values
            // specified in the NotPrincipal element" (AWS's NotPrincipal docs).
            (Some(p), _) if p.negated && self.effect == Effect::Deny && req.has_boundary => {
                Some(PrincipalMatch::Wildcard)
            }
            (Some(p), _) => p.best_match(req),
            // A resource policy statement without Principal names no one: fail closed.
            (None, PolicyType::Resource) => None,
            (None, _) => Some(PrincipalMatch::Direct),
        }
    }

    /// Every condition holds (an unreadable request value fails closed, see
    /// [`CompiledCondition::holds`]).
    pub(crate) fn conditions_hold(&self, req: &Prepared<'_>) -> bool {
        self.conditions.iter().all(|c| c.holds(req, self.effect))
    }

    /// Full match; returns how the principal matched.
    fn matches(&self, req: &Prepared<'_>, kind: PolicyType) -> Option<PrincipalMatch> {
        if !self.action_matches(req) || !self.resource_matches(req) {
            return None;
        }
        let pm = self.principal_match(req, kind)?;
        self.conditions_hold(req).then_some(pm)
    }
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    by_resource: FxHashMap<Box<str>, Vec<u32>>,
    other: Vec<u32>,
}

fn push_unique(v: &mut Vec<u32>, id: u32) {
    if v.last() != Some(&id) {
        v.push(id);
    }
}

impl Bucket {
    fn insert(&mut self, id: u32, exact_resources: Option<&[&str]>) {
        match exact_resources {
            Some(list) => {
                for r in list {
                    push_unique(self.by_resource.entry((*r).into()).or_default(), id);
                }
            }
            None => push_unique(&mut self.other, id),
        }
    }

    /// Calls `f` on the ids of each list that may apply to `resource`, in ascending order;
    /// `f` returning true skips the rest of that list.
    fn for_each(&self, resource: &str, f: &mut impl FnMut(u32) -> bool) {
        let exact = self
            .by_resource
            .get(resource)
            .map_or(&[][..], Vec::as_slice);
        for list in [exact, &self.other] {
            for id in list {
                if f(*id) {
                    break;
                }
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct ActionIndex {
    exact: FxHashMap<Box<str>, Bucket>,
    by_service: FxHashMap<Box<str>, Bucket>,
    global: Bucket,
}

impl ActionIndex {
    fn insert(&mut self, id: u32, st: &CompiledStatement) {
        let exact_resources: Option<Vec<&str>> = match &st.resources {
            Some(r) if !r.negated => r.patterns.iter().map(ArnPattern::as_exact).collect(),
            _ => None,
        };
        let exact_resources = exact_resources.as_deref();
        if st.actions.negated {
            self.global.insert(id, exact_resources);
            return;
        }
        for g in st.actions.globs.iter() {
            match g {
                Glob::Exact(a) => self
                    .exact
                    .entry(a.clone())
                    .or_default()
                    .insert(id, exact_resources),
                other => {
                    let service = match other {
                        Glob::Prefix(p) => p.split_once(':').map(|(s, _)| s),
                        _ => None,
                    };
                    match service.filter(|s| !has_wildcard(s)) {
                        Some(s) => self
                            .by_service
                            .entry(s.into())
                            .or_default()
                            .insert(id, exact_resources),
                        None => self.global.insert(id, exact_resources),
                    }
                }
            }
        }
    }

    /// Calls `f` on each candidate statement, one candidate list at a time; the ids of a list
    /// ascend, and `f` returning true skips the rest of that list.
    fn for_each_candidate(&self, req: &Prepared<'_>, mut f: impl FnMut(u32) -> bool) {
        let resource = req.req.resource.as_str();
        if let Some(b) = self.exact.get(&*req.action_lc) {
            b.for_each(resource, &mut f);
        }
        if !self.by_service.is_empty()
            && let Some(b) = self.by_service.get(req.service_lc())
        {
            b.for_each(resource, &mut f);
        }
        self.global.for_each(resource, &mut f);
    }
}

/// How to find the statements that may apply: through the index, or by scanning all of
/// them (the reference the index is checked against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    Indexed,
    Linear,
}

/// Compiled policies of one type, ready to decide.
#[derive(Debug, Clone)]
pub struct PolicySet {
    kind: PolicyType,
    statements: Vec<CompiledStatement>,
    allow: ActionIndex,
    deny: ActionIndex,
    policies: usize,
}

impl PolicySet {
    /// Compiles policies of one type. Fails on the first policy that does not compile.
    pub fn new(
        kind: PolicyType,
        policies: impl IntoIterator<Item = NamedPolicy>,
    ) -> Result<PolicySet, CompileError> {
        let mut set = PolicySet {
            kind,
            statements: Vec::new(),
            allow: ActionIndex::default(),
            deny: ActionIndex::default(),
            policies: 0,
        };
        for p in policies {
            set.add(&p)?;
        }
        Ok(set)
    }

    /// An empty set of the given type.
    pub fn empty(kind: PolicyType) -> PolicySet {
        PolicySet {
            kind,
            statements: Vec::new(),
            allow: ActionIndex::default(),
            deny: ActionIndex::default(),
            policies: 0,
        }
    }

    fn add(&mut self, policy: &NamedPolicy) -> Result<(), CompileError> {
        let name: Arc<str> = Arc::from(policy.name.as_str());
        let substitute = policy.document.substitutes_variables();
        let compiled: Vec<CompiledStatement> = policy
            .document
            .statements
            .iter()
            .enumerate()
            .map(|(i, st)| CompiledStatement::compile(st, i, self.kind, &name, substitute))
            .collect::<Result<_, _>>()?;
        for st in compiled {
            let id = u32::try_from(self.statements.len()).map_err(|_| CompileError {
                policy: policy.name.clone(),
                path: "$".into(),
                message: "too many statements".into(),
            })?;
            match st.effect {
                Effect::Allow => self.allow.insert(id, &st),
                Effect::Deny => self.deny.insert(id, &st),
            }
            self.statements.push(st);
        }
        self.policies += 1;
        Ok(())
    }

    /// The type of the policies in this set.
    pub fn policy_type(&self) -> PolicyType {
        self.kind
    }

    /// The number of statements.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// True when the set has no statement.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The number of policies compiled into the set.
    pub fn policy_count(&self) -> usize {
        self.policies
    }

    /// Whether this set, on its own, allows the request: some `Allow` statement matches and
    /// no `Deny` does. For a resource-based policy (or a role's trust policy) an `Allow`
    /// counts however its `Principal` matched the caller — its own ARN, its role, its account
    /// (`123456789012` or `arn:...:root`), or `*` — and `NotPrincipal` exempts only what it
    /// names directly, exactly as [`crate::Evaluation`] reads it. This is the question "what
    /// does this one policy grant" (the analyzer's `policy diff`), not a full decision:
    /// whether an account-level grant also needs the account's identity policies is
    /// [`crate::Evaluation::decide`]'s business.
    pub fn allows(&self, request: &Request) -> bool {
        let req = Prepared::new(request);
        self.first_match(&req, Effect::Deny, Scan::Indexed)
            .is_none()
            && self
                .first_match(&req, Effect::Allow, Scan::Indexed)
                .is_some()
    }

    fn index(&self, effect: Effect) -> &ActionIndex {
        match effect {
            Effect::Allow => &self.allow,
            Effect::Deny => &self.deny,
        }
    }

    /// The first statement of `effect` that matches, with how its principal matched.
    pub(crate) fn first_match(
        &self,
        req: &Prepared<'_>,
        effect: Effect,
        scan: Scan,
    ) -> Option<(&CompiledStatement, PrincipalMatch)> {
        if scan == Scan::Indexed {
            return self.indexed_pick(req, effect, false);
        }
        let mut found = None;
        self.visit_linear(req, effect, |st, pm| {
            found = Some((st, pm));
            true
        });
        found
    }

    /// The matching statement of `effect` whose principal matched most directly.
    pub(crate) fn best_match(
        &self,
        req: &Prepared<'_>,
        effect: Effect,
        scan: Scan,
    ) -> Option<(&CompiledStatement, PrincipalMatch)> {
        if scan == Scan::Indexed {
            return self.indexed_pick(req, effect, true);
        }
        let mut best: Option<(&CompiledStatement, PrincipalMatch)> = None;
        self.visit_linear(req, effect, |st, pm| {
            if best.is_none_or(|(_, b)| pm > b) {
                best = Some((st, pm));
            }
            pm == PrincipalMatch::Direct
        });
        best
    }

    /// Every matching statement of `effect`, in policy order.
    pub(crate) fn all_matches(
        &self,
        req: &Prepared<'_>,
        effect: Effect,
    ) -> Vec<&CompiledStatement> {
        let mut out = Vec::new();
        self.visit_linear(req, effect, |st, _| {
            out.push(st);
            false
        });
        out
    }

    /// Statements whose action, resource and principal match but whose conditions do not,
    /// with the conditions that failed.
    pub(crate) fn near_misses(
        &self,
        req: &Prepared<'_>,
        effect: Effect,
    ) -> Vec<(&CompiledStatement, Vec<&CompiledCondition>)> {
        self.statements
            .iter()
            .filter(|st| st.effect == effect)
            .filter(|st| {
                st.action_matches(req)
                    && st.resource_matches(req)
                    && st.principal_match(req, self.kind).is_some()
            })
            .filter_map(|st| {
                let failed: Vec<&CompiledCondition> = st
                    .conditions
                    .iter()
                    .filter(|c| !c.holds(req, effect))
                    .collect();
                (!failed.is_empty()).then_some((st, failed))
            })
            .collect()
    }

    /// Through the index, the statement the linear scan picks: the first matching statement
    /// in policy order or, when `by_principal`, the one whose principal matched most directly
    /// and, among those, the first. Candidate lists ascend, so a list is left as soon as it
    /// can no longer yield a better statement.
    fn indexed_pick(
        &self,
        req: &Prepared<'_>,
        effect: Effect,
        by_principal: bool,
    ) -> Option<(&CompiledStatement, PrincipalMatch)> {
        let kind = self.kind;
        let mut best: Option<(u32, PrincipalMatch)> = None;
        self.index(effect).for_each_candidate(req, |id| {
            if let Some((b, bpm)) = best
                && id >= b
                && (!by_principal || bpm == PrincipalMatch::Direct)
            {
                return true;
            }
            let Some(pm) = self
                .statements
                .get(id as usize)
                .and_then(|st| st.matches(req, kind))
            else {
                return false;
            };
            let better = match best {
                None => true,
                Some((b, bpm)) if by_principal => pm > bpm || (pm == bpm && id < b),
                Some((b, _)) => id < b,
            };
            if better {
                best = Some((id, pm));
            }
            false
        });
        let (id, pm) = best?;
        self.statements.get(id as usize).map(|st| (st, pm))
    }

    /// Scans the statements of `effect` in policy order, calling `f` on each match until it
    /// returns true.
    fn visit_linear<'s>(
        &'s self,
        req: &Prepared<'_>,
        effect: Effect,
        mut f: impl FnMut(&'s CompiledStatement, PrincipalMatch) -> bool,
    ) {
        let kind = self.kind;
        for st in self.statements.iter().filter(|s| s.effect == effect) {
            if let Some(pm) = st.matches(req, kind)
                && f(st, pm)
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Evaluation;

    fn resource_set(statements: &str) -> PolicySet {
        let doc = PolicyDocument::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
        ))
        .unwrap();
        PolicySet::new(PolicyType::Resource, [NamedPolicy::new("r", doc)]).unwrap()
    }

    const ROLE: &str = "arn:aws:iam::111122223333:role/deployer";

    fn assume(principal: &str) -> Request {
        Request::new(principal, "sts:AssumeRole", ROLE)
    }

    #[test]
    fn allows_counts_every_way_a_principal_matches() {
        let by_account = resource_set(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}"#,
        );
        // The account root stands for the account: any principal in it (a user, a session).
        assert!(by_account.allows(&assume("arn:aws:iam::444455556666:user/alice")));
        assert!(by_account.allows(&assume("arn:aws:sts::444455556666:assumed-role/ci/run-1")));
        assert!(by_account.allows(&assume("arn:aws:iam::444455556666:root")));
        assert!(!by_account.allows(&assume("arn:aws:iam::999999999999:user/alice")));
        let by_role = resource_set(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/ci"},"Action":"sts:AssumeRole"}"#,
        );
        assert!(by_role.allows(&assume("arn:aws:sts::444455556666:assumed-role/ci/run-1")));
        assert!(!by_role.allows(&assume("arn:aws:iam::444455556666:user/alice")));
        let federated = resource_set(
            r#"{"Effect":"Allow","Principal":{"Federated":"token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}"#,
        );
        let web = |p: &str| Request::new(p, "sts:AssumeRoleWithWebIdentity", ROLE);
        assert!(federated.allows(&web("token.actions.githubusercontent.com")));
        assert!(!federated.allows(&web("accounts.google.com")));
        // A statement without Principal in a resource policy names no one.
        let nobody = resource_set(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
        assert!(!nobody.allows(&assume("arn:aws:iam::111122223333:user/alice")));
    }

    #[test]
    fn allows_honours_deny_and_not_principal() {
        let set = resource_set(
            r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
               {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"*"}"#,
        );
        // NotPrincipal naming the account root exempts the root itself, not the account's
        // users (AWS's NotPrincipal documentation).
        assert!(set.allows(&assume("arn:aws:iam::444455556666:root")));
        assert!(!set.allows(&assume("arn:aws:iam::444455556666:user/alice")));
        assert!(!set.allows(&assume("arn:aws:iam::999999999999:root")));
    }

    #[test]
    fn allows_agrees_with_a_cross_account_decision() {
        // Across accounts a request needs the resource policy and the caller's identity
        // policy: with an identity policy that allows everything, the decision is exactly
        // what the resource policy allows on its own.
        let set = resource_set(
            r#"{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:role/ci"]},"Action":"sts:AssumeRole"},
               {"Effect":"Allow","Principal":{"Service":"ai.gatehouse.internal"},"Action":"ai:*","Resource":"*"},
               {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
        );
        let everything = PolicySet::new(
            PolicyType::Identity,
            [NamedPolicy::new(
                "all",
                PolicyDocument::parse(
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                )
                .unwrap(),
            )],
        )
        .unwrap();
        let eval = Evaluation {
            resource: Some(&set),
            ..Evaluation::identity(&everything)
        };
        for principal in [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:root",
            "arn:aws:sts::444455556666:assumed-role/ci/s",
            "arn:aws:iam::444455556666:user/bob",
            "ai.gatehouse.internal",
            "arn:aws:iam::999999999999:root",
        ] {
            for action in ["sts:AssumeRole", "ai:InvokeModel"] {
                for secure in [None, Some("true"), Some("false")] {
                    let mut r = Request::new(principal, action, ROLE);
                    r.resource_account = Some("000000000000".into());
                    if let Some(s) = secure {
                        r = r.with("aws:SecureTransport", s);
                    }
                    assert_eq!(
                        set.allows(&r),
                        eval.decide(&r).is_allow(),
                        "{principal} {action} {secure:?}"
                    );
                }
            }
        }
    }
}
