//! Semantic policy diff: what a new version of a policy allows that the old one did not (and
//! the reverse), as actions × resource patterns × conditions — the offline equivalent of
//! Access Analyzer's `CheckNoNewAccess`.
//!
//! Why it is exact rather than textual: every pattern and condition in the two versions
//! splits the request space into cells whose members the engine must treat alike (an action
//! matches the same action patterns, a resource the same resource patterns, a context makes
//! the same condition entries true). The diff builds a witness request for every cell it can
//! reach — catalog actions and one invented action per action pattern, instances of every
//! resource pattern, boundary values of every condition (inside/outside a CIDR, ±1 around a
//! number, before/after a date, absent) — asks the engine for both versions' decisions, and
//! describes the cells whose answers differ. The property test in `tests/diff.rs` holds it
//! to that: a request is reported as newly allowed exactly when the engine denies it under
//! the old version and allows it under the new one.
//!
//! Resource-based policies and role trust policies (every statement names a `Principal` or
//! `NotPrincipal`) add one dimension: the principal. Each `Principal` entry of either version
//! is placed by two probes of the engine (a policy naming only it: does a principal match at
//! all — its own ARN, its role, its account, `*`? a `NotPrincipal` naming only it: is the
//! principal exempt, i.e. named directly?), and conditions on the keys the engine derives
//! from the principal (`aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:username`) are read
//! from the principal rather than varied freely, so every answer is about a request that can
//! happen. "Allowed" for such a policy is what it grants on its own
//! ([`PolicySet::allows`]): the question Access Analyzer's `CheckNoNewAccess` asks of a
//! trust or resource policy.
//!
//! Limits, reported rather than hidden: policy variables in resources are matched as the
//! fixed probing principal would resolve them, and when the condition values multiply
//! beyond [`MAX_CONTEXTS`] combinations only the first ones are explored (`complete` is
//! then false). Principals are explored through witnesses (each named principal, members
//! of each named account — users and roles of every name mentioned, their sessions, the
//! root — and strangers); a principal related to the entries in a way none of them is
//! (say, a wildcard ARN pattern in `Principal` that only an unusual name matches) falls
//! outside every reported cell rather than into a wrong one.

mod changes;
mod context;
mod describe;
mod kind;
mod principals;
mod space;

pub use describe::{Atom, Change, Literal, PrincipalCell, ResourceCell};
use kind::common_kind;
pub use kind::{KindError, policy_kind};

use gatehouse_policy::model::Statement;
use gatehouse_policy::{Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request};
use serde::Serialize;
use space::Space;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Context combinations explored at most.
pub const MAX_CONTEXTS: usize = 4096;

/// The principal the probes are made as (identity policies do not depend on it unless they
/// use policy variables).
pub const PROBE_PRINCIPAL: &str = "arn:aws:iam::111122223333:user/policy-diff";

/// Why a diff could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// One of the versions does not compile.
    #[error("{which}: {source}")]
    Compile {
        /// `old` or `new`.
        which: &'static str,
        /// The engine's error.
        #[source]
        source: gatehouse_policy::CompileError,
    },
    /// A document mixes statements with and without `Principal`, or the documents are not
    /// all of one kind (identity-based, or resource-based/trust).
    #[error("{policy}: {path}: {message}")]
    Kind {
        /// The policy's name (the file, on the command line).
        policy: String,
        /// JSON path of the statement at fault.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The difference between two versions.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff {
    /// Allowed by the new version, not by the old.
    pub newly_allowed: Vec<Change>,
    /// Allowed by the old version, not by the new.
    pub no_longer_allowed: Vec<Change>,
    /// The kind of policies compared (`identity` or `resource`, which includes trust
    /// policies).
    pub kind: PolicyType,
    /// False when the condition space was too large to explore whole.
    pub complete: bool,
    /// Requests decided (twice each: old and new).
    pub probes: usize,
    #[serde(skip)]
    space: Space,
}

impl PolicyDiff {
    /// True when the new version allows a request the old one denied.
    pub fn grants_new_access(&self) -> bool {
        !self.newly_allowed.is_empty()
    }

    /// Whether this request falls in a reported newly-allowed change.
    pub fn newly_allows(&self, request: &Request) -> bool {
        self.space.covers(&self.newly_allowed, request)
    }

    /// Whether this request falls in a reported no-longer-allowed change.
    pub fn no_longer_allows(&self, request: &Request) -> bool {
        self.space.covers(&self.no_longer_allowed, request)
    }

