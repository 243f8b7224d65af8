//! The quarterly access review: who can invoke each model and through which policy, who can
//! change guardrails, which cross-account and federated paths lead in, which service
//! identities hold risky permissions, which identities hold more than they used (Gatehouse's
//! audit log, or AWS's `RoleLastUsed`), and which deprecated models are still reachable — as
//! JSON, Markdown and HTML from one structure.
//!
//! Every "can" is the engine's answer: each principal's access to the actions a section is
//! about is the semantic diff from nothing to its policies over those actions, and the
//! policy behind each grant is the engine's explanation of a request in it. The export is
//! read in parts ([`crate::export`]); each part's share is gathered in parallel
//! ([`collect`]) and the sections are put together once all are read.

mod collect;
pub mod identity_center;
pub mod people;
mod render;

use crate::access::AccessError;
use crate::export::AwsExport;
use crate::lifecycle::{BEDROCK_INVOKE, Reach, Target};
use crate::rules::Scope;
use crate::usage::CredentialIndex;
use crate::{NoProgress, Progress, Settings};
use collect::{Asked, PartReview};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Actions that invoke a model.
const INVOKE: &[&str] = &[
    "ai:InvokeModel",
    "ai:InvokeModelWithResponseStream",
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:Converse",
    "bedrock:ConverseStream",
    "sagemaker:InvokeEndpoint",
    "sagemaker:InvokeEndpointWithResponseStream",
];

/// Actions that change a guardrail.
const GUARDRAIL_CHANGE: &[&str] = &[
    "ai:CreateGuardrail",
    "ai:UpdateGuardrail",
    "ai:DeleteGuardrail",
    "bedrock:CreateGuardrail",
    "bedrock:UpdateGuardrail",
    "bedrock:DeleteGuardrail",
    "bedrock:CreateGuardrailVersion",
];

/// One principal's access to a set of resources.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    /// The principal's ARN.
    pub principal: String,
    /// The actions (of the kind the section is about).
    pub actions: Vec<String>,
    /// The resources.
    pub resource: String,
    /// Under which conditions (`always` when none).
    pub when: String,
    /// The policy statements that allow it.
    pub through: Vec<String>,
}

/// Who can invoke the models a resource pattern covers.
#[derive(Debug, Clone, Serialize)]
pub struct ModelAccess {
    /// The model resources (a pattern, as the policies write it).
    pub models: String,
    /// Who can invoke them.
    pub invokers: Vec<Access>,
}

/// A way into a role from outside its account.
#[derive(Debug, Clone, Serialize)]
pub struct TrustPath {
    /// The role's ARN.
    pub role: String,
    /// `any`, `cross-account`, `federated` or `service`.
    pub kind: &'static str,
    /// Who (as the trust policy names them).
    pub principal: String,
    /// The conditions on the path (`Operator key`), empty when none.
    pub conditions: Vec<String>,
}

/// A role that a service assumes, with the risky findings about it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceIdentity {
    /// The role's ARN.
    pub role: String,
    /// The services that assume it.
    pub services: Vec<String>,
    /// Findings at high or critical severity (`RULE: message`).
    pub findings: Vec<String>,
    /// Number of catalog actions it may perform.
    pub allowed_actions: usize,
}

/// An identity holding more than it used.
#[derive(Debug, Clone, Serialize)]
pub struct UnusedAccess {
    /// The identity's ARN.
    pub principal: String,
    /// What the judgement rests on: `audit log, N days` or `RoleLastUsed`.
    pub basis: String,
    /// Actions granted (Gatehouse: of its own services; AWS: write and permissions
    /// management).
    pub granted: usize,
    /// Of those, used in the window (AWS exports do not say: 0).
    pub used: usize,
    /// The unused actions (a whole service as `service:*`) by the statement granting them
    /// (AWS: one entry, `through` empty).
    pub unused: Vec<crate::usage::UnusedGrant>,
    /// Last use, when known.
    pub last_used: Option<String>,
}

/// A privilege-escalation path through role assumptions (GH-PE-006).
#[derive(Debug, Clone, Serialize)]
pub struct EscalationPath {
    /// The identity it starts from, then each role assumed in turn.
    pub steps: Vec<String>,
    /// `critical` when the last role is an administrator, `high` when it holds an
    /// escalation capability.
    pub severity: crate::Severity,
    /// The finding's message.
    pub message: String,
}

/// The access review of one export.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The export.
    pub source: String,
    /// Who can invoke which models.
    pub model_invocation: Vec<ModelAccess>,
    /// Who can create, change or delete guardrails.
    pub guardrail_changes: Vec<Access>,
    /// Cross-account, public and federated paths into roles.
    pub trust_paths: Vec<TrustPath>,
    /// Service identities with high or critical findings.
    pub service_identities: Vec<ServiceIdentity>,
    /// Privilege-escalation paths through role assumptions.
    pub escalation_paths: Vec<EscalationPath>,
    /// The audit log's coverage of the usage window (Gatehouse stores only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_window: Option<crate::usage::Window>,
    /// Identities holding more than they used.
    pub unused_access: Vec<UnusedAccess>,
    /// Deprecated models, with who can still invoke them.
    pub deprecated_models: Vec<crate::lifecycle::DeprecatedModel>,
}

