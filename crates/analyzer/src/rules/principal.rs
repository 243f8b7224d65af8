//! Engine-based rules for each identity (an AWS user, group or role, or the holder of a
//! standalone policy): AI-specific risks (GH-AI-*) and privilege escalation (GH-PE-*).
//!
//! Whether an identity "can do X" is never decided by matching strings: the identity's
//! policies (and permissions boundary) are compiled and the engine decides a representative
//! request, so `Deny` statements, `NotAction`, boundaries and conditions count. Two probes:
//! - *on some resource*: each resource the identity's `Allow` statements name for the action
//!   (wildcards filled in), and an unnamed resource of the action's type;
//! - *on any resource*: only the unnamed resource, e.g. `role/gatehouse-probe-unlisted` —
//!   allowed only when the policy grants `*` or a pattern such as `role/*`.
//!
//! Requests carry no context, so a grant that depends on a condition (`iam:PassedToService`,
//! `aws:RequestedRegion`, ...) counts as not granted: findings are unconditional grants.

use super::paths::Node;
use crate::actions::glob_match;
use crate::finding::{Finding, Location, Severity};
use crate::model::{AwsPolicy, Inventory, PolicyKind, PrincipalType};
use crate::subject::Subject;
use gatehouse_policy::{Decision, Evaluation, NamedPolicy, PolicySet, PolicyType, Request};
use rayon::prelude::*;
use std::sync::Arc;

const PROBE_ACCOUNT: &str = "111122223333";

const INVOKE: &[&str] = &[
    "ai:InvokeModel",
    "ai:InvokeModelWithResponseStream",
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "sagemaker:InvokeEndpoint",
];
const MANAGE: &[&str] = &[
    "ai:CreateFineTuningJob",
    "ai:CreateDeployment",
    "ai:UpdateDeployment",
    "ai:DeleteDeployment",
    "ai:CreateGuardrail",
    "ai:UpdateGuardrail",
    "ai:DeleteGuardrail",
    "bedrock:CreateModelCustomizationJob",
    "bedrock:CreateProvisionedModelThroughput",
    "bedrock:UpdateProvisionedModelThroughput",
    "bedrock:CreateGuardrail",
    "bedrock:UpdateGuardrail",
    "bedrock:DeleteGuardrail",
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpoint",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateModel",
];
const GUARDRAIL_MOD: &[&str] = &[
    "ai:UpdateGuardrail",
    "ai:DeleteGuardrail",
    "bedrock:UpdateGuardrail",
    "bedrock:DeleteGuardrail",
    "bedrock:DeleteEnforcedGuardrailConfiguration",
    "bedrock:PutEnforcedGuardrailConfiguration",
];
const CUSTOMIZE: &[&str] = &[
    "ai:CreateFineTuningJob",
    "bedrock:CreateModelCustomizationJob",
    "sagemaker:CreateTrainingJob",
];
const LOGS: &[(&str, Severity)] = &[
    ("ai:ReadInvocationLogs", Severity::High),
    (
        "bedrock:GetModelInvocationLoggingConfiguration",
        Severity::Medium,
    ),
    ("logs:GetLogEvents", Severity::Medium),
    ("logs:FilterLogEvents", Severity::Medium),
    ("logs:StartQuery", Severity::Medium),
];
const REPOINT: &[&str] = &["ai:UpdateDeployment", "sagemaker:UpdateEndpoint"];
const UNSCOPED_INVOKE: &[&str] = &[
    "ai:InvokeModel",
    "bedrock:InvokeModel",
    "sagemaker:InvokeEndpoint",
];
const POLICY_CHANGE: &[&str] = &[
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
];
const CREDENTIALS: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
];
const COMPUTE: &[&str] = &[
    "ec2:RunInstances",
    "lambda:CreateFunction",
    "glue:CreateDevEndpoint",
    "sagemaker:CreateNotebookInstance",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateProcessingJob",
    "cloudformation:CreateStack",
    "datapipeline:CreatePipeline",
    "ecs:RunTask",
    "codebuild:CreateProject",
    "bedrock:CreateModelCustomizationJob",
    "ai:CreateFineTuningJob",
];

/// Who the engine is asked about, as findings name it.
struct Who {
    label: String,
    principal: String,
    account: String,
    user_name: String,
}

/// What an identity's own policies give it, for the role-assumption graph (GH-PE-006).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Power {
    /// Nothing that escalates.
    None,
    /// Full administrative access (GH-OP-001's condition, decided by the engine).
    Admin,
    /// One of GH-PE-001..005.
    Escalation(&'static str),
}