    /// Human-readable lines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.newly_allowed.is_empty() && self.no_longer_allowed.is_empty() {
            out.push_str("no difference in what is allowed\n");
        }
        for (label, list) in [
            ("newly allows", &self.newly_allowed),
            ("no longer allows", &self.no_longer_allowed),
        ] {
            for c in list {
                let _ = write!(out, "{label} {}", c.actions_label());
                if !c.principals.is_empty() {
                    let _ = write!(out, " for {}", c.principals_label());
                }
                // A trust policy usually names no resource: the role it is attached to.
                if !self.space.resource_patterns.is_empty() || c.principals.is_empty() {
                    let _ = write!(out, " on {}", c.resource);
                }
                let _ = writeln!(out, " when {}", c.when_label());
            }
        }
        if !self.complete {
            let _ = writeln!(
                out,
                "note: the conditions allow more than {MAX_CONTEXTS} combinations; only the first were explored"
            );
        }
        out
    }
}

/// Compares two versions of a policy (each one or more documents), all identity-based or
/// all resource-based (resource policies and role trust policies: the principal becomes a
/// dimension of the answer). Mixed kinds are [`DiffError::Kind`].
pub fn diff(old: &[NamedPolicy], new: &[NamedPolicy]) -> Result<PolicyDiff, DiffError> {
    let kind = common_kind(old, new)?;
    let old_set =
        PolicySet::new(kind, old.iter().cloned()).map_err(|source| DiffError::Compile {
            which: "old",
            source,
        })?;
    let new_set =
        PolicySet::new(kind, new.iter().cloned()).map_err(|source| DiffError::Compile {
            which: "new",
            source,
        })?;
    let statements: Vec<&Statement> = old
        .iter()
        .chain(new)
        .flat_map(|p| &p.document.statements)
        .collect();
    Ok(diff_with(
        kind,
        |r| old_set.allows(r),
        |r| new_set.allows(r),
        &statements,
    ))
}

/// Compares what two sets of policies allow (any policy types: a boundary or a guardrail
/// narrows what the identity policies grant). `statements` are every statement of both
/// sides: their patterns and conditions draw the cells.
pub fn diff_evaluations(
    old_eval: &Evaluation<'_>,
    new_eval: &Evaluation<'_>,
    statements: &[&Statement],
) -> PolicyDiff {
    diff_with(
        PolicyType::Identity,
        |r| old_eval.decide(r).is_allow(),
        |r| new_eval.decide(r).is_allow(),
        statements,
    )
}

/// [`diff_evaluations`] over some actions only: what the two sides decide differently for
/// these actions, computed from the statements that can match them (the others cannot change
/// a decision about them). The answer is the full diff's changes restricted to these actions,
/// at a small part of the cost: a review asking who may invoke models need not draw the
/// cells of every other action an administrator holds.
pub fn diff_evaluations_for(
    old_eval: &Evaluation<'_>,
    new_eval: &Evaluation<'_>,
    statements: &[&Statement],
    actions: &[&str],
) -> PolicyDiff {
    let relevant: Vec<&Statement> = statements
        .iter()
        .copied()
        .filter(|st| crate::subject::may_match(st, actions))
        .collect();
    diff_in(
        Space::build(&relevant, false, Some(actions)),
        PolicyType::Identity,
        |r| old_eval.decide(r).is_allow(),
        |r| new_eval.decide(r).is_allow(),
    )
}

/// (action class, resource cell, principal cell) -> that principal's context cells.
type Cells = BTreeMap<(usize, usize, usize), BTreeSet<usize>>;

fn diff_with(
    kind: PolicyType,
    old_allows: impl Fn(&Request) -> bool,
    new_allows: impl Fn(&Request) -> bool,
    statements: &[&Statement],
) -> PolicyDiff {
    diff_in(
        Space::build(statements, kind == PolicyType::Resource, None),
        kind,
        old_allows,
        new_allows,
    )
}

