//! Gatehouse's own store as an `aws iam get-account-authorization-details` document, so that
//! `who-can`, `what-can` and `review` answer for a running Gatehouse exactly as for an AWS
//! export. Each user's and role's policies come from the store's one-snapshot loader (the
//! same the server decides with); a user's group policies are folded into its own list.

use anyhow::{Context as _, Result};
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