/// The per-identity rules over every principal of the inventory (and the holder of each
/// standalone policy), in parallel; returns the users and roles as nodes of the
/// role-assumption graph.
pub(crate) fn check(
    inv: &Inventory,
    subjects: &[Subject<'_>],
    out: &mut Vec<Finding>,
) -> Vec<Node> {
    let file: Arc<str> = Arc::from(inv.file.as_str());
    let done: Vec<(Vec<Finding>, Option<Node>)> = subjects
        .par_iter()
        .map(|s| {
            let p = s.principal;
            let who = Who {
                label: p.label(),
                principal: match p.kind {
                    PrincipalType::Group => format!(
                        "arn:aws:iam::{}:user/member-of-{}",
                        probe_account(p.account()),
                        p.name
                    ),
                    _ => p.arn.clone(),
                },
                account: probe_account(p.account()).to_owned(),
                user_name: if p.kind == PrincipalType::User {
                    p.name.clone()
                } else {
                    String::new()
                },
            };
            let pr = Prober {
                inv,
                who,
                identity: s.identity.clone(),
                boundary: s.boundary.clone(),
                guardrails: s.guardrails.clone(),
                policies: p
                    .policies
                    .iter()
                    .chain(p.boundary.iter())
                    .copied()
                    .collect(),
            };
            let mut found = Vec::new();
            let power = if pr.identity.is_empty() {
                Power::None
            } else {
                subject(&pr, &mut found)
            };
            let node = (p.kind != PrincipalType::Group)
                .then(|| super::paths::node(inv, &file, p, &pr, power));
            (found, node)
        })
        .collect();
    let mut nodes = Vec::new();
    for (found, node) in done {
        out.extend(found);
        nodes.extend(node);
    }
    holders(inv, out);
    nodes
}

fn probe_account(account: &str) -> &str {
    if account.is_empty() {
        PROBE_ACCOUNT
    } else {
        account
    }
}

/// The holder of each standalone policy that names no principal (a file holding one
/// policy): what would it be given?
fn holders(inv: &Inventory, out: &mut Vec<Finding>) {
    for (i, p) in inv.own_policies().iter().enumerate() {
        if p.kind != PolicyKind::Standalone
            || p.compile_error.is_some()
            || p.document.statements.iter().any(|s| s.principal.is_some())
        {
            continue;
        }
        let Ok(identity) = PolicySet::new(
            PolicyType::Identity,
            [NamedPolicy::new(p.display_name(), p.document.clone())],
        ) else {
            continue;
        };
        if identity.is_empty() {
            continue;
        }
        let pr = Prober {
            inv,
            who: Who {
                label: format!("holder of policy {}", p.name),
                principal: format!("arn:aws:iam::{PROBE_ACCOUNT}:user/gatehouse-probe-holder"),
                account: PROBE_ACCOUNT.into(),
                user_name: "gatehouse-probe-holder".into(),
            },
            identity: Arc::new(identity),
            boundary: None,
            guardrails: Arc::from(Vec::new()),
            policies: vec![i],
        };
        subject(&pr, out);
    }
}

/// The engine's view of one identity, with the probes the rules ask.
pub(crate) struct Prober<'a> {
    inv: &'a Inventory,
    who: Who,
    pub(crate) identity: Arc<PolicySet>,
    pub(crate) boundary: Option<Arc<PolicySet>>,
    pub(crate) guardrails: Arc<[PolicySet]>,
    /// Its identity policies and boundary (indices into the inventory).
    pub(crate) policies: Vec<usize>,
}