/// Builds the review of an authorization-details export held in memory (`bytes` of `file`),
/// with the default settings.
pub fn review(file: &str, bytes: &[u8]) -> Result<Review, AccessError> {
    let export = AwsExport::from_bytes(file, bytes)?
        .ok_or_else(|| crate::access::not_details(file, bytes))?;
    review_export(&export, None, &Settings::default(), &NoProgress)
}

/// [`review`] with identities counted as idle after `days`: roles by `RoleLastUsed`, and,
/// given a credential report (`report`: file name and CSV), users whose password and access
/// keys were not used for as long.
pub fn review_aws(
    file: &str,
    bytes: &[u8],
    report: Option<(&str, &[u8])>,
    days: i64,
) -> Result<Review, AccessError> {
    let export = AwsExport::from_bytes(file, bytes)?
        .ok_or_else(|| crate::access::not_details(file, bytes))?;
    let report = report.map(|(name, csv)| crate::import::import(name, csv).0);
    let settings = Settings {
        unused_days: days,
        ..Settings::default()
    };
    review_export(&export, report.as_ref(), &settings, &NoProgress)
}

/// Builds the review of an export: unused access from `RoleLastUsed` (roles idle for
/// `settings.unused_days` holding write access) and, given a credential report (`report`),
/// users whose password and access keys were not used for as long; deprecated models from
/// `settings.bedrock`.
pub fn review_export(
    export: &AwsExport,
    report: Option<&crate::Inventory>,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<Review, AccessError> {
    if let Some(r) = report
        && r.format != crate::model::Format::AwsCredentialReport
    {
        return Err(AccessError::NotCredentialReport(r.file.clone()));
    }
    let asked = Asked {
        days: settings.unused_days,
        report: report.map(CredentialIndex::new),
        ..Asked::default()
    };
    let parts = gather(export, settings, &asked, progress)?;
    let mut r = assemble(export.file(), parts);
    let targets = crate::lifecycle::bedrock_targets(&settings.bedrock, &r.regions);
    r.review.deprecated_models = ask(&r.bedrock, &targets).models(targets, BEDROCK_INVOKE, false);
    r.review.unused_access = r.idle_roles;
    r.review.unused_access.extend(r.idle_users);
    Ok(r.review)
}

/// Builds the review of Gatehouse's own store: unused access from its audit log over the
/// last `days` before `now`, deprecated models from its deployments' dates.
pub fn review_store(
    s: &crate::StoreSnapshot,
    now: chrono::DateTime<chrono::Utc>,
    days: i64,
    settings: &Settings,
) -> Result<Review, AccessError> {
    let export = AwsExport::from_bytes(&s.name, &s.details)?
        .ok_or_else(|| crate::access::not_details(&s.name, &s.details))?;
    let today = now.format("%Y-%m-%d").to_string();
    let asked = Asked {
        days,
        audit: Some(crate::usage::AuditIndex::new(&s.audit, now, days)),
        deployments: crate::lifecycle::gatehouse_targets(&s.deprecated, &s.region, &today),
        ..Asked::default()
    };
    let parts = gather(&export, settings, &asked, &NoProgress)?;
    let mut r = assemble(&s.name, parts);
    let window = asked.audit.map(|a| a.window);
    if let Some(window) = &window {
        let basis = if window.complete() {
            format!("audit log, last {days} days")
        } else {
            format!("audit log, {} of {days} days covered", window.covered_days)
        };
        if window.first_record.is_some() {
            r.review.unused_access = r
                .usage
                .iter()
                .filter(|u| !u.unused.is_empty())
                .map(|u| UnusedAccess {
                    principal: u.principal.clone(),
                    basis: basis.clone(),
                    granted: u.granted,
                    used: u.granted - u.unused_count(),
                    unused: u.unused.clone(),
                    last_used: u.last_used.clone(),
                })
                .collect();
        }
    }
    r.review.usage_window = window;
    r.review.deprecated_models =
        r.deployments
            .models(asked.deployments, crate::lifecycle::GATEHOUSE_INVOKE, true);
    Ok(r.review)
}

/// Who may invoke `targets` with `actions`, over a whole export.
pub(crate) fn reach(
    export: &AwsExport,
    settings: &Settings,
    targets: &[Target],
    actions: &[&str],
) -> Result<Reach, AccessError> {
    let scope = Scope {
        settings,
        now: export.now(),
    };
    let parts = export.parts(&|_| {}, &|part| {
        let guardrails = |a: &str| scope.guardrails(a);
        let mut reach = Reach::default();
        for s in crate::subject::subjects(&part.inventory, &guardrails) {
            let p = s.principal;
            reach.add(&s.evaluation(), (p.kind, &p.name, &p.arn), targets, actions);
        }
        reach
    })?;
    let mut all = Reach::default();
    for r in parts {
        all.extend(r);
    }
    Ok(all)
}

fn gather(
    export: &AwsExport,
    settings: &Settings,
    asked: &Asked<'_>,
    progress: &dyn Progress,
) -> Result<Vec<PartReview>, AccessError> {
    let scope = Scope {
        settings,
        now: export.now(),
    };
    progress.add_total(export.principals() as u64);
    Ok(export.parts(&|n| progress.advance(n), &|part| {
        collect::part(&part.inventory, &part.problems, &scope, asked)
    })?)
}

/// The parts put together: the review's sections, and what is left to ask.
struct Assembled {
    review: Review,
    regions: BTreeSet<String>,
    bedrock: Vec<crate::subject::Reduced>,
    idle_roles: Vec<UnusedAccess>,
    idle_users: Vec<UnusedAccess>,
    usage: Vec<crate::usage::PrincipalUsage>,
    deployments: Reach,
}

fn assemble(source: &str, parts: Vec<PartReview>) -> Assembled {
    let mut models: BTreeMap<String, Vec<Access>> = BTreeMap::new();
    let mut a = Assembled {
        review: Review {
            source: source.to_owned(),
            model_invocation: Vec::new(),
            guardrail_changes: Vec::new(),
            trust_paths: Vec::new(),
            service_identities: Vec::new(),
            escalation_paths: Vec::new(),
            usage_window: None,
            unused_access: Vec::new(),
            deprecated_models: Vec::new(),
        },
        regions: BTreeSet::new(),
        bedrock: Vec::new(),
        idle_roles: Vec::new(),
        idle_users: Vec::new(),
        usage: Vec::new(),
        deployments: Reach::default(),
    };
    let mut risky = Vec::new();
    let mut nodes = Vec::new();
    let mut services = Vec::new();
    for p in parts {
        for (resource, access) in p.models {
            models.entry(resource).or_default().push(access);
        }
        a.review.guardrail_changes.extend(p.guardrails);
        a.review.trust_paths.extend(p.trust);
        services.extend(p.services);
        a.idle_roles.extend(p.idle_roles);
        a.idle_users.extend(p.idle_users);
        a.usage.extend(p.usage);
        a.bedrock.extend(p.bedrock);
        a.regions.extend(p.regions);
        a.deployments.extend(p.deployments);
        risky.extend(p.risky);
        nodes.extend(p.nodes);
    }
    let entities: BTreeSet<&str> = services.iter().map(|s| s.entity.as_str()).collect();
    let paths = crate::rules::paths::check(nodes);
    risky.extend(collect::risky(&paths, &entities));
    a.review.escalation_paths = paths
        .into_iter()
        .filter_map(|f| {
            Some(EscalationPath {
                steps: crate::rules::paths::steps(&f)?,
                severity: f.severity,
                message: f.message,
            })
        })
        .collect();
    a.review.model_invocation = models
        .into_iter()
        .map(|(models, invokers)| ModelAccess { models, invokers })
        .collect();
    a.review.service_identities = service_identities(services, risky);
    a
}

/// An identity idle in AWS's records (`used`: what the date is from; `never`: what to say
/// when it was never used), with its write actions (whole services as `service:*`).
fn idle_row(i: crate::usage::IdleIdentity, used: &str, never: &str) -> UnusedAccess {
    UnusedAccess {
        basis: if i.last_used.is_some() {
            format!("{used}: idle {} days", i.idle_days)
        } else {
            format!("{never} {} days before the export", i.idle_days)
        },
        granted: i.write_actions.len(),
        used: 0,
        unused: vec![crate::usage::UnusedGrant {
            through: String::new(),
            actions: crate::usage::compress_writes(&i.write_actions),
        }],
        last_used: i.last_used,
        principal: i.principal,
    }
}

/// Service roles with high or critical findings (`risky`: entity and finding, in the order
/// found).
fn service_identities(
    roles: Vec<collect::ServiceRole>,
    risky: Vec<(String, String)>,
) -> Vec<ServiceIdentity> {
    let mut by_entity: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (e, f) in risky {
        by_entity.entry(e).or_default().push(f);
    }
    roles
        .into_iter()
        .filter_map(|r| {
            let findings = by_entity.get(r.entity.as_str())?.clone();
            Some(ServiceIdentity {
                role: r.role,
                services: r.services,
                findings,
                allowed_actions: r.allowed_actions,
            })
        })
        .collect()
}

/// Who may invoke each target, asked of every principal that may invoke Bedrock at all.
fn ask(principals: &[crate::subject::Reduced], targets: &[Target]) -> Reach {
    let chunks: Vec<Reach> = principals
        .par_chunks(64)
        .map(|chunk| {
            let mut reach = Reach::default();
            for r in chunk {
                reach.add(
                    &r.evaluation(),
                    (r.kind, &r.name, &r.arn),
                    targets,
                    BEDROCK_INVOKE,
                );
            }
            reach
        })
        .collect();
    let mut all = Reach::default();
    for c in chunks {
        all.extend(c);
    }
    all
}
