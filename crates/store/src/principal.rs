//! What users, groups and roles have in common, written once over the principal kind:
//! the table each lives in, reading one by name or id, listing, renaming, and deleting
//! under AWS's `DeleteConflict` rules. `identity.rs` keeps what differs (each kind's
//! creation, group membership, a role's trust policy and settings).

use crate::db::{Conn, Row, args, map_unique};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{
    Group, ListParams, Page, PrincipalKind, Role, TaggedKind, User, ts, validate_name,
    validate_path,
};
use crate::paging::{PAGE_FILTER, list_args, paginate};
use crate::store::Store;

/// A principal kind's row: where it is stored and how a row reads back.
pub(crate) trait PrincipalRow: Sized {
    /// Which kind this is.
    const KIND: PrincipalKind;
    /// The columns [`PrincipalRow::from_row`] reads, ending with `name_lower`.
    const COLS: &'static str;
    /// Position of `name_lower` in [`PrincipalRow::COLS`] (the paging key).
    const KEY_COL: usize;
    /// AWS's longest name for this kind.
    const MAX_NAME: usize;
    /// Reads a row selected with [`PrincipalRow::COLS`].
    fn from_row(r: &Row) -> Result<Self>;
    /// The `AIDA...`/`AGPA...`/`AROA...` id.
    fn id(&self) -> &str;
    /// The name as created.
    fn name(&self) -> &str;
    /// The path.
    fn path(&self) -> &str;
}

