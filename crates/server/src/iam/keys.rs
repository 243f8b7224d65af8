//! Access keys and tags.

use super::entity::{Entity, authorize_entity, authorize_principal};
use super::render;
use super::{Target, list_params};
use crate::error::ApiError;
use crate::identity::Caller;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize};
use gatehouse_store::{AccessKeyStatus, Tag, TaggedKind};

type Out = Result<Option<String>, ApiError>;

/// `UserName`, or the calling user when it is omitted (as AWS does).
pub(crate) fn user_name(ctx: &CallContext<'_>, p: &Params) -> Result<String, ApiError> {
    match (p.get("UserName"), ctx.caller()) {
        (Some(n), _) => Ok(n.to_owned()),
        (None, Caller::User { user_name, .. }) => Ok(user_name.clone()),
        (None, _) => Err(ApiError::validation(
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

pub(super) async fn create_access_key(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = user_name(ctx, p)?;
    let e = authorize_principal(ctx, "iam:CreateAccessKey", Target::User, &user, p).await?;
    let (key, secret) = ctx.store.create_access_key(ctx.account(), &e.name).await?;
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
    let e = authorize_principal(ctx, "iam:ListAccessKeys", Target::User, &user, p).await?;
    let page = ctx
        .store
        .list_access_keys(ctx.account(), &e.name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    x.elem("UserName", &e.name);
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
    let e = authorize_principal(ctx, "iam:UpdateAccessKey", Target::User, &user, p).await?;
    ctx.store
        .update_access_key(ctx.account(), &e.name, key, status)
        .await?;
    Ok(None)
}

pub(super) async fn delete_access_key(ctx: &CallContext<'_>, p: &Params) -> Out {
    let user = user_name(ctx, p)?;
    let key = p.required("AccessKeyId")?;
    let e = authorize_principal(ctx, "iam:DeleteAccessKey", Target::User, &user, p).await?;
    ctx.store
        .delete_access_key(ctx.account(), &e.name, key)
        .await?;
    Ok(None)
}

pub(super) async fn get_access_key_last_used(ctx: &CallContext<'_>, p: &Params) -> Out {
    let key_id = p.required("AccessKeyId")?;
    // Which keys exist is told only to a caller who may read any user's key use; anyone
    // else is refused before learning it. Another account's key is answered as a
    // missing one: its existence is not this account's to know.
    let key = match ctx.store.get_access_key(key_id).await {
        Ok(k) if k.account_id == ctx.account() => k,
        found => {
            let any_user = gatehouse_store::iam_arn(ctx.account(), "user", "/", "*");
            authorize(ctx, "iam:GetAccessKeyLastUsed", &any_user)?;
            return Err(match found {
                Err(e) => e.into(),
                Ok(_) => gatehouse_store::StoreError::NoSuchEntity {
                    kind: gatehouse_store::EntityKind::AccessKey,
                    name: key_id.to_owned(),
                }
                .into(),
            });
        }
    };
    authorize_principal(
        ctx,
        "iam:GetAccessKeyLastUsed",
        Target::User,
        &key.user_name,
        p,
    )
    .await?;
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

/// What `TagUser`/`TagRole`/`TagPolicy` (and friends) address, resolved from the store.
async fn tag_target(
    ctx: &CallContext<'_>,
    p: &Params,
    action: &str,
) -> Result<(TaggedKind, Entity), ApiError> {
    if action.contains("Policy") {
        let arn = p.required("PolicyArn")?;
        Ok((TaggedKind::Policy, Entity::policy(ctx, arn).await?))
    } else if action.contains("Role") {
        let name = p.required("RoleName")?;
        let e = Entity::principal(ctx, Target::Role, name).await?;
        Ok((TaggedKind::Role, e))
    } else {
        let name = p.required("UserName")?;
        let e = Entity::principal(ctx, Target::User, name).await?;
        Ok((TaggedKind::User, e))
    }
}

pub(super) async fn tag(ctx: &CallContext<'_>, p: &Params, action: &str, add: bool) -> Out {
    let (kind, e) = tag_target(ctx, p, action).await?;
    let e = authorize_entity(ctx, &format!("iam:{action}"), e, p)?;
    let store = &ctx.store;
    if add {
        let tags: Vec<Tag> = p
            .tags("Tags")?
            .into_iter()
            .map(|(k, v)| Tag::new(k, v))
            .collect();
        store
            .tag_resource(ctx.account(), kind, &e.name, &tags)
            .await?;
    } else {
        let keys = p.list("TagKeys");
        store
            .untag_resource(ctx.account(), kind, &e.name, &keys)
            .await?;
    }
    Ok(None)
}

pub(super) async fn list_tags(ctx: &CallContext<'_>, p: &Params, action: &str) -> Out {
    let (kind, e) = tag_target(ctx, p, action).await?;
    let e = authorize_entity(ctx, &format!("iam:{action}"), e, p)?;
    let page = ctx
        .store
        .list_tags(ctx.account(), kind, &e.name, &list_params(p)?)
        .await?;
    let mut x = Xml::new();
    x.wrap("Tags", |x| render::tag_members(x, &page.items));
    render::paging(&mut x, &page);
    Ok(Some(x.finish()))
}
