//! The quarterly access review: who can invoke each model and through which policy, who can
//! change guardrails, which cross-account and federated paths lead in, which service
//! identities hold risky permissions, which identities hold more than they used (Gatehouse's
//! audit log, or AWS's `RoleLastUsed`), and which deprecated models are still reachable — as
//! JSON, Markdown and HTML from one structure.
//!
//! Every "can" is the engine's answer: each principal's effective access is the semantic
//! diff from nothing to its policies (see [`crate::access::Directory::what_can`]), and the
//! policy behind each grant is the engine's explanation of a request in it.

use crate::access::{AccessError, Directory};
use crate::finding::Severity;
use crate::model::PrincipalType;
use gatehouse_policy::model::{Effect, Principal, PrincipalKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

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
    /// The audit log's coverage of the usage window (Gatehouse stores only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_window: Option<crate::usage::Window>,
    /// Identities holding more than they used.
    pub unused_access: Vec<UnusedAccess>,
    /// Deprecated models, with who can still invoke them.
    pub deprecated_models: Vec<crate::lifecycle::DeprecatedModel>,
}

fn pick(actions: &[String], wanted: &[&str]) -> Vec<String> {
    actions
        .iter()
        .filter(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a)))
        .cloned()
        .collect()
}

/// Builds the review of an authorization-details export (`bytes` of `file`): unused access
/// from `RoleLastUsed` (roles idle for 90 days holding write access), deprecated models from
/// the committed Bedrock lifecycle list.
pub fn review(file: &str, bytes: &[u8]) -> Result<Review, AccessError> {
    review_idle(file, bytes, crate::usage::DEFAULT_UNUSED_DAYS)
}

/// [`review`] with roles counted as idle after `days`.
pub fn review_idle(file: &str, bytes: &[u8], days: i64) -> Result<Review, AccessError> {
    review_aws(file, bytes, None, days)
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
    let dir = Directory::from_bytes(file, bytes)?;
    let mut r = base(file, &dir, &crate::scan_bytes(file, bytes))?;
    let users = match report {
        Some((name, csv)) => {
            let inv = crate::import::import(name, csv).0;
            if inv.format != crate::model::Format::AwsCredentialReport {
                return Err(AccessError::NotCredentialReport(name.to_owned()));
            }
            crate::usage::idle_users(dir.inventory(), &inv, days)
        }
        None => Vec::new(),
    };
    let roles = crate::usage::idle_roles(dir.inventory(), days)
        .into_iter()
        .map(|(_, i)| (i, "RoleLastUsed", "no RoleLastUsed; created"));
    let users = users
        .into_iter()
        .map(|i| (i, "credential report", "never used; created"));
    r.unused_access = roles
        .chain(users)
        .map(|(i, used, never)| UnusedAccess {
            principal: i.principal,
            basis: if i.last_used.is_some() {
                format!("{used}: idle {} days", i.idle_days)
            } else {
                format!("{never} {} days before the export", i.idle_days)
            },
            granted: i.write_actions.len(),
            used: 0,
            unused: vec![crate::usage::UnusedGrant {
                through: String::new(),
                actions: i.write_actions.iter().map(|a| (*a).to_owned()).collect(),
            }],
            last_used: i.last_used,
        })
        .collect();
    r.deprecated_models = crate::lifecycle::bedrock_reachable(&dir);
    Ok(r)
}

