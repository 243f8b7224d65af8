//! Users, groups, memberships and roles.

use super::render;
use super::{DocKind, Target, check_name, check_policy, list_params, principal_arn};
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize};
use gatehouse_store::{NewRole, NewUser, RoleUpdate, Tag, TaggedKind, iam_arn};

type Out = Result<Option<String>, ApiError>;

fn tags(p: &Params) -> Result<Vec<Tag>, ApiError> {
    Ok(p.tags("Tags")?
        .into_iter()
        .map(|(k, v)| Tag::new(k, v))
        .collect())
}

fn path(p: &Params) -> Result<Option<&str>, ApiError> {
    match p.get("Path") {
        None => Ok(None),
        Some(path) if path.starts_with('/') && path.ends_with('/') && path.len() <= 512 => {
            Ok(Some(path))
        }
        Some(_) => Err(ApiError::validation(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.",
        )),
    }
}

async fn all_tags(
    ctx: &CallContext<'_>,
    kind: TaggedKind,
    name: &str,
) -> Result<Vec<Tag>, ApiError> {
    let page = ctx
        .store
        .list_tags(
            ctx.account(),
            kind,
            name,
            &gatehouse_store::ListParams::first(1000),
        )
        .await?;
    Ok(page.items)
}

pub(super) async fn create_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("UserName")?;
    check_name(name, "userName", 64)?;
    let path = path(p)?;
    let arn = iam_arn(ctx.account(), "user", path.unwrap_or("/"), name);
    authorize(ctx, "iam:CreateUser", &arn)?;
    let tags = tags(p)?;
    if !tags.is_empty() {
        authorize(ctx, "iam:TagUser", &arn)?;
    }
    let input = NewUser {
        name: name.to_owned(),
        path: path.map(str::to_owned),
        permissions_boundary: p.get("PermissionsBoundary").map(str::to_owned),
        tags: tags.clone(),
    };
    let user = ctx.store.create_user(ctx.account(), &input).await?;
    let mut x = Xml::new();
    render::user(&mut x, "User", &user, &tags);
    Ok(Some(x.finish()))
}

pub(super) async fn get_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = match p.get("UserName") {
        Some(n) => n.to_owned(),
        None => match ctx.caller {
            crate::identity::Caller::User { user_name, .. } => user_name.clone(),
            _ => {
                return Err(ApiError::validation(
                    "Must specify userName when calling with non-User credentials",
                ));
            }
        },
    };
    let arn = principal_arn(ctx, Target::User, &name).await;
    authorize(ctx, "iam:GetUser", &arn)?;
    let user = ctx.store.get_user(ctx.account(), &name).await?;
    let tags = all_tags(ctx, TaggedKind::User, &name).await?;
    let mut x = Xml::new();
    render::user(&mut x, "User", &user, &tags);
    Ok(Some(x.finish()))
}

pub(super) async fn list_users(ctx: &CallContext<'_>, p: &Params) -> Out {
    authorize(ctx, "iam:ListUsers", "*")?;
    let page = ctx
        .store
        .list_users(ctx.account(), &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "Users", &page, |x, u| {
        render::user(x, "member", u, &[])
    });
    Ok(Some(x.finish()))
}

pub(super) async fn update_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("UserName")?;
    let new_name = p.get("NewUserName");
    if let Some(n) = new_name {
        check_name(n, "newUserName", 64)?;
    }
    let new_path = match p.get("NewPath") {
        Some(np) if np.starts_with('/') && np.ends_with('/') => Some(np),
        Some(_) => {
            return Err(ApiError::validation(
                "The specified value for newPath is invalid.",
            ));
        }
        None => None,
    };
    let arn = principal_arn(ctx, Target::User, name).await;
    authorize(ctx, "iam:UpdateUser", &arn)?;
    ctx.store
        .update_user(ctx.account(), name, new_name, new_path)
        .await?;
    Ok(None)
}

pub(super) async fn delete_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("UserName")?;
    let arn = principal_arn(ctx, Target::User, name).await;
    authorize(ctx, "iam:DeleteUser", &arn)?;
    ctx.store.delete_user(ctx.account(), name).await?;
    Ok(None)
}

pub(super) async fn create_group(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("GroupName")?;
    check_name(name, "groupName", 128)?;
    let path = path(p)?;
    authorize(
        ctx,
        "iam:CreateGroup",
        &iam_arn(ctx.account(), "group", path.unwrap_or("/"), name),
    )?;
    let g = ctx.store.create_group(ctx.account(), name, path).await?;
    let mut x = Xml::new();
    render::group(&mut x, "Group", &g);
    Ok(Some(x.finish()))
}

