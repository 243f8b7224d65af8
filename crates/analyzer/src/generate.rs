//! Least-privilege policies, two ways: templates for the roles an AI platform has (invoker,
//! admin, fine-tuning, deployer, auditor) scoped to named models, and policies generated from
//! what the audit log shows a principal actually did.
//!
//! Both produce plain AWS policy JSON for Gatehouse's `ai` service, which
//! `gatehouse policy validate` accepts without a warning (the tests hold them to that).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A role a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Calls the named models, nothing else.
    Invoker,
    /// Manages deployments and guardrails of the named models, with MFA; may not invoke them
    /// nor read their logs (invocation and management stay in separate identities).
    Admin,
    /// Runs fine-tuning jobs on the named base models.
    FineTuning,
    /// Creates and repoints deployments, only to the named models.
    Deployer,
    /// Reads invocation logs and configuration, with MFA; changes nothing.
    Auditor,
}

/// Where a template's resources live.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Model ids (`llama-3-8b`).
    pub models: Vec<String>,
    /// Only requests through this listener (`aws:SourceVpce`), when set.
    pub listener: Option<String>,
    /// Partition (`gatehouse`).
    pub partition: String,
    /// Region (`local`), or `*`.
    pub region: String,
    /// Account id, or `*`.
    pub account: String,
}

impl Scope {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:{}:ai:{}:{}:{kind}/{id}",
            self.partition, self.region, self.account
        )
    }

    fn each(&self, kind: &str) -> Vec<String> {
        self.models.iter().map(|m| self.arn(kind, m)).collect()
    }
}

fn statement(
    sid: &str,
    actions: &[&str],
    resources: Vec<String>,
    condition: Option<Value>,
) -> Value {
    let mut st = json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources});
    if let Some(c) = condition {
        st["Condition"] = c;
    }
    st
}

/// The policy document of a template.
pub fn template(kind: Template, scope: &Scope) -> Value {
    let mfa = json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}});
    let listener = |extra: Option<Value>| -> Option<Value> {
        let mut c = extra.unwrap_or_else(|| json!({}));
        if let Some(l) = &scope.listener {
            c["StringEquals"]["aws:SourceVpce"] = json!(l);
        }
        c.as_object().is_some_and(|o| !o.is_empty()).then_some(c)
    };
    let models = scope.each("model");
    let list = statement(
        "ListModels",
        &["ai:ListModels"],
        vec!["*".into()],
        listener(None),
    );
    let statements = match kind {
        Template::Invoker => vec![
            statement(
                "InvokeNamedModels",
                &[
                    "ai:InvokeModel",
                    "ai:InvokeModelWithResponseStream",
                    "ai:GetModel",
                ],
                models,
                listener(None),
            ),
            list,
        ],
        Template::Admin => vec![
            statement(
                "ManageDeployments",
                &[
                    "ai:CreateDeployment",
                    "ai:UpdateDeployment",
                    "ai:DeleteDeployment",
                ],
                vec![scope.arn("deployment", "*")],
                listener(Some(json!({
                    "Bool": {"aws:MultiFactorAuthPresent": "true"},
                    "StringEquals": {"ai:ModelId": scope.models},
                }))),
            ),
            statement(
                "ManageGuardrails",
                &[
                    "ai:CreateGuardrail",
                    "ai:UpdateGuardrail",
                    "ai:DeleteGuardrail",
                    "ai:GetGuardrail",
                ],
                vec![scope.arn("guardrail", "*")],
                listener(Some(mfa.clone())),
            ),
            statement("DescribeModels", &["ai:GetModel"], models, listener(None)),
            list,
        ],
        Template::FineTuning => vec![
            statement(
                "FineTuneNamedModels",
                &["ai:CreateFineTuningJob"],
                models
                    .into_iter()
                    .chain([scope.arn("fine-tuning-job", "*"), scope.arn("dataset", "*")])
                    .collect(),
                listener(None),
            ),
            statement(
                "FollowJobs",
                &["ai:GetFineTuningJob", "ai:CancelFineTuningJob"],
                vec![scope.arn("fine-tuning-job", "*")],
                listener(None),
            ),
            statement(
                "UploadDatasets",
                &["ai:PutDataset"],
                vec![scope.arn("dataset", "*")],
                listener(None),
            ),
            statement(
                "ListJobs",
                &["ai:ListFineTuningJobs"],
                vec!["*".into()],
                listener(None),
            ),
        ],
        Template::Deployer => vec![
            statement(
                "DeployNamedModels",
                &["ai:CreateDeployment", "ai:UpdateDeployment"],
                vec![scope.arn("deployment", "*")],
                listener(Some(json!({"StringEquals": {"ai:ModelId": scope.models}}))),
            ),
            statement(
                "RetireDeployments",
                &["ai:DeleteDeployment"],
                vec![scope.arn("deployment", "*")],
                listener(None),
            ),
            statement("DescribeModels", &["ai:GetModel"], models, listener(None)),
            list,
        ],
        Template::Auditor => vec![
            statement(
                "ReadInvocationLogs",
                &["ai:ReadInvocationLogs"],
                scope.each("invocation-log"),
                listener(Some(mfa)),
            ),
            statement("DescribeModels", &["ai:GetModel"], models, listener(None)),
            statement(
                "DescribeGuardrailsAndJobs",
                &["ai:GetGuardrail", "ai:GetFineTuningJob"],
                vec![
                    scope.arn("guardrail", "*"),
                    scope.arn("fine-tuning-job", "*"),
                ],
                listener(None),
            ),
            statement(
                "ListEverything",
                &["ai:ListModels", "ai:ListFineTuningJobs"],
                vec!["*".into()],
                listener(None),
            ),
        ],
    };
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// One audit record, as every face writes it (the analyzer reads the common fields).
pub use gatehouse_audit::AuditRecord;

