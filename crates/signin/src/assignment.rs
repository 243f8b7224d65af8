//! Assignments, like IAM Identity Center's permission sets: an IdP group (a value of the
//! source's groups claim) or user (the IdP's immutable `sub`, never the email, which an
//! IdP may give to someone else later) → a role of the account, with the longest session
//! it gives. The role is resolved when the assignment is made and kept by its stored
//! unique id: a role deleted and created again is a different role.

use crate::error::{SigninError, invalid};
use crate::source::validate_source_name;
use gatehouse_store::{NewSigninAssignment, SigninAssignment, Store, StoreError};

/// The shortest session an assignment may give (STS's minimum), in seconds.
pub const MIN_SESSION_SECS: i64 = 900;
/// The longest session an assignment may give (a role's largest maximum), in seconds.
pub const MAX_SESSION_SECS: i64 = 43_200;

/// Who an assignment is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Everyone whose groups claim holds this value.
    Group(String),
    /// The person with this `sub` at the source.
    User(String),
}

impl Subject {
    /// `group:NAME` or `user:SUB`.
    pub fn parse(text: &str) -> Result<Subject, SigninError> {
        let (kind, value) = text.split_once(':').ok_or_else(|| {
            invalid(format!(
                "subject {text:?} must be group:NAME or user:SUB (the IdP's subject identifier)"
            ))
        })?;
        if value.is_empty() || value.chars().count() > 256 || value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "subject {text:?}: the name must be 1-256 printable characters"
            )));
        }
        match kind {
            "group" => Ok(Subject::Group(value.to_owned())),
            "user" => Ok(Subject::User(value.to_owned())),
            _ => Err(invalid(format!(
                "subject {text:?} must be group:NAME or user:SUB"
            ))),
        }
    }

    /// `group` or `user`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Group(_) => "group",
            Subject::User(_) => "user",
        }
    }

    /// The group name or `sub`.
    pub fn value(&self) -> &str {
        match self {
            Subject::Group(v) | Subject::User(v) => v,
        }
    }
}

/// An assignment as an operator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentSpec {
    /// The identity source's name.
    pub source: String,
    /// Who.
    pub subject: Subject,
    /// The role's ARN (`arn:gatehouse:iam::ACCOUNT:role/PATH/NAME`) in the account.
    pub role_arn: String,
    /// The longest session, in seconds (900..43200, at most the role's own maximum);
    /// `None`: the role's maximum.
    pub max_session_secs: Option<i64>,
}

/// The ARN an assignment is authorized as: `arn:gatehouse:gatehouse::ACCOUNT:assignment/ID`
/// (`assignment/*` to create or list).
pub fn assignment_arn(account: &str, id: &str) -> String {
    format!("arn:gatehouse:gatehouse::{account}:assignment/{id}")
}

/// The role's name, if `arn` is a role ARN of `account`.
fn role_name<'a>(account: &str, arn: &'a str) -> Result<&'a str, SigninError> {
    let prefix = format!("arn:{}:iam::{account}:role/", gatehouse_store::PARTITION);
    match arn.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() && !rest.ends_with('/') => {
            Ok(rest.rsplit('/').next().unwrap_or(rest))
        }
        _ => Err(invalid(format!(
            "role {arn:?} must be a role ARN of account {account} (arn:gatehouse:iam::{account}:role/NAME)"
        ))),
    }
}

