//! The IAM Query API: one function per action, each authorizing itself with the engine
//! (`iam:` action on the Gatehouse ARN of its resource) before it touches the store.
//!
//! Handlers return the inside of `<ActionResult>` (or `None` for actions without one);
//! [`dispatch`] wraps it in AWS's envelope.

pub(crate) mod conditions;
pub(crate) mod entity;
pub(crate) mod keys;
mod policies;
mod principals;
pub(crate) mod render;
mod simulate;

use crate::CallContext;
use crate::error::ApiError;
use crate::query::Params;
use gatehouse_policy::{Catalog, Diagnostic};
use gatehouse_store::{ListParams, PARTITION};

/// Every action this API answers.
const ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "UpdateUser",
    "DeleteUser",
    "CreateGroup",
    "GetGroup",
    "ListGroups",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachUserPolicy",
    "AttachGroupPolicy",
    "AttachRolePolicy",
    "DetachUserPolicy",
    "DetachGroupPolicy",
    "DetachRolePolicy",
    "ListAttachedUserPolicies",
    "ListAttachedGroupPolicies",
    "ListAttachedRolePolicies",
    "PutUserPolicy",
    "PutGroupPolicy",
    "PutRolePolicy",
    "GetUserPolicy",
    "GetGroupPolicy",
    "GetRolePolicy",
    "DeleteUserPolicy",
    "DeleteGroupPolicy",
    "DeleteRolePolicy",
    "ListUserPolicies",
    "ListGroupPolicies",
    "ListRolePolicies",
    "PutUserPermissionsBoundary",
    "PutRolePermissionsBoundary",
    "DeleteUserPermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "TagPolicy",
    "UntagPolicy",
    "ListPolicyTags",
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
    "GetAccountAuthorizationDetails",
];

/// True for an IAM action this API answers.
pub(crate) fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// Every IAM action the control plane answers (this module's and the MFA/OIDC ones).
#[cfg(test)]
pub(crate) fn answered_actions() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().chain(crate::federation::ACTIONS).copied()
}

/// True for actions that change what is stored.
pub(crate) fn is_write(action: &str) -> bool {
    !(action.starts_with("Get") || action.starts_with("List") || action.starts_with("Simulate"))
}

/// Runs an IAM action and wraps its result in AWS's envelope.
pub(crate) async fn dispatch(
    ctx: &CallContext<'_>,
    action: &str,
    p: &Params,
) -> Result<String, ApiError> {
    use principals as u;
    let result = match action {
        "CreateUser" => u::create_user(ctx, p).await?,
        "GetUser" => u::get_user(ctx, p).await?,
        "ListUsers" => u::list_users(ctx, p).await?,
        "UpdateUser" => u::update_user(ctx, p).await?,
        "DeleteUser" => u::delete_user(ctx, p).await?,
        "CreateGroup" => u::create_group(ctx, p).await?,
        "GetGroup" => u::get_group(ctx, p).await?,
        "ListGroups" => u::list_groups(ctx, p).await?,
        "DeleteGroup" => u::delete_group(ctx, p).await?,
        "AddUserToGroup" => u::add_user_to_group(ctx, p, true).await?,
        "RemoveUserFromGroup" => u::add_user_to_group(ctx, p, false).await?,
        "ListGroupsForUser" => u::list_groups_for_user(ctx, p).await?,
        "CreateRole" => u::create_role(ctx, p).await?,
        "GetRole" => u::get_role(ctx, p).await?,
        "ListRoles" => u::list_roles(ctx, p).await?,
        "DeleteRole" => u::delete_role(ctx, p).await?,
        "UpdateAssumeRolePolicy" => u::update_assume_role_policy(ctx, p).await?,
        "UpdateRole" => u::update_role(ctx, p).await?,
        "CreatePolicy" => policies::create_policy(ctx, p).await?,
        "GetPolicy" => policies::get_policy(ctx, p).await?,
        "ListPolicies" => policies::list_policies(ctx, p).await?,
        "DeletePolicy" => policies::delete_policy(ctx, p).await?,
        "CreatePolicyVersion" => policies::create_policy_version(ctx, p).await?,
        "GetPolicyVersion" => policies::get_policy_version(ctx, p).await?,
        "ListPolicyVersions" => policies::list_policy_versions(ctx, p).await?,
        "DeletePolicyVersion" => policies::delete_policy_version(ctx, p).await?,
        "SetDefaultPolicyVersion" => policies::set_default_policy_version(ctx, p).await?,
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" => {
            policies::attach(ctx, p, Target::of(action), true).await?
        }
        "DetachUserPolicy" | "DetachGroupPolicy" | "DetachRolePolicy" => {
            policies::attach(ctx, p, Target::of(action), false).await?
        }
        "ListAttachedUserPolicies" | "ListAttachedGroupPolicies" | "ListAttachedRolePolicies" => {
            policies::list_attached(ctx, p, Target::of(action)).await?
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            policies::put_inline(ctx, p, Target::of(action)).await?
        }
        "GetUserPolicy" | "GetGroupPolicy" | "GetRolePolicy" => {
            policies::get_inline(ctx, p, Target::of(action)).await?
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => {
            policies::delete_inline(ctx, p, Target::of(action)).await?
        }
        "ListUserPolicies" | "ListGroupPolicies" | "ListRolePolicies" => {
            policies::list_inline(ctx, p, Target::of(action)).await?
        }
        "PutUserPermissionsBoundary" | "PutRolePermissionsBoundary" => {
            policies::boundary(ctx, p, Target::of(action), true).await?
        }
        "DeleteUserPermissionsBoundary" | "DeleteRolePermissionsBoundary" => {
            policies::boundary(ctx, p, Target::of(action), false).await?
        }
        "CreateAccessKey" => keys::create_access_key(ctx, p).await?,
        "ListAccessKeys" => keys::list_access_keys(ctx, p).await?,
        "UpdateAccessKey" => keys::update_access_key(ctx, p).await?,
        "DeleteAccessKey" => keys::delete_access_key(ctx, p).await?,
        "GetAccessKeyLastUsed" => keys::get_access_key_last_used(ctx, p).await?,
        "TagUser" | "TagRole" | "TagPolicy" => keys::tag(ctx, p, action, true).await?,
        "UntagUser" | "UntagRole" | "UntagPolicy" => keys::tag(ctx, p, action, false).await?,
        "ListUserTags" | "ListRoleTags" | "ListPolicyTags" => {
            keys::list_tags(ctx, p, action).await?
        }
        "SimulatePrincipalPolicy" => simulate::simulate_principal_policy(ctx, p).await?,
        "SimulateCustomPolicy" => simulate::simulate_custom_policy(ctx, p).await?,
        "GetAccountAuthorizationDetails" => simulate::account_authorization_details(ctx, p).await?,
        other => return Err(ApiError::invalid_action(other)),
    };
    Ok(crate::xml::response(
        action,
        crate::xml::IAM_NS,
        ctx.request_id,
        result.as_deref(),
    ))
}

