//! Users, groups, group memberships and roles: create, read, list, update, delete,
//! with AWS's name rules, case-insensitive uniqueness per account and AWS's
//! `DeleteConflict` rules. Also the helpers shared by the other entity modules
//! (resolving a principal by name, paging).

use crate::db::{Conn, Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{
    Group, ListParams, NewRole, NewUser, Page, PrincipalKind, Role, RoleUpdate, TaggedKind, User,
    decode_marker, encode_marker, limits, max_items, new_id, now_ms, ts, validate_description,
    validate_document, validate_max_session, validate_name, validate_path, validate_path_prefix,
};
use crate::store::{Store, require_account};

pub(crate) const USER_COLS: &str =
    "account_id, user_id, name, path, permissions_boundary, created_ms, name_lower";
pub(crate) const GROUP_COLS: &str = "account_id, group_id, name, path, created_ms, name_lower";
pub(crate) const ROLE_COLS: &str = "account_id, role_id, name, path, trust_policy, description, \
     max_session_duration, permissions_boundary, created_ms, name_lower";

pub(crate) fn user_from(r: &Row) -> Result<User> {
    Ok(User {
        account_id: r.text(0)?,
        user_id: r.text(1)?,
        name: r.text(2)?,
        path: r.text(3)?,
        permissions_boundary: r.opt_text(4)?,
        created: ts(r.i64(5)?),
    })
}

pub(crate) fn group_from(r: &Row) -> Result<Group> {
    Ok(Group {
        account_id: r.text(0)?,
        group_id: r.text(1)?,
        name: r.text(2)?,
        path: r.text(3)?,
        created: ts(r.i64(4)?),
    })
}

pub(crate) fn role_from(r: &Row) -> Result<Role> {
    Ok(Role {
        account_id: r.text(0)?,
        role_id: r.text(1)?,
        name: r.text(2)?,
        path: r.text(3)?,
        trust_policy: r.text(4)?,
        description: r.opt_text(5)?,
        max_session_duration: r.i64(6)?,
        permissions_boundary: r.opt_text(7)?,
        created: ts(r.i64(8)?),
    })
}

/// Table and id column of a principal kind.
pub(crate) fn principal_table(kind: PrincipalKind) -> (&'static str, &'static str) {
    match kind {
        PrincipalKind::User => ("users", "user_id"),
        PrincipalKind::Group => ("iam_groups", "group_id"),
        PrincipalKind::Role => ("roles", "role_id"),
    }
}

/// The id and canonical name of a principal, or `NoSuchEntity`.
pub(crate) async fn resolve_principal(
    c: &mut Conn,
    account: &str,
    kind: PrincipalKind,
    name: &str,
) -> Result<(String, String)> {
    let (table, id_col) = principal_table(kind);
    let row = c
        .opt(
            &format!(
                "SELECT {id_col}, name FROM {table} WHERE account_id = $1 AND name_lower = $2"
            ),
            args![account, name.to_lowercase()],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(kind.entity(), name))?;
    Ok((row.text(0)?, row.text(1)?))
}

/// The arguments and `WHERE` tail shared by the name-ordered list calls:
/// `$2` path prefix ('' for none), `$3` marker key ('' for none), `$4` limit + 1.
pub(crate) fn list_args(p: &ListParams) -> Result<(String, String, i64)> {
    let prefix = match &p.path_prefix {
        Some(prefix) => {
            validate_path_prefix(prefix)?;
            prefix.clone()
        }
        None => String::new(),
    };
    let marker = match &p.marker {
        Some(m) => decode_marker(m)?,
        None => String::new(),
    };
    Ok((prefix, marker, max_items(p)?))
}

pub(crate) const PAGE_FILTER: &str = "($2 = '' OR substr(path, 1, length($2)) = $2) \
     AND name_lower > $3 ORDER BY name_lower LIMIT $4";

/// Turns `limit + 1` fetched rows into a page; the marker is the sort key (column
/// `key_col`) of the last returned row.
pub(crate) fn paginate<T>(
    rows: Vec<Row>,
    limit: i64,
    key_col: usize,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let truncated = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last_key = None;
    for r in rows.iter().take(limit) {
        items.push(map(r)?);
        last_key = Some(r.text(key_col)?);
    }
    let next_marker = match (truncated, last_key) {
        (true, Some(k)) => Some(encode_marker(&k)),
        _ => None,
    };
    Ok(Page { items, next_marker })
}

/// Checks that `arn` names a managed policy of `account` (a permissions boundary).
pub(crate) async fn require_policy_arn(c: &mut Conn, account: &str, arn: &str) -> Result<()> {
    if c.opt(
        "SELECT 1 FROM policies WHERE account_id = $1 AND arn = $2",
        args![account, arn],
    )
    .await?
    .is_none()
    {
        return Err(StoreError::no_such(EntityKind::Policy, arn));
    }
    Ok(())
}

async fn require_name_free(
    c: &mut Conn,
    account: &str,
    kind: PrincipalKind,
    name: &str,
) -> Result<()> {
    let (table, _) = principal_table(kind);
    if c.opt(
        &format!("SELECT 1 FROM {table} WHERE account_id = $1 AND name_lower = $2"),
        args![account, name.to_lowercase()],
    )
    .await?
    .is_some()
    {
        return Err(StoreError::exists(kind.entity(), name));
    }
    Ok(())
}

async fn count(c: &mut Conn, sql: &str, id: &str) -> Result<i64> {
    c.scalar_i64(sql, args![id]).await
}

pub(crate) async fn get_user_in(c: &mut Conn, account: &str, name: &str) -> Result<User> {
    let row = c
        .opt(
            &format!("SELECT {USER_COLS} FROM users WHERE account_id = $1 AND name_lower = $2"),
            args![account, name.to_lowercase()],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::User, name))?;
    user_from(&row)
}

