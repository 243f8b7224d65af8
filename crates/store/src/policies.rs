//! Customer-managed policies and their versions, inline policies, managed-policy
//! attachments, and the query the server feeds the policy engine with
//! ([`Store::load_principal_policies`]): every document that applies to a user or role.

use crate::db::{Conn, Row, args, map_unique};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{
    AttachedPolicy, InlinePolicy, ListParams, NewPolicy, Page, Policy, PolicySource, PolicyVersion,
    PrincipalKind, PrincipalPolicies, PrincipalRef, SourcedPolicy, TaggedKind, iam_arn, limits,
    max_items, new_id, now_ms, parse_policy_arn, parse_version_id, ts, validate_description,
    validate_document, validate_name, validate_path, version_id,
};
use crate::model::{Role, User};
use crate::paging::{PAGE_FILTER, list_args, paginate};
use crate::principal::{get_in, resolve_principal};
use crate::store::{Store, require_account};

const POLICY_COLS: &str = "p.account_id, p.policy_id, p.name, p.path, p.arn, p.description, \
     p.default_version, p.created_ms, p.updated_ms, \
     (SELECT count(*) FROM attachments a WHERE a.policy_id = p.policy_id), \
     (SELECT count(*) FROM users u WHERE u.permissions_boundary = p.arn) \
     + (SELECT count(*) FROM roles r WHERE r.permissions_boundary = p.arn), \
     p.name_lower";

fn policy_from(r: &Row) -> Result<Policy> {
    Ok(Policy {
        account_id: r.text(0)?,
        policy_id: r.text(1)?,
        name: r.text(2)?,
        path: r.text(3)?,
        arn: r.text(4)?,
        description: r.opt_text(5)?,
        default_version_id: version_id(r.i64(6)?),
        created: ts(r.i64(7)?),
        updated: ts(r.i64(8)?),
        attachment_count: r.i64(9)?,
        permissions_boundary_usage_count: r.i64(10)?,
    })
}

/// A policy by ARN within `account` (another account's ARN is `NoSuchEntity`).
async fn get_policy_in(c: &mut Conn, account: &str, arn: &str) -> Result<Policy> {
    let (arn_account, _) = parse_policy_arn(arn)?;
    if arn_account != account {
        return Err(StoreError::no_such(EntityKind::Policy, arn));
    }
    let row = c
        .opt(
            &format!("SELECT {POLICY_COLS} FROM policies p WHERE p.account_id = $1 AND p.arn = $2"),
            args![account, arn],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::Policy, arn))?;
    policy_from(&row)
}

fn inline_limit(kind: PrincipalKind) -> usize {
    match kind {
        PrincipalKind::User => limits::USER_INLINE_SIZE,
        PrincipalKind::Group => limits::GROUP_INLINE_SIZE,
        PrincipalKind::Role => limits::ROLE_INLINE_SIZE,
    }
}

impl Store {
    // -----------------------------------------------------------------------------
    // managed policies

    /// Creates a customer-managed policy with version `v1` as default (`CreatePolicy`).
    pub async fn create_policy(&self, account: &str, input: &NewPolicy) -> Result<Policy> {
        validate_name("policy", &input.name, 128)?;
        let path = input.path.clone().unwrap_or_else(|| "/".to_string());
        validate_path(&path)?;
        if let Some(d) = &input.description {
            validate_description(d)?;
        }
        validate_document("PolicySize", &input.document, limits::MANAGED_POLICY_SIZE)?;
        crate::credentials::validate_tags(&input.tags)?;
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        let lower = input.name.to_lowercase();
        if tx
            .conn
            .opt(
                "SELECT 1 FROM policies WHERE account_id = $1 AND name_lower = $2",
                args![account, lower.as_str()],
            )
            .await?
            .is_some()
        {
            return Err(StoreError::exists(EntityKind::Policy, &input.name));
        }
        let id = new_id("ANPA");
        let arn = iam_arn(account, "policy", &path, &input.name);
        let now = now_ms();
        tx.conn
            .exec(
                "INSERT INTO policies (policy_id, account_id, name, name_lower, path, arn, \
                 description, default_version, next_version, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 2, $8, $8)",
                args![
                    id.as_str(),
                    account,
                    input.name.as_str(),
                    lower,
                    path,
                    arn.as_str(),
                    input.description.clone(),
                    now
                ],
            )
            .await
            .map_err(|e| map_unique(e, EntityKind::Policy, &input.name))?;
        tx.conn
            .exec(
                "INSERT INTO policy_versions (policy_id, version_num, document, created_ms) \
                 VALUES ($1, 1, $2, $3)",
                args![id.as_str(), input.document.as_str(), now],
            )
            .await?;
        crate::credentials::put_tags(&mut tx.conn, TaggedKind::Policy, &id, &input.tags).await?;
        let policy = get_policy_in(&mut tx.conn, account, &arn).await?;
        self.commit(tx).await?;
        Ok(policy)
    }

