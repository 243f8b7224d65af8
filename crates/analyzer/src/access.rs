//! Effective access over an AWS authorization-details export: who can perform an action on
//! a resource, and what one principal can do — both answered by the policy engine, so that
//! denies, boundaries, service control policies, `NotAction` and conditions count exactly as
//! AWS counts them.
//!
//! The export is read as a stream ([`crate::export`]): `who_can` decides one request per
//! principal, part after part, in parallel; `what_can` finds the principal, then diffs from
//! "nothing" to its policies. Nothing holds the whole export.

use crate::diff::{PolicyDiff, diff_evaluations};
use crate::export::{AwsExport, ExportError};
use crate::model::{AwsPrincipal, PrincipalType};
use crate::subject::{Subject, subjects};
use crate::{Progress, Settings};
use gatehouse_policy::model::Statement;
use gatehouse_policy::{Context, DecisionKind, Evaluation, PolicySet, PolicyType, Request};
use rayon::prelude::*;
use serde::Serialize;

/// Why the access questions cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The input is not an authorization-details export.
    #[error("{file}: $: not an `aws iam get-account-authorization-details` export ({problems})")]
    NotAuthorizationDetails {
        /// The file.
        file: String,
        /// What the importer said.
        problems: String,
    },
    /// A file given as a credential report is not one.
    #[error(
        "{0}: line 1: not an `aws iam get-credential-report` CSV (its header starts `user,arn,`)"
    )]
    NotCredentialReport(String),
    /// No principal has this name or ARN.
    #[error("no user, group or role named {0}")]
    UnknownPrincipal(String),
    /// A principal's policy does not compile.
    #[error("{principal}: policy `{policy}`: {message}")]
    Compile {
        /// The principal.
        principal: String,
        /// The policy.
        policy: String,
        /// The engine's error.
        message: String,
    },
    /// The export cannot be read.
    #[error(transparent)]
    Export(#[from] ExportError),
}

/// How a principal gets (or nearly gets) an action.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// `user`, `group` or `role`.
    pub kind: &'static str,
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// `allowed`, or `conditional` when only conditions the request did not meet stand in
    /// the way.
    pub access: &'static str,
    /// The allowing statements (policy and statement), or the conditional ones.
    pub through: Vec<String>,
    /// For `conditional`: the conditions that must hold, as `Operator key`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

/// Whether `arn` (of `kind` and `name`) may perform `request`'s action on its resource with
/// the policies of `eval` — allowed, or allowed but for conditions the request does not
/// meet — and through which statements.
pub(crate) fn grant(
    eval: &Evaluation<'_>,
    kind: PrincipalType,
    name: &str,
    arn: &str,
    request: &Request,
) -> Option<Grant> {
    let e = eval.explain(request);
    let grant = |access, through: Vec<String>, conditions| Grant {
        kind: kind.as_str(),
        name: name.to_owned(),
        arn: arn.to_owned(),
        access,
        through,
        conditions,
    };
    match e.decision.decision {
        DecisionKind::Allow => Some(grant(
            "allowed",
            e.decision
                .statements
                .iter()
                .map(ToString::to_string)
                .collect(),
            Vec::new(),
        )),
        DecisionKind::ExplicitDeny => None,
        DecisionKind::ImplicitDeny => {
            let near: Vec<_> = e
                .near_misses
                .iter()
                .filter(|n| {
                    n.statement.effect == gatehouse_policy::Effect::Allow
                        && n.statement.policy_type == PolicyType::Identity
                })
                .collect();
            (!near.is_empty()).then(|| {
                grant(
                    "conditional",
                    near.iter().map(|n| n.statement.to_string()).collect(),
                    near.iter()
                        .flat_map(|n| n.failed_conditions.iter().cloned())
                        .collect(),
                )
            })
        }
    }
}

/// The statements that allow `request` with the policies of `eval` (the request's principal
/// replaced by `arn`); empty when the engine does not allow it.
pub(crate) fn through(eval: &Evaluation<'_>, arn: &str, request: &Request) -> Vec<String> {
    let mut req = request.clone();
    arn.clone_into(&mut req.principal);
    let d = eval.decide(&req);
    if d.is_allow() {
        d.statements.iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    }
}

/// The statements of a principal's identity policies and boundary.
pub(crate) fn statements<'a>(s: &Subject<'a>) -> Vec<&'a Statement> {
    s.policies().flat_map(|p| &p.document.statements).collect()
}

/// Everything the principal can do: the semantic difference between no access and its
/// policies (identity policies within the boundary and the service control policies).
pub(crate) fn what_can_subject(s: &Subject<'_>) -> PolicyDiff {
    let nothing = PolicySet::empty(PolicyType::Identity);
    diff_evaluations(
        &Evaluation::identity(&nothing),
        &s.evaluation(),
        &statements(s),
    )
}

