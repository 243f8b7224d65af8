//! What the analyzer reports: findings, their severities, where they are, and the rule
//! catalogue each finding points to (stable ids that SARIF and CI configurations cite).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is, from `Info` to `Critical`; ordered so that `>=` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a risk on its own.
    Info,
    /// A weakness with limited impact.
    Low,
    /// A risk to fix in the normal course of work.
    Medium,
    /// A risk to fix soon.
    High,
    /// Full control or public exposure: fix now.
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lower-case (or any case) name.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// The SARIF `level` of this severity.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exactly where a finding is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The input file.
    pub file: String,
    /// JSON path inside the file (`$.RoleDetailList[3].RolePolicyList[0].PolicyDocument.Statement[1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// The identity or role it concerns (user, group, role, GCP member, Azure role name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The policy (or role definition / binding) name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The statement: its `Sid`, or `#index` (0-based) when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
}

impl Location {
    /// A location in a file at a JSON path.
    pub fn at(file: &str, json_path: impl Into<String>) -> Location {
        Location {
            file: file.to_owned(),
            json_path: Some(json_path.into()),
            ..Location::default()
        }
    }

    /// The logical name (entity / policy / statement) for SARIF and text output.
    pub fn logical(&self) -> String {
        let mut parts = Vec::new();
        if let Some(e) = &self.entity {
            parts.push(e.clone());
        }
        if let Some(p) = &self.policy {
            parts.push(format!("policy {p}"));
        }
        if let Some(s) = &self.statement {
            parts.push(format!("statement {s}"));
        }
        parts.join(" / ")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(p) = &self.json_path {
            write!(f, " {p}")?;
        }
        let logical = self.logical();
        if !logical.is_empty() {
            write!(f, " ({logical})")?;
        }
        Ok(())
    }
}

/// One risk found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's stable id, e.g. `GH-AI-001`.
    pub rule: &'static str,
    /// The severity (the rule's default unless the evidence raises or lowers it).
    pub severity: Severity,
    /// The rule's title.
    pub title: &'static str,
    /// What exactly was found here.
    pub message: String,
    /// Where.
    pub location: Location,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

impl Finding {
    /// A finding of `rule` (which must be in [`RULES`]; an unknown id gets a generic text).
    pub fn new(rule: &'static str, message: impl Into<String>, location: Location) -> Finding {
        let r = rule_by_id(rule);
        Finding {
            rule,
            severity: r.map_or(Severity::Info, |r| r.severity),
            title: r.map_or("", |r| r.title),
            message: message.into(),
            location,
            why: r.map_or("", |r| r.why),
            fix: r.map_or("", |r| r.fix),
        }
    }

    /// Overrides the severity.
    pub fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
}

/// A rule of the analyzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable id.
    pub id: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// Short title.
    pub title: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