impl Prober<'_> {
    pub(super) fn decide(&self, action: &str, resource: &str) -> Option<Decision> {
        let req = Request::new(self.who.principal.as_str(), action, resource);
        let eval = Evaluation {
            boundary: self.boundary.as_deref(),
            guardrails: &self.guardrails,
            ..Evaluation::identity(&self.identity)
        };
        let d = eval.decide(&req);
        d.is_allow().then_some(d)
    }
    /// An ARN of the action's resource type that no policy names.
    fn unlisted(&self, action: &str) -> String {
        let acct = &self.who.account;
        let (svc, name) = action.split_once(':').unwrap_or((action, ""));
        let n = name.to_ascii_lowercase();
        match svc.to_ascii_lowercase().as_str() {
            "iam" => {
                let kind = if n.contains("group") {
                    "group"
                } else if n.contains("user")
                    || n.contains("accesskey")
                    || n.contains("loginprofile")
                {
                    "user"
                } else if n.contains("policyversion") {
                    "policy"
                } else {
                    "role"
                };
                format!("arn:aws:iam::{acct}:{kind}/gatehouse-probe-unlisted")
            }
            "ai" => {
                let kind = if n.contains("guardrail") {
                    "guardrail"
                } else if n.contains("deployment") {
                    "deployment"
                } else if n.contains("finetuning") {
                    "fine-tuning-job"
                } else if n.contains("invocationlogs") {
                    "invocation-log"
                } else if n.contains("dataset") {
                    "dataset"
                } else {
                    "model"
                };
                format!("arn:gatehouse:ai:local:{acct}:{kind}/gatehouse-probe-unlisted")
            }
            "bedrock" if n.starts_with("invoke") => {
                "arn:aws:bedrock:us-east-1::foundation-model/gatehouse-probe.unlisted-v1".into()
            }
            "bedrock" if n.contains("guardrail") => {
                format!("arn:aws:bedrock:us-east-1:{acct}:guardrail/gatehouseprobe")
            }
            "logs" => format!(
                "arn:aws:logs:us-east-1:{acct}:log-group:/aws/bedrock/modelinvocations:log-stream:gatehouse-probe"
            ),
            s => format!("arn:aws:{s}:us-east-1:{acct}:gatehouse-probe/unlisted"),
        }
    }

    /// Allowed on a resource no policy names (i.e. on `*` or a pattern covering every resource).
    fn on_any(&self, action: &str) -> Option<Decision> {
        self.decide(action, &self.unlisted(action))
    }

    /// Allowed on some resource the identity's policies name, or on an unnamed one.
    fn on_some(&self, action: &str) -> Option<Decision> {
        if let Some(d) = self.on_any(action) {
            return Some(d);
        }
        let mut tried = std::collections::HashSet::new();
        for &i in &self.policies {
            let Some(p) = self.inv.aws_policies.get(i) else {
                continue;
            };
            for st in &p.document.statements {
                if st.effect != gatehouse_policy::Effect::Allow {
                    continue;
                }
                let hit = st.action.patterns.iter().any(|a| glob_match(a, action));
                if hit == st.action.negated {
                    continue;
                }
                let Some(r) = &st.resource else { continue };
                if r.negated {
                    continue;
                }
                for pat in &r.patterns {
                    let concrete = self.concretize(pat);
                    if tried.insert(concrete.clone())
                        && let Some(d) = self.decide(action, &concrete)
                    {
                        return Some(d);
                    }
                }
            }
        }
        None
    }

    /// A resource that a pattern matches: variables and wildcards filled in.
    fn concretize(&self, pattern: &str) -> String {
        let mut out = String::with_capacity(pattern.len());
        let mut rest = pattern;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let var = &after[..end];
            match var {
                v if v.eq_ignore_ascii_case("aws:username") => out.push_str(&self.who.user_name),
                "*" => out.push('*'),
                "?" => out.push('?'),
                "$" => out.push('$'),
                _ => out.push('x'),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.replace(['*', '?'], "x")
    }

    pub(super) fn location(&self, d: &Decision) -> Location {
        let st = d
            .statements
            .iter()
            .find(|s| s.policy_type == PolicyType::Identity)
            .or(d.statements.first());
        let found = st.and_then(|s| {
            let p = self
                .policies
                .iter()
                .filter_map(|i| self.inv.aws_policies.get(*i))
                .find(|p| p.display_name() == *s.policy)?;
            Some((p, s.index))
        });
        match found {
            Some((p, i)) => location(self.inv, &self.who.label, p, i),
            None => Location {
                file: self.inv.file.clone(),
                entity: Some(self.who.label.clone()),
                ..Location::default()
            },
        }
    }
}

fn location(inv: &Inventory, entity: &str, p: &AwsPolicy, i: usize) -> Location {
    Location {
        file: inv.file.clone(),
        json_path: Some(p.statement_path(i)),
        entity: Some(entity.to_owned()),
        policy: Some(p.name.clone()),
        statement: Some(p.statement_label(i)),
    }
}

fn family(action: &str) -> &str {
    action.split_once(':').map_or(action, |(s, _)| s)
}

