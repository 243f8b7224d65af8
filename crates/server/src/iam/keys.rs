//! Access keys and tags.

use super::render;
use super::{Target, list_params, principal_arn};
use crate::error::ApiError;
use crate::identity::Caller;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize};
use gatehouse_store::{AccessKeyStatus, Tag, TaggedKind};

type Out = Result<Option<String>, ApiError>;

/// `UserName`, or the calling user when it is omitted (as AWS does).
pub(crate) fn user_name(ctx: &CallContext<'_>, p: &Params) -> Result<String, ApiError> {
    match (p.get("UserName"), ctx.caller) {
        (Some(n), _) => Ok(n.to_owned()),
        (None, Caller::User { user_name, .. }) => Ok(user_name.clone()),
        (None, _) => Err(ApiError::validation(
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

pub(super) async fn create_access_key(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = user_name(ctx, p)?;
    authorize(
        ctx,
        "iam:CreateAccessKey",
        &principal_arn(ctx, Target::User, &user).await,
    )?;
    let (key, secret) = ctx.store.create_access_key(ctx.account(), &user).await?;
    let mut x = Xml::new();
    x.wrap("AccessKey", |x| {
        x.elem("UserName", &key.user_name)
            .elem("AccessKeyId", &key.access_key_id)
            .elem("Status", key.status.as_str())
            .elem("SecretAccessKey", secret.expose_str().unwrap_or_default())
            .elem("CreateDate", &render::time(&key.created));
    });
    Ok(Some(x.finish()))
}

pub(super) async fn list_access_keys(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = user_name(ctx, p)?;
    authorize(
        ctx,
        "iam:ListAccessKeys",
        &principal_arn(ctx, Target::User, &user).await,
    )?;
    let page = ctx
        .store
        .list_access_keys(ctx.account(), &user, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    x.elem("UserName", &user);
    render::page(
        &mut x,
        "AccessKeyMetadata",
        &page,
        render::access_key_metadata,
    );
    Ok(Some(x.finish()))
}

pub(super) async fn update_access_key(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = user_name(ctx, p)?;
    let key = p.required("AccessKeyId")?;
    let status = match p.required("Status")? {
        "Active" => AccessKeyStatus::Active,
        "Inactive" => AccessKeyStatus::Inactive,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )));
        }
    };
    authorize(
        ctx,
        "iam:UpdateAccessKey",
        &principal_arn(ctx, Target::User, &user).await,
    )?;
    ctx.store
        .update_access_key(ctx.account(), &user, key, status)
        .await?;
    Ok(None)
}

pub(super) async fn delete_access_key(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = user_name(ctx, p)?;
    let key = p.required("AccessKeyId")?;
    authorize(
        ctx,
        "iam:DeleteAccessKey",
        &principal_arn(ctx, Target::User, &user).await,
    )?;
    ctx.store
        .delete_access_key(ctx.account(), &user, key)
        .await?;
    Ok(None)
}

pub(super) async fn get_access_key_last_used(ctx: &CallContext<'_>, p: &Params) -> Out {
    let key_id = p.required("AccessKeyId")?;
    let key = match ctx.store.get_access_key(key_id).await {
        Ok(k) => k,
        Err(e) => {
            // Which keys exist is told only to a caller who may read any user's key use;
            // anyone else is refused before learning it.
            let any_user = super::iam_arn(ctx.account(), "user", "/", "*");
            authorize(ctx, "iam:GetAccessKeyLastUsed", &any_user)?;
            return Err(e.into());
        }
    };
    if key.account_id != ctx.account() {
        return Err(ApiError::access_denied(format!(
            "User: {} is not authorized to perform: iam:GetAccessKeyLastUsed on resource: access key {key_id}",
            ctx.caller_arn
        )));
    }
    authorize(
        ctx,
        "iam:GetAccessKeyLastUsed",
        &principal_arn(ctx, Target::User, &key.user_name).await,
    )?;
    let mut x = Xml::new();
    x.elem("UserName", &key.user_name);
    x.wrap("AccessKeyLastUsed", |x| match &key.last_used {
        Some(u) => {
            x.elem("LastUsedDate", &render::time(&u.time))
                .elem("ServiceName", &u.service)
                .elem("Region", &u.region);
        }
        None => {
            x.elem("ServiceName", "N/A").elem("Region", "N/A");
        }
    });
    Ok(Some(x.finish()))
}

/// What `TagUser`/`TagRole`/`TagPolicy` (and friends) address.
async fn tag_target(
    ctx: &CallContext<'_>,
    p: &Params,
    action: &str,
) -> Result<(TaggedKind, String, String), ApiError> {
    if action.contains("Policy") {
        let arn = p.required("PolicyArn")?.to_owned();
        Ok((TaggedKind::Policy, arn.clone(), arn))
    } else if action.contains("Role") {
        let name = p.required("RoleName")?.to_owned();
        let arn = principal_arn(ctx, Target::Role, &name).await;
        Ok((TaggedKind::Role, name, arn))
    } else {
        let name = p.required("UserName")?.to_owned();
        let arn = principal_arn(ctx, Target::User, &name).await;
        Ok((TaggedKind::User, name, arn))
    }
}

pub(super) async fn tag(ctx: &CallContext<'_>, p: &Params, action: &str, add: bool) -> Out {
    let (kind, name, arn) = tag_target(ctx, p, action).await?;
    authorize(ctx, &format!("iam:{action}"), &arn)?;
    let store = &ctx.store;
    if add {
        let tags: Vec<Tag> = p
            .tags("Tags")?
            .into_iter()
            .map(|(k, v)| Tag::new(k, v))
            .collect();
        store
            .tag_resource(ctx.account(), kind, &name, &tags)
            .await?;
    } else {
        let keys = p.list("TagKeys");
        store
            .untag_resource(ctx.account(), kind, &name, &keys)
            .await?;
    }
    Ok(None)
}

pub(super) async fn list_tags(ctx: &CallContext<'_>, p: &Params, action: &str) -> Out {
    let (kind, name, arn) = tag_target(ctx, p, action).await?;
    authorize(ctx, &format!("iam:{action}"), &arn)?;
    let page = ctx
        .store
        .list_tags(ctx.account(), kind, &name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    x.wrap("Tags", |x| render::tag_members(x, &page.items));
    render::paging(&mut x, &page);
    Ok(Some(x.finish()))
}