/// Builds the review of Gatehouse's own store: unused access from its audit log over the
/// last `days` before `now`, deprecated models from its deployments' dates.
pub fn review_store(
    s: &crate::StoreSnapshot,
    now: chrono::DateTime<chrono::Utc>,
    days: i64,
) -> Result<Review, AccessError> {
    let dir = Directory::from_bytes(&s.name, &s.details)?;
    let mut r = base(&s.name, &dir, &crate::scan_bytes(&s.name, &s.details))?;
    let (window, usage) = crate::usage::audit_usage(&dir, &s.audit, now, days)?;
    let basis = if window.complete() {
        format!("audit log, last {days} days")
    } else {
        format!("audit log, {} of {days} days covered", window.covered_days)
    };
    if window.first_record.is_some() {
        r.unused_access = usage
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
    r.usage_window = Some(window);
    let today = now.format("%Y-%m-%d").to_string();
    r.deprecated_models =
        crate::lifecycle::gatehouse_reachable(&dir, &s.deprecated, &s.region, &today);
    Ok(r)
}

fn base(file: &str, dir: &Directory, findings: &[crate::Finding]) -> Result<Review, AccessError> {
    let inv = dir.inventory();
    let mut models: BTreeMap<String, Vec<Access>> = BTreeMap::new();
    let mut guardrails = Vec::new();
    let mut service_identities = Vec::new();
    for p in &inv.aws_principals {
        let (_, allowed) = dir.what_can(&p.arn)?;
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
                    principal: p.arn.clone(),
                    actions,
                    resource: resource.clone(),
                    when: c.when_label(),
                    through: dir.through(p, &req),
                };
                if is_model {
                    models.entry(resource.clone()).or_default().push(access);
                } else {
                    guardrails.push(access);
                }
            }
        }
        if p.kind == PrincipalType::Role {
            let services = trusted_services(dir, p.trust);
            if !services.is_empty() {
                let entity = p.label();
                let risky: Vec<String> = findings
                    .iter()
                    .filter(|f| {
                        f.severity >= Severity::High
                            && f.location.entity.as_deref() == Some(entity.as_str())
                    })
                    .map(|f| format!("{}: {}", f.rule, f.message))
                    .collect();
                if !risky.is_empty() {
                    service_identities.push(ServiceIdentity {
                        role: p.arn.clone(),
                        services,
                        findings: risky,
                        allowed_actions: allowed
                            .newly_allowed
                            .iter()
                            .map(|c| c.actions.len())
                            .sum(),
                    });
                }
            }
        }
    }
    Ok(Review {
        source: file.to_owned(),
        model_invocation: models
            .into_iter()
            .map(|(models, invokers)| ModelAccess { models, invokers })
            .collect(),
        guardrail_changes: guardrails,
        trust_paths: trust_paths(dir),
        service_identities,
        usage_window: None,
        unused_access: Vec::new(),
        deprecated_models: Vec::new(),
    })
}