    /// A policy by ARN (`GetPolicy`).
    pub async fn get_policy(&self, account: &str, arn: &str) -> Result<Policy> {
        let mut c = self.inner.pool.conn().await?;
        get_policy_in(&mut c, account, arn).await
    }

    /// Customer-managed policies of an account (`ListPolicies`, scope `Local`).
    pub async fn list_policies(&self, account: &str, params: &ListParams) -> Result<Page<Policy>> {
        let (prefix, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                &format!(
                    "SELECT {POLICY_COLS} FROM policies p WHERE p.account_id = $1 AND {}",
                    PAGE_FILTER
                        .replace("substr(path", "substr(p.path")
                        .replace("name_lower", "p.name_lower")
                ),
                args![account, prefix, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 11, policy_from)
    }

    /// Deletes a policy (`DeletePolicy`). As AWS: `DeleteConflict` while it is attached,
    /// used as a permissions boundary, or has versions besides the default.
    pub async fn delete_policy(&self, account: &str, arn: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let p = get_policy_in(&mut tx.conn, account, arn).await?;
        if p.attachment_count > 0 {
            return Err(StoreError::DeleteConflict(
                "Cannot delete a policy attached to entities.".to_string(),
            ));
        }
        if p.permissions_boundary_usage_count > 0 {
            return Err(StoreError::DeleteConflict(
                "Cannot delete a policy used as a permissions boundary.".to_string(),
            ));
        }
        let versions = tx
            .conn
            .scalar_i64(
                "SELECT count(*) FROM policy_versions WHERE policy_id = $1",
                args![p.policy_id.as_str()],
            )
            .await?;
        if versions > 1 {
            return Err(StoreError::DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".to_string(),
            ));
        }
        for sql in [
            "DELETE FROM policy_versions WHERE policy_id = $1",
            "DELETE FROM tags WHERE resource_kind = 'policy' AND resource_id = $1",
            "DELETE FROM policies WHERE policy_id = $1",
        ] {
            tx.conn.exec(sql, args![p.policy_id.as_str()]).await?;
        }
        self.commit(tx).await
    }

    // -----------------------------------------------------------------------------
    // versions

    /// Adds a version (`CreatePolicyVersion`); `LimitExceeded` when the policy already
    /// has five.
    pub async fn create_policy_version(
        &self,
        account: &str,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        validate_document("PolicySize", document, limits::MANAGED_POLICY_SIZE)?;
        let mut tx = self.begin_write().await?;
        let p = get_policy_in(&mut tx.conn, account, arn).await?;
        let n = tx
            .conn
            .scalar_i64(
                "SELECT count(*) FROM policy_versions WHERE policy_id = $1",
                args![p.policy_id.as_str()],
            )
            .await?;
        if n >= limits::POLICY_VERSIONS as i64 {
            return Err(StoreError::LimitExceeded(format!(
                "A managed policy can have up to {} versions. Before you create a new version, you must delete an existing version.",
                limits::POLICY_VERSIONS
            )));
        }
        let num = tx
            .conn
            .scalar_i64(
                "UPDATE policies SET next_version = next_version + 1, updated_ms = $1 \
                 WHERE policy_id = $2 RETURNING next_version - 1",
                args![now_ms(), p.policy_id.as_str()],
            )
            .await?;
        tx.conn
            .exec(
                "INSERT INTO policy_versions (policy_id, version_num, document, created_ms) \
                 VALUES ($1, $2, $3, $4)",
                args![p.policy_id.as_str(), num, document, now_ms()],
            )
            .await?;
        if set_as_default {
            tx.conn
                .exec(
                    "UPDATE policies SET default_version = $1 WHERE policy_id = $2",
                    args![num, p.policy_id.as_str()],
                )
                .await?;
        }
        let v = get_version_in(&mut tx.conn, &p.policy_id, num).await?;
        self.commit(tx).await?;
        Ok(v)
    }