/// Probes every cell of `space` under both sides and describes where they differ.
fn diff_in(
    space: Space,
    kind: PolicyType,
    old_allows: impl Fn(&Request) -> bool,
    new_allows: impl Fn(&Request) -> bool,
) -> PolicyDiff {
    let mut added = Cells::new();
    let mut removed = Cells::new();
    let mut probes = 0;
    for (ai, class) in space.classes.iter().enumerate() {
        for (ri, rcell) in space.resources.iter().enumerate() {
            for (pi, pcell) in space.principals.iter().enumerate() {
                for (ci, ctx) in space.contexts[pi].iter().enumerate() {
                    let req = space.request(
                        &pcell.witness,
                        &class.representative,
                        &rcell.witness,
                        &ctx.context,
                    );
                    probes += 1;
                    let was = old_allows(&req);
                    let is = new_allows(&req);
                    if is && !was {
                        added.entry((ai, ri, pi)).or_default().insert(ci);
                    } else if was && !is {
                        removed.entry((ai, ri, pi)).or_default().insert(ci);
                    }
                }
            }
        }
    }
    PolicyDiff {
        newly_allowed: space.changes(&added),
        no_longer_allowed: space.changes(&removed),
        kind,
        complete: space.complete,
        probes,
        space,
    }
}

/// Convenience: diff two single documents.
pub fn diff_documents(old: &PolicyDocument, new: &PolicyDocument) -> Result<PolicyDiff, DiffError> {
    diff(
        &[NamedPolicy::new("old", old.clone())],
        &[NamedPolicy::new("new", new.clone())],
    )
}

/// The action every probe of a resource pattern or condition uses.
const PROBE_ACTION: &str = "zzprobe:Probe";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(s: &str) -> PolicyDocument {
        PolicyDocument::parse(s).unwrap()
    }

    #[test]
    fn guardrail_update_outside_the_office_network() {
        let old = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:InvokeModel","Resource":"arn:aws:ai:local:111122223333:model/*"}]}"#);
        let new = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:InvokeModel","Resource":"arn:aws:ai:local:111122223333:model/*"},
            {"Effect":"Allow","Action":"ai:UpdateGuardrail","Resource":"arn:aws:ai:local:111122223333:guardrail/*",
             "Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#);
        let d = diff_documents(&old, &new).unwrap();
        assert!(d.grants_new_access());
        assert!(d.no_longer_allowed.is_empty());
        assert_eq!(d.newly_allowed.len(), 1, "{}", d.text());
        let c = &d.newly_allowed[0];
        assert_eq!(c.actions, vec!["ai:UpdateGuardrail".to_owned()]);
        assert_eq!(
            c.resource.matching,
            vec!["arn:aws:ai:local:111122223333:guardrail/*".to_owned()]
        );
        assert_eq!(c.when.len(), 1);
        assert_eq!(c.when[0].len(), 1);
        assert!(c.when[0][0].holds);
        assert_eq!(c.when[0][0].atom.key, "aws:SourceIp");
        let text = d.text();
        assert!(text.contains("newly allows ai:UpdateGuardrail"), "{text}");
        assert!(
            text.contains("aws:SourceIp is outside 10.0.0.0/8"),
            "{text}"
        );
        // No change in the reverse direction means no new access.
        let back = diff_documents(&new, &old).unwrap();
        assert!(!back.grants_new_access());
        assert_eq!(back.no_longer_allowed.len(), 1);
    }

    #[test]
    fn identical_and_reordered_policies_have_no_difference() {
        let a = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ai:InvokeModel","ai:GetModel"],"Resource":"*"}]}"#);
        let b = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ai:GetModel","Resource":"*"},
            {"Effect":"Allow","Action":"AI:invokemodel","Resource":"*"}]}"#);
        let d = diff_documents(&a, &b).unwrap();
        assert!(!d.grants_new_access(), "{}", d.text());
        assert!(d.no_longer_allowed.is_empty(), "{}", d.text());
    }

    /// Two wildcard resources that overlap without either's instances lying in the other:
    /// a resource in both is its own cell (a request there was reported as unchanged).
    #[test]
    fn overlapping_wildcard_resources_have_their_own_cell() {
        let old = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#);
        let new = doc(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Action":"*","Resource":"arn:aws:bedrock:*::foundation-model/anthropic.*"},
            {"Effect":"Deny","Action":"bedrock:*","Resource":"arn:aws:bedrock:us-east-1::foundation-model/*"}]}"#);
        let d = diff_documents(&old, &new).unwrap();
        let req = Request::new(
            PROBE_PRINCIPAL,
            "ai:InvokeModel",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
        );
        assert!(d.newly_allows(&req), "{}", d.text());
        let denied = Request::new(
            PROBE_PRINCIPAL,
            "bedrock:InvokeModel",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
        );
        assert!(!d.newly_allows(&denied), "{}", d.text());
    }
}