pub(crate) async fn get_group_in(c: &mut Conn, account: &str, name: &str) -> Result<Group> {
    let row = c
        .opt(
            &format!(
                "SELECT {GROUP_COLS} FROM iam_groups WHERE account_id = $1 AND name_lower = $2"
            ),
            args![account, name.to_lowercase()],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::Group, name))?;
    group_from(&row)
}

pub(crate) async fn get_role_in(c: &mut Conn, account: &str, name: &str) -> Result<Role> {
    let row = c
        .opt(
            &format!("SELECT {ROLE_COLS} FROM roles WHERE account_id = $1 AND name_lower = $2"),
            args![account, name.to_lowercase()],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(EntityKind::Role, name))?;
    role_from(&row)
}

/// Deletes every inline policy, attachment and tag of a principal being deleted (only
/// tags remain by the time AWS allows the delete; the rest is belt and braces).
async fn delete_tags_of(c: &mut Conn, kind: TaggedKind, id: &str) -> Result<()> {
    c.exec(
        "DELETE FROM tags WHERE resource_kind = $1 AND resource_id = $2",
        args![kind.as_str(), id],
    )
    .await?;
    Ok(())
}

impl Store {
    // -----------------------------------------------------------------------------
    // users

    /// Creates a user (`CreateUser`).
    pub async fn create_user(&self, account: &str, input: &NewUser) -> Result<User> {
        validate_name("user", &input.name, 64)?;
        let path = input.path.clone().unwrap_or_else(|| "/".to_string());
        validate_path(&path)?;
        crate::credentials::validate_tags(&input.tags)?;
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        require_name_free(&mut tx.conn, account, PrincipalKind::User, &input.name).await?;
        if let Some(arn) = &input.permissions_boundary {
            require_policy_arn(&mut tx.conn, account, arn).await?;
        }
        let id = new_id("AIDA");
        tx.conn
            .exec(
                "INSERT INTO users (user_id, account_id, name, name_lower, path, \
                 permissions_boundary, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![
                    id.as_str(),
                    account,
                    input.name.as_str(),
                    input.name.to_lowercase(),
                    path,
                    input.permissions_boundary.clone(),
                    now_ms()
                ],
            )
            .await
            .map_err(|e| map_unique(e, EntityKind::User, &input.name))?;
        crate::credentials::put_tags(&mut tx.conn, TaggedKind::User, &id, &input.tags).await?;
        let user = get_user_in(&mut tx.conn, account, &input.name).await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// A user by name (case-insensitive, as AWS).
    pub async fn get_user(&self, account: &str, name: &str) -> Result<User> {
        let mut c = self.inner.pool.conn().await?;
        get_user_in(&mut c, account, name).await
    }

