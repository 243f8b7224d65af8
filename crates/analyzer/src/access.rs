//! Effective access over an AWS authorization-details export: who can perform an action on
//! a resource, and what one principal can do — both answered by the policy engine, so that
//! denies, boundaries, `NotAction` and conditions count exactly as AWS counts them.
//!
//! Each user, group and role becomes an [`Evaluation`] of its identity policies (a user's
//! include its groups') and its permissions boundary; `who_can` decides one request per
//! principal, `what_can` is a semantic diff from "nothing" to the principal's policies.

use crate::diff::{PolicyDiff, diff_evaluations};
use crate::model::{AwsPrincipal, Format, Inventory};
use gatehouse_policy::model::Statement;
use gatehouse_policy::{
    Context, DecisionKind, Evaluation, NamedPolicy, PolicySet, PolicyType, Request,
};
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
    /// A principal's policies do not compile.
    #[error("{principal}: {source}")]
    Compile {
        /// The principal.
        principal: String,
        /// The engine's error.
        #[source]
        source: gatehouse_policy::CompileError,
    },
}

/// The principals of one export, with their policies compiled.
#[derive(Debug)]
pub struct Directory {
    inventory: Inventory,
    compiled: Vec<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    principal: usize,
    identity: PolicySet,
    boundary: Option<PolicySet>,
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

impl Directory {
    /// Imports an authorization-details export and compiles each principal's policies.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Directory, AccessError> {
        let (inventory, problems) = crate::import::import(file, bytes);
        if inventory.format != Format::AwsAuthorizationDetails {
            return Err(AccessError::NotAuthorizationDetails {
                file: file.to_owned(),
                problems: problems
                    .first()
                    .map_or_else(|| format!("{:?}", inventory.format), |f| f.message.clone()),
            });
        }
        Directory::new(inventory)
    }

    /// Compiles the principals of an imported inventory.
    pub fn new(inventory: Inventory) -> Result<Directory, AccessError> {
        let mut compiled = Vec::new();
        for (i, p) in inventory.aws_principals.iter().enumerate() {
            let named = |idx: &usize| {
                inventory.aws_policies.get(*idx).map(|pol| {
                    NamedPolicy::new(
                        pol.arn.clone().unwrap_or_else(|| {
                            format!("{}/{}", pol.owner.as_deref().unwrap_or(""), pol.name)
                        }),
                        pol.document.clone(),
                    )
                })
            };
            let err = |source| AccessError::Compile {
                principal: p.arn.clone(),
                source,
            };
            let identity =
                PolicySet::new(PolicyType::Identity, p.policies.iter().filter_map(named))
                    .map_err(err)?;
            let boundary = match p.boundary.as_ref().and_then(named) {
                Some(b) => Some(PolicySet::new(PolicyType::Boundary, [b]).map_err(err)?),
                None => None,
            };
            compiled.push(Compiled {
                principal: i,
                identity,
                boundary,
            });
        }
        Ok(Directory {
            inventory,
            compiled,
        })
    }

    /// The imported inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    fn principal(&self, c: &Compiled) -> &AwsPrincipal {
        &self.inventory.aws_principals[c.principal]
    }

    fn evaluation<'a>(c: &'a Compiled) -> Evaluation<'a> {
        Evaluation {
            identity: &c.identity,
            resource: None,
            boundary: c.boundary.as_ref(),
            guardrails: &[],
            session: None,
        }
    }

    /// Every principal that may perform `action` on `resource` in `context`, and those that
    /// may under conditions the context does not meet.
    pub fn who_can(&self, action: &str, resource: &str, context: &Context) -> Vec<Grant> {
        let mut out = Vec::new();
        for c in &self.compiled {
            let p = self.principal(c);
            let mut req = Request::new(p.arn.clone(), action, resource);
            req.context = context.clone();
            let e = Directory::evaluation(c).explain(&req);
            let grant = |access, through: Vec<String>, conditions| Grant {
                kind: p.kind.as_str(),
                name: p.name.clone(),
                arn: p.arn.clone(),
                access,
                through,
                conditions,
            };
            match e.decision.decision {
                DecisionKind::Allow => out.push(grant(
                    "allowed",
                    e.decision
                        .statements
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    Vec::new(),
                )),
                DecisionKind::ExplicitDeny => {}
                DecisionKind::ImplicitDeny => {
                    let near: Vec<_> = e
                        .near_misses
                        .iter()
                        .filter(|n| {
                            n.statement.effect == gatehouse_policy::Effect::Allow
                                && n.statement.policy_type == PolicyType::Identity
                        })
                        .collect();
                    if !near.is_empty() {
                        out.push(grant(
                            "conditional",
                            near.iter().map(|n| n.statement.to_string()).collect(),
                            near.iter()
                                .flat_map(|n| n.failed_conditions.iter().cloned())
                                .collect(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// The statements that allow `request` for `who` (the request's principal is replaced
    /// by `who`); empty when the engine does not allow it.
    pub fn through(&self, who: &AwsPrincipal, request: &Request) -> Vec<String> {
        let Some(c) = self
            .compiled
            .iter()
            .find(|c| std::ptr::eq(self.principal(c), who))
        else {
            return Vec::new();
        };
        let mut req = request.clone();
        req.principal.clone_from(&who.arn);
        let d = Directory::evaluation(c).decide(&req);
        if d.is_allow() {
            d.statements.iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        }
    }

    /// Finds a principal by ARN or name (`user/alice`, `alice`).
    pub fn find(&self, who: &str) -> Option<&AwsPrincipal> {
        let by =
            |f: &dyn Fn(&AwsPrincipal) -> bool| self.inventory.aws_principals.iter().find(|p| f(p));
        by(&|p| p.arn == who)
            .or_else(|| by(&|p| format!("{}/{}", p.kind.as_str(), p.name) == who))
            .or_else(|| by(&|p| p.name == who))
    }

    /// Everything the principal can do: the semantic difference between no access and its
    /// policies (identity policies within the boundary).
    pub fn what_can(&self, who: &str) -> Result<(&AwsPrincipal, PolicyDiff), AccessError> {
        let p = self
            .find(who)
            .ok_or_else(|| AccessError::UnknownPrincipal(who.to_owned()))?;
        let c = self
            .compiled
            .iter()
            .find(|c| std::ptr::eq(self.principal(c), p))
            .ok_or_else(|| AccessError::UnknownPrincipal(who.to_owned()))?;
        let statements: Vec<&Statement> = p
            .policies
            .iter()
            .chain(p.boundary.iter())
            .filter_map(|i| self.inventory.aws_policies.get(*i))
            .flat_map(|pol| &pol.document.statements)
            .collect();
        let nothing = PolicySet::empty(PolicyType::Identity);
        Ok((
            p,
            diff_evaluations(
                &Evaluation::identity(&nothing),
                &Directory::evaluation(c),
                &statements,
            ),
        ))
    }
}