pub(super) async fn get_group(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("GroupName")?;
    authorize(
        ctx,
        "iam:GetGroup",
        &principal_arn(ctx, Target::Group, name).await,
    )?;
    let g = ctx.store.get_group(ctx.account(), name).await?;
    let members = ctx
        .store
        .list_group_members(ctx.account(), name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::group(&mut x, "Group", &g);
    render::page(&mut x, "Users", &members, |x, u| {
        render::user(x, "member", u, &[])
    });
    Ok(Some(x.finish()))
}

pub(super) async fn list_groups(ctx: &CallContext<'_>, p: &Params) -> Out {
    authorize(ctx, "iam:ListGroups", "*")?;
    let page = ctx
        .store
        .list_groups(ctx.account(), &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "Groups", &page, |x, g| {
        render::group(x, "member", g)
    });
    Ok(Some(x.finish()))
}

pub(super) async fn delete_group(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("GroupName")?;
    authorize(
        ctx,
        "iam:DeleteGroup",
        &principal_arn(ctx, Target::Group, name).await,
    )?;
    ctx.store.delete_group(ctx.account(), name).await?;
    Ok(None)
}

pub(super) async fn add_user_to_group(ctx: &CallContext<'_>, p: &Params, add: bool) -> Out {
    let group = p.required("GroupName")?;
    let user = p.required("UserName")?;
    let action = if add {
        "iam:AddUserToGroup"
    } else {
        "iam:RemoveUserFromGroup"
    };
    authorize(ctx, action, &principal_arn(ctx, Target::Group, group).await)?;
    let store = &ctx.store;
    if add {
        store.add_user_to_group(ctx.account(), group, user).await?;
    } else {
        store
            .remove_user_from_group(ctx.account(), group, user)
            .await?;
    }
    Ok(None)
}

pub(super) async fn list_groups_for_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = p.required("UserName")?;
    authorize(
        ctx,
        "iam:ListGroupsForUser",
        &principal_arn(ctx, Target::User, user).await,
    )?;
    let page = ctx
        .store
        .list_groups_for_user(ctx.account(), user, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "Groups", &page, |x, g| {
        render::group(x, "member", g)
    });
    Ok(Some(x.finish()))
}

pub(super) async fn create_role(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    check_name(name, "roleName", 64)?;
    let trust = p.required("AssumeRolePolicyDocument")?;
    let path = path(p)?;
    let max_session_duration = p.int("MaxSessionDuration", 3600, 43200)?;
    let arn = iam_arn(ctx.account(), "role", path.unwrap_or("/"), name);
    authorize(ctx, "iam:CreateRole", &arn)?;
    check_policy(trust, "AssumeRolePolicyDocument", DocKind::Trust)?;
    let tags = tags(p)?;
    if !tags.is_empty() {
        authorize(ctx, "iam:TagRole", &arn)?;
    }
    let input = NewRole {
        name: name.to_owned(),
        path: path.map(str::to_owned),
        trust_policy: trust.to_owned(),
        description: p.get("Description").map(str::to_owned),
        max_session_duration,
        permissions_boundary: p.get("PermissionsBoundary").map(str::to_owned),
        tags: tags.clone(),
    };
    let role = ctx.store.create_role(ctx.account(), &input).await?;
    let mut x = Xml::new();
    render::role(&mut x, "Role", &role, &tags);
    Ok(Some(x.finish()))
}

pub(super) async fn get_role(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    authorize(
        ctx,
        "iam:GetRole",
        &principal_arn(ctx, Target::Role, name).await,
    )?;
    let role = ctx.store.get_role(ctx.account(), name).await?;
    let tags = all_tags(ctx, TaggedKind::Role, name).await?;
    let mut x = Xml::new();
    render::role(&mut x, "Role", &role, &tags);
    Ok(Some(x.finish()))
}

pub(super) async fn list_roles(ctx: &CallContext<'_>, p: &Params) -> Out {
    authorize(ctx, "iam:ListRoles", "*")?;
    let page = ctx
        .store
        .list_roles(ctx.account(), &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::page(&mut x, "Roles", &page, |x, r| {
        render::role(x, "member", r, &[])
    });
    Ok(Some(x.finish()))
}

pub(super) async fn delete_role(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    authorize(
        ctx,
        "iam:DeleteRole",
        &principal_arn(ctx, Target::Role, name).await,
    )?;
    ctx.store.delete_role(ctx.account(), name).await?;
    Ok(None)
}

pub(super) async fn update_assume_role_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    let doc = p.required("PolicyDocument")?;
    authorize(
        ctx,
        "iam:UpdateAssumeRolePolicy",
        &principal_arn(ctx, Target::Role, name).await,
    )?;
    check_policy(doc, "PolicyDocument", DocKind::Trust)?;
    ctx.store
        .update_assume_role_policy(ctx.account(), name, doc)
        .await?;
    Ok(None)
}

pub(super) async fn update_role(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    authorize(
        ctx,
        "iam:UpdateRole",
        &principal_arn(ctx, Target::Role, name).await,
    )?;
    let update = RoleUpdate {
        description: p.get("Description").map(str::to_owned),
        max_session_duration: p.int("MaxSessionDuration", 3600, 43200)?,
    };
    ctx.store.update_role(ctx.account(), name, &update).await?;
    Ok(Some(String::new()))
}