fn subject(pr: &Prober, out: &mut Vec<Finding>) -> Power {
    // An administrator is reported once, by GH-OP-001/GH-OP-003 on the statement that grants it.
    if pr
        .decide(
            "gatehouseprobe:UnlistedAction",
            "arn:aws:gatehouseprobe:us-east-1:111122223333:thing/x",
        )
        .is_some()
    {
        return Power::Admin;
    }
    let before = out.len();
    let who = &pr.who.label;
    let some = |list: &[&'static str]| -> Vec<(&'static str, Decision)> {
        list.iter()
            .filter_map(|a| pr.on_some(a).map(|d| (*a, d)))
            .collect()
    };
    let invoke = some(INVOKE);
    let fam_invokes = |fam: &str| invoke.iter().find(|(a, _)| family(a) == fam);

    // GH-AI-001: invoke and manage, per service.
    let manage = some(MANAGE);
    for fam in ["ai", "bedrock", "sagemaker"] {
        let m: Vec<&str> = manage
            .iter()
            .filter(|(a, _)| family(a) == fam)
            .map(|(a, _)| *a)
            .collect();
        if let (Some((inv_a, _)), Some((_, md))) = (
            fam_invokes(fam),
            manage.iter().find(|(a, _)| family(a) == fam),
        ) {
            out.push(Finding::new(
                "GH-AI-001",
                format!(
                    "{who} can both invoke (`{inv_a}`) and manage models ({})",
                    m.join(", ")
                ),
                pr.location(md),
            ));
        }
    }
    // GH-AI-002: guardrail modification + invoke.
    let gmod = some(GUARDRAIL_MOD);
    for fam in ["ai", "bedrock"] {
        let g: Vec<&str> = gmod
            .iter()
            .filter(|(a, _)| family(a) == fam)
            .map(|(a, _)| *a)
            .collect();
        if let (Some((inv_a, _)), Some((_, gd))) = (
            fam_invokes(fam),
            gmod.iter().find(|(a, _)| family(a) == fam),
        ) {
            out.push(Finding::new(
                "GH-AI-002",
                format!(
                    "{who} can change guardrails ({}) and invoke (`{inv_a}`)",
                    g.join(", ")
                ),
                pr.location(gd),
            ));
        }
    }
    // GH-AI-003 and GH-PE-005: PassRole on any role with customization / compute.
    let passrole = pr.on_any("iam:PassRole");
    if let Some(pd) = &passrole {
        let cust = some(CUSTOMIZE);
        if !cust.is_empty() {
            let names: Vec<&str> = cust.iter().map(|(a, _)| *a).collect();
            out.push(Finding::new(
                "GH-AI-003",
                format!("{who} can start model customization ({}) and pass any role (`iam:PassRole` on `*`)", names.join(", ")),
                pr.location(pd),
            ));
        }
        let comp = some(COMPUTE);
        if !comp.is_empty() {
            let names: Vec<&str> = comp.iter().map(|(a, _)| *a).collect();
            out.push(Finding::new(
                "GH-PE-005",
                format!(
                    "{who} can pass any role (`iam:PassRole` on `*`) to new compute: {}",
                    names.join(", ")
                ),
                pr.location(pd),
            ));
        }
    }
    // GH-AI-004: prompt/response logs.
    for (a, sev) in LOGS {
        if let Some(d) = pr.on_some(a) {
            out.push(
                Finding::new(
                    "GH-AI-004",
                    format!("{who} can read model invocation logs or their configuration (`{a}`)"),
                    pr.location(&d),
                )
                .with_severity(*sev),
            );
        }
    }
    // GH-AI-005: repointing deployments.
    for a in REPOINT {
        if let Some(d) = pr.on_some(a) {
            out.push(Finding::new(
                "GH-AI-005",
                format!("{who} can repoint deployments (`{a}`)"),
                pr.location(&d),
            ));
        }
    }
    // GH-AI-006: invocation not scoped by model.
    for a in UNSCOPED_INVOKE {
        if let Some(d) = pr.on_any(a) {
            out.push(Finding::new(
                "GH-AI-006",
                format!("{who} can `{a}` on every model or endpoint"),
                pr.location(&d),
            ));
        }
    }
    // GH-PE-001..004: IAM escalation on any resource.
    let any = |list: &[&'static str]| -> Vec<(&'static str, Decision)> {
        list.iter()
            .filter_map(|a| pr.on_any(a).map(|d| (*a, d)))
            .collect()
    };
    for (rule, list, what) in [
        (
            "GH-PE-001",
            POLICY_CHANGE,
            "change policies on any resource",
        ),
        (
            "GH-PE-002",
            &["iam:UpdateAssumeRolePolicy"][..],
            "rewrite any role's trust policy",
        ),
        (
            "GH-PE-003",
            CREDENTIALS,
            "create credentials for other users",
        ),
        (
            "GH-PE-004",
            &["iam:AddUserToGroup"][..],
            "add users to any group",
        ),
    ] {
        let hits = any(list);
        if let Some((_, d)) = hits.first() {
            let names: Vec<&str> = hits.iter().map(|(a, _)| *a).collect();
            out.push(Finding::new(
                rule,
                format!("{who} can {what}: {}", names.join(", ")),
                pr.location(d),
            ));
        }
    }
    out.get(before..)
        .unwrap_or_default()
        .iter()
        .find(|f| f.rule.starts_with("GH-PE-"))
        .map_or(Power::None, |f| Power::Escalation(f.rule))
}
