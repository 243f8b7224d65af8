//! What the review gathers from one part of an export: each principal's grants of model
//! invocation and guardrail changes (the engine's diff from nothing, over those actions
//! only), the ways into its roles, its service identities, its idle identities, and what
//! deprecated models need asked once every part is read.

use super::{Access, GUARDRAIL_CHANGE, INVOKE, TrustPath};
use crate::lifecycle::{BEDROCK_INVOKE, Reach, Target};
use crate::model::{Inventory, PrincipalType};
use crate::rules::Scope;
use crate::subject::{Reduced, Subject};
use crate::usage::{CredentialIndex, PrincipalUsage};
use gatehouse_policy::model::{Effect, Principal, PrincipalKind};
use rayon::prelude::*;
use std::collections::BTreeSet;

/// A role a service assumes; kept when its findings turn out risky.
#[derive(Debug)]
pub(super) struct ServiceRole {
    pub role: String,
    pub entity: String,
    pub services: Vec<String>,
    pub allowed_actions: usize,
}

/// What the review needs besides the export.
#[derive(Debug, Default)]
pub(super) struct Asked<'a> {
    pub days: i64,
    pub report: Option<CredentialIndex<'a>>,
    pub audit: Option<crate::usage::AuditIndex>,
    /// Gatehouse deployments with a deprecation date.
    pub deployments: Vec<Target>,
}

/// One part's share of the review.
#[derive(Debug, Default)]
pub(super) struct PartReview {
    /// High and critical findings on the part's service roles (entity, `RULE: message`).
    pub risky: Vec<(String, String)>,
    /// The part's users and roles, for the role-assumption graph.
    pub nodes: Vec<crate::rules::paths::Node>,
    pub models: Vec<(String, Access)>,
    pub guardrails: Vec<Access>,
    pub trust: Vec<TrustPath>,
    pub services: Vec<ServiceRole>,
    pub idle_roles: Vec<super::UnusedAccess>,
    pub idle_users: Vec<super::UnusedAccess>,
    pub usage: Vec<PrincipalUsage>,
    /// Principals whose policies can invoke Bedrock, asked once the regions are known.
    pub bedrock: Vec<Reduced>,
    pub regions: BTreeSet<String>,
    pub deployments: Reach,
}

fn pick(actions: &[String], wanted: &[&str]) -> Vec<String> {
    actions
        .iter()
        .filter(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a)))
        .cloned()
        .collect()
}

/// Model invocation (first) and guardrail changes (second) the principal may make.
fn grants(s: &Subject<'_>) -> (Vec<(String, Access)>, Vec<Access>) {
    let wanted: Vec<&str> = INVOKE.iter().chain(GUARDRAIL_CHANGE).copied().collect();
    let allowed = crate::access::what_can_of(s, &wanted);
    let eval = s.evaluation();
    let (mut models, mut guardrails) = (Vec::new(), Vec::new());
    for c in &allowed.newly_allowed {
        let resource = c.resource.to_string();
        for (wanted, is_model) in [(INVOKE, true), (GUARDRAIL_CHANGE, false)] {
            let actions = pick(&c.actions, wanted);
            let Some(first) = actions.first() else {
                continue;
            };
            let mut req = c.example.clone();
            req.action.clone_from(first);
            let access = Access {
                principal: s.principal.arn.clone(),
                actions,
                resource: resource.clone(),
                when: c.when_label(),
                through: crate::access::through(&eval, &s.principal.arn, &req),
            };
            if is_model {
                models.push((resource.clone(), access));
            } else {
                guardrails.push(access);
            }
        }
    }
    (models, guardrails)
}

/// A service role, with the number of actions it may perform when its findings in this part
/// are risky or it may assume roles (the graph may add a risky path).
fn service_role(s: &Subject<'_>, part_findings: &[crate::Finding]) -> Option<ServiceRole> {
    let p = s.principal;
    if p.kind != PrincipalType::Role {
        return None;
    }
    let services = trusted_services(s.inv, p.trust);
    if services.is_empty() {
        return None;
    }
    let entity = p.label();
    let risky = part_findings.iter().any(|f| {
        f.severity >= crate::Severity::High && f.location.entity.as_deref() == Some(&entity)
    });
    let may_assume = Reduced::new(s.inv, p, s.guardrails.clone(), &["sts:AssumeRole"]).is_some();
    Some(ServiceRole {
        role: p.arn.clone(),
        allowed_actions: if risky || may_assume {
            crate::usage::allowed_action_count(s)
        } else {
            0
        },
        entity,
        services,
    })
}

/// The high and critical findings on these entities, as the review lists them.
pub(super) fn risky(
    findings: &[crate::Finding],
    entities: &BTreeSet<&str>,
) -> Vec<(String, String)> {
    findings
        .iter()
        .filter(|f| f.severity >= crate::Severity::High)
        .filter_map(|f| {
            let e = f.location.entity.as_deref()?;
            entities
                .contains(e)
                .then(|| (e.to_owned(), format!("{}: {}", f.rule, f.message)))
        })
        .collect()
}