    /// One version (`GetPolicyVersion`).
    pub async fn get_policy_version(
        &self,
        account: &str,
        arn: &str,
        version: &str,
    ) -> Result<PolicyVersion> {
        let num = parse_version_id(version)?;
        let mut c = self.inner.pool.conn().await?;
        let p = get_policy_in(&mut c, account, arn).await?;
        get_version_in(&mut c, &p.policy_id, num).await
    }

    /// Versions, newest first (`ListPolicyVersions`).
    pub async fn list_policy_versions(
        &self,
        account: &str,
        arn: &str,
        params: &ListParams,
    ) -> Result<Page<PolicyVersion>> {
        let limit = max_items(params)?;
        let before = match &params.marker {
            Some(m) => crate::model::decode_marker(m)?
                .parse::<i64>()
                .map_err(|_| StoreError::Validation("Invalid Marker".to_string()))?,
            None => i64::MAX,
        };
        let mut c = self.inner.pool.conn().await?;
        let p = get_policy_in(&mut c, account, arn).await?;
        let rows = c
            .all(
                "SELECT v.version_num, v.document, \
                 CAST(CASE WHEN v.version_num = p.default_version THEN 1 ELSE 0 END AS BIGINT), v.created_ms, \
                 CAST(v.version_num AS TEXT) \
                 FROM policy_versions v JOIN policies p ON p.policy_id = v.policy_id \
                 WHERE v.policy_id = $1 AND v.version_num < $2 \
                 ORDER BY v.version_num DESC LIMIT $3",
                args![p.policy_id, before, limit + 1],
            )
            .await?;
        paginate(rows, limit, 4, version_from)
    }

    /// Deletes a non-default version (`DeletePolicyVersion`).
    pub async fn delete_policy_version(
        &self,
        account: &str,
        arn: &str,
        version: &str,
    ) -> Result<()> {
        let num = parse_version_id(version)?;
        let mut tx = self.begin_write().await?;
        let p = get_policy_in(&mut tx.conn, account, arn).await?;
        let v = get_version_in(&mut tx.conn, &p.policy_id, num).await?;
        if v.is_default {
            return Err(StoreError::DeleteConflict(
                "Cannot delete the default version of a policy.".to_string(),
            ));
        }
        tx.conn
            .exec(
                "DELETE FROM policy_versions WHERE policy_id = $1 AND version_num = $2",
                args![p.policy_id.as_str(), num],
            )
            .await?;
        tx.conn
            .exec(
                "UPDATE policies SET updated_ms = $1 WHERE policy_id = $2",
                args![now_ms(), p.policy_id],
            )
            .await?;
        self.commit(tx).await
    }

    /// Makes a version the default (`SetDefaultPolicyVersion`).
    pub async fn set_default_policy_version(
        &self,
        account: &str,
        arn: &str,
        version: &str,
    ) -> Result<()> {
        let num = parse_version_id(version)?;
        let mut tx = self.begin_write().await?;
        let p = get_policy_in(&mut tx.conn, account, arn).await?;
        get_version_in(&mut tx.conn, &p.policy_id, num).await?;
        tx.conn
            .exec(
                "UPDATE policies SET default_version = $1, updated_ms = $2 WHERE policy_id = $3",
                args![num, now_ms(), p.policy_id],
            )
            .await?;
        self.commit(tx).await
    }

    // -----------------------------------------------------------------------------
    // inline policies