impl PrincipalRow for User {
    const KIND: PrincipalKind = PrincipalKind::User;
    const COLS: &'static str =
        "account_id, user_id, name, path, permissions_boundary, created_ms, name_lower";
    const KEY_COL: usize = 6;
    const MAX_NAME: usize = 64;
    fn from_row(r: &Row) -> Result<User> {
        Ok(User {
            account_id: r.text(0)?,
            user_id: r.text(1)?,
            name: r.text(2)?,
            path: r.text(3)?,
            permissions_boundary: r.opt_text(4)?,
            created: ts(r.i64(5)?),
        })
    }
    fn id(&self) -> &str {
        &self.user_id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn path(&self) -> &str {
        &self.path
    }
}

impl PrincipalRow for Group {
    const KIND: PrincipalKind = PrincipalKind::Group;
    const COLS: &'static str = "account_id, group_id, name, path, created_ms, name_lower";
    const KEY_COL: usize = 5;
    const MAX_NAME: usize = 128;
    fn from_row(r: &Row) -> Result<Group> {
        Ok(Group {
            account_id: r.text(0)?,
            group_id: r.text(1)?,
            name: r.text(2)?,
            path: r.text(3)?,
            created: ts(r.i64(4)?),
        })
    }
    fn id(&self) -> &str {
        &self.group_id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn path(&self) -> &str {
        &self.path
    }
}

impl PrincipalRow for Role {
    const KIND: PrincipalKind = PrincipalKind::Role;
    const COLS: &'static str = "account_id, role_id, name, path, trust_policy, description, \
         max_session_duration, permissions_boundary, created_ms, name_lower";
    const KEY_COL: usize = 9;
    const MAX_NAME: usize = 64;
    fn from_row(r: &Row) -> Result<Role> {
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
    fn id(&self) -> &str {
        &self.role_id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn path(&self) -> &str {
        &self.path
    }
}

/// Table and id column of a principal kind.
pub(crate) fn principal_table(kind: PrincipalKind) -> (&'static str, &'static str) {
    match kind {
        PrincipalKind::User => ("users", "user_id"),
        PrincipalKind::Group => ("iam_groups", "group_id"),
        PrincipalKind::Role => ("roles", "role_id"),
    }
}

/// What must be gone before a principal of `kind` may be deleted (AWS's `DeleteConflict`
/// rules, in the order AWS reports them): a count query over the principal's id, and the
/// words of the message.
fn delete_blockers(kind: PrincipalKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        PrincipalKind::User => &[
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
        ],
        PrincipalKind::Group => &[
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
        ],
        PrincipalKind::Role => &[
            (
                "SELECT count(*) FROM inline_policies WHERE principal_kind = 'role' AND principal_id = $1",
                "inline policies",
            ),
            (
                "SELECT count(*) FROM attachments WHERE principal_kind = 'role' AND principal_id = $1",
                "attached policies",
            ),
        ],
    }
}

/// The tags' kind of a principal kind; groups carry no tags.
fn tagged_kind(kind: PrincipalKind) -> Option<TaggedKind> {
    match kind {
        PrincipalKind::User => Some(TaggedKind::User),
        PrincipalKind::Role => Some(TaggedKind::Role),
        PrincipalKind::Group => None,
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

/// `EntityAlreadyExists` when the account has a principal of `kind` named `name` in any
/// case.
pub(crate) async fn require_name_free(
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

/// A principal by name (case-insensitive, as AWS).
pub(crate) async fn get_in<T: PrincipalRow>(c: &mut Conn, account: &str, name: &str) -> Result<T> {
    let (table, _) = principal_table(T::KIND);
    let row = c
        .opt(
            &format!(
                "SELECT {} FROM {table} WHERE account_id = $1 AND name_lower = $2",
                T::COLS
            ),
            args![account, name.to_lowercase()],
        )
        .await?
        .ok_or_else(|| StoreError::no_such(T::KIND.entity(), name))?;
    T::from_row(&row)
}

impl Store {
    /// A principal by name.
    pub(crate) async fn get_principal<T: PrincipalRow>(
        &self,
        account: &str,
        name: &str,
    ) -> Result<T> {
        let mut c = self.inner.pool.conn().await?;
        get_in(&mut c, account, name).await
    }

    /// A principal by its id, in any account.
    pub(crate) async fn get_principal_by_id<T: PrincipalRow>(&self, id: &str) -> Result<T> {
        let (table, id_col) = principal_table(T::KIND);
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                &format!("SELECT {} FROM {table} WHERE {id_col} = $1", T::COLS),
                args![id],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(T::KIND.entity(), id))?;
        T::from_row(&row)
    }

    /// Principals of an account by name (`ListUsers`, `ListGroups`, `ListRoles`).
    pub(crate) async fn list_principals<T: PrincipalRow>(
        &self,
        account: &str,
        params: &ListParams,
    ) -> Result<Page<T>> {
        let (table, _) = principal_table(T::KIND);
        let (prefix, marker, limit) = list_args(params)?;
        let mut c = self.inner.pool.conn().await?;
        let rows = c
            .all(
                &format!(
                    "SELECT {} FROM {table} WHERE account_id = $1 AND {PAGE_FILTER}",
                    T::COLS
                ),
                args![account, prefix, marker, limit + 1],
            )
            .await?;
        paginate(rows, limit, T::KEY_COL, T::from_row)
    }

    /// Renames and/or moves a user or group (`UpdateUser`, `UpdateGroup`).
    pub(crate) async fn rename_principal<T: PrincipalRow>(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<T> {
        if let Some(n) = new_name {
            validate_name(T::KIND.as_str(), n, T::MAX_NAME)?;
        }
        if let Some(p) = new_path {
            validate_path(p)?;
        }
        let (table, id_col) = principal_table(T::KIND);
        let mut tx = self.begin_write().await?;
        let current: T = get_in(&mut tx.conn, account, name).await?;
        let target = new_name.unwrap_or(current.name()).to_string();
        if target.to_lowercase() != current.name().to_lowercase() {
            require_name_free(&mut tx.conn, account, T::KIND, &target).await?;
        }
        tx.conn
            .exec(
                &format!(
                    "UPDATE {table} SET name = $1, name_lower = $2, path = $3 WHERE {id_col} = $4"
                ),
                args![
                    target.as_str(),
                    target.to_lowercase(),
                    new_path.unwrap_or(current.path()),
                    current.id()
                ],
            )
            .await
            .map_err(|e| map_unique(e, T::KIND.entity(), &target))?;
        let updated = get_in(&mut tx.conn, account, &target).await?;
        self.commit(tx).await?;
        Ok(updated)
    }

    /// Deletes a principal (`DeleteUser`, `DeleteGroup`, `DeleteRole`): `DeleteConflict`
    /// while anything AWS requires removed first remains; its tags go with it.
    pub(crate) async fn delete_principal<T: PrincipalRow>(
        &self,
        account: &str,
        name: &str,
    ) -> Result<()> {
        let (table, id_col) = principal_table(T::KIND);
        let mut tx = self.begin_write().await?;
        let principal: T = get_in(&mut tx.conn, account, name).await?;
        let id = principal.id();
        for (sql, what) in delete_blockers(T::KIND) {
            if tx.conn.scalar_i64(sql, args![id]).await? > 0 {
                return Err(StoreError::DeleteConflict(format!(
                    "Cannot delete entity, must remove {what} first."
                )));
            }
        }
        if let Some(tagged) = tagged_kind(T::KIND) {
            tx.conn
                .exec(
                    "DELETE FROM tags WHERE resource_kind = $1 AND resource_id = $2",
                    args![tagged.as_str(), id],
                )
                .await?;
        }
        tx.conn
            .exec(
                &format!("DELETE FROM {table} WHERE {id_col} = $1"),
                args![id],
            )
            .await?;
        self.commit(tx).await
    }
}
