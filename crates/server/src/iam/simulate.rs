//! `SimulatePrincipalPolicy`, `SimulateCustomPolicy` (the engine, asked through the API) and
//! `GetAccountAuthorizationDetails` (everything, for auditors and the analyzer).

use super::entity::{Entity, authorize_entity, no_such};
use super::render;
use super::{DocKind, Target, check_policy};
use crate::authz::CompiledPrincipal;
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize};
use gatehouse_policy::{
    Decision, DecisionKind, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use gatehouse_store::{ListParams, PolicySource, PrincipalKind, PrincipalRef, SourcedPolicy};

type Out = Result<Option<String>, ApiError>;

fn context_entries(p: &Params) -> Vec<(String, Vec<String>)> {
    p.structs("ContextEntries")
        .into_iter()
        .filter_map(|fields| {
            let key = fields
                .iter()
                .find(|(k, _)| k == "ContextKeyName")
                .map(|(_, v)| v.clone())?;
            let mut values: Vec<(u32, String)> = fields
                .iter()
                .filter_map(|(k, v)| {
                    let n = k.strip_prefix("ContextKeyValues.member.")?.parse().ok()?;
                    Some((n, v.clone()))
                })
                .collect();
            values.sort_by_key(|(n, _)| *n);
            Some((key, values.into_iter().map(|(_, v)| v).collect()))
        })
        .collect()
}

/// The documents of a `Name.member.N` list parameter, each checked for its kind.
fn input_documents(p: &Params, param: &str, kind: DocKind) -> Result<Vec<String>, ApiError> {
    let docs = p.list(param);
    for d in &docs {
        check_policy(d, param, kind)?;
    }
    Ok(docs)
}

/// Compiles documents (already checked) into one policy set.
fn compile(docs: &[String], param: &str, kind: PolicyType) -> Result<Option<PolicySet>, ApiError> {
    if docs.is_empty() {
        return Ok(None);
    }
    let mut named = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let doc =
            PolicyDocument::parse(d).map_err(|e| ApiError::malformed_policy(e.to_string()))?;
        named.push(NamedPolicy::new(format!("{param}.{}", i + 1), doc));
    }
    PolicySet::new(kind, named)
        .map(Some)
        .map_err(|e| ApiError::malformed_policy(e.to_string()))
}

/// The optional `ResourcePolicy` parameter (one document).
fn resource_policy(p: &Params) -> Result<Option<PolicySet>, ApiError> {
    let Some(doc) = p.get("ResourcePolicy") else {
        return Ok(None);
    };
    check_policy(doc, "ResourcePolicy", DocKind::Resource)?;
    compile(&[doc.to_owned()], "ResourcePolicy", PolicyType::Resource)
}

fn decision_word(d: &Decision) -> &'static str {
    match d.decision {
        DecisionKind::Allow => "allowed",
        DecisionKind::ExplicitDeny => "explicitDeny",
        DecisionKind::ImplicitDeny => "implicitDeny",
    }
}

/// Runs every action × resource and writes `EvaluationResults`.
fn simulate(
    p: &Params,
    caller_arn: &str,
    eval: Evaluation<'_>,
    fill: Option<&CompiledPrincipal>,
) -> Result<String, ApiError> {
    let actions = p.list("ActionNames");
    if actions.is_empty() {
        return Err(ApiError::validation("ActionNames must not be empty"));
    }
    let mut resources = p.list("ResourceArns");
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let entries = context_entries(p);
    let mut x = Xml::new();
    x.open("EvaluationResults");
    for action in &actions {
        for resource in &resources {
            let mut req = Request::new(caller_arn, action.as_str(), resource.as_str());
            for (k, v) in &entries {
                match v.as_slice() {
                    [one] => req.context.insert(k.clone(), one.as_str()),
                    many => req.context.insert(k.clone(), many.to_vec()),
                }
            }
            if let Some(f) = fill {
                f.fill_context(&mut req);
            }
            let d = eval.decide(&req);
            x.wrap("member", |x| {
                x.elem("EvalActionName", action)
                    .elem("EvalResourceName", resource)
                    .elem("EvalDecision", decision_word(&d));
                x.wrap("MatchedStatements", |x| {
                    for s in &d.statements {
                        x.wrap("member", |x| {
                            x.elem("SourcePolicyId", &s.policy)
                                .elem("SourcePolicyType", source_type(s.policy_type));
                        });
                    }
                });
                x.open("MissingContextValues").close("MissingContextValues");
            });
        }
    }
    x.close("EvaluationResults");
    x.elem("IsTruncated", "false");
    Ok(x.finish())
}