    /// Creates or replaces an inline policy (`PutUserPolicy`, `PutGroupPolicy`,
    /// `PutRolePolicy`).
    pub async fn put_inline_policy(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        validate_name("policy", policy_name, 128)?;
        validate_document("PolicySize", document, inline_limit(kind))?;
        let mut tx = self.begin_write().await?;
        let (id, _) = resolve_principal(&mut tx.conn, account, kind, principal).await?;
        // AWS's limit is on all of a principal's inline documents together. Every write
        // holds the store's write lock (the generation row), so two writers cannot both
        // fit under it.
        let others = tx
            .conn
            .all(
                "SELECT document FROM inline_policies \
                 WHERE principal_kind = $1 AND principal_id = $2 AND name_lower <> $3",
                args![kind.as_str(), id.as_str(), policy_name.to_lowercase()],
            )
            .await?;
        let mut total = crate::model::policy_size(document);
        for r in &others {
            total += crate::model::policy_size(&r.text(0)?);
        }
        if total > inline_limit(kind) {
            return Err(StoreError::LimitExceeded(format!(
                "Maximum policy size of {} bytes exceeded for {} {principal}",
                inline_limit(kind),
                kind.as_str()
            )));
        }
        tx.conn
            .exec(
                "INSERT INTO inline_policies (principal_kind, principal_id, name, name_lower, document) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (principal_kind, principal_id, name_lower) \
                 DO UPDATE SET name = excluded.name, document = excluded.document",
                args![
                    kind.as_str(),
                    id,
                    policy_name,
                    policy_name.to_lowercase(),
                    document
                ],
            )
            .await?;
        self.commit(tx).await
    }

