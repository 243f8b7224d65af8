//! Which kind of policy a document is (identity-based, or resource-based/trust), and the
//! refusal to compare two kinds: a diff of mismatched kinds would answer the wrong question.

use super::DiffError;
use gatehouse_policy::model::Statement;
use gatehouse_policy::{NamedPolicy, PolicyDocument, PolicyType};

/// Why a document is neither clearly identity-based nor clearly resource-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KindError {
    /// JSON path of the statement at fault.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

pub(super) fn principal_path(st: &Statement, index: usize) -> String {
    match &st.principal {
        Some(p) if p.negated => format!("$.Statement[{index}].NotPrincipal"),
        Some(_) => format!("$.Statement[{index}].Principal"),
        None => format!("$.Statement[{index}]"),
    }
}

/// The kind of a policy document: resource-based (every statement names a `Principal` or
/// `NotPrincipal`: a resource policy or a role's trust policy), identity-based (none does),
/// or `None` for a document without statements. AWS refuses both mixtures (a principal in
/// an identity policy, a resource policy statement naming no one), and so does the diff:
/// guessing would compare the wrong question.
pub fn policy_kind(doc: &PolicyDocument) -> Result<Option<PolicyType>, KindError> {
    let Some(first) = doc.statements.first() else {
        return Ok(None);
    };
    let resource = first.principal.is_some();
    for (i, st) in doc.statements.iter().enumerate().skip(1) {
        if st.principal.is_some() != resource {
            let message = if resource {
                "this statement names no Principal, but $.Statement[0] does: in a resource-based \
                 or trust policy every statement must name its principals"
            } else {
                "this statement names a principal, but $.Statement[0] does not: an identity-based \
                 policy cannot name principals, and a resource-based one must in every statement"
            };
            return Err(KindError {
                path: principal_path(st, i),
                message: message.into(),
            });
        }
    }
    Ok(Some(if resource {
        PolicyType::Resource
    } else {
        PolicyType::Identity
    }))
}

pub(super) fn kind_name(kind: PolicyType) -> &'static str {
    match kind {
        PolicyType::Resource => "a resource-based or trust policy",
        _ => "an identity-based policy",
    }
}

/// The one kind every document has (identity-based when none has a statement).
pub(super) fn common_kind(
    old: &[NamedPolicy],
    new: &[NamedPolicy],
) -> Result<PolicyType, DiffError> {
    let mut seen: Option<(PolicyType, &str)> = None;
    for p in old.iter().chain(new) {
        let kind = policy_kind(&p.document).map_err(|e| DiffError::Kind {
            policy: p.name.clone(),
            path: e.path,
            message: e.message,
        })?;
        match (kind, seen) {
            (None, _) => {}
            (Some(k), None) => seen = Some((k, &p.name)),
            (Some(k), Some((first, first_name))) if k != first => {
                let path = p
                    .document
                    .statements
                    .first()
                    .map_or_else(|| "$".to_owned(), |st| principal_path(st, 0));
                let why = if k == PolicyType::Resource {
                    "it names a Principal"
                } else {
                    "it names no Principal"
                };
                return Err(DiffError::Kind {
                    policy: p.name.clone(),
                    path,
                    message: format!(
                        "this is {} ({why}) but {first_name} is {}: policy diff compares two \
                         versions of one kind of policy",
                        kind_name(k),
                        kind_name(first)
                    ),
                });
            }
            (Some(_), Some(_)) => {}
        }
    }
    Ok(seen.map_or(PolicyType::Identity, |(k, _)| k))
}
