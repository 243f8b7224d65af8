//! Gatehouse's own store as an `aws iam get-account-authorization-details` document, so that
//! `who-can`, `what-can` and `review` answer for a running Gatehouse exactly as for an AWS
//! export. Each user's and role's policies come from the store's one-snapshot loader (the
//! same the server decides with); a user's group policies are folded into its own list.

use anyhow::{Context as _, Result};
use gatehouse_analyzer::StoreSnapshot;
use gatehouse_analyzer::generate::AuditRecord;
use gatehouse_analyzer::lifecycle::DeployedModel;
use gatehouse_store::{
    ListParams, PolicySource, PrincipalPolicies, PrincipalRef, SourcedPolicy, Store,
};
use serde_json::{Value, json};

fn document(p: &SourcedPolicy) -> Result<Value> {
    serde_json::from_str(&p.document).context("stored policy is not JSON")
}

fn name(source: &PolicySource) -> String {
    match source {
        PolicySource::Inline {
            policy_name,
            via_group: Some(g),
        } => format!("group {g}/{policy_name}"),
        PolicySource::Inline { policy_name, .. } => policy_name.clone(),
        PolicySource::Managed {
            arn,
            via_group: Some(g),
            ..
        } => format!("group {g}/{arn}"),
        PolicySource::Managed { arn, .. } | PolicySource::Boundary { arn, .. } => arn.clone(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// Fills the entry's inline list and boundary; pushes the boundary document to `policies`.
fn fill(
    entry: &mut Value,
    list: &str,
    p: &PrincipalPolicies,
    policies: &mut Vec<Value>,
) -> Result<()> {
    let mut inline = Vec::new();
    for sp in &p.identity_policies {
        inline.push(json!({"PolicyName": name(&sp.source), "PolicyDocument": document(sp)?}));
    }
    entry[list] = Value::Array(inline);
    entry["AttachedManagedPolicies"] = json!([]);
    if let Some(b) = &p.boundary {
        let arn = name(&b.source);
        entry["PermissionsBoundary"] =
            json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn});
        policies.push(json!({
            "PolicyName": arn.rsplit('/').next().unwrap_or(&arn),
            "Arn": arn,
            "DefaultVersionId": "v1",
            "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true, "Document": document(b)?}],
        }));
    }
    Ok(())
}

/// Every account's users and roles with the policies that apply to them.
pub(crate) async fn authorization_details(store: &Store) -> Result<Value> {
    let (mut users, mut roles, mut policies) = (Vec::new(), Vec::new(), Vec::new());
    for account in store.list_accounts().await? {
        let acct = &account.account_id;
        let mut params = ListParams::first(1000);
        loop {
            let page = store.list_users(acct, &params).await?;
            for u in &page.items {
                let p = store
                    .load_principal_policies(acct, PrincipalRef::User(&u.name))
                    .await?;
                let mut e = json!({"UserName": u.name, "UserId": u.user_id, "Arn": u.arn(), "Path": u.path, "GroupList": []});
                fill(&mut e, "UserPolicyList", &p, &mut policies)?;
                users.push(e);
            }
            match page.next_marker {
                Some(m) => params.marker = Some(m),
                None => break,
            }
        }
        let mut params = ListParams::first(1000);
        loop {
            let page = store.list_roles(acct, &params).await?;
            for r in &page.items {
                let p = store
                    .load_principal_policies(acct, PrincipalRef::Role(&r.name))
                    .await?;
                let trust: Value = serde_json::from_str(&r.trust_policy)
                    .context("stored trust policy is not JSON")?;
                let mut e = json!({"RoleName": r.name, "RoleId": r.role_id, "Arn": r.arn(), "Path": r.path,
                    "AssumeRolePolicyDocument": trust});
                fill(&mut e, "RolePolicyList", &p, &mut policies)?;
                roles.push(e);
            }
            match page.next_marker {
                Some(m) => params.marker = Some(m),
                None => break,
            }
        }
    }
    Ok(
        json!({"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": roles, "Policies": policies}),
    )
}

/// The audit log's records as (place, JSON text), oldest first.
pub(crate) async fn audit_lines(store: &Store) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.audit_entries(after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        out.extend(
            batch
                .into_iter()
                .map(|e| (format!("audit record {}", e.seq), e.record)),
        );
    }
    Ok(out)
}

/// Parses audit records; blank lines are skipped, anything else that is not a record is an
/// error naming its place.
pub(crate) fn parse_audit(lines: Vec<(String, String)>) -> Result<Vec<AuditRecord>> {
    let mut records = Vec::with_capacity(lines.len());
    for (place, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        records.push(
            serde_json::from_str(&line).with_context(|| format!("{place}: not an audit record"))?,
        );
    }
    Ok(records)
}

/// Everything the analyzer reads from the store for `scan --store` and `review`: the
/// authorization details, the audit log, users without an enabled MFA device, and
/// deployments with a deprecation date.
pub(crate) async fn snapshot(store: &Store, name: String, region: String) -> Result<StoreSnapshot> {
    let details = serde_json::to_vec(&authorization_details(store).await?)?;
    let audit = parse_audit(audit_lines(store).await?)?;
    let mut users_without_mfa = Vec::new();
    for account in store.list_accounts().await? {
        let acct = &account.account_id;
        let with_mfa: std::collections::BTreeSet<String> = store
            .list_mfa_devices(acct, None)
            .await?
            .into_iter()
            .filter(|d| d.enabled.is_some())
            .filter_map(|d| d.user_name)
            .collect();
        let mut params = ListParams::first(1000);
        loop {
            let page = store.list_users(acct, &params).await?;
            users_without_mfa.extend(
                page.items
                    .iter()
                    .filter(|u| !with_mfa.contains(&u.name))
                    .map(|u| u.arn()),
            );
            match page.next_marker {
                Some(m) => params.marker = Some(m),
                None => break,
            }
        }
    }
    let deprecated = store
        .list_deployments()
        .await?
        .into_iter()
        .filter_map(|d| {
            Some(DeployedModel {
                deprecated_on: d.deprecated_on?,
                account: d.account_id,
                model: d.model_id,
            })
        })
        .collect();
    Ok(StoreSnapshot {
        name,
        details,
        audit,
        users_without_mfa,
        deprecated,
        region,
    })
}
