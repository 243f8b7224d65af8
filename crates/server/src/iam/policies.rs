//! Managed policies and their versions, attachments, inline policies, boundaries.
//! Every document is checked by the policy engine before it is stored.

use super::conditions::request_keys;
use super::entity::{Record, authorize_policy, authorize_principal};
use super::render;
use super::{DocKind, Target, check_name, check_policy, list_params, policy_arn};
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize, authorize_with};
use gatehouse_store::{NewPolicy, Tag};

type Out = Result<Option<String>, ApiError>;

pub(super) async fn create_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("PolicyName")?;
    check_name(name, "policyName", 128)?;
    let doc = p.required("PolicyDocument")?;
    let path = p.get("Path").unwrap_or("/");
    let arn = policy_arn(ctx.account(), path, name);
    authorize_with(
        ctx,
        "iam:CreatePolicy",
        &arn,
        &request_keys("iam:CreatePolicy", p, None)?,
    )?;
    check_policy(doc, "PolicyDocument", DocKind::Identity)?;
    let tags: Vec<Tag> = p
        .tags("Tags")?
        .into_iter()
        .map(|(k, v)| Tag::new(k, v))
        .collect();
    if !tags.is_empty() {
        authorize_with(
            ctx,
            "iam:TagPolicy",
            &arn,
            &request_keys("iam:TagPolicy", p, None)?,
        )?;
    }
    let input = NewPolicy {
        name: name.to_owned(),
        path: p.get("Path").map(str::to_owned),
        description: p.get("Description").map(str::to_owned),
        document: doc.to_owned(),
        tags: tags.clone(),
    };
    let policy = ctx.store.create_policy(ctx.account(), &input).await?;
    let mut x = Xml::new();
    render::policy(&mut x, "Policy", &policy, &tags);
    Ok(Some(x.finish()))
}

pub(super) async fn get_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let e = authorize_policy(ctx, "iam:GetPolicy", arn, p).await?;
    let Some(Record::Policy(policy)) = &e.record else {
        return Err(ApiError::internal());
    };
    let mut x = Xml::new();
    render::policy(&mut x, "Policy", policy, &e.tags);
    Ok(Some(x.finish()))
}

pub(super) async fn list_policies(ctx: &CallContext<'_>, p: &Params) -> Out {
    authorize(ctx, "iam:ListPolicies", "*")?;
    let only_attached = p.bool("OnlyAttached")?.unwrap_or(false);
    let mut page = ctx
        .store
        .list_policies(ctx.account(), &list_params(p)?)
        .await?;
    if only_attached {
        page.items.retain(|pol| pol.attachment_count > 0);
    }
    let mut x = Xml::new();
    render::page(&mut x, "Policies", &page, |x, pol| {
        render::policy(x, "member", pol, &[]);
    });
    Ok(Some(x.finish()))
}

pub(super) async fn delete_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let e = authorize_policy(ctx, "iam:DeletePolicy", arn, p).await?;
    ctx.store.delete_policy(ctx.account(), &e.arn).await?;
    Ok(None)
}

pub(super) async fn create_policy_version(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let doc = p.required("PolicyDocument")?;
    let set_default = p.bool("SetAsDefault")?.unwrap_or(false);
    let e = authorize_policy(ctx, "iam:CreatePolicyVersion", arn, p).await?;
    check_policy(doc, "PolicyDocument", DocKind::Identity)?;
    let v = ctx
        .store
        .create_policy_version(ctx.account(), &e.arn, doc, set_default)
        .await?;
    let mut x = Xml::new();
    render::policy_version(&mut x, "PolicyVersion", &v, false);
    Ok(Some(x.finish()))
}

pub(super) async fn get_policy_version(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let version = p.required("VersionId")?;
    let e = authorize_policy(ctx, "iam:GetPolicyVersion", arn, p).await?;
    let v = ctx
        .store
        .get_policy_version(ctx.account(), &e.arn, version)
        .await?;
    let mut x = Xml::new();
    render::policy_version(&mut x, "PolicyVersion", &v, true);
    Ok(Some(x.finish()))
}

pub(super) async fn list_policy_versions(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let e = authorize_policy(ctx, "iam:ListPolicyVersions", arn, p).await?;
    let page = ctx
        .store
        .list_policy_versions(ctx.account(), &e.arn, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "Versions", &page, |x, v| {
        render::policy_version(x, "member", v, false);
    });
    Ok(Some(x.finish()))
}

pub(super) async fn delete_policy_version(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let version = p.required("VersionId")?;
    let e = authorize_policy(ctx, "iam:DeletePolicyVersion", arn, p).await?;
    ctx.store
        .delete_policy_version(ctx.account(), &e.arn, version)
        .await?;
    Ok(None)
}

pub(super) async fn set_default_policy_version(ctx: &CallContext<'_>, p: &Params) -> Out {
    let arn = p.required("PolicyArn")?;
    let version = p.required("VersionId")?;
    let e = authorize_policy(ctx, "iam:SetDefaultPolicyVersion", arn, p).await?;
    ctx.store
        .set_default_policy_version(ctx.account(), &e.arn, version)
        .await?;
    Ok(None)
}