fn source_type(t: PolicyType) -> &'static str {
    match t {
        PolicyType::Identity => "IAM Policy",
        PolicyType::Resource => "Resource Policy",
        PolicyType::Boundary => "Permissions Boundary",
        PolicyType::Guardrail => "Organizations SCP",
        PolicyType::Session => "Session Policy",
    }
}

pub(super) async fn simulate_principal_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    const ACTION: &str = "iam:SimulatePrincipalPolicy";
    let source = p.required("PolicySourceArn")?;
    let named = gatehouse_policy::Arn::parse(source)
        .filter(|a| a.account == ctx.account())
        .and_then(|arn| {
            let name = arn
                .resource
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            if arn.resource.starts_with("user/") {
                Some((Target::User, name))
            } else if arn.resource.starts_with("role/") {
                Some((Target::Role, name))
            } else {
                None
            }
        });
    let Some((target, name)) = named else {
        authorize(ctx, ACTION, source)?;
        return Err(ApiError::validation(format!(
            "Invalid PolicySourceArn {source}: it must be the ARN of a user or a role of this account"
        )));
    };
    // The ARN must name the entity exactly as stored (path and case): the decision is
    // about the stored ARN, and another spelling names nothing.
    let entity = Entity::principal(ctx, target, &name).await?;
    if entity.record.is_none() || entity.arn != source {
        authorize(ctx, ACTION, source)?;
        return Err(no_such(target, source));
    }
    let entity = authorize_entity(ctx, ACTION, entity, p)?;
    let principal = match target {
        Target::User => PrincipalRef::User(&entity.name),
        _ => PrincipalRef::Role(&entity.name),
    };
    let mut info = ctx
        .store
        .load_principal_policies(ctx.account(), principal)
        .await?;
    // As in AWS: PolicyInputList adds identity policies (as if attached) and a
    // PermissionsBoundaryPolicyInputList replaces the principal's boundary.
    for (i, d) in input_documents(p, "PolicyInputList", DocKind::Identity)?
        .into_iter()
        .enumerate()
    {
        info.identity_policies.push(SourcedPolicy {
            source: PolicySource::Inline {
                policy_name: format!("PolicyInputList.{}", i + 1),
                via_group: None,
            },
            document: d,
        });
    }
    let boundaries = input_documents(p, "PermissionsBoundaryPolicyInputList", DocKind::Identity)?;
    if let Some(b) = boundaries.first() {
        info.boundary = Some(SourcedPolicy {
            source: PolicySource::Inline {
                policy_name: "PermissionsBoundaryPolicyInputList.1".to_owned(),
                via_group: None,
            },
            document: b.clone(),
        });
    }
    let compiled =
        CompiledPrincipal::compile(info).map_err(|e| ApiError::malformed_policy(e.to_string()))?;
    let resource = resource_policy(p)?;
    let caller = p.get("CallerArn").unwrap_or(source);
    let out = simulate(
        p,
        caller,
        compiled.evaluation(resource.as_ref(), None),
        Some(&compiled),
    )?;
    Ok(Some(out))
}

pub(super) async fn simulate_custom_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    authorize(ctx, "iam:SimulateCustomPolicy", "*")?;
    let identity = input_documents(p, "PolicyInputList", DocKind::Identity)?;
    let identity = compile(&identity, "PolicyInputList", PolicyType::Identity)?
        .ok_or_else(|| ApiError::validation("PolicyInputList must not be empty"))?;
    let boundary = input_documents(p, "PermissionsBoundaryPolicyInputList", DocKind::Identity)?;
    let boundary = compile(
        &boundary,
        "PermissionsBoundaryPolicyInputList",
        PolicyType::Boundary,
    )?;
    let resource = resource_policy(p)?;
    let eval = Evaluation {
        identity: &identity,
        resource: resource.as_ref(),
        boundary: boundary.as_ref(),
        guardrails: &[],
        session: None,
    };
    let caller = p.get("CallerArn").unwrap_or(&ctx.caller_arn).to_owned();
    Ok(Some(simulate(p, &caller, eval, None)?))
}

