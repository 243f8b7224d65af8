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

use super::statements::Compiled;
use crate::actions::glob_match;
use crate::finding::{Finding, Location, Severity};
use crate::model::{AwsPolicy, Inventory, PolicyKind, PrincipalType};
use gatehouse_policy::{Decision, Evaluation, NamedPolicy, PolicySet, PolicyType, Request};

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

/// Who the engine is asked about.
struct Subject {
    label: String,
    principal: String,
    account: String,
    user_name: String,
    policies: Vec<usize>,
    boundary: Option<usize>,
}

/// What an identity's own policies give it, for the role-assumption graph (GH-PE-006).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Power {
    /// Nothing that escalates.
    None,
    /// Full administrative access (GH-OP-001's condition, decided by the engine).
    Admin,
    /// One of GH-PE-001..005.
    Escalation(&'static str),
}

pub(crate) fn check(inv: &Inventory, compiled: &Compiled, out: &mut Vec<Finding>) {
    let subjects = subjects(inv);
    let mut nodes = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let pr = prober(inv, compiled, s);
        let power = pr.as_ref().map_or(Power::None, |pr| subject(pr, out));
        // `subjects` lists `aws_principals` first, in order, so `i` indexes both.
        if let Some(p) = inv.aws_principals.get(i)
            && p.kind != PrincipalType::Group
        {
            nodes.push((i, pr, power));
        }
    }
    super::paths::check(inv, compiled, &nodes, out);
}

fn subjects(inv: &Inventory) -> Vec<Subject> {
    let mut v = Vec::new();
    for p in &inv.aws_principals {
        let account = match p.account() {
            "" => PROBE_ACCOUNT.to_owned(),
            a => a.to_owned(),
        };
        let principal = match p.kind {
            PrincipalType::Group => format!("arn:aws:iam::{account}:user/member-of-{}", p.name),
            _ => p.arn.clone(),
        };
        v.push(Subject {
            label: p.label(),
            principal,
            account,
            user_name: if p.kind == PrincipalType::User {
                p.name.clone()
            } else {
                String::new()
            },
            policies: p.policies.clone(),
            boundary: p.boundary,
        });
    }
    for (i, p) in inv.aws_policies.iter().enumerate() {
        if p.kind == PolicyKind::Standalone
            && p.document.statements.iter().all(|s| s.principal.is_none())
        {
            v.push(Subject {
                label: format!("holder of policy {}", p.name),
                principal: format!("arn:aws:iam::{PROBE_ACCOUNT}:user/gatehouse-probe-holder"),
                account: PROBE_ACCOUNT.into(),
                user_name: "gatehouse-probe-holder".into(),
                policies: vec![i],
                boundary: None,
            });
        }
    }
    v
}

pub(super) struct Prober<'a> {
    inv: &'a Inventory,
    subject: &'a Subject,
    pub(super) identity: PolicySet,
    pub(super) boundary: Option<PolicySet>,
}

fn compile(
    inv: &Inventory,
    compiled: &Compiled,
    kind: PolicyType,
    idx: &[usize],
) -> Option<PolicySet> {
    let named: Vec<NamedPolicy> = idx
        .iter()
        .filter(|&&i| compiled.get(i).copied().unwrap_or(false))
        .filter_map(|&i| {
            inv.aws_policies
                .get(i)
                .map(|p| NamedPolicy::new(i.to_string(), p.document.clone()))
        })
        .collect();
    PolicySet::new(kind, named).ok()
}

impl Prober<'_> {
    pub(super) fn decide(&self, action: &str, resource: &str) -> Option<Decision> {
        let req = Request::new(self.subject.principal.as_str(), action, resource);
        let eval = Evaluation {
            boundary: self.boundary.as_ref(),
            ..Evaluation::identity(&self.identity)
        };
        let d = eval.decide(&req);
        d.is_allow().then_some(d)
    }

    /// An ARN of the action's resource type that no policy names.
    fn unlisted(&self, action: &str) -> String {
        let acct = &self.subject.account;
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
        for &i in &self.subject.policies {
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
                v if v.eq_ignore_ascii_case("aws:username") => {
                    out.push_str(&self.subject.user_name)
                }
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
            let idx: usize = s.policy.parse().ok()?;
            Some((self.inv.aws_policies.get(idx)?, s.index))
        });
        match found {
            Some((p, i)) => location(self.inv, &self.subject.label, p, i),
            None => Location {
                file: self.inv.file.clone(),
                entity: Some(self.subject.label.clone()),
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

/// The engine's view of one subject; `None` when it has no (compilable) identity policy.
fn prober<'a>(inv: &'a Inventory, compiled: &Compiled, s: &'a Subject) -> Option<Prober<'a>> {
    let identity = compile(inv, compiled, PolicyType::Identity, &s.policies)?;
    if identity.is_empty() {
        return None;
    }
    let boundary = s
        .boundary
        .and_then(|b| compile(inv, compiled, PolicyType::Boundary, &[b]));
    Some(Prober {
        inv,
        subject: s,
        identity,
        boundary,
    })
}

fn subject(pr: &Prober, out: &mut Vec<Finding>) -> Power {
    let s = pr.subject;
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
    let who = &s.label;
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
