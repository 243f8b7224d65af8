//! The entity an IAM action addresses, read from the store *before* the action is
//! authorized, so that the decision and the audit record name the entity as stored.
//!
//! Names are unique per account case-insensitively and looked up that way, as in AWS; a
//! caller writing `PROTECTED` for the user `protected` must meet every policy written for
//! `user/protected` (with its stored path), never a policy about a name that does not
//! exist. An entity that does not exist is reported (`NoSuchEntity`) only after the caller
//! was allowed the action on the ARN it named: a caller without the permission learns
//! nothing about which names exist. A store failure on the way is a `ServiceFailure`
//! (fail closed), never a guess such as path `/`.

use super::Target;
use super::conditions;
use crate::error::ApiError;
use crate::query::Params;
use crate::{CallContext, authorize_with};
use gatehouse_store::{
    EntityKind, Group, ListParams, OidcProvider, Policy, Role, StoreError, Tag, TaggedKind, User,
    iam_arn,
};

/// What an action addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Group,
    Role,
    /// A managed policy, named by ARN.
    Policy,
    /// An OpenID Connect provider, named by ARN.
    OidcProvider,
}

impl From<Target> for Kind {
    fn from(t: Target) -> Kind {
        match t {
            Target::User => Kind::User,
            Target::Group => Kind::Group,
            Target::Role => Kind::Role,
        }
    }
}

/// The stored record of an entity.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    User(User),
    Group(Group),
    Role(Role),
    Policy(Policy),
    OidcProvider(OidcProvider),
}

/// An entity as the store has it, or as the caller named it when it does not exist.
#[derive(Debug)]
pub(crate) struct Entity {
    pub kind: Kind,
    /// The stored name (a policy: its ARN); the caller's spelling when absent.
    pub name: String,
    /// The stored ARN (path-qualified); when absent, the ARN the caller named.
    pub arn: String,
    /// The entity's tags (users, roles, policies): `aws:ResourceTag/...`.
    pub tags: Vec<Tag>,
    /// The stored record; `None` when the entity does not exist.
    pub record: Option<Record>,
    /// Why it is absent, reported once the caller may know.
    missing: Option<StoreError>,
}

impl Entity {
    /// A user, group or role by name.
    pub async fn principal(
        ctx: &CallContext<'_>,
        target: Target,
        name: &str,
    ) -> Result<Entity, ApiError> {
        let account = ctx.account();
        let store = &ctx.store;
        let found = match target {
            Target::User => store.get_user(account, name).await.map(|u| {
                let arn = u.arn();
                (u.name.clone(), arn, Record::User(u))
            }),
            Target::Group => store.get_group(account, name).await.map(|g| {
                let arn = g.arn();
                (g.name.clone(), arn, Record::Group(g))
            }),
            Target::Role => store.get_role(account, name).await.map(|r| {
                let arn = r.arn();
                (r.name.clone(), arn, Record::Role(r))
            }),
        };
        let kind = Kind::from(target);
        match found {
            Ok((stored, arn, record)) => {
                let tags = match target {
                    Target::User => tags(ctx, TaggedKind::User, &stored).await?,
                    Target::Role => tags(ctx, TaggedKind::Role, &stored).await?,
                    Target::Group => Vec::new(),
                };
                Ok(Entity {
                    kind,
                    name: stored,
                    arn,
                    tags,
                    record: Some(record),
                    missing: None,
                })
            }
            Err(e @ StoreError::NoSuchEntity { .. }) => Ok(Entity {
                kind,
                name: name.to_owned(),
                arn: iam_arn(account, target.word(), "/", name),
                tags: Vec::new(),
                record: None,
                missing: Some(e),
            }),
            Err(e) => Err(failed(e, target.word(), name)),
        }
    }

    /// A managed policy by ARN (exact, as AWS compares ARNs; another account's ARN does
    /// not exist here).
    pub async fn policy(ctx: &CallContext<'_>, arn: &str) -> Result<Entity, ApiError> {
        match ctx.store.get_policy(ctx.account(), arn).await {
            Ok(p) => {
                let tags = tags(ctx, TaggedKind::Policy, &p.arn).await?;
                Ok(Entity {
                    kind: Kind::Policy,
                    name: p.arn.clone(),
                    arn: p.arn.clone(),
                    tags,
                    record: Some(Record::Policy(p)),
                    missing: None,
                })
            }
            Err(e @ (StoreError::NoSuchEntity { .. } | StoreError::Validation(_))) => Ok(Entity {
                kind: Kind::Policy,
                name: arn.to_owned(),
                arn: arn.to_owned(),
                tags: Vec::new(),
                record: None,
                missing: Some(e),
            }),
            Err(e) => Err(failed(e, "policy", arn)),
        }
    }

