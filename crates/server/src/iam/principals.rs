//! Users, groups, memberships and roles.

use super::conditions::request_keys;
use super::entity::{Record, authorize_principal};
use super::render;
use super::{DocKind, Target, check_name, check_policy, list_params};
use crate::error::ApiError;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize, authorize_with};
use gatehouse_store::{NewRole, NewUser, RoleUpdate, Tag, iam_arn};

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

/// Authorizes creating a user or role at `arn`: the create action, and — as AWS requires
/// for what the request also sets — tagging it (`iam:Tag...`) when it has tags and
/// setting its permissions boundary (`iam:Put...PermissionsBoundary`) when it names one.
/// Each decision sees the request's condition keys (`aws:RequestTag/K`, `aws:TagKeys`,
/// `iam:PermissionsBoundary`).
fn authorize_creation(
    ctx: &CallContext<'_>,
    p: &Params,
    word: &str,
    arn: &str,
    has_tags: bool,
) -> Result<(), ApiError> {
    let mut actions = vec![format!("iam:Create{word}")];
    if has_tags {
        actions.push(format!("iam:Tag{word}"));
    }
    if p.get("PermissionsBoundary").is_some() {
        actions.push(format!("iam:Put{word}PermissionsBoundary"));
    }
    for action in &actions {
        authorize_with(ctx, action, arn, &request_keys(action, p, None)?)?;
    }
    Ok(())
}

pub(super) async fn create_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("UserName")?;
    check_name(name, "userName", 64)?;
    let path = path(p)?;
    let arn = iam_arn(ctx.account(), "user", path.unwrap_or("/"), name);
    let tags = tags(p)?;
    authorize_creation(ctx, p, "User", &arn, !tags.is_empty())?;
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
        None => match ctx.caller() {
            crate::identity::Caller::User { user_name, .. } => user_name.clone(),
            _ => {
                return Err(ApiError::validation(
                    "Must specify userName when calling with non-User credentials",
                ));
            }
        },
    };
    let e = authorize_principal(ctx, "iam:GetUser", Target::User, &name, p).await?;
    let Some(Record::User(user)) = &e.record else {
        return Err(ApiError::internal());
    };
    let mut x = Xml::new();
    render::user(&mut x, "User", user, &e.tags);
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
    let e = authorize_principal(ctx, "iam:UpdateUser", Target::User, name, p).await?;
    // Renaming or moving needs the permission on the target too, as in AWS: a caller
    // must not move a user out of (or into) a path its policies guard.
    if new_name.is_some() || new_path.is_some() {
        let Some(Record::User(user)) = &e.record else {
            return Err(ApiError::internal());
        };
        let target = iam_arn(
            ctx.account(),
            "user",
            new_path.unwrap_or(&user.path),
            new_name.unwrap_or(&user.name),
        );
        authorize(ctx, "iam:UpdateUser", &target)?;
    }
    ctx.store
        .update_user(ctx.account(), &e.name, new_name, new_path)
        .await?;
    Ok(None)
}

pub(super) async fn delete_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("UserName")?;
    let e = authorize_principal(ctx, "iam:DeleteUser", Target::User, name, p).await?;
    ctx.store.delete_user(ctx.account(), &e.name).await?;
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
    let e = authorize_principal(ctx, "iam:GetGroup", Target::Group, name, p).await?;
    let Some(Record::Group(g)) = &e.record else {
        return Err(ApiError::internal());
    };
    let members = ctx
        .store
        .list_group_members(ctx.account(), &e.name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    render::group(&mut x, "Group", g);
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
    let e = authorize_principal(ctx, "iam:DeleteGroup", Target::Group, name, p).await?;
    ctx.store.delete_group(ctx.account(), &e.name).await?;
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
    // AWS authorizes membership changes on the group; the user is only looked up.
    let g = authorize_principal(ctx, action, Target::Group, group, p).await?;
    let store = &ctx.store;
    if add {
        store
            .add_user_to_group(ctx.account(), &g.name, user)
            .await?;
    } else {
        store
            .remove_user_from_group(ctx.account(), &g.name, user)
            .await?;
    }
    Ok(None)
}

pub(super) async fn list_groups_for_user(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = p.required("UserName")?;
    let e = authorize_principal(ctx, "iam:ListGroupsForUser", Target::User, user, p).await?;
    let page = ctx
        .store
        .list_groups_for_user(ctx.account(), &e.name, &list_params(p)?)
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
    let tags = tags(p)?;
    authorize_creation(ctx, p, "Role", &arn, !tags.is_empty())?;
    check_policy(trust, "AssumeRolePolicyDocument", DocKind::Trust)?;
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
    let e = authorize_principal(ctx, "iam:GetRole", Target::Role, name, p).await?;
    let Some(Record::Role(role)) = &e.record else {
        return Err(ApiError::internal());
    };
    let mut x = Xml::new();
    render::role(&mut x, "Role", role, &e.tags);
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
    let e = authorize_principal(ctx, "iam:DeleteRole", Target::Role, name, p).await?;
    ctx.store.delete_role(ctx.account(), &e.name).await?;
    Ok(None)
}

pub(super) async fn update_assume_role_policy(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    let doc = p.required("PolicyDocument")?;
    let e = authorize_principal(ctx, "iam:UpdateAssumeRolePolicy", Target::Role, name, p).await?;
    check_policy(doc, "PolicyDocument", DocKind::Trust)?;
    ctx.store
        .update_assume_role_policy(ctx.account(), &e.name, doc)
        .await?;
    Ok(None)
}

pub(super) async fn update_role(ctx: &CallContext<'_>, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    let e = authorize_principal(ctx, "iam:UpdateRole", Target::Role, name, p).await?;
    let update = RoleUpdate {
        description: p.get("Description").map(str::to_owned),
        max_session_duration: p.int("MaxSessionDuration", 3600, 43200)?,
    };
    ctx.store
        .update_role(ctx.account(), &e.name, &update)
        .await?;
    Ok(Some(String::new()))
}