/// Everything one principal adds.
#[derive(Debug, Default)]
struct One {
    models: Vec<(String, Access)>,
    guardrails: Vec<Access>,
    service: Option<ServiceRole>,
    usage: Option<PrincipalUsage>,
    bedrock: Option<Reduced>,
    deployments: Reach,
}

fn one(s: &Subject<'_>, part_findings: &[crate::Finding], asked: &Asked<'_>) -> One {
    let (models, guardrails) = grants(s);
    let mut deployments = Reach::default();
    if !asked.deployments.is_empty() {
        let p = s.principal;
        deployments.add(
            &s.evaluation(),
            (p.kind, &p.name, &p.arn),
            &asked.deployments,
            crate::lifecycle::GATEHOUSE_INVOKE,
        );
    }
    One {
        models,
        guardrails,
        service: service_role(s, part_findings),
        usage: asked
            .audit
            .as_ref()
            .and_then(|a| crate::usage::usage_of(s, a)),
        bedrock: Reduced::new(s.inv, s.principal, s.guardrails.clone(), BEDROCK_INVOKE),
        deployments,
    }
}

/// The review's share of one part (`problems`: the importer's findings on it).
pub(super) fn part(
    inv: &Inventory,
    problems: &[crate::Finding],
    scope: &Scope<'_>,
    asked: &Asked<'_>,
) -> PartReview {
    let guardrails = |a: &str| scope.guardrails(a);
    let subjects = crate::subject::subjects(inv, &guardrails);
    let mut scan = crate::rules::analyze_part(inv, &subjects, scope);
    scan.findings.extend(problems.iter().cloned());
    let ones: Vec<One> = subjects
        .par_iter()
        .map(|s| one(s, &scan.findings, asked))
        .collect();
    let mut r = PartReview {
        trust: trust_paths(inv),
        idle_roles: crate::usage::idle_roles(&subjects, scope.now, asked.days)
            .map(|(_, i)| super::idle_row(i, "RoleLastUsed", "no RoleLastUsed; created"))
            .collect(),
        idle_users: asked
            .report
            .as_ref()
            .map(|rep| crate::usage::idle_users(&subjects, rep, asked.days))
            .unwrap_or_default()
            .into_iter()
            .map(|i| super::idle_row(i, "credential report", "never used; created"))
            .collect(),
        regions: crate::lifecycle::regions(inv),
        ..PartReview::default()
    };
    for o in ones {
        r.models.extend(o.models);
        r.guardrails.extend(o.guardrails);
        r.services.extend(o.service);
        r.usage.extend(o.usage);
        r.bedrock.extend(o.bedrock);
        r.deployments.extend(o.deployments);
    }
    let services: BTreeSet<&str> = r.services.iter().map(|s| s.entity.as_str()).collect();
    r.risky = risky(&scan.findings, &services);
    r.nodes = scan.nodes;
    r
}

/// The services a role's trust policy lets assume it.
fn trusted_services(inv: &Inventory, trust: Option<usize>) -> Vec<String> {
    let Some(doc) = trust.and_then(|t| inv.aws_policies.get(t)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for st in &doc.document.statements {
        if let Some(Principal::Typed(entries)) = st.principal.as_ref().map(|b| &b.principal) {
            for (kind, ids) in entries {
                if *kind == PrincipalKind::Service && st.effect == Effect::Allow {
                    out.extend(ids.iter().cloned());
                }
            }
        }
    }
    out
}

/// Cross-account, public and federated ways into the inventory's roles.
fn trust_paths(inv: &Inventory) -> Vec<TrustPath> {
    let mut out = Vec::new();
    for p in inv
        .aws_principals
        .iter()
        .filter(|p| p.kind == PrincipalType::Role)
    {
        let Some(doc) = p.trust.and_then(|t| inv.aws_policies.get(t)) else {
            continue;
        };
        let account = p.account();
        for st in doc
            .document
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
        {
            let conditions: Vec<String> = st
                .condition
                .iter()
                .flat_map(|b| {
                    b.entries
                        .iter()
                        .map(move |e| format!("{} {}", b.operator, e.key))
                })
                .collect();
            let mut push = |kind, principal: String| {
                out.push(TrustPath {
                    role: p.arn.clone(),
                    kind,
                    principal,
                    conditions: conditions.clone(),
                });
            };
            match st.principal.as_ref().map(|b| &b.principal) {
                Some(Principal::Any) => push("any", "*".into()),
                Some(Principal::Typed(entries)) => {
                    for (kind, ids) in entries {
                        for id in ids {
                            match kind {
                                PrincipalKind::Aws if id == "*" => push("any", id.clone()),
                                PrincipalKind::Aws => {
                                    let other = if id.len() == 12 {
                                        id.as_str()
                                    } else {
                                        id.split(':').nth(4).unwrap_or("")
                                    };
                                    if other != account {
                                        push("cross-account", id.clone());
                                    }
                                }
                                PrincipalKind::Federated => push("federated", id.clone()),
                                _ => {}
                            }
                        }
                    }
                }
                None => {}
            }
        }
    }
    out
}
