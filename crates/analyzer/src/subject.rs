//! The engine's view of each principal of an inventory: its identity policies (a user's
//! include its groups'), its permissions boundary and, in an organization, the service
//! control policies above its account, compiled once per distinct set and shared (`Arc`) by
//! every principal holding the same policies — many roles carry the same attachments, and
//! compiling them again for each was most of the cost of asking about thousands of them.
//!
//! Policies are cited by [`AwsPolicy::display_name`], so a decision's statements read as
//! the policies people know (`arn:aws:iam::aws:policy/ReadOnlyAccess`, `role ci/deploy`),
//! and [`Reduced::policy_of`] finds the policy behind a cited statement.

use crate::model::{AwsPolicy, AwsPrincipal, Inventory, PrincipalType};
use gatehouse_policy::{Evaluation, NamedPolicy, PolicySet, PolicyType, Request, StatementRef};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// A policy of the principal that the engine refuses: the policy's name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub policy: String,
    pub error: String,
}

/// One principal with its compiled policies.
#[derive(Debug, Clone)]
pub(crate) struct Subject<'a> {
    pub inv: &'a Inventory,
    pub principal: &'a AwsPrincipal,
    pub identity: Arc<PolicySet>,
    pub boundary: Option<Arc<PolicySet>>,
    pub guardrails: Arc<[PolicySet]>,
    /// The first of its policies the engine refused (left out of `identity`).
    pub refused: Option<Refused>,
}

impl<'a> Subject<'a> {
    /// The evaluation of requests by this principal on resources without a policy of
    /// their own.
    pub fn evaluation(&self) -> Evaluation<'_> {
        Evaluation {
            identity: &self.identity,
            resource: None,
            boundary: self.boundary.as_deref(),
            guardrails: &self.guardrails,
            session: None,
        }
    }

    /// Whether the principal may perform `action` on `resource` (no context).
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.evaluation()
            .decide(&Request::new(self.principal.arn.as_str(), action, resource))
            .is_allow()
    }

    /// The principal's identity policies and boundary.
    pub fn policies(&self) -> impl Iterator<Item = &'a Arc<AwsPolicy>> + use<'a> {
        let inv = self.inv;
        self.principal
            .policies
            .iter()
            .chain(self.principal.boundary.iter())
            .filter_map(move |i| inv.aws_policies.get(*i))
    }
}

/// Compiles one principal's policies of one type (those the engine refuses are left out and
/// the first is returned beside).
fn compile_set(
    inv: &Inventory,
    kind: PolicyType,
    indices: &[usize],
) -> (PolicySet, Option<Refused>) {
    let mut refused = None;
    let named: Vec<NamedPolicy> = indices
        .iter()
        .filter_map(|i| inv.aws_policies.get(*i))
        .filter(|p| match &p.compile_error {
            Some(e) => {
                refused.get_or_insert_with(|| Refused {
                    policy: p.display_name(),
                    error: e.clone(),
                });
                false
            }
            None => true,
        })
        .map(|p| NamedPolicy::new(p.display_name(), p.document.clone()))
        .collect();
    // Each policy compiled on its own at import, so together they do too; an error here
    // would be the engine's, and leaves the set empty (nothing is claimed allowed).
    let set = PolicySet::new(kind, named).unwrap_or_else(|_| PolicySet::empty(kind));
    (set, refused)
}

type Compiled = (Arc<PolicySet>, Option<Arc<PolicySet>>, Option<Refused>);

