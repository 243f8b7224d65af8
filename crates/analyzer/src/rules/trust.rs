//! Trust rules for AWS roles, decided by the engine: the trust policy is evaluated as the
//! role's resource-based policy for a probe caller, with no context.
//! - GH-TR-001: a caller in another account (each account the policy names, or any account
//!   for `*`) may `sts:AssumeRole` — so `sts:ExternalId`, `aws:PrincipalOrgID` or any other
//!   condition the caller must satisfy keeps it quiet. With Organizations data, "another
//!   account" is one outside the organization: its member accounts trust each other by
//!   design, and the role-assumption graph (GH-PE-006) follows those paths instead.
//! - GH-TR-002: an OIDC identity with an unexpected subject (given the audience the policy
//!   expects) may `sts:AssumeRoleWithWebIdentity`.

use super::Scope;
use super::statements::statement_location;
use crate::finding::{Finding, Severity};
use crate::model::{Inventory, PolicyKind};
use gatehouse_policy::model::{Principal, PrincipalKind};
use gatehouse_policy::{
    Effect, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};

const OTHER_ACCOUNT: &str = "999988887777";

pub(crate) fn check(inv: &Inventory, scope: &Scope<'_>, out: &mut Vec<Finding>) {
    let Some(allow_all) = allow_all() else { return };
    let no_identity = PolicySet::empty(PolicyType::Identity);
    for p in &inv.aws_principals {
        let Some(t) = p.trust else { continue };
        let Some(policy) = inv.aws_policies.get(t) else {
            continue;
        };
        if policy.kind != PolicyKind::Trust || policy.compile_error.is_some() {
            continue;
        }
        let Ok(set) = PolicySet::new(
            PolicyType::Resource,
            [NamedPolicy::new("trust", policy.document.clone())],
        ) else {
            continue;
        };
        // Cross-account callers need their own account's allow too: give them everything, so
        // only the trust policy decides. Web-identity callers are in the role's account, where
        // an identity allow would decide alone: give them nothing.
        let eval = Evaluation {
            resource: Some(&set),
            ..Evaluation::identity(&allow_all)
        };
        let web_eval = Evaluation {
            resource: Some(&set),
            ..Evaluation::identity(&no_identity)
        };
        let role_account = p.account().to_owned();
        let mut reported = std::collections::HashSet::new();
        for (i, st) in policy.document.statements.iter().enumerate() {
            if st.effect != Effect::Allow {
                continue;
            }
            let Some(Principal::Typed(entries)) = st
                .principal
                .as_ref()
                .map(|b| &b.principal)
                .cloned()
                .or_else(|| {
                    st.principal
                        .as_ref()
                        .filter(|b| b.principal == Principal::Any)
                        .map(|_| Principal::Typed(vec![(PrincipalKind::Aws, vec!["*".into()])]))
                })
            else {
                continue;
            };
            for (kind, ids) in entries {
                for id in ids {
                    match kind {
                        PrincipalKind::Aws => {
                            let (caller, account, any) = if id == "*" {
                                (
                                    format!("arn:aws:iam::{OTHER_ACCOUNT}:user/gatehouse-probe"),
                                    OTHER_ACCOUNT.to_owned(),
                                    true,
                                )
                            } else {
                                let acct =
                                    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
                                        id.clone()
                                    } else {
                                        id.split(':').nth(4).unwrap_or("").to_owned()
                                    };
                                let caller = if id.starts_with("arn:") && !id.ends_with(":root") {
                                    id.replace(['*', '?'], "x")
                                } else {
                                    format!("arn:aws:iam::{acct}:user/gatehouse-probe")
                                };
                                (caller, acct, false)
                            };
                            if account.is_empty()
                                || account == role_account
                                || scope.same_organization(&account, &role_account)
                            {
                                continue;
                            }
                            let mut req = Request::new(caller, "sts:AssumeRole", p.arn.as_str());
                            req.resource_account = Some(role_account.clone());
                            if eval.decide(&req).is_allow() && reported.insert((i, id.clone())) {
                                let f = Finding::new(
                                    "GH-TR-001",
                                    if any {
                                        format!(
                                            "role {} can be assumed by any AWS principal (`*`) without a condition",
                                            p.name
                                        )
                                    } else {
                                        format!(
                                            "role {} can be assumed from account {account} (`{id}`) without `sts:ExternalId` or another condition",
                                            p.name
                                        )
                                    },
                                    statement_location(inv, policy, i, Some("Principal")),
                                );
                                out.push(if any {
                                    f.with_severity(Severity::Critical)
                                } else {
                                    f
                                });
                            }
                        }
                        PrincipalKind::Federated => {
                            let Some(issuer) = oidc_issuer(&id) else {
                                continue;
                            };
                            let aud = st
                                .condition
                                .iter()
                                .flat_map(|b| &b.entries)
                                .find(|e| e.key.to_ascii_lowercase().ends_with(":aud"))
                                .and_then(|e| e.values.first())
                                .map_or_else(
                                    || "sts.amazonaws.com".to_owned(),
                                    |v| v.as_text().into_owned(),
                                );
                            let github = issuer.contains("token.actions.githubusercontent.com");
                            let sub = if github {
                                "repo:gatehouse-probe/unexpected-repo:ref:refs/heads/main"
                            } else {
                                "system:serviceaccount:gatehouse-probe:unexpected"
                            };
                            let req = Request::new(
                                id.as_str(),
                                "sts:AssumeRoleWithWebIdentity",
                                p.arn.as_str(),
                            )
                            .with(format!("{issuer}:aud"), aud)
                            .with(format!("{issuer}:sub"), sub);
                            if web_eval.decide(&req).is_allow() {
                                let f = Finding::new(
                                    "GH-TR-002",
                                    format!(
                                        "role {} can be assumed with a web-identity token from {issuer} for any subject{}",
                                        p.name,
                                        if github {
                                            " (any GitHub repository)"
                                        } else {
                                            ""
                                        }
                                    ),
                                    statement_location(inv, policy, i, Some("Condition")),
                                );
                                out.push(if github {
                                    f
                                } else {
                                    f.with_severity(Severity::High)
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The OIDC issuer a `Federated` principal names (SAML providers have none).
fn oidc_issuer(id: &str) -> Option<String> {
    if let Some((_, rest)) = id.split_once(":oidc-provider/") {
        return Some(rest.to_owned());
    }
    if id.contains(":saml-provider/") {
        return None;
    }
    [
        "accounts.google.com",
        "cognito-identity.amazonaws.com",
        "graph.facebook.com",
        "www.amazon.com",
    ]
    .contains(&id)
    .then(|| id.to_owned())
}

pub(super) fn allow_all() -> Option<PolicySet> {
    let doc = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    )
    .ok()?;
    PolicySet::new(
        PolicyType::Identity,
        [NamedPolicy::new("probe-caller", doc)],
    )
    .ok()
}