/// What the principal can do of `actions` only (see [`crate::diff::diff_evaluations_for`]).
pub(crate) fn what_can_of(s: &Subject<'_>, actions: &[&str]) -> PolicyDiff {
    let nothing = PolicySet::empty(PolicyType::Identity);
    crate::diff::diff_evaluations_for(
        &Evaluation::identity(&nothing),
        &s.evaluation(),
        &statements(s),
        actions,
    )
}

/// How well a principal matches what the user typed: by ARN, by `kind/name`, by name.
fn rank(p: &AwsPrincipal, who: &str) -> Option<u8> {
    if p.arn == who {
        Some(0)
    } else if format!("{}/{}", p.kind.as_str(), p.name) == who {
        Some(1)
    } else if p.name == who {
        Some(2)
    } else {
        None
    }
}

/// The principals of one export, asked about through the policy engine.
#[derive(Debug)]
pub struct Directory {
    export: AwsExport,
    settings: Settings,
}

impl Directory {
    /// Answers from an export.
    pub fn new(export: AwsExport, settings: Settings) -> Directory {
        Directory { export, settings }
    }

    /// Answers from an export held in memory.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Directory, AccessError> {
        match AwsExport::from_bytes(file, bytes)? {
            Some(e) => Ok(Directory::new(e, Settings::default())),
            None => Err(not_details(file, bytes)),
        }
    }

    /// The export.
    pub fn export(&self) -> &AwsExport {
        &self.export
    }

    fn guardrails(&self, account: &str) -> std::sync::Arc<[PolicySet]> {
        crate::rules::Scope {
            settings: &self.settings,
            now: None,
        }
        .guardrails(account)
    }

    /// Every principal that may perform `action` on `resource` in `context`, and those that
    /// may under conditions the context does not meet, in export order.
    pub fn who_can(
        &self,
        action: &str,
        resource: &str,
        context: &Context,
        progress: &dyn Progress,
    ) -> Result<Vec<Grant>, AccessError> {
        progress.add_total(self.export.principals() as u64);
        let parts = self.export.parts(&|n| progress.advance(n), &|part| {
            let guardrails = |a: &str| self.guardrails(a);
            subjects(&part.inventory, &guardrails)
                .par_iter()
                .map(|s| {
                    refused(s)?;
                    let mut req = Request::new(s.principal.arn.clone(), action, resource);
                    req.context = context.clone();
                    Ok(grant(
                        &s.evaluation(),
                        s.principal.kind,
                        &s.principal.name,
                        &s.principal.arn,
                        &req,
                    ))
                })
                .collect::<Result<Vec<Option<Grant>>, AccessError>>()
        })?;
        let mut out = Vec::new();
        for part in parts {
            out.extend(part?.into_iter().flatten());
        }
        Ok(out)
    }

    /// Everything the principal (an ARN, `user/NAME`, `role/NAME`, or a bare name; the
    /// first principal matching the most precise form) can do: the semantic difference
    /// between no access and its policies.
    pub fn what_can(&self, who: &str) -> Result<(AwsPrincipal, PolicyDiff), AccessError> {
        // First find it (by rank, then export order), then diff it: one principal's diff,
        // not one per principal of the same name.
        let found = self.export.parts(&|_| {}, &|part| {
            part.inventory
                .aws_principals
                .iter()
                .filter_map(|p| rank(p, who).map(|r| (r, p.path.clone())))
                .min()
        })?;
        let best = found
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|(r, path)| (r, i, path)))
            .min()
            .ok_or_else(|| AccessError::UnknownPrincipal(who.to_owned()))?;
        let (_, part_index, path) = best;
        let answers = self.export.parts(&|_| {}, &|part| {
            let i = part
                .inventory
                .aws_principals
                .iter()
                .position(|p| p.path == path)?;
            let guardrails = |a: &str| self.guardrails(a);
            let all = subjects(&part.inventory, &guardrails);
            let s = all.get(i)?;
            Some(refused(s).map(|()| (s.principal.clone(), what_can_subject(s))))
        })?;
        answers
            .into_iter()
            .nth(part_index)
            .flatten()
            .ok_or_else(|| AccessError::UnknownPrincipal(who.to_owned()))?
    }
}

/// A principal whose policies the engine refuses cannot be answered for.
pub(crate) fn refused(s: &Subject<'_>) -> Result<(), AccessError> {
    match &s.refused {
        Some(r) => Err(AccessError::Compile {
            principal: s.principal.arn.clone(),
            policy: r.policy.clone(),
            message: r.error.clone(),
        }),
        None => Ok(()),
    }
}

/// The error for an input that is not an export, with what the importer made of it.
pub(crate) fn not_details(file: &str, bytes: &[u8]) -> AccessError {
    let (inventory, problems) = crate::import::import(file, bytes);
    AccessError::NotAuthorizationDetails {
        file: file.to_owned(),
        problems: problems
            .first()
            .map_or_else(|| format!("{:?}", inventory.format), |f| f.message.clone()),
    }
}
