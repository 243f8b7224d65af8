//! Access keys (secrets sealed at rest, opened only for SigV4 verification), tags on
//! users, roles and policies, and the organization guardrails attached to accounts.

use crate::db::{Conn, Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::User;
use crate::model::{
    AccessKey, AccessKeyStatus, Guardrail, LastUsed, ListParams, Page, PrincipalKind, Tag,
    TaggedKind, fold_tag_key, limits, new_access_key_id, new_secret_access_key, now_ms,
    parse_policy_arn, ts, validate_document, validate_name,
};
use crate::paging::{list_args, paginate};
use crate::principal::{get_in, resolve_principal};
use crate::seal::Secret;
use crate::store::{Store, access_key_aad, require_account};

const KEY_COLS: &str = "k.access_key_id, u.account_id, u.user_id, u.name, k.status, k.created_ms, \
     k.last_used_ms, k.last_used_service, k.last_used_region";

fn key_from(r: &Row) -> Result<AccessKey> {
    let last_used = match (r.opt_i64(6)?, r.opt_text(7)?, r.opt_text(8)?) {
        (Some(t), service, region) => Some(LastUsed {
            time: ts(t),
            service: service.unwrap_or_default(),
            region: region.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(AccessKey {
        access_key_id: r.text(0)?,
        account_id: r.text(1)?,
        user_id: r.text(2)?,
        user_name: r.text(3)?,
        status: AccessKeyStatus::parse(&r.text(4)?)?,
        created: ts(r.i64(5)?),
        last_used,
    })
}

async fn key_in(c: &mut Conn, access_key_id: &str) -> Result<(AccessKey, String)> {
    let row = c
        .opt(
            &format!(
                "SELECT {KEY_COLS}, k.secret_sealed FROM access_keys k \
                 JOIN users u ON u.user_id = k.user_id WHERE k.access_key_id = $1"
            ),
            args![access_key_id],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::AccessKey, access_key_id))?;
    Ok((key_from(&row)?, row.text(9)?))
}

/// Checks a tag list: each tag valid, keys distinct (ASCII letters folded), at most 50.
pub(crate) fn validate_tags(tags: &[Tag]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        t.validate()?;
        if !seen.insert(t.folded_key()) {
            return Err(StoreError::Validation(format!(
                "Duplicate tag key {:?}",
                t.key
            )));
        }
    }
    if tags.len() > limits::TAGS {
        return Err(StoreError::LimitExceeded(format!(
            "Cannot exceed quota for TagsPerResource: {}",
            limits::TAGS
        )));
    }
    Ok(())
}

/// Adds or overwrites tags of a resource, enforcing the per-resource limit.
pub(crate) async fn put_tags(c: &mut Conn, kind: TaggedKind, id: &str, tags: &[Tag]) -> Result<()> {
    for t in tags {
        c.exec(
            "INSERT INTO tags (resource_kind, resource_id, tag_key, key_lower, tag_value) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (resource_kind, resource_id, key_lower) \
             DO UPDATE SET tag_key = excluded.tag_key, tag_value = excluded.tag_value",
            args![
                kind.as_str(),
                id,
                t.key.as_str(),
                t.folded_key(),
                t.value.as_str()
            ],
        )
        .await?;
    }
    let n = c
        .scalar_i64(
            "SELECT count(*) FROM tags WHERE resource_kind = $1 AND resource_id = $2",
            args![kind.as_str(), id],
        )
        .await?;
    if n > limits::TAGS as i64 {
        return Err(StoreError::LimitExceeded(format!(
            "Cannot exceed quota for TagsPerResource: {}",
            limits::TAGS
        )));
    }
    Ok(())
}

/// Every tag of a resource, by key.
pub(crate) async fn tags_in(c: &mut Conn, kind: TaggedKind, id: &str) -> Result<Vec<Tag>> {
    c.all(
        "SELECT tag_key, tag_value FROM tags WHERE resource_kind = $1 AND resource_id = $2 \
         ORDER BY key_lower",
        args![kind.as_str(), id],
    )
    .await?
    .iter()
    .map(|r| Ok(Tag::new(r.text(0)?, r.text(1)?)))
    .collect()
}

/// The id of a taggable resource: users and roles by name, policies by ARN.
async fn tagged_id(c: &mut Conn, account: &str, kind: TaggedKind, name: &str) -> Result<String> {
    match kind {
        TaggedKind::User => Ok(resolve_principal(c, account, PrincipalKind::User, name)
            .await?
            .0),
        TaggedKind::Role => Ok(resolve_principal(c, account, PrincipalKind::Role, name)
            .await?
            .0),
        TaggedKind::Policy => {
            let (arn_account, _) = parse_policy_arn(name)?;
            let row = if arn_account == account {
                c.opt(
                    "SELECT policy_id FROM policies WHERE account_id = $1 AND arn = $2",
                    args![account, name],
                )
                .await?
            } else {
                None
            };
            row.ok_or_else(|| StoreError::no_such(EntityKind::Policy, name))?
                .text(0)
        }
        TaggedKind::OidcProvider => c
            .opt(
                "SELECT arn FROM oidc_providers WHERE account_id = $1 AND arn = $2",
                args![account, name],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::OidcProvider, name))?
            .text(0),
    }
}

fn validate_access_key_id(id: &str) -> Result<()> {
    if id.len() < 16 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(StoreError::Validation(
            "Invalid access key id: 16 to 128 letters and digits".to_string(),
        ));
    }
    Ok(())
}