/// The kind of principal an action addresses (`...UserPolicy`, `...GroupPolicy`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    User,
    Group,
    Role,
}

impl Target {
    fn of(action: &str) -> Target {
        if action.contains("Group") {
            Target::Group
        } else if action.contains("Role") {
            Target::Role
        } else {
            Target::User
        }
    }

    pub(crate) fn name_param(self) -> &'static str {
        match self {
            Target::User => "UserName",
            Target::Group => "GroupName",
            Target::Role => "RoleName",
        }
    }

    pub(crate) fn kind(self) -> gatehouse_store::PrincipalKind {
        match self {
            Target::User => gatehouse_store::PrincipalKind::User,
            Target::Group => gatehouse_store::PrincipalKind::Group,
            Target::Role => gatehouse_store::PrincipalKind::Role,
        }
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            Target::User => "user",
            Target::Group => "group",
            Target::Role => "role",
        }
    }
}

/// The ARN of a customer-managed policy by name.
pub(crate) fn policy_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:{PARTITION}:iam::{account}:policy{path}{name}")
}

/// What a policy document is for: AWS holds each kind to its own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocKind {
    /// Managed, inline, boundary and simulated identity policies: no `Principal`.
    Identity,
    /// A role's trust policy: a `Principal` in every statement, no `Resource`.
    Trust,
    /// A resource-based policy: a `Principal` in every statement.
    Resource,
}

/// Checks a policy document with the engine (every error goes into the message), then
/// the rules of its kind, in AWS's words.
pub(crate) fn check_policy(document: &str, what: &str, kind: DocKind) -> Result<(), ApiError> {
    let malformed = |m: &str| Err(ApiError::malformed_policy(format!("{what}: {m}")));
    // The engine also reads `get-policy-version` output; the API takes documents only.
    let top: Option<serde_json::Value> = serde_json::from_str(document).ok();
    if top
        .as_ref()
        .is_some_and(|v| v.get("PolicyVersion").is_some())
    {
        return malformed("Syntax errors in policy.");
    }
    let parsed = gatehouse_policy::validate(document, Catalog::builtin());
    let errors: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(Diagnostic::to_string)
        .collect();
    let Some(doc) = parsed.document.filter(|_| errors.is_empty()) else {
        return malformed(&errors.join("; "));
    };
    for st in &doc.statements {
        // Decisions cite the statement id (audit records, simulate output, the CLI).
        if st
            .sid
            .as_deref()
            .is_some_and(|sid| sid.chars().any(char::is_control))
        {
            return malformed("Statement ids must not contain control characters.");
        }
        match kind {
            DocKind::Identity if st.principal.is_some() => {
                return malformed("Policy document should not specify a principal.");
            }
            DocKind::Trust | DocKind::Resource if st.principal.is_none() => {
                return malformed("Missing required field Principal.");
            }
            DocKind::Trust if st.resource.is_some() => {
                return malformed("Has prohibited field Resource.");
            }
            _ => {}
        }
    }
    Ok(())
}

/// `Marker`/`MaxItems` and an optional `PathPrefix` as store list parameters.
pub(crate) fn list_params(p: &Params) -> Result<ListParams, ApiError> {
    let (marker, max_items) = p.paging()?;
    Ok(ListParams {
        path_prefix: p.get("PathPrefix").map(str::to_owned),
        marker,
        max_items,
    })
}

/// Checks a user, group, role or policy name as IAM does.
pub(crate) fn check_name(name: &str, what: &str, max: usize) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "The specified value for {what} is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_- (1 to {max} characters)."
        )))
    }
}