/// What generation saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Generated {
    /// The policy document; `None` when the principal did nothing allowed in the window.
    pub policy: Option<Value>,
    /// Records of the principal in the window that were allowed.
    pub used: usize,
    /// Records of the principal in the window that were refused (not granted by the policy).
    pub refused: usize,
}

/// A least-privilege policy of what `principal` did (allowed calls at or after `since`; for a
/// role, its sessions' calls):
/// each action on exactly the resources it touched, actions with the same resources in one
/// statement. `records` whose time does not parse are skipped.
pub fn from_audit<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    principal: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Generated {
    let mut by_action: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut g = Generated::default();
    for r in records {
        if !crate::usage::is_principal(&r.principal, principal) {
            continue;
        }
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.time) else {
            continue;
        };
        if t < since {
            continue;
        }
        if !r.allowed() {
            g.refused += 1;
            continue;
        }
        g.used += 1;
        let resource = if r.resource.is_empty() {
            "*"
        } else {
            r.resource.as_str()
        };
        by_action
            .entry(r.action.clone())
            .or_default()
            .insert(resource.to_owned());
    }
    // Resource `*` covers every other resource of the same action.
    for set in by_action.values_mut() {
        if set.contains("*") {
            set.retain(|r| r == "*");
        }
    }
    let mut by_resources: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (action, resources) in by_action {
        by_resources
            .entry(resources.into_iter().collect())
            .or_default()
            .push(action);
    }
    if by_resources.is_empty() {
        return g;
    }
    let statements: Vec<Value> = by_resources
        .into_iter()
        .enumerate()
        .map(|(i, (resources, actions))| {
            json!({"Sid": format!("Used{i}"), "Effect": "Allow", "Action": actions, "Resource": resources})
        })
        .collect();
    g.policy = Some(json!({"Version": "2012-10-17", "Statement": statements}));
    g
}

/// Parses a look-back such as `30d`, `12h`, `45m` or `90s`.
pub fn parse_since(s: &str) -> Option<chrono::Duration> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0)?;
    match unit {
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        "s" => chrono::Duration::try_seconds(n),
        _ => None,
    }
}