/// Makes an assignment: the source must exist, the role must exist in the account under
/// exactly this ARN (path included), and the session length must fit the role's maximum.
pub async fn assign(
    store: &Store,
    account: &str,
    spec: &AssignmentSpec,
) -> Result<SigninAssignment, SigninError> {
    validate_source_name(&spec.source)?;
    // Parsed again so a hand-built Subject keeps the same rules.
    let subject = Subject::parse(&format!("{}:{}", spec.subject.kind(), spec.subject.value()))?;
    let name = role_name(account, &spec.role_arn)?;
    let role = match store.get_role(account, name).await {
        Ok(r) if r.arn() == spec.role_arn => r,
        Ok(_) | Err(StoreError::NoSuchEntity { .. }) => {
            return Err(SigninError::NoSuchRole(spec.role_arn.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    let max = spec.max_session_secs.unwrap_or(role.max_session_duration);
    if !(MIN_SESSION_SECS..=MAX_SESSION_SECS).contains(&max) {
        return Err(invalid(format!(
            "the maximum session duration must be {MIN_SESSION_SECS}..{MAX_SESSION_SECS} seconds, not {max}"
        )));
    }
    if max > role.max_session_duration {
        return Err(invalid(format!(
            "the maximum session duration {max} exceeds the role's own maximum ({} seconds)",
            role.max_session_duration
        )));
    }
    let new = NewSigninAssignment {
        source: spec.source.clone(),
        subject_kind: subject.kind().to_owned(),
        subject: subject.value().to_owned(),
        role_id: role.role_id.clone(),
        role_arn: role.arn(),
        max_session_secs: max,
    };
    Ok(store.create_signin_assignment(account, &new).await?)
}

/// Removes an assignment by id.
pub async fn unassign(store: &Store, account: &str, id: &str) -> Result<(), SigninError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(format!("assignment id {id:?} is not an id")));
    }
    Ok(store.delete_signin_assignment(account, id).await?)
}

/// What a person signing in through a source is, as far as assignments go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// The IdP's subject identifier.
    pub sub: String,
    /// The values of the source's groups claim.
    pub groups: Vec<String>,
}

/// The assignments (of one source's list) that apply to a person: those naming the
/// person's `sub` or one of their groups. Group names compare exactly, as the IdP sends
/// them.
pub fn assignments_for<'a>(
    assignments: &'a [SigninAssignment],
    source: &str,
    person: &Person,
) -> Vec<&'a SigninAssignment> {
    assignments
        .iter()
        .filter(|a| a.source == source)
        .filter(|a| match a.subject_kind.as_str() {
            "user" => a.subject == person.sub,
            "group" => person.groups.contains(&a.subject),
            _ => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subjects_parse_and_refuse() {
        assert_eq!(
            Subject::parse("group:ml-eng").unwrap(),
            Subject::Group("ml-eng".into())
        );
        assert_eq!(
            Subject::parse("user:00u1:x").unwrap(),
            Subject::User("00u1:x".into())
        );
        for bad in ["ml-eng", "group:", "role:x", "user:a\nb", ""] {
            assert_eq!(
                Subject::parse(bad).unwrap_err().aws_code(),
                "ValidationError",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn role_arns_must_be_of_the_account() {
        let a = "111122223333";
        assert_eq!(
            role_name(a, "arn:gatehouse:iam::111122223333:role/ops").unwrap(),
            "ops"
        );
        assert_eq!(
            role_name(a, "arn:gatehouse:iam::111122223333:role/team/ops").unwrap(),
            "ops"
        );
        for bad in [
            "arn:gatehouse:iam::999999999999:role/ops",
            "arn:gatehouse:iam::111122223333:user/ops",
            "arn:gatehouse:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/ops",
            "ops",
        ] {
            assert!(role_name(a, bad).is_err(), "{bad}");
        }
    }

    fn row(source: &str, kind: &str, subject: &str) -> SigninAssignment {
        SigninAssignment {
            assignment_id: format!("SIGA{kind}{subject}"),
            account_id: "111122223333".into(),
            source: source.into(),
            subject_kind: kind.into(),
            subject: subject.into(),
            role_id: "AROA1".into(),
            role_arn: "arn:gatehouse:iam::111122223333:role/r".into(),
            max_session_secs: 3600,
            created: gatehouse_store::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn matching_by_sub_or_group_within_the_source() {
        let rows = vec![
            row("corp", "group", "ml-eng"),
            row("corp", "user", "sub-alice"),
            row("other", "group", "ml-eng"),
            row("corp", "group", "ML-ENG"),
        ];
        let alice = Person {
            sub: "sub-alice".into(),
            groups: vec!["ml-eng".into()],
        };
        let ids: Vec<&str> = assignments_for(&rows, "corp", &alice)
            .iter()
            .map(|a| a.assignment_id.as_str())
            .collect();
        assert_eq!(ids, ["SIGAgroupml-eng", "SIGAusersub-alice"]);
        // An email-looking sub does not match a group, nor a group a sub.
        let bob = Person {
            sub: "ml-eng".into(),
            groups: vec!["sub-alice".into()],
        };
        assert!(assignments_for(&rows, "corp", &bob).is_empty());
    }
}