const GUARDRAIL_COLS: &str = "account_id, name, document, created_ms, updated_ms, name_lower";

fn guardrail_from(r: &Row) -> Result<Guardrail> {
    Ok(Guardrail {
        account_id: r.text(0)?,
        name: r.text(1)?,
        document: r.text(2)?,
        created: ts(r.i64(3)?),
        updated: ts(r.i64(4)?),
    })
}

impl Store {
    // -----------------------------------------------------------------------------
    // access keys

    /// Creates an access key for a user (`CreateAccessKey`). The secret is returned
    /// this once and stored only sealed. `LimitExceeded` beyond two keys per user.
    pub async fn create_access_key(
        &self,
        account: &str,
        user: &str,
    ) -> Result<(AccessKey, Secret)> {
        let secret = Secret::new(new_secret_access_key());
        let key = self
            .insert_access_key(account, user, &new_access_key_id(), &secret)
            .await?;
        Ok((key, secret))
    }

    /// Stores a given access key id and secret for a user (bootstrap credentials from
    /// the environment, imports).
    pub async fn import_access_key(
        &self,
        account: &str,
        user: &str,
        access_key_id: &str,
        secret: &Secret,
    ) -> Result<AccessKey> {
        validate_access_key_id(access_key_id)?;
        if secret.is_empty() || secret.len() > 512 {
            return Err(StoreError::Validation(
                "secret access key must be 1 to 512 characters".to_string(),
            ));
        }
        self.insert_access_key(account, user, access_key_id, secret)
            .await
    }