fn action_name(verb: &str, t: Target, suffix: &str) -> String {
    let word = match t {
        Target::User => "User",
        Target::Group => "Group",
        Target::Role => "Role",
    };
    format!("iam:{verb}{word}{suffix}")
}

pub(super) async fn attach(ctx: &CallContext<'_>, p: &Params, t: Target, attach: bool) -> Out {
    let name = p.required(t.name_param())?;
    let arn = p.required("PolicyArn")?;
    let verb = if attach { "Attach" } else { "Detach" };
    // iam:PolicyARN and the principal's current iam:PermissionsBoundary are in the
    // context: "never attach AdministratorAccess" is a Deny on the first.
    let e = authorize_principal(ctx, &action_name(verb, t, "Policy"), t, name, p).await?;
    let store = &ctx.store;
    if attach {
        store
            .attach_policy(ctx.account(), t.kind(), &e.name, arn)
            .await?;
    } else {
        store
            .detach_policy(ctx.account(), t.kind(), &e.name, arn)
            .await?;
    }
    Ok(None)
}

pub(super) async fn list_attached(ctx: &CallContext<'_>, p: &Params, t: Target) -> Out {
    let name = p.required(t.name_param())?;
    let e =
        authorize_principal(ctx, &action_name("ListAttached", t, "Policies"), t, name, p).await?;
    let page = ctx
        .store
        .list_attached_policies(ctx.account(), t.kind(), &e.name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "AttachedPolicies", &page, |x, a| {
        x.wrap("member", |x| {
            x.elem("PolicyName", &a.policy_name)
                .elem("PolicyArn", &a.policy_arn);
        });
    });
    Ok(Some(x.finish()))
}

pub(super) async fn put_inline(ctx: &CallContext<'_>, p: &Params, t: Target) -> Out {
    let name = p.required(t.name_param())?;
    let policy_name = p.required("PolicyName")?;
    check_name(policy_name, "policyName", 128)?;
    let doc = p.required("PolicyDocument")?;
    let e = authorize_principal(ctx, &action_name("Put", t, "Policy"), t, name, p).await?;
    check_policy(doc, "PolicyDocument", DocKind::Identity)?;
    ctx.store
        .put_inline_policy(ctx.account(), t.kind(), &e.name, policy_name, doc)
        .await?;
    Ok(None)
}

pub(super) async fn get_inline(ctx: &CallContext<'_>, p: &Params, t: Target) -> Out {
    let name = p.required(t.name_param())?;
    let policy_name = p.required("PolicyName")?;
    let e = authorize_principal(ctx, &action_name("Get", t, "Policy"), t, name, p).await?;
    let inline = ctx
        .store
        .get_inline_policy(ctx.account(), t.kind(), &e.name, policy_name)
        .await?;
    let mut x = Xml::new();
    x.elem(t.name_param(), &e.name)
        .elem("PolicyName", &inline.name)
        .elem("PolicyDocument", &render::document(&inline.document));
    Ok(Some(x.finish()))
}

pub(super) async fn delete_inline(ctx: &CallContext<'_>, p: &Params, t: Target) -> Out {
    let name = p.required(t.name_param())?;
    let policy_name = p.required("PolicyName")?;
    let e = authorize_principal(ctx, &action_name("Delete", t, "Policy"), t, name, p).await?;
    ctx.store
        .delete_inline_policy(ctx.account(), t.kind(), &e.name, policy_name)
        .await?;
    Ok(None)
}

pub(super) async fn list_inline(ctx: &CallContext<'_>, p: &Params, t: Target) -> Out {
    let name = p.required(t.name_param())?;
    let e = authorize_principal(ctx, &action_name("List", t, "Policies"), t, name, p).await?;
    let page = ctx
        .store
        .list_inline_policies(ctx.account(), t.kind(), &e.name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "PolicyNames", &page, |x, n| {
        x.elem("member", n);
    });
    Ok(Some(x.finish()))
}

pub(super) async fn boundary(ctx: &CallContext<'_>, p: &Params, t: Target, put: bool) -> Out {
    let name = p.required(t.name_param())?;
    let verb = if put { "Put" } else { "Delete" };
    if put {
        p.required("PermissionsBoundary")?;
    }
    let e = authorize_principal(
        ctx,
        &action_name(verb, t, "PermissionsBoundary"),
        t,
        name,
        p,
    )
    .await?;
    let name = e.name.as_str();
    let store = &ctx.store;
    let account = ctx.account();
    match (t, put) {
        (Target::User, true) => {
            let arn = p.required("PermissionsBoundary")?;
            store
                .put_user_permissions_boundary(account, name, arn)
                .await?;
        }
        (Target::Role, true) => {
            let arn = p.required("PermissionsBoundary")?;
            store
                .put_role_permissions_boundary(account, name, arn)
                .await?;
        }
        (Target::User, false) => {
            store
                .delete_user_permissions_boundary(account, name)
                .await?
        }
        (Target::Role, false) => {
            store
                .delete_role_permissions_boundary(account, name)
                .await?
        }
        (Target::Group, _) => return Err(ApiError::invalid_action("GroupPermissionsBoundary")),
    }
    Ok(None)
}