fn trusted_services(dir: &Directory, trust: Option<usize>) -> Vec<String> {
    let Some(doc) = trust.and_then(|t| dir.inventory().aws_policies.get(t)) else {
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

fn trust_paths(dir: &Directory) -> Vec<TrustPath> {
    let inv = dir.inventory();
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

impl Review {
    /// Markdown, for a ticket or a wiki page.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Access review: {}\n", self.source);
        if let Some(n) = self
            .usage_window
            .as_ref()
            .and_then(crate::usage::Window::notice)
        {
            let _ = writeln!(s, "> Note: {n}\n");
        }
        for (title, rows) in self.tables() {
            let _ = writeln!(s, "## {title}\n");
            let Some((head, body)) = rows.split_first() else {
                s.push_str("None.\n\n");
                continue;
            };
            if body.is_empty() {
                s.push_str("None.\n\n");
                continue;
            }
            let _ = writeln!(s, "| {} |", head.join(" | "));
            let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
            for r in body {
                let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
            s.push('\n');
        }
        s
    }

    /// A standalone HTML page.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Access review: {0}</title>\
             <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}</style>\
             </head><body>\n<h1>Access review: {0}</h1>\n",
            escape(&self.source)
        );
        if let Some(n) = self
            .usage_window
            .as_ref()
            .and_then(crate::usage::Window::notice)
        {
            let _ = writeln!(s, "<p><strong>Note:</strong> {}</p>", escape(&n));
        }
        for (title, rows) in self.tables() {
            let _ = writeln!(s, "<h2>{}</h2>", escape(title));
            match rows.split_first() {
                Some((head, body)) if !body.is_empty() => {
                    s.push_str("<table>\n<tr>");
                    for h in head {
                        let _ = write!(s, "<th>{}</th>", escape(h));
                    }
                    s.push_str("</tr>\n");
                    for r in body {
                        s.push_str("<tr>");
                        for c in r {
                            let _ = write!(s, "<td>{}</td>", escape(c));
                        }
                        s.push_str("</tr>\n");
                    }
                    s.push_str("</table>\n");
                }
                _ => s.push_str("<p>None.</p>\n"),
            }
        }
        s.push_str("</body></html>\n");
        s
    }

    /// Each section as a title and rows (the first row is the header).
    fn tables(&self) -> Vec<(&'static str, Vec<Vec<String>>)> {
        let access_row = |a: &Access| {
            vec![
                a.principal.clone(),
                a.actions.join(", "),
                a.resource.clone(),
                a.when.clone(),
                a.through.join("; "),
            ]
        };
        let mut models = vec![vec![
            "Models".to_owned(),
            "Principal".into(),
            "Actions".into(),
            "When".into(),
            "Through".into(),
        ]];
        for m in &self.model_invocation {
            for a in &m.invokers {
                let mut r = access_row(a);
                r.remove(2);
                r.insert(0, m.models.clone());
                models.push(r);
            }
        }
        let mut guardrails = vec![vec![
            "Principal".to_owned(),
            "Actions".into(),
            "Guardrails".into(),
            "When".into(),
            "Through".into(),
        ]];
        guardrails.extend(self.guardrail_changes.iter().map(access_row));
        let mut trust = vec![vec![
            "Role".to_owned(),
            "Path".into(),
            "Principal".into(),
            "Conditions".into(),
        ]];
        trust.extend(self.trust_paths.iter().map(|t| {
            vec![
                t.role.clone(),
                t.kind.to_owned(),
                t.principal.clone(),
                if t.conditions.is_empty() {
                    "none".into()
                } else {
                    t.conditions.join(", ")
                },
            ]
        }));
        let mut services = vec![vec![
            "Role".to_owned(),
            "Assumed by".into(),
            "Actions allowed".into(),
            "Findings".into(),
        ]];
        services.extend(self.service_identities.iter().map(|s| {
            vec![
                s.role.clone(),
                s.services.join(", "),
                s.allowed_actions.to_string(),
                s.findings.join("; "),
            ]
        }));
        let mut unused = vec![vec![
            "Principal".to_owned(),
            "Basis".into(),
            "Granted".into(),
            "Used".into(),
            "Last used".into(),
            "Unused".into(),
        ]];
        unused.extend(self.unused_access.iter().map(|u| {
            vec![
                u.principal.clone(),
                u.basis.clone(),
                u.granted.to_string(),
                u.used.to_string(),
                u.last_used.clone().unwrap_or_else(|| "never".into()),
                u.unused
                    .iter()
                    .map(|g| {
                        if g.through.is_empty() {
                            g.actions.join(", ")
                        } else {
                            format!("{} (through {})", g.actions.join(", "), g.through)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        }));
        let mut deprecated = vec![vec![
            "Model".to_owned(),
            "Status".into(),
            "Principal".into(),
            "Actions".into(),
            "When".into(),
            "Through".into(),
        ]];
        for m in &self.deprecated_models {
            if m.invokers.is_empty() {
                deprecated.push(vec![
                    m.model.clone(),
                    m.status.clone(),
                    "nobody".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for a in &m.invokers {
                deprecated.push(vec![
                    m.model.clone(),
                    m.status.clone(),
                    a.principal.clone(),
                    a.actions.join(", "),
                    a.when.clone(),
                    a.through.join("; "),
                ]);
            }
        }
        vec![
            ("Who can invoke which models", models),
            ("Who can change guardrails", guardrails),
            ("Cross-account, public and federated paths", trust),
            ("Over-privileged service identities", services),
            ("Identities holding more than they used", unused),
            ("Deprecated models still reachable", deprecated),
        ]
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
