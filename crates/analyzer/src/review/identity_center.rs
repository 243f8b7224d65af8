//! IAM Identity Center, for the review by person: the people behind the roles it creates in
//! each account (`AWSReservedSSO_{PERMISSION SET}_{SUFFIX}`). Its assignments say which
//! users and groups of its identity store hold which permission set in which account; the
//! identity store says who those users are (their email) and who is in each group. Read
//! from what the AWS CLI prints (README.md, "Review by person"), so that people are found
//! without a groups file naming them.

use super::people::{Directory, DirectoryError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the Identity Center files of a run say, gathered before it is resolved.
#[derive(Debug, Default, Clone)]
pub struct IdentityCenter {
    /// Permission set ARN → its name.
    permission_sets: BTreeMap<String, String>,
    assignments: Vec<Assignment>,
    /// User id → email (lower-cased).
    users: BTreeMap<String, String>,
    /// Group id → display name.
    groups: BTreeMap<String, String>,
    /// (group id, user id).
    memberships: Vec<(String, String)>,
}

/// `aws sso-admin list-account-assignments`: one element of `AccountAssignments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Assignment {
    account_id: String,
    permission_set_arn: String,
    principal_type: String,
    principal_id: String,
}

/// `aws sso-admin describe-permission-set`: its `PermissionSet`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PermissionSet {
    name: String,
    permission_set_arn: String,
}

/// `aws identitystore list-users`: one element of `Users`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct User {
    user_id: String,
    user_name: String,
    #[serde(default)]
    emails: Vec<Email>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Email {
    value: String,
    #[serde(default)]
    primary: bool,
}

/// `aws identitystore list-groups`: one element of `Groups`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Group {
    group_id: String,
    display_name: String,
}

/// `aws identitystore list-group-memberships`: one element of `GroupMemberships`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Membership {
    group_id: String,
    member_id: MemberId,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MemberId {
    user_id: String,
}

/// The elements of the list under `key`, each parsed, or the file and JSON path of the
/// first that is not what the AWS CLI prints.
fn list<T: DeserializeOwned>(file: &str, v: &Value, key: &str) -> Result<Vec<T>, DirectoryError> {
    let refuse = |path: String, message: String| DirectoryError {
        file: file.to_owned(),
        message: format!("{path}: {message}"),
    };
    let items = v
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| refuse(format!("$.{key}"), "expected a list".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            T::deserialize(item).map_err(|e| refuse(format!("$.{key}[{i}]"), e.to_string()))
        })
        .collect()
}

impl IdentityCenter {
    /// Reads one file if it is the output of one of the Identity Center commands (told by
    /// its top-level key); `Ok(false)` when it is not, an error naming the file and JSON
    /// path when it is one but not as the AWS CLI prints it.
    pub fn read(&mut self, file: &str, bytes: &[u8]) -> Result<bool, DirectoryError> {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return Ok(false);
        };
        let Some(obj) = v.as_object() else {
            return Ok(false);
        };
        if obj.contains_key("AccountAssignments") {
            self.assignments
                .extend(list::<Assignment>(file, &v, "AccountAssignments")?);
        } else if obj.contains_key("PermissionSet") {
            let p =
                PermissionSet::deserialize(&v["PermissionSet"]).map_err(|e| DirectoryError {
                    file: file.to_owned(),
                    message: format!("$.PermissionSet: {e}"),
                })?;
            self.permission_sets.insert(p.permission_set_arn, p.name);
        } else if obj.contains_key("GroupMemberships") {
            for m in list::<Membership>(file, &v, "GroupMemberships")? {
                self.memberships.push((m.group_id, m.member_id.user_id));
            }
        } else if obj.contains_key("Users") {
            for u in list::<User>(file, &v, "Users")? {
                self.users
                    .insert(u.user_id, email_of(u.user_name, u.emails));
            }
        } else if obj.contains_key("Groups") {
            for g in list::<Group>(file, &v, "Groups")? {
                self.groups.insert(g.group_id, g.display_name);
            }
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether any file was read.
    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty()
            && self.permission_sets.is_empty()
            && self.users.is_empty()
            && self.groups.is_empty()
            && self.memberships.is_empty()
    }

    /// Adds what was read to the directory: each group's members (as `group:NAME`, by its
    /// display name), and the people and groups behind each account's permission set. A
    /// user or group the identity store files do not list stands for nobody (the grant is
    /// then unmatched); what the user's groups file says is kept beside it.
    pub fn add_to(&self, dir: &mut Directory) {
        let group_key = |id: &str| match self.groups.get(id) {
            Some(name) => name.to_ascii_lowercase(),
            None => id.to_ascii_lowercase(),
        };
        for (group, user) in &self.memberships {
            if let Some(email) = self.users.get(user) {
                dir.groups
                    .entry(group_key(group))
                    .or_default()
                    .push(format!("user:{email}"));
            }
        }
        for a in &self.assignments {
            let Some(set) = self.permission_sets.get(&a.permission_set_arn) else {
                continue;
            };
            let member = if a.principal_type.eq_ignore_ascii_case("GROUP") {
                Some(format!("group:{}", group_key(&a.principal_id)))
            } else {
                self.users.get(&a.principal_id).map(|e| format!("user:{e}"))
            };
            let holders = dir
                .permission_sets
                .entry((a.account_id.clone(), set.to_ascii_lowercase()))
                .or_default();
            holders.extend(member);
        }
    }
}

/// A user's email: the primary one, else the first, else the user name (Identity Center
/// user names are often the email).
fn email_of(user_name: String, emails: Vec<Email>) -> String {
    let primary = emails.iter().position(|e| e.primary).unwrap_or(0);
    emails
        .into_iter()
        .nth(primary)
        .map_or(user_name, |e| e.value)
        .to_ascii_lowercase()
}

/// The account and permission set (lower-cased) of a role Identity Center created:
/// `arn:aws:iam::ACCOUNT:role/aws-reserved/sso.amazonaws.com[/REGION]/AWSReservedSSO_SET_SUFFIX`.
pub(crate) fn permission_set_role(arn: &str) -> Option<(String, String)> {
    let account = arn.split(':').nth(4)?;
    let (_, path) = arn.split_once(":role/")?;
    let name = path.rsplit('/').next()?;
    let (set, _suffix) = name.strip_prefix("AWSReservedSSO_")?.rsplit_once('_')?;
    Some((account.to_owned(), set.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn permission_set_roles_are_told_by_name_and_path() {
        assert_eq!(
            permission_set_role(
                "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Model_Invokers_0a1b2c3d4e5f6a7b"
            ),
            Some(("111122223333".into(), "model_invokers".into()))
        );
        assert_eq!(
            permission_set_role("arn:aws:iam::111122223333:role/AWSReservedSSOInvoke"),
            None
        );
        assert_eq!(
            permission_set_role("arn:aws:iam::111122223333:user/AWSReservedSSO_A_b"),
            None
        );
    }

    #[test]
    fn a_file_of_another_shape_is_not_read_and_a_bad_one_is_refused() {
        let mut ic = IdentityCenter::default();
        assert!(!ic.read("x.json", br#"{"bindings": []}"#).unwrap());
        assert!(!ic.read("x.json", b"not json").unwrap());
        assert!(ic.is_empty());
        let e = ic
            .read(
                "a.json",
                br#"{"AccountAssignments": [{"AccountId": "1", "PermissionSetArn": "p", "PrincipalType": "USER"}]}"#,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.json: $.AccountAssignments[0]: missing field `PrincipalId`"),
            "{e}"
        );
    }
}