    /// One inline policy (`GetUserPolicy`, ...).
    pub async fn get_inline_policy(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        policy_name: &str,
    ) -> Result<InlinePolicy> {
        let mut c = self.inner.pool.conn().await?;
        let (id, _) = resolve_principal(&mut c, account, kind, principal).await?;
        let row = c
            .opt(
                "SELECT name, document FROM inline_policies \
                 WHERE principal_kind = $1 AND principal_id = $2 AND name_lower = $3",
                args![kind.as_str(), id, policy_name.to_lowercase()],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::InlinePolicy, policy_name))?;
        Ok(InlinePolicy {
            name: row.text(0)?,
            document: row.text(1)?,
        })
    }

    /// Deletes an inline policy (`DeleteUserPolicy`, ...).
    pub async fn delete_inline_policy(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        policy_name: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (id, _) = resolve_principal(&mut tx.conn, account, kind, principal).await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM inline_policies \
                 WHERE principal_kind = $1 AND principal_id = $2 AND name_lower = $3",
                args![kind.as_str(), id, policy_name.to_lowercase()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::InlinePolicy, policy_name));
        }
        self.commit(tx).await
    }

    /// Names of a principal's inline policies (`ListUserPolicies`, ...).
    pub async fn list_inline_policies(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        params: &ListParams,
    ) -> Result<Page<String>> {
        let (_, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let (id, _) = resolve_principal(&mut c, account, kind, principal).await?;
        let rows = c
            .all(
                "SELECT name, name_lower FROM inline_policies \
                 WHERE principal_kind = $1 AND principal_id = $2 AND name_lower > $3 \
                 ORDER BY name_lower LIMIT $4",
                args![kind.as_str(), id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 1, |r| r.text(0))
    }

    // -----------------------------------------------------------------------------
    // attachments

    /// Attaches a managed policy (`AttachUserPolicy`, ...); attaching twice is a no-op.
    pub async fn attach_policy(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (id, _) = resolve_principal(&mut tx.conn, account, kind, principal).await?;
        let p = get_policy_in(&mut tx.conn, account, policy_arn).await?;
        if tx
            .conn
            .opt(
                "SELECT 1 FROM attachments WHERE principal_kind = $1 AND principal_id = $2 AND policy_id = $3",
                args![kind.as_str(), id.as_str(), p.policy_id.as_str()],
            )
            .await?
            .is_some()
        {
            return Ok(());
        }
        let n = tx
            .conn
            .scalar_i64(
                "SELECT count(*) FROM attachments WHERE principal_kind = $1 AND principal_id = $2",
                args![kind.as_str(), id.as_str()],
            )
            .await?;
        if n >= limits::ATTACHED_POLICIES as i64 {
            return Err(StoreError::LimitExceeded(format!(
                "Cannot exceed quota for PoliciesPer{}: {}",
                match kind {
                    PrincipalKind::User => "User",
                    PrincipalKind::Group => "Group",
                    PrincipalKind::Role => "Role",
                },
                limits::ATTACHED_POLICIES
            )));
        }
        tx.conn
            .exec(
                "INSERT INTO attachments (principal_kind, principal_id, policy_id) VALUES ($1, $2, $3)",
                args![kind.as_str(), id, p.policy_id],
            )
            .await?;
        self.commit(tx).await
    }

    /// Detaches a managed policy (`DetachUserPolicy`, ...); `NoSuchEntity` if it was not
    /// attached.
    pub async fn detach_policy(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (id, _) = resolve_principal(&mut tx.conn, account, kind, principal).await?;
        let p = get_policy_in(&mut tx.conn, account, policy_arn).await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM attachments WHERE principal_kind = $1 AND principal_id = $2 AND policy_id = $3",
                args![kind.as_str(), id, p.policy_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::Attachment, policy_arn));
        }
        self.commit(tx).await
    }

    /// Managed policies attached to a principal (`ListAttachedUserPolicies`, ...),
    /// filtered by the policies' path prefix.
    pub async fn list_attached_policies(
        &self,
        account: &str,
        kind: PrincipalKind,
        principal: &str,
        params: &ListParams,
    ) -> Result<Page<AttachedPolicy>> {
        let (prefix, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let (id, _) = resolve_principal(&mut c, account, kind, principal).await?;
        let rows = c
            .all(
                "SELECT p.name, p.arn, p.name_lower FROM attachments a \
                 JOIN policies p ON p.policy_id = a.policy_id \
                 WHERE a.principal_kind = $5 AND a.principal_id = $1 \
                 AND ($2 = '' OR substr(p.path, 1, length($2)) = $2) \
                 AND p.name_lower > $3 ORDER BY p.name_lower LIMIT $4",
                args![id, prefix, marker, limit + 1, kind.as_str()],
            )
            .await?;
        paginate(rows, limit, 2, |r| {
            Ok(AttachedPolicy {
                policy_name: r.text(0)?,
                policy_arn: r.text(1)?,
            })
        })
    }

    // -----------------------------------------------------------------------------
    // what applies to a principal

    /// Everything the policy engine needs for a user or role, read in one consistent
    /// snapshot: inline and attached policies (default versions), for users those of
    /// their groups, the permissions boundary and the account's guardrails.
    pub async fn load_principal_policies(
        &self,
        account: &str,
        principal: PrincipalRef<'_>,
    ) -> Result<PrincipalPolicies> {
        let mut c = self.inner.pool.read_tx().await?;
        let generation = c
            .scalar_i64("SELECT value FROM generation WHERE id = 1", vec![])
            .await?;
        let (kind, tagged, id, name, arn, boundary) = match principal {
            PrincipalRef::User(n) => {
                let u = get_in::<User>(&mut c, account, n).await?;
                let arn = u.arn();
                (
                    PrincipalKind::User,
                    TaggedKind::User,
                    u.user_id,
                    u.name,
                    arn,
                    u.permissions_boundary,
                )
            }
            PrincipalRef::Role(n) => {
                let r = get_in::<Role>(&mut c, account, n).await?;
                let arn = r.arn();
                (
                    PrincipalKind::Role,
                    TaggedKind::Role,
                    r.role_id,
                    r.name,
                    arn,
                    r.permissions_boundary,
                )
            }
        };
        let tags = crate::credentials::tags_in(&mut c, tagged, &id).await?;
        let mut identity_policies = Vec::new();
        principal_documents(&mut c, kind, &id, None, &mut identity_policies).await?;
        let mut groups = Vec::new();
        let mut group_arns = Vec::new();
        if kind == PrincipalKind::User {
            let rows = c
                .all(
                    "SELECT g.group_id, g.name, g.path FROM group_members m \
                     JOIN iam_groups g ON g.group_id = m.group_id \
                     WHERE m.user_id = $1 ORDER BY g.name_lower",
                    args![id.as_str()],
                )
                .await?;
            for r in rows {
                let (gid, gname) = (r.text(0)?, r.text(1)?);
                principal_documents(
                    &mut c,
                    PrincipalKind::Group,
                    &gid,
                    Some(&gname),
                    &mut identity_policies,
                )
                .await?;
                group_arns.push(crate::model::iam_arn(account, "group", &r.text(2)?, &gname));
                groups.push(gname);
            }
        }
        let boundary = match boundary {
            None => None,
            Some(barn) => {
                let row = c
                    .opt(
                        "SELECT p.default_version, v.document FROM policies p \
                         JOIN policy_versions v ON v.policy_id = p.policy_id \
                         AND v.version_num = p.default_version WHERE p.arn = $1",
                        args![barn.as_str()],
                    )
                    .await?
                    // Fail closed: a boundary that cannot be read is an error, not "none".
                    .ok_or_else(|| StoreError::no_such(EntityKind::Policy, barn.as_str()))?;
                Some(SourcedPolicy {
                    source: PolicySource::Boundary {
                        arn: barn,
                        version_id: version_id(row.i64(0)?),
                    },
                    document: row.text(1)?,
                })
            }
        };
        let guardrails = c
            .all(
                "SELECT name, document FROM guardrails WHERE account_id = $1 ORDER BY name_lower",
                args![account],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(SourcedPolicy {
                    source: PolicySource::Guardrail { name: r.text(0)? },
                    document: r.text(1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // A day of slack: a server whose test clock stands a little behind the system's
        // still sees its grants; older windows are over on any clock.
        let elevations = crate::access::active_elevations_in(
            &mut c,
            &id,
            chrono::Utc::now() - chrono::Duration::days(1),
        )
        .await?;
        c.commit().await?;
        Ok(PrincipalPolicies {
            account_id: account.to_string(),
            principal_arn: arn,
            principal_id: id,
            principal_name: name,
            tags,
            groups,
            group_arns,
            identity_policies,
            boundary,
            guardrails,
            elevations,
            generation,
        })
    }
}

fn version_from(r: &Row) -> Result<PolicyVersion> {
    Ok(PolicyVersion {
        version_id: version_id(r.i64(0)?),
        document: r.text(1)?,
        is_default: r.i64(2)? != 0,
        created: ts(r.i64(3)?),
    })
}

async fn get_version_in(c: &mut Conn, policy_id: &str, num: i64) -> Result<PolicyVersion> {
    let row = c
        .opt(
            "SELECT v.version_num, v.document, \
             CAST(CASE WHEN v.version_num = p.default_version THEN 1 ELSE 0 END AS BIGINT), v.created_ms \
             FROM policy_versions v JOIN policies p ON p.policy_id = v.policy_id \
             WHERE v.policy_id = $1 AND v.version_num = $2",
            args![policy_id, num],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::PolicyVersion, version_id(num)))?;
    version_from(&row)
}

/// Appends the inline and attached-managed documents of one principal.
async fn principal_documents(
    c: &mut Conn,
    kind: PrincipalKind,
    id: &str,
    via_group: Option<&str>,
    out: &mut Vec<SourcedPolicy>,
) -> Result<()> {
    let rows = c
        .all(
            "SELECT name, document FROM inline_policies \
             WHERE principal_kind = $1 AND principal_id = $2 ORDER BY name_lower",
            args![kind.as_str(), id],
        )
        .await?;
    for r in rows {
        out.push(SourcedPolicy {
            source: PolicySource::Inline {
                policy_name: r.text(0)?,
                via_group: via_group.map(str::to_string),
            },
            document: r.text(1)?,
        });
    }
    let rows = c
        .all(
            "SELECT p.arn, p.default_version, v.document FROM attachments a \
             JOIN policies p ON p.policy_id = a.policy_id \
             JOIN policy_versions v ON v.policy_id = p.policy_id AND v.version_num = p.default_version \
             WHERE a.principal_kind = $1 AND a.principal_id = $2 ORDER BY p.name_lower",
            args![kind.as_str(), id],
        )
        .await?;
    for r in rows {
        out.push(SourcedPolicy {
            source: PolicySource::Managed {
                arn: r.text(0)?,
                version_id: version_id(r.i64(1)?),
                via_group: via_group.map(str::to_string),
            },
            document: r.text(2)?,
        });
    }
    Ok(())
}