    /// A user by its `AIDA...` id, in any account.
    pub async fn get_user_by_id(&self, user_id: &str) -> Result<User> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                &format!("SELECT {USER_COLS} FROM users WHERE user_id = $1"),
                args![user_id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::User, user_id))?;
        user_from(&row)
    }

    /// Users of an account by name (`ListUsers`).
    pub async fn list_users(&self, account: &str, params: &ListParams) -> Result<Page<User>> {
        let (prefix, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                &format!("SELECT {USER_COLS} FROM users WHERE account_id = $1 AND {PAGE_FILTER}"),
                args![account, prefix, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 6, user_from)
    }

    /// Renames and/or moves a user (`UpdateUser`).
    pub async fn update_user(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<User> {
        if let Some(n) = new_name {
            validate_name("user", n, 64)?;
        }
        if let Some(p) = new_path {
            validate_path(p)?;
        }
        let mut tx = self.begin_write().await?;
        let user = get_user_in(&mut tx.conn, account, name).await?;
        let target = new_name.unwrap_or(&user.name).to_string();
        if target.to_lowercase() != user.name.to_lowercase() {
            require_name_free(&mut tx.conn, account, PrincipalKind::User, &target).await?;
        }
        tx.conn
            .exec(
                "UPDATE users SET name = $1, name_lower = $2, path = $3 WHERE user_id = $4",
                args![
                    target.as_str(),
                    target.to_lowercase(),
                    new_path.unwrap_or(&user.path),
                    user.user_id.as_str()
                ],
            )
            .await
            .map_err(|e| map_unique(e, EntityKind::User, &target))?;
        let user = get_user_in(&mut tx.conn, account, &target).await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// Deletes a user (`DeleteUser`). Like AWS, fails with `DeleteConflict` while the
    /// user has access keys, inline or attached policies, or group memberships.
    pub async fn delete_user(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let user = get_user_in(&mut tx.conn, account, name).await?;
        let id = user.user_id.as_str();
        let checks = [
            (
                "SELECT count(*) FROM access_keys WHERE user_id = $1",
                "access keys",
            ),
            (
                "SELECT count(*) FROM inline_policies WHERE principal_kind = 'user' AND principal_id = $1",
                "inline policies",
            ),
            (
                "SELECT count(*) FROM attachments WHERE principal_kind = 'user' AND principal_id = $1",
                "attached policies",
            ),
            (
                "SELECT count(*) FROM group_members WHERE user_id = $1",
                "group memberships",
            ),
            (
                "SELECT count(*) FROM mfa_devices WHERE user_id = $1",
                "MFA devices",
            ),
        ];
        for (sql, what) in checks {
            if count(&mut tx.conn, sql, id).await? > 0 {
                return Err(StoreError::DeleteConflict(format!(
                    "Cannot delete entity, must remove {what} first."
                )));
            }
        }
        delete_tags_of(&mut tx.conn, TaggedKind::User, id).await?;
        tx.conn
            .exec("DELETE FROM users WHERE user_id = $1", args![id])
            .await?;
        self.commit(tx).await
    }

    /// Sets a user's permissions boundary (`PutUserPermissionsBoundary`).
    pub async fn put_user_permissions_boundary(
        &self,
        account: &str,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.set_boundary(account, PrincipalKind::User, name, Some(policy_arn))
            .await
    }

    /// Removes a user's permissions boundary (`DeleteUserPermissionsBoundary`).
    pub async fn delete_user_permissions_boundary(&self, account: &str, name: &str) -> Result<()> {
        self.set_boundary(account, PrincipalKind::User, name, None)
            .await
    }

    /// Sets a role's permissions boundary (`PutRolePermissionsBoundary`).
    pub async fn put_role_permissions_boundary(
        &self,
        account: &str,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.set_boundary(account, PrincipalKind::Role, name, Some(policy_arn))
            .await
    }

    /// Removes a role's permissions boundary (`DeleteRolePermissionsBoundary`).
    pub async fn delete_role_permissions_boundary(&self, account: &str, name: &str) -> Result<()> {
        self.set_boundary(account, PrincipalKind::Role, name, None)
            .await
    }

    async fn set_boundary(
        &self,
        account: &str,
        kind: PrincipalKind,
        name: &str,
        arn: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (id, _) = resolve_principal(&mut tx.conn, account, kind, name).await?;
        if let Some(arn) = arn {
            require_policy_arn(&mut tx.conn, account, arn).await?;
        }
        let (table, id_col) = principal_table(kind);
        tx.conn
            .exec(
                &format!("UPDATE {table} SET permissions_boundary = $1 WHERE {id_col} = $2"),
                args![arn, id],
            )
            .await?;
        self.commit(tx).await
    }

    // -----------------------------------------------------------------------------
    // groups

    /// Creates a group (`CreateGroup`).
    pub async fn create_group(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
    ) -> Result<Group> {
        validate_name("group", name, 128)?;
        let path = path.unwrap_or("/");
        validate_path(path)?;
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        require_name_free(&mut tx.conn, account, PrincipalKind::Group, name).await?;
        tx.conn
            .exec(
                "INSERT INTO iam_groups (group_id, account_id, name, name_lower, path, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                args![
                    new_id("AGPA"),
                    account,
                    name,
                    name.to_lowercase(),
                    path,
                    now_ms()
                ],
            )
            .await
            .map_err(|e| map_unique(e, EntityKind::Group, name))?;
        let group = get_group_in(&mut tx.conn, account, name).await?;
        self.commit(tx).await?;
        Ok(group)
    }

    /// A group by name.
    pub async fn get_group(&self, account: &str, name: &str) -> Result<Group> {
        let mut c = self.inner.pool.conn().await?;
        get_group_in(&mut c, account, name).await
    }

    /// Groups of an account (`ListGroups`).
    pub async fn list_groups(&self, account: &str, params: &ListParams) -> Result<Page<Group>> {
        let (prefix, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                &format!(
                    "SELECT {GROUP_COLS} FROM iam_groups WHERE account_id = $1 AND {PAGE_FILTER}"
                ),
                args![account, prefix, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 5, group_from)
    }

    /// Renames and/or moves a group (`UpdateGroup`).
    pub async fn update_group(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<Group> {
        if let Some(n) = new_name {
            validate_name("group", n, 128)?;
        }
        if let Some(p) = new_path {
            validate_path(p)?;
        }
        let mut tx = self.begin_write().await?;
        let group = get_group_in(&mut tx.conn, account, name).await?;
        let target = new_name.unwrap_or(&group.name).to_string();
        if target.to_lowercase() != group.name.to_lowercase() {
            require_name_free(&mut tx.conn, account, PrincipalKind::Group, &target).await?;
        }
        tx.conn
            .exec(
                "UPDATE iam_groups SET name = $1, name_lower = $2, path = $3 WHERE group_id = $4",
                args![
                    target.as_str(),
                    target.to_lowercase(),
                    new_path.unwrap_or(&group.path),
                    group.group_id.as_str()
                ],
            )
            .await
            .map_err(|e| map_unique(e, EntityKind::Group, &target))?;
        let group = get_group_in(&mut tx.conn, account, &target).await?;
        self.commit(tx).await?;
        Ok(group)
    }

    /// Deletes a group (`DeleteGroup`); `DeleteConflict` while it has members, inline
    /// or attached policies.
    pub async fn delete_group(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let group = get_group_in(&mut tx.conn, account, name).await?;
        let id = group.group_id.as_str();
        let checks = [
            (
                "SELECT count(*) FROM group_members WHERE group_id = $1",
                "users",
            ),
            (
                "SELECT count(*) FROM inline_policies WHERE principal_kind = 'group' AND principal_id = $1",
                "inline policies",
            ),
            (
                "SELECT count(*) FROM attachments WHERE principal_kind = 'group' AND principal_id = $1",
                "attached policies",
            ),
        ];
        for (sql, what) in checks {
            if count(&mut tx.conn, sql, id).await? > 0 {
                return Err(StoreError::DeleteConflict(format!(
                    "Cannot delete entity, must remove {what} first."
                )));
            }
        }
        tx.conn
            .exec("DELETE FROM iam_groups WHERE group_id = $1", args![id])
            .await?;
        self.commit(tx).await
    }

    /// Adds a user to a group (`AddUserToGroup`); adding a member again is a no-op.
    pub async fn add_user_to_group(&self, account: &str, group: &str, user: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let g = get_group_in(&mut tx.conn, account, group).await?;
        let u = get_user_in(&mut tx.conn, account, user).await?;
        let already = tx
            .conn
            .opt(
                "SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2",
                args![g.group_id.as_str(), u.user_id.as_str()],
            )
            .await?
            .is_some();
        if already {
            return Ok(());
        }
        let n = count(
            &mut tx.conn,
            "SELECT count(*) FROM group_members WHERE user_id = $1",
            &u.user_id,
        )
        .await?;
        if n >= limits::GROUPS_PER_USER as i64 {
            return Err(StoreError::LimitExceeded(format!(
                "Cannot exceed quota for GroupsPerUser: {}",
                limits::GROUPS_PER_USER
            )));
        }
        tx.conn
            .exec(
                "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)",
                args![g.group_id, u.user_id],
            )
            .await?;
        self.commit(tx).await
    }

    /// Removes a user from a group (`RemoveUserFromGroup`); `NoSuchEntity` when the
    /// group, the user or the membership does not exist.
    pub async fn remove_user_from_group(
        &self,
        account: &str,
        group: &str,
        user: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let g = get_group_in(&mut tx.conn, account, group).await?;
        let u = get_user_in(&mut tx.conn, account, user).await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
                args![g.group_id, u.user_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(
                EntityKind::User,
                format!("{user} in group {group}"),
            ));
        }
        self.commit(tx).await
    }

    /// The groups a user is in (`ListGroupsForUser`).
    pub async fn list_groups_for_user(
        &self,
        account: &str,
        user: &str,
        params: &ListParams,
    ) -> Result<Page<Group>> {
        let (_, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let u = get_user_in(&mut c, account, user).await?;
        let rows = c
            .all(
                "SELECT g.account_id, g.group_id, g.name, g.path, g.created_ms, g.name_lower \
                 FROM group_members m JOIN iam_groups g ON g.group_id = m.group_id \
                 WHERE m.user_id = $1 AND g.name_lower > $2 ORDER BY g.name_lower LIMIT $3",
                args![u.user_id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 5, group_from)
    }

    /// The members of a group (`GetGroup`'s user list).
    pub async fn list_group_members(
        &self,
        account: &str,
        group: &str,
        params: &ListParams,
    ) -> Result<Page<User>> {
        let (_, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let g = get_group_in(&mut c, account, group).await?;
        let rows = c
            .all(
                "SELECT u.account_id, u.user_id, u.name, u.path, u.permissions_boundary, \
                 u.created_ms, u.name_lower \
                 FROM group_members m JOIN users u ON u.user_id = m.user_id \
                 WHERE m.group_id = $1 AND u.name_lower > $2 ORDER BY u.name_lower LIMIT $3",
                args![g.group_id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 6, user_from)
    }

    // -----------------------------------------------------------------------------
    // roles

    /// Creates a role (`CreateRole`).
    pub async fn create_role(&self, account: &str, input: &NewRole) -> Result<Role> {
        validate_name("role", &input.name, 64)?;
        let path = input.path.clone().unwrap_or_else(|| "/".to_string());
        validate_path(&path)?;
        validate_document(
            "AssumeRolePolicy",
            &input.trust_policy,
            limits::TRUST_POLICY_SIZE,
        )?;
        if let Some(d) = &input.description {
            validate_description(d)?;
        }
        let max_session = input.max_session_duration.unwrap_or(3600);
        validate_max_session(max_session)?;
        crate::credentials::validate_tags(&input.tags)?;
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        require_name_free(&mut tx.conn, account, PrincipalKind::Role, &input.name).await?;
        if let Some(arn) = &input.permissions_boundary {
            require_policy_arn(&mut tx.conn, account, arn).await?;
        }
        let id = new_id("AROA");
        tx.conn
            .exec(
                "INSERT INTO roles (role_id, account_id, name, name_lower, path, trust_policy, \
                 description, max_session_duration, permissions_boundary, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                args![
                    id.as_str(),
                    account,
                    input.name.as_str(),
                    input.name.to_lowercase(),
                    path,
                    input.trust_policy.as_str(),
                    input.description.clone(),
                    max_session,
                    input.permissions_boundary.clone(),
                    now_ms()
                ],
            )
            .await
            .map_err(|e| map_unique(e, EntityKind::Role, &input.name))?;
        crate::credentials::put_tags(&mut tx.conn, TaggedKind::Role, &id, &input.tags).await?;
        let role = get_role_in(&mut tx.conn, account, &input.name).await?;
        self.commit(tx).await?;
        Ok(role)
    }

    /// A role by name.
    pub async fn get_role(&self, account: &str, name: &str) -> Result<Role> {
        let mut c = self.inner.pool.conn().await?;
        get_role_in(&mut c, account, name).await
    }

    /// A role by its `AROA...` id, in any account.
    pub async fn get_role_by_id(&self, role_id: &str) -> Result<Role> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                &format!("SELECT {ROLE_COLS} FROM roles WHERE role_id = $1"),
                args![role_id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::Role, role_id))?;
        role_from(&row)
    }

    /// Roles of an account (`ListRoles`).
    pub async fn list_roles(&self, account: &str, params: &ListParams) -> Result<Page<Role>> {
        let (prefix, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                &format!("SELECT {ROLE_COLS} FROM roles WHERE account_id = $1 AND {PAGE_FILTER}"),
                args![account, prefix, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, 9, role_from)
    }

    /// Changes a role's description and/or maximum session duration (`UpdateRole`).
    pub async fn update_role(
        &self,
        account: &str,
        name: &str,
        update: &RoleUpdate,
    ) -> Result<Role> {
        if let Some(d) = &update.description {
            validate_description(d)?;
        }
        if let Some(s) = update.max_session_duration {
            validate_max_session(s)?;
        }
        let mut tx = self.begin_write().await?;
        let role = get_role_in(&mut tx.conn, account, name).await?;
        let description = match &update.description {
            Some(d) if d.is_empty() => None,
            Some(d) => Some(d.clone()),
            None => role.description.clone(),
        };
        tx.conn
            .exec(
                "UPDATE roles SET description = $1, max_session_duration = $2 WHERE role_id = $3",
                args![
                    description,
                    update
                        .max_session_duration
                        .unwrap_or(role.max_session_duration),
                    role.role_id.as_str()
                ],
            )
            .await?;
        let role = get_role_in(&mut tx.conn, account, name).await?;
        self.commit(tx).await?;
        Ok(role)
    }

    /// Replaces a role's trust policy (`UpdateAssumeRolePolicy`).
    pub async fn update_assume_role_policy(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<Role> {
        validate_document("AssumeRolePolicy", document, limits::TRUST_POLICY_SIZE)?;
        let mut tx = self.begin_write().await?;
        let role = get_role_in(&mut tx.conn, account, name).await?;
        tx.conn
            .exec(
                "UPDATE roles SET trust_policy = $1 WHERE role_id = $2",
                args![document, role.role_id.as_str()],
            )
            .await?;
        let role = get_role_in(&mut tx.conn, account, name).await?;
        self.commit(tx).await?;
        Ok(role)
    }

    /// Deletes a role (`DeleteRole`); `DeleteConflict` while it has inline or attached
    /// policies.
    pub async fn delete_role(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let role = get_role_in(&mut tx.conn, account, name).await?;
        let id = role.role_id.as_str();
        let checks = [
            (
                "SELECT count(*) FROM inline_policies WHERE principal_kind = 'role' AND principal_id = $1",
                "inline policies",
            ),
            (
                "SELECT count(*) FROM attachments WHERE principal_kind = 'role' AND principal_id = $1",
                "attached policies",
            ),
        ];
        for (sql, what) in checks {
            if count(&mut tx.conn, sql, id).await? > 0 {
                return Err(StoreError::DeleteConflict(format!(
                    "Cannot delete entity, must remove {what} first."
                )));
            }
        }
        delete_tags_of(&mut tx.conn, TaggedKind::Role, id).await?;
        tx.conn
            .exec("DELETE FROM roles WHERE role_id = $1", args![id])
            .await?;
        self.commit(tx).await
    }
}

/// Maps a unique violation (a race the pre-checks missed) to `EntityAlreadyExists`.
pub(crate) fn map_unique(e: StoreError, kind: EntityKind, name: &str) -> StoreError {
    if crate::db::is_unique_violation(&e) {
        StoreError::exists(kind, name)
    } else {
        e
    }
}