/// Every principal of the inventory with its compiled policies, in order. `guardrails`
/// gives the service control policies over an account (none outside an organization).
pub(crate) fn subjects<'a>(
    inv: &'a Inventory,
    guardrails: &(dyn Fn(&str) -> Arc<[PolicySet]> + Sync),
) -> Vec<Subject<'a>> {
    // Principals with the same policies share one compiled set.
    let mut distinct: FxHashMap<(&[usize], Option<usize>), usize> = FxHashMap::default();
    let mut keys: Vec<(&[usize], Option<usize>)> = Vec::new();
    let slot: Vec<usize> = inv
        .aws_principals
        .iter()
        .map(|p| {
            let key = (p.policies.as_slice(), p.boundary);
            *distinct.entry(key).or_insert_with(|| {
                keys.push(key);
                keys.len() - 1
            })
        })
        .collect();
    let compiled: Vec<Compiled> = keys
        .par_iter()
        .map(|(policies, boundary)| {
            let (identity, refused) = compile_set(inv, PolicyType::Identity, policies);
            let boundary = boundary.map(|b| compile_set(inv, PolicyType::Boundary, &[b]));
            let refused = refused.or_else(|| boundary.as_ref().and_then(|b| b.1.clone()));
            (Arc::new(identity), boundary.map(|b| Arc::new(b.0)), refused)
        })
        .collect();
    let mut by_account: FxHashMap<&str, Arc<[PolicySet]>> = FxHashMap::default();
    inv.aws_principals
        .iter()
        .zip(slot)
        .map(|(p, s)| {
            let (identity, boundary, refused) = compiled[s].clone();
            let guardrails = by_account
                .entry(p.account())
                .or_insert_with(|| guardrails(p.account()))
                .clone();
            Subject {
                inv,
                principal: p,
                identity,
                boundary,
                guardrails,
                refused,
            }
        })
        .collect()
}

/// A principal reduced to the policies that can decide some actions: a statement whose
/// `Action` cannot match them never takes part in their decisions, so every answer (and the
/// statements it cites, and the near misses it explains) is the full policy set's. Small
/// enough to keep for every principal of an export until the parts are all read.
#[derive(Debug)]
pub(crate) struct Reduced {
    pub kind: PrincipalType,
    pub name: Box<str>,
    pub arn: Box<str>,
    pub policies: Vec<Arc<AwsPolicy>>,
    identity: PolicySet,
    boundary: Option<PolicySet>,
    guardrails: Arc<[PolicySet]>,
}

/// Whether a statement can match any of `actions`.
pub(crate) fn may_match(st: &gatehouse_policy::Statement, actions: &[&str]) -> bool {
    actions.iter().any(|action| {
        st.action
            .patterns
            .iter()
            .any(|a| crate::actions::glob_match(a, action))
            != st.action.negated
    })
}

fn relevant(p: &AwsPolicy, actions: &[&str]) -> bool {
    p.compile_error.is_none() && p.document.statements.iter().any(|s| may_match(s, actions))
}

fn reduced_set(kind: PolicyType, policies: &[Arc<AwsPolicy>]) -> PolicySet {
    let named = policies
        .iter()
        .map(|p| NamedPolicy::new(p.display_name(), p.document.clone()));
    PolicySet::new(kind, named).unwrap_or_else(|_| PolicySet::empty(kind))
}

impl Reduced {
    /// The principal reduced to `actions`; `None` when none of its identity policies can
    /// allow any of them.
    pub fn new(
        inv: &Inventory,
        p: &AwsPrincipal,
        guardrails: Arc<[PolicySet]>,
        actions: &[&str],
    ) -> Option<Reduced> {
        let policies: Vec<Arc<AwsPolicy>> = p
            .policies
            .iter()
            .filter_map(|i| inv.aws_policies.get(*i))
            .filter(|pol| relevant(pol, actions))
            .cloned()
            .collect();
        if policies.is_empty() {
            return None;
        }
        // A boundary that cannot allow these actions denies them: an empty boundary says so.
        let boundary = p.boundary.map(|b| {
            let kept: Vec<Arc<AwsPolicy>> = inv
                .aws_policies
                .get(b)
                .filter(|pol| relevant(pol, actions))
                .cloned()
                .into_iter()
                .collect();
            reduced_set(PolicyType::Boundary, &kept)
        });
        Some(Reduced {
            kind: p.kind,
            name: p.name.as_str().into(),
            arn: p.arn.as_str().into(),
            identity: reduced_set(PolicyType::Identity, &policies),
            boundary,
            guardrails,
            policies,
        })
    }

    /// The evaluation of this principal's requests.
    pub fn evaluation(&self) -> Evaluation<'_> {
        Evaluation {
            identity: &self.identity,
            resource: None,
            boundary: self.boundary.as_ref(),
            guardrails: &self.guardrails,
            session: None,
        }
    }

    /// The policy a decision's statement cites, with the statement's index.
    pub fn policy_of(&self, st: &StatementRef) -> Option<(&AwsPolicy, usize)> {
        self.policies
            .iter()
            .find(|p| p.display_name() == *st.policy)
            .map(|p| (&**p, st.index))
    }
}