    /// An entity as given (unit tests of the condition keys).
    #[cfg(test)]
    pub fn for_test(
        kind: Kind,
        name: &str,
        arn: &str,
        tags: Vec<Tag>,
        record: Option<Record>,
    ) -> Entity {
        Entity {
            kind,
            name: name.to_owned(),
            arn: arn.to_owned(),
            tags,
            record,
            missing: None,
        }
    }

    /// An OpenID Connect provider by ARN (exact; another account's does not exist here).
    pub async fn oidc_provider(ctx: &CallContext<'_>, arn: &str) -> Result<Entity, ApiError> {
        match ctx.store.get_oidc_provider(ctx.account(), arn).await {
            Ok(pr) => Ok(Entity {
                kind: Kind::OidcProvider,
                name: pr.arn.clone(),
                arn: pr.arn.clone(),
                tags: pr.tags.clone(),
                record: Some(Record::OidcProvider(pr)),
                missing: None,
            }),
            Err(e @ (StoreError::NoSuchEntity { .. } | StoreError::Validation(_))) => Ok(Entity {
                kind: Kind::OidcProvider,
                name: arn.to_owned(),
                arn: arn.to_owned(),
                tags: Vec::new(),
                record: None,
                missing: Some(e),
            }),
            Err(e) => Err(failed(e, "OpenID Connect provider", arn)),
        }
    }

    /// A role found by other means (`sts:AssumeRole` resolves it by ARN, in its own
    /// account), with its tags.
    pub fn of_role(role: Role, tags: Vec<Tag>) -> Entity {
        Entity {
            kind: Kind::Role,
            name: role.name.clone(),
            arn: role.arn(),
            tags,
            record: Some(Record::Role(role)),
            missing: None,
        }
    }

    /// The permissions boundary the entity has now (users and roles).
    pub fn boundary(&self) -> Option<&str> {
        match &self.record {
            Some(Record::User(u)) => u.permissions_boundary.as_deref(),
            Some(Record::Role(r)) => r.permissions_boundary.as_deref(),
            _ => None,
        }
    }

    /// The entity, or the error that says it does not exist.
    fn require(mut self) -> Result<Entity, ApiError> {
        match self.missing.take() {
            None => Ok(self),
            Some(e) => Err(e.into()),
        }
    }
}

/// A store failure while resolving an entity: logged with its cause, a `ServiceFailure`
/// for the caller. Never turned into a default.
fn failed(e: StoreError, what: &str, name: &str) -> ApiError {
    tracing::error!(error = %e, entity = what, name, "could not resolve the entity of a call; failing closed");
    ApiError::internal()
}

async fn tags(ctx: &CallContext<'_>, kind: TaggedKind, name: &str) -> Result<Vec<Tag>, ApiError> {
    ctx.store
        .list_tags(ctx.account(), kind, name, &ListParams::first(1000))
        .await
        .map(|p| p.items)
        .map_err(|e| failed(e, "tags of", name))
}

/// Authorizes `action` on `entity`'s stored ARN with the condition keys the action
/// documents (`conditions::request_keys`), then reports a missing entity. Returns the
/// entity the call may act on.
pub(crate) fn authorize_entity(
    ctx: &CallContext<'_>,
    action: &str,
    entity: Entity,
    p: &Params,
) -> Result<Entity, ApiError> {
    let keys = conditions::request_keys(action, p, Some(&entity))?;
    authorize_with(ctx, action, &entity.arn, &keys)?;
    entity.require()
}

/// Resolves the user, group or role `name` and authorizes `action` on it (see
/// [`authorize_entity`]).
pub(crate) async fn authorize_principal(
    ctx: &CallContext<'_>,
    action: &str,
    target: Target,
    name: &str,
    p: &Params,
) -> Result<Entity, ApiError> {
    let entity = Entity::principal(ctx, target, name).await?;
    authorize_entity(ctx, action, entity, p)
}

/// Resolves the managed policy `arn` and authorizes `action` on it.
pub(crate) async fn authorize_policy(
    ctx: &CallContext<'_>,
    action: &str,
    arn: &str,
    p: &Params,
) -> Result<Entity, ApiError> {
    let entity = Entity::policy(ctx, arn).await?;
    authorize_entity(ctx, action, entity, p)
}

/// Resolves the OpenID Connect provider `arn` and authorizes `action` on it.
pub(crate) async fn authorize_oidc_provider(
    ctx: &CallContext<'_>,
    action: &str,
    arn: &str,
    p: &Params,
) -> Result<Entity, ApiError> {
    let entity = Entity::oidc_provider(ctx, arn).await?;
    authorize_entity(ctx, action, entity, p)
}

/// The `NoSuchEntity` of a user, group or role that is not there.
pub(crate) fn no_such(target: Target, name: &str) -> ApiError {
    let kind = match target {
        Target::User => EntityKind::User,
        Target::Group => EntityKind::Group,
        Target::Role => EntityKind::Role,
    };
    StoreError::NoSuchEntity {
        kind,
        name: name.to_owned(),
    }
    .into()
}