    async fn insert_access_key(
        &self,
        account: &str,
        user: &str,
        access_key_id: &str,
        secret: &Secret,
    ) -> Result<AccessKey> {
        let mut tx = self.begin_write().await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
        let n = tx
            .conn
            .scalar_i64(
                "SELECT count(*) FROM access_keys WHERE user_id = $1",
                args![u.user_id.as_str()],
            )
            .await?;
        if n >= limits::ACCESS_KEYS_PER_USER as i64 {
            return Err(StoreError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {}",
                limits::ACCESS_KEYS_PER_USER
            )));
        }
        if tx
            .conn
            .opt(
                "SELECT 1 FROM access_keys WHERE access_key_id = $1",
                args![access_key_id],
            )
            .await?
            .is_some()
        {
            return Err(StoreError::exists(EntityKind::AccessKey, access_key_id));
        }
        let sealed = self
            .seal_in(&mut tx.conn, &access_key_aad(access_key_id), secret)
            .await?;
        tx.conn
            .exec(
                "INSERT INTO access_keys (access_key_id, user_id, secret_sealed, status, created_ms) \
                 VALUES ($1, $2, $3, 'Active', $4)",
                args![access_key_id, u.user_id, sealed, now_ms()],
            )
            .await?;
        let (key, _) = key_in(&mut tx.conn, access_key_id).await?;
        self.commit(tx).await?;
        Ok(key)
    }

    /// A user's access keys (`ListAccessKeys`), by id.
    pub async fn list_access_keys(
        &self,
        account: &str,
        user: &str,
        params: &ListParams,
    ) -> Result<Page<AccessKey>> {
        let (_, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let u = get_in::<User>(&mut c, account, user).await?;
        let rows = c
            .all(
                &format!(
                    "SELECT {KEY_COLS} FROM access_keys k JOIN users u ON u.user_id = k.user_id \
                     WHERE k.user_id = $1 AND k.access_key_id > $2 \
                     ORDER BY k.access_key_id LIMIT $3"
                ),
                args![u.user_id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 0, key_from)
    }

    /// Activates or deactivates a key (`UpdateAccessKey`).
    pub async fn update_access_key(
        &self,
        account: &str,
        user: &str,
        access_key_id: &str,
        status: AccessKeyStatus,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
        let n = tx
            .conn
            .exec(
                "UPDATE access_keys SET status = $1 WHERE access_key_id = $2 AND user_id = $3",
                args![status.as_str(), access_key_id, u.user_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::AccessKey, access_key_id));
        }
        self.commit(tx).await
    }

    /// Deletes a key (`DeleteAccessKey`).
    pub async fn delete_access_key(
        &self,
        account: &str,
        user: &str,
        access_key_id: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM access_keys WHERE access_key_id = $1 AND user_id = $2",
                args![access_key_id, u.user_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::AccessKey, access_key_id));
        }
        self.commit(tx).await
    }

    /// A key with its owner and last use (`GetAccessKeyLastUsed`), in any account.
    pub async fn get_access_key(&self, access_key_id: &str) -> Result<AccessKey> {
        let mut c = self.inner.pool.conn().await?;
        Ok(key_in(&mut c, access_key_id).await?.0)
    }

    /// The key and its opened secret, for verifying a signature. The caller checks
    /// the status. `NoSuchEntity` for an unknown id.
    pub async fn access_key_for_auth(&self, access_key_id: &str) -> Result<(AccessKey, Secret)> {
        let mut c = self.inner.pool.conn().await?;
        let (key, sealed) = key_in(&mut c, access_key_id).await?;
        drop(c);
        let secret = self
            .open_sealed(&access_key_aad(access_key_id), &sealed)
            .await?;
        Ok((key, secret))
    }

    /// Records a use of a key. Bookkeeping, not a policy change: it does not bump the
    /// generation, and writes at most once a minute per key unless service or region
    /// change, so it is cheap on the request path.
    pub async fn record_access_key_use(
        &self,
        access_key_id: &str,
        service: &str,
        region: &str,
    ) -> Result<()> {
        let now = now_ms();
        let mut c = self.inner.pool.conn().await?;
        c.exec(
            "UPDATE access_keys SET last_used_ms = $1, last_used_service = $2, last_used_region = $3 \
             WHERE access_key_id = $4 AND (last_used_ms IS NULL OR last_used_ms < $5 \
             OR last_used_service <> $2 OR last_used_region <> $3)",
            args![now, service, region, access_key_id, now - 60_000],
        )
        .await?;
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // tags

    /// Adds or overwrites tags (`TagUser`, `TagRole`, `TagPolicy`); `name` is the user
    /// or role name, or the policy ARN.
    pub async fn tag_resource(
        &self,
        account: &str,
        kind: TaggedKind,
        name: &str,
        tags: &[Tag],
    ) -> Result<()> {
        validate_tags(tags)?;
        let mut tx = self.begin_write().await?;
        let id = tagged_id(&mut tx.conn, account, kind, name).await?;
        put_tags(&mut tx.conn, kind, &id, tags).await?;
        self.commit(tx).await
    }

    /// Removes tags by key (`UntagUser`, ...); absent keys are ignored.
    pub async fn untag_resource(
        &self,
        account: &str,
        kind: TaggedKind,
        name: &str,
        keys: &[String],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let id = tagged_id(&mut tx.conn, account, kind, name).await?;
        for k in keys {
            tx.conn
                .exec(
                    "DELETE FROM tags WHERE resource_kind = $1 AND resource_id = $2 AND key_lower = $3",
                    args![kind.as_str(), id.as_str(), fold_tag_key(k)],
                )
                .await?;
        }
        self.commit(tx).await
    }

    /// Tags of a resource by key (`ListUserTags`, ...).
    pub async fn list_tags(
        &self,
        account: &str,
        kind: TaggedKind,
        name: &str,
        params: &ListParams,
    ) -> Result<Page<Tag>> {
        let (_, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let id = tagged_id(&mut c, account, kind, name).await?;
        let rows = c
            .all(
                "SELECT tag_key, tag_value, key_lower FROM tags \
                 WHERE resource_kind = $1 AND resource_id = $2 AND key_lower > $3 \
                 ORDER BY key_lower LIMIT $4",
                args![kind.as_str(), id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 2, |r| Ok(Tag::new(r.text(0)?, r.text(1)?)))
    }

    // -----------------------------------------------------------------------------
    // guardrails

    /// Attaches (or replaces) a guardrail policy on an account.
    pub async fn put_guardrail(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<Guardrail> {
        validate_name("guardrail", name, 128)?;
        validate_document("Guardrail", document, limits::GUARDRAIL_SIZE)?;
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        let now = now_ms();
        tx.conn
            .exec(
                "INSERT INTO guardrails (account_id, name, name_lower, document, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (account_id, name_lower) \
                 DO UPDATE SET name = excluded.name, document = excluded.document, \
                 updated_ms = excluded.updated_ms",
                args![account, name, name.to_lowercase(), document, now],
            )
            .await?;
        let g = get_guardrail_in(&mut tx.conn, account, name).await?;
        self.commit(tx).await?;
        Ok(g)
    }

    /// One guardrail of an account.
    pub async fn get_guardrail(&self, account: &str, name: &str) -> Result<Guardrail> {
        let mut c = self.inner.pool.conn().await?;
        get_guardrail_in(&mut c, account, name).await
    }

    /// Every guardrail of an account, by name.
    pub async fn list_guardrails(&self, account: &str) -> Result<Vec<Guardrail>> {
        let mut c = self.inner.pool.conn().await?;
        require_account(&mut c, account).await?;
        c.all(
            &format!(
                "SELECT {GUARDRAIL_COLS} FROM guardrails WHERE account_id = $1 ORDER BY name_lower"
            ),
            args![account],
        )
        .await?
        .iter()
        .map(guardrail_from)
        .collect()
    }

    /// Detaches a guardrail from an account.
    pub async fn delete_guardrail(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM guardrails WHERE account_id = $1 AND name_lower = $2",
                args![account, name.to_lowercase()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::Guardrail, name));
        }
        self.commit(tx).await
    }
}

async fn get_guardrail_in(c: &mut Conn, account: &str, name: &str) -> Result<Guardrail> {
    let row = c
        .opt(
            &format!(
                "SELECT {GUARDRAIL_COLS} FROM guardrails WHERE account_id = $1 AND name_lower = $2"
            ),
            args![account, name.to_lowercase()],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::Guardrail, name))?;
    guardrail_from(&row)
}