pub(super) async fn account_authorization_details(ctx: &CallContext<'_>, p: &Params) -> Out {
    authorize(ctx, "iam:GetAccountAuthorizationDetails", "*")?;
    const FILTERS: [&str; 5] = [
        "User",
        "Role",
        "Group",
        "LocalManagedPolicy",
        "AWSManagedPolicy",
    ];
    let filter = p.list("Filter");
    if let Some(bad) = filter.iter().find(|f| !FILTERS.contains(&f.as_str())) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{bad}' at 'filter' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            FILTERS.join(", ")
        )));
    }
    // No filter means every kind of entity, as in AWS.
    let wants = |kind: &str| filter.is_empty() || filter.iter().any(|f| f == kind);
    let store = &ctx.store;
    let account = ctx.account();
    let all = ListParams::first(1000);
    // One page is a window over every entity, in the order users, groups, roles, policies;
    // the marker is the position of the first entity of the next page.
    let (marker, max_items) = p.paging()?;
    let start: usize = match marker {
        Some(m) => m
            .strip_prefix("gaad-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::validation("Invalid Marker."))?,
        None => 0,
    };
    let end = start.saturating_add(max_items.map_or(100, |m| m as usize));
    let mut position = 0usize;
    let mut in_page = move || {
        let here = position;
        position += 1;
        (start..end).contains(&here)
    };
    let mut x = Xml::new();

    x.open("UserDetailList");
    let users = if wants("User") {
        every_page(|lp| async move { store.list_users(account, &lp).await }).await?
    } else {
        Vec::new()
    };
    let users_count = users.len();
    for u in users {
        if !in_page() {
            continue;
        }
        let info = store
            .load_principal_policies(account, PrincipalRef::User(&u.name))
            .await?;
        let attached = store
            .list_attached_policies(account, PrincipalKind::User, &u.name, &all)
            .await?
            .items;
        x.wrap("member", |x| {
            x.elem("Path", &u.path)
                .elem("UserName", &u.name)
                .elem("UserId", &u.user_id)
                .elem("Arn", &u.arn())
                .elem("CreateDate", &render::time(&u.created));
            inline_list(x, "UserPolicyList", &info);
            x.wrap("GroupList", |x| {
                for g in &info.groups {
                    x.elem("member", g);
                }
            });
            attached_list(x, &attached);
            render::tag_list(x, &info.tags);
        });
    }
    x.close("UserDetailList");

    x.open("GroupDetailList");
    let groups = if wants("Group") {
        every_page(|lp| async move { store.list_groups(account, &lp).await }).await?
    } else {
        Vec::new()
    };
    let groups_count = groups.len();
    for g in groups {
        if !in_page() {
            continue;
        }
        let inline = store
            .list_inline_policies(account, PrincipalKind::Group, &g.name, &all)
            .await?
            .items;
        let mut docs = Vec::new();
        for n in inline {
            docs.push(
                store
                    .get_inline_policy(account, PrincipalKind::Group, &g.name, &n)
                    .await?,
            );
        }
        let attached = store
            .list_attached_policies(account, PrincipalKind::Group, &g.name, &all)
            .await?
            .items;
        x.wrap("member", |x| {
            x.elem("Path", &g.path)
                .elem("GroupName", &g.name)
                .elem("GroupId", &g.group_id)
                .elem("Arn", &g.arn())
                .elem("CreateDate", &render::time(&g.created));
            x.wrap("GroupPolicyList", |x| {
                for d in &docs {
                    x.wrap("member", |x| {
                        x.elem("PolicyName", &d.name)
                            .elem("PolicyDocument", &render::document(&d.document));
                    });
                }
            });
            attached_list(x, &attached);
        });
    }
    x.close("GroupDetailList");

    x.open("RoleDetailList");
    let roles = if wants("Role") {
        every_page(|lp| async move { store.list_roles(account, &lp).await }).await?
    } else {
        Vec::new()
    };
    let roles_count = roles.len();
    for r in roles {
        if !in_page() {
            continue;
        }
        let info = store
            .load_principal_policies(account, PrincipalRef::Role(&r.name))
            .await?;
        let attached = store
            .list_attached_policies(account, PrincipalKind::Role, &r.name, &all)
            .await?
            .items;
        x.wrap("member", |x| {
            x.elem("Path", &r.path)
                .elem("RoleName", &r.name)
                .elem("RoleId", &r.role_id)
                .elem("Arn", &r.arn())
                .elem("CreateDate", &render::time(&r.created))
                .elem(
                    "AssumeRolePolicyDocument",
                    &render::document(&r.trust_policy),
                );
            x.open("InstanceProfileList").close("InstanceProfileList");
            inline_list(x, "RolePolicyList", &info);
            attached_list(x, &attached);
            render::tag_list(x, &info.tags);
        });
    }
    x.close("RoleDetailList");

    x.open("Policies");
    // Every stored policy is customer-managed ("Local"); Gatehouse has no AWS-managed ones.
    let policies = if wants("LocalManagedPolicy") {
        every_page(|lp| async move { store.list_policies(account, &lp).await }).await?
    } else {
        Vec::new()
    };
    let policies_count = policies.len();
    for pol in policies {
        if !in_page() {
            continue;
        }
        let versions = store
            .list_policy_versions(account, &pol.arn, &all)
            .await?
            .items;
        let mut full = Vec::new();
        for v in versions {
            full.push(
                store
                    .get_policy_version(account, &pol.arn, &v.version_id)
                    .await?,
            );
        }
        x.wrap("member", |x| {
            x.elem("PolicyName", &pol.name)
                .elem("PolicyId", &pol.policy_id)
                .elem("Arn", &pol.arn)
                .elem("Path", &pol.path)
                .elem("DefaultVersionId", &pol.default_version_id)
                .elem("AttachmentCount", &pol.attachment_count.to_string())
                .elem("IsAttachable", "true")
                .elem("CreateDate", &render::time(&pol.created))
                .elem("UpdateDate", &render::time(&pol.updated));
            x.wrap("PolicyVersionList", |x| {
                for v in &full {
                    render::policy_version(x, "member", v, true);
                }
            });
        });
    }
    x.close("Policies");
    let total = users_count + groups_count + roles_count + policies_count;
    if end < total {
        x.elem("IsTruncated", "true")
            .elem("Marker", &format!("gaad-{end}"));
    } else {
        x.elem("IsTruncated", "false");
    }
    Ok(Some(x.finish()))
}

