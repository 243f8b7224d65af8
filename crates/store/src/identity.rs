//! Users, groups, group memberships and roles: what differs between the kinds (creating
//! each, group membership, a role's trust policy and settings) and the public `Store`
//! calls, which reach the operations written once over the principal kind in
//! `principal.rs`.

use crate::db::{args, map_unique};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{
    Group, ListParams, NewRole, NewUser, Page, PrincipalKind, Role, RoleUpdate, TaggedKind, User,
    limits, new_id, now_ms, validate_description, validate_document, validate_max_session,
    validate_name, validate_path,
};
use crate::paging::{list_args, paginate};
use crate::principal::{
    PrincipalRow, get_in, principal_table, require_name_free, require_policy_arn, resolve_principal,
};
use crate::store::{Store, require_account};

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
        let user = get_in::<User>(&mut tx.conn, account, &input.name).await?;
        self.commit(tx).await?;
        Ok(user)
    }

    /// A user by name (case-insensitive, as AWS).
    pub async fn get_user(&self, account: &str, name: &str) -> Result<User> {
        self.get_principal(account, name).await
    }

    /// A user by its `AIDA...` id, in any account.
    pub async fn get_user_by_id(&self, user_id: &str) -> Result<User> {
        self.get_principal_by_id(user_id).await
    }

    /// Users of an account by name (`ListUsers`).
    pub async fn list_users(&self, account: &str, params: &ListParams) -> Result<Page<User>> {
        self.list_principals(account, params).await
    }

    /// Renames and/or moves a user (`UpdateUser`).
    pub async fn update_user(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<User> {
        self.rename_principal(account, name, new_name, new_path)
            .await
    }

    /// Deletes a user (`DeleteUser`). Like AWS, fails with `DeleteConflict` while the
    /// user has access keys, inline or attached policies, or group memberships.
    pub async fn delete_user(&self, account: &str, name: &str) -> Result<()> {
        self.delete_principal::<User>(account, name).await
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
        let group = get_in::<Group>(&mut tx.conn, account, name).await?;
        self.commit(tx).await?;
        Ok(group)
    }

    /// A group by name.
    pub async fn get_group(&self, account: &str, name: &str) -> Result<Group> {
        self.get_principal(account, name).await
    }

    /// Groups of an account (`ListGroups`).
    pub async fn list_groups(&self, account: &str, params: &ListParams) -> Result<Page<Group>> {
        self.list_principals(account, params).await
    }

    /// Renames and/or moves a group (`UpdateGroup`).
    pub async fn update_group(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<Group> {
        self.rename_principal(account, name, new_name, new_path)
            .await
    }

    /// Deletes a group (`DeleteGroup`); `DeleteConflict` while it has members, inline
    /// or attached policies.
    pub async fn delete_group(&self, account: &str, name: &str) -> Result<()> {
        self.delete_principal::<Group>(account, name).await
    }

    /// Adds a user to a group (`AddUserToGroup`); adding a member again is a no-op.
    pub async fn add_user_to_group(&self, account: &str, group: &str, user: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let g = get_in::<Group>(&mut tx.conn, account, group).await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
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
        let n = tx
            .conn
            .scalar_i64(
                "SELECT count(*) FROM group_members WHERE user_id = $1",
                args![u.user_id.as_str()],
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
        let g = get_in::<Group>(&mut tx.conn, account, group).await?;
        let u = get_in::<User>(&mut tx.conn, account, user).await?;
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
        let u = get_in::<User>(&mut c, account, user).await?;
        let rows = c
            .all(
                "SELECT g.account_id, g.group_id, g.name, g.path, g.created_ms, g.name_lower \
                 FROM group_members m JOIN iam_groups g ON g.group_id = m.group_id \
                 WHERE m.user_id = $1 AND g.name_lower > $2 ORDER BY g.name_lower LIMIT $3",
                args![u.user_id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, Group::KEY_COL, Group::from_row)
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
        let g = get_in::<Group>(&mut c, account, group).await?;
        let rows = c
            .all(
                "SELECT u.account_id, u.user_id, u.name, u.path, u.permissions_boundary, \
                 u.created_ms, u.name_lower \
                 FROM group_members m JOIN users u ON u.user_id = m.user_id \
                 WHERE m.group_id = $1 AND u.name_lower > $2 ORDER BY u.name_lower LIMIT $3",
                args![g.group_id, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, User::KEY_COL, User::from_row)
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
        let role = get_in::<Role>(&mut tx.conn, account, &input.name).await?;
        self.commit(tx).await?;
        Ok(role)
    }

    /// A role by name.
    pub async fn get_role(&self, account: &str, name: &str) -> Result<Role> {
        self.get_principal(account, name).await
    }

    /// A role by its `AROA...` id, in any account.
    pub async fn get_role_by_id(&self, role_id: &str) -> Result<Role> {
        self.get_principal_by_id(role_id).await
    }

    /// Roles of an account (`ListRoles`).
    pub async fn list_roles(&self, account: &str, params: &ListParams) -> Result<Page<Role>> {
        self.list_principals(account, params).await
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
        let role = get_in::<Role>(&mut tx.conn, account, name).await?;
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
        let role = get_in::<Role>(&mut tx.conn, account, name).await?;
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
        let role = get_in::<Role>(&mut tx.conn, account, name).await?;
        tx.conn
            .exec(
                "UPDATE roles SET trust_policy = $1 WHERE role_id = $2",
                args![document, role.role_id.as_str()],
            )
            .await?;
        let role = get_in::<Role>(&mut tx.conn, account, name).await?;
        self.commit(tx).await?;
        Ok(role)
    }

    /// Deletes a role (`DeleteRole`); `DeleteConflict` while it has inline or attached
    /// policies.
    pub async fn delete_role(&self, account: &str, name: &str) -> Result<()> {
        self.delete_principal::<Role>(account, name).await
    }
}