/// The rule with this id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Every rule, in id order.
pub const RULES: &[Rule] = &[
    Rule {
        id: "GH-OP-001",
        severity: Severity::Critical,
        title: "Full administrative access",
        why: "`Allow` of every action (`*` or `*:*`) on every resource gives complete control of the account, including over its own permissions.",
        fix: "Replace with the specific actions and resources the identity needs; keep administrator access to a few break-glass roles that require MFA.",
    },
    Rule {
        id: "GH-OP-002",
        severity: Severity::High,
        title: "Service-wide wildcard on an AI service",
        why: "A wildcard over an AI service (`ai:*`, `bedrock:*`, `sagemaker:*`, `Microsoft.CognitiveServices/*`, `aiplatform.*`, `roles/aiplatform.admin`) grants invocation, fine-tuning, deployment, guardrail and logging control together, including actions added later.",
        fix: "List the actions the identity needs (e.g. only `InvokeModel` on named models) and split management into a separate role.",
    },
    Rule {
        id: "GH-OP-003",
        severity: Severity::Medium,
        title: "Allow with NotAction, NotResource or NotPrincipal",
        why: "A negated element allows everything not listed, including actions, resources and principals that appear later; such statements routinely grant far more than intended.",
        fix: "Rewrite as a positive `Action`/`Resource`/`Principal` list; use a `Deny` statement for exceptions.",
    },
    Rule {
        id: "GH-OP-004",
        severity: Severity::Medium,
        title: "Resource `*` on write or permissions-management actions that support scoping",
        why: "These actions can be limited to specific resources, but the statement allows them on every resource, so a mistake or a compromised credential reaches everything.",
        fix: "Replace `*` with the ARNs (or ARN patterns) of the resources the identity manages.",
    },
    Rule {
        id: "GH-OP-005",
        severity: Severity::High,
        title: "GCP primitive role granted",
        why: "`roles/owner` and `roles/editor` grant nearly every permission in the project, including Vertex AI (`aiplatform.*`) administration; owner can also change IAM.",
        fix: "Grant predefined or custom roles with only the permissions needed.",
    },
    Rule {
        id: "GH-AI-001",
        severity: Severity::High,
        title: "Invocation and model management in one identity",
        why: "An identity that both invokes models and manages them (fine-tuning, deploying, guardrails) can change what it is served and then use it; separating the two is the first governance rule for AI access.",
        fix: "Give invocation and management to different roles; applications get only `InvokeModel` on named models.",
    },
    Rule {
        id: "GH-AI-002",
        severity: Severity::High,
        title: "Guardrail modification by an identity that also invokes",
        why: "An identity that can weaken or delete guardrails and also invoke models can switch off the controls on its own requests.",
        fix: "Restrict guardrail changes to a separate administrative role that cannot invoke.",
    },
    Rule {
        id: "GH-AI-003",
        severity: Severity::Critical,
        title: "Model customization with iam:PassRole on any role",
        why: "Fine-tuning and customization jobs run with a role the caller passes; with `iam:PassRole` on every role, the caller runs a job (and reads its data) with any role's permissions, e.g. an administrator's.",
        fix: "Limit `iam:PassRole` to the dedicated training role's ARN and add `iam:PassedToService`.",
    },
    Rule {
        id: "GH-AI-004",
        severity: Severity::High,
        title: "Reading prompt and response logs",
        why: "Invocation logs hold every prompt and completion: customer data, secrets pasted into prompts, proprietary outputs. Reading them is data exfiltration unless the identity is an auditor.",
        fix: "Allow log reading only to an auditor role, scoped to the models it audits.",
    },
    Rule {
        id: "GH-AI-005",
        severity: Severity::High,
        title: "Repointing a deployment",
        why: "Changing where a deployment points swaps the model every caller of that deployment gets, e.g. to an unguarded or attacker-tuned model; it escalates from one identity to all callers.",
        fix: "Allow deployment updates only to the deployer role, scoped to its deployments, with MFA.",
    },
    Rule {
        id: "GH-AI-006",
        severity: Severity::Medium,
        title: "Model access not scoped by model",
        why: "Invocation is allowed on every model, including expensive, deprecated or not-yet-approved ones, and models added later.",
        fix: "Scope `Resource` to the model ARNs the identity uses (or an `ai:ModelId` condition).",
    },
    Rule {
        id: "GH-AI-007",
        severity: Severity::Medium,
        title: "Deprecated model still invocable",
        why: "The model is past (or at) its provider's end of life, or its deployment is marked deprecated: requests soon fail, or are answered by a model that no longer gets safety fixes. Access to it should be removed before the date, not discovered after.",
        fix: "Remove the deprecated model from the statement (or the deployment), and grant the replacement model by name.",
    },
    Rule {
        id: "GH-PE-001",
        severity: Severity::Critical,
        title: "Privilege escalation by changing policies",
        why: "`iam:CreatePolicyVersion`, `SetDefaultPolicyVersion`, `Attach*Policy` or `Put*Policy` on any resource let the identity grant itself (or a role it uses) any permission.",
        fix: "Remove these actions or scope them to resources the identity cannot use, and constrain attachment with a permissions boundary condition.",
    },
    Rule {
        id: "GH-PE-002",
        severity: Severity::High,
        title: "Privilege escalation by rewriting a trust policy",
        why: "`iam:UpdateAssumeRolePolicy` on any role lets the identity make any role, including administrator roles, assumable by itself.",
        fix: "Scope it to the roles the identity administers, or remove it.",
    },
    Rule {
        id: "GH-PE-003",
        severity: Severity::High,
        title: "Privilege escalation by creating credentials for other users",
        why: "`iam:CreateAccessKey`, `CreateLoginProfile` or `UpdateLoginProfile` on other users lets the identity sign in as them.",
        fix: "Scope credential actions to `arn:...:user/${aws:username}`.",
    },
    Rule {
        id: "GH-PE-004",
        severity: Severity::High,
        title: "Privilege escalation by joining groups",
        why: "`iam:AddUserToGroup` on any group lets the identity add itself to the most privileged group.",
        fix: "Scope it to specific groups or remove it.",
    },
    Rule {
        id: "GH-PE-005",
        severity: Severity::Critical,
        title: "Privilege escalation by passing a role to new compute",
        why: "`iam:PassRole` on any role together with an action that starts compute under a role (EC2, Lambda, Glue, SageMaker, CloudFormation, ...) lets the identity run code with any role's permissions.",
        fix: "Scope `iam:PassRole` to specific role ARNs and add an `iam:PassedToService` condition.",
    },
    Rule {
        id: "GH-PE-006",
        severity: Severity::Critical,
        title: "Privilege escalation path through role assumption",
        why: "The identity may `sts:AssumeRole` into a role whose trust policy admits it, and through up to three such assumptions reaches a role with full administrative access (critical) or an escalation capability of GH-PE-001..005 (high): its own policies understate what it can do.",
        fix: "Narrow `sts:AssumeRole` in the identity's policies to the roles it needs, and name the expected callers (with conditions) in each trust policy on the path instead of the account root or `*`.",
    },
    Rule {
        id: "GH-TR-001",
        severity: Severity::High,
        title: "Role assumable from other accounts without conditions",
        why: "A trust policy that lets another account (or anyone, `*`) assume the role with no `sts:ExternalId` or other condition is open to the confused-deputy problem and to anyone in that account.",
        fix: "Require `sts:ExternalId` for third parties, or `aws:PrincipalOrgID` / `aws:PrincipalArn` conditions naming the expected callers.",
    },
    Rule {
        id: "GH-TR-002",
        severity: Severity::Critical,
        title: "Federated (OIDC) trust without a subject condition",
        why: "Without a condition on the token's `sub` (and `aud`), any identity of the provider can assume the role: for GitHub Actions, any workflow in any repository.",
        fix: "Add `StringEquals`/`StringLike` on `ISSUER:sub` naming the repository and branch (or service account), and `ISSUER:aud`.",
    },
    Rule {
        id: "GH-TR-003",
        severity: Severity::Critical,
        title: "GCP binding to allUsers or allAuthenticatedUsers",
        why: "The role is granted to everyone on the internet (`allUsers`) or to every Google account (`allAuthenticatedUsers`).",
        fix: "Remove the public member; grant the role to specific users, groups or service accounts.",
    },
    Rule {
        id: "GH-TR-004",
        severity: Severity::High,
        title: "Azure custom role with wildcard actions assignable broadly",
        why: "A custom role whose actions use wildcards and that is assignable at the root (`/`) or subscription scope grants every present and future operation it matches across the subscription.",
        fix: "List explicit operations and narrow `AssignableScopes` to resource groups.",
    },
    Rule {
        id: "GH-HY-001",
        severity: Severity::Medium,
        title: "Long-lived access key",
        why: "An active access key not rotated for more than 90 days has had that long to leak (in a laptop, a CI log, a container image); long-lived keys are the most common way into cloud accounts.",
        fix: "Rotate the key (create a new one, switch callers, deactivate and delete the old), or better replace it with short-lived credentials: roles, STS sessions, OIDC federation.",
    },
    Rule {
        id: "GH-HY-002",
        severity: Severity::Medium,
        title: "Access key unused for 90 days",
        why: "An active key nobody uses is pure risk: it can only be used by someone who should not have it.",
        fix: "Deactivate the key, and delete it once nothing breaks.",
    },
    Rule {
        id: "GH-HY-003",
        severity: Severity::High,
        title: "User without MFA holding management rights",
        why: "A password (or, in Gatehouse, an access key) alone protects an identity that can change permissions or manage models, deployments or guardrails; a phished password is enough to take over.",
        fix: "Require an MFA device for the user, and add `aws:MultiFactorAuthPresent` conditions to management statements.",
    },
    Rule {
        id: "GH-HY-004",
        severity: Severity::Medium,
        title: "Permissions unused for 90 days (Gatehouse audit log)",
        why: "The identity holds actions its audit log shows it has not used in the window: standing access nobody needs, which a leaked credential or a confused agent can still use.",
        fix: "Replace its policies with what it does use (`gatehouse policy generate --principal ARN --since 90d`, in the message), or remove the unused actions named.",
    },
    Rule {
        id: "GH-HY-005",
        severity: Severity::Medium,
        title: "Role unused for 90 days still holding write access",
        why: "An AWS role with no recorded use (`RoleLastUsed`) for 90 days still may write or change permissions: access nobody exercises is pure exposure, and an unwatched role is where an intruder persists.",
        fix: "Delete the role if nothing needs it; otherwise cut its policies to read-only until it is needed again, or scope them with IAM Access Analyzer's last-accessed data.",
    },
    Rule {
        id: "GH-IN-001",
        severity: Severity::Info,
        title: "Input not recognized",
        why: "The file is empty, not JSON, or not one of the supported formats, so it was not analyzed.",
        fix: "Pass AWS authorization details or policies, Azure role definitions, or GCP IAM policies / custom roles.",
    },
    Rule {
        id: "GH-IN-002",
        severity: Severity::Medium,
        title: "Invalid action name",
        why: "The action name is malformed, so it matches nothing: the role does not grant what its author meant, and the definition may be rejected on deployment.",
        fix: "Correct the action name (Azure: `Provider.Namespace/resourceType/action`; AWS: `service:Action`).",
    },
    Rule {
        id: "GH-IN-003",
        severity: Severity::Low,
        title: "Invalid policy document",
        why: "The policy document does not parse or compile, so it was not analyzed (and AWS would reject it).",
        fix: "Fix the errors reported (`gatehouse policy validate` shows each one).",
    },
];