/// Every item of a store list, page after page.
async fn every_page<T, F, Fut>(list: F) -> Result<Vec<T>, ApiError>
where
    F: Fn(ListParams) -> Fut,
    Fut: std::future::Future<Output = gatehouse_store::Result<gatehouse_store::Page<T>>>,
{
    let mut lp = ListParams::first(1000);
    let mut out = Vec::new();
    loop {
        let page = list(lp.clone()).await?;
        let next = lp.next(&page);
        out.extend(page.items);
        match next {
            Some(n) => lp = n,
            None => return Ok(out),
        }
    }
}

/// The principal's own inline policies (not its groups').
fn inline_list(x: &mut Xml, tag: &str, info: &gatehouse_store::PrincipalPolicies) {
    x.wrap(tag, |x| {
        for sp in &info.identity_policies {
            if let gatehouse_store::PolicySource::Inline {
                policy_name,
                via_group: None,
            } = &sp.source
            {
                x.wrap("member", |x| {
                    x.elem("PolicyName", policy_name)
                        .elem("PolicyDocument", &render::document(&sp.document));
                });
            }
        }
    });
}

fn attached_list(x: &mut Xml, attached: &[gatehouse_store::AttachedPolicy]) {
    x.wrap("AttachedManagedPolicies", |x| {
        for a in attached {
            x.wrap("member", |x| {
                x.elem("PolicyName", &a.policy_name)
                    .elem("PolicyArn", &a.policy_arn);
            });
        }
    });
}
