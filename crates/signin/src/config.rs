//! The `[signin]` table of the config file: identity sources and assignments an operator
//! keeps in version control, applied to the store at start (like configured deployments).
//! A source is added or replaced; an assignment is added unless the same one exists.
//! Nothing is removed when it leaves the file: removal is an explicit act (`gatehouse
//! signin source remove`, `unassign`). The client secret is never in the file, only the
//! name of the environment variable holding it.

use crate::assignment::{AssignmentSpec, Subject, assign};
use crate::error::{SigninError, invalid};
use crate::source::{SourceSpec, put_source};
use gatehouse_store::{Secret, Store, StoreError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[signin]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninConfig {
    /// `[[signin.sources]]`.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// `[[signin.assignments]]`.
    #[serde(default)]
    pub assignments: Vec<AssignmentConfig>,
}

/// `[[signin.sources]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source's name.
    pub name: String,
    /// The IdP's issuer URL.
    pub issuer: String,
    /// Gatehouse's client id at the IdP.
    pub client_id: String,
    /// The environment variable holding the client secret (none: a public client).
    pub client_secret_env: Option<String>,
    /// Scopes (default `openid email profile`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claim names.
    #[serde(default)]
    pub claims: ClaimsConfig,
}

/// `[signin.sources.claims]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    /// The groups claim (default `groups`).
    pub groups: Option<String>,
    /// The email claim (default `email`).
    pub email: Option<String>,
    /// The `amr` claim (default `amr`).
    pub amr: Option<String>,
    /// Session tags: tag key → claim name.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `[[signin.assignments]]`: exactly one of `group` and `user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentConfig {
    /// The source's name.
    pub source: String,
    /// An IdP group.
    pub group: Option<String>,
    /// An IdP user's `sub`.
    pub user: Option<String>,
    /// The role's ARN.
    pub role: String,
    /// The longest session, in seconds (default: the role's maximum).
    pub max_session_duration: Option<i64>,
}

impl SourceConfig {
    /// The source as the CLI and the Query API describe it.
    pub fn spec(&self) -> SourceSpec {
        SourceSpec {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            scopes: self.scopes.clone(),
            groups_claim: self.claims.groups.clone(),
            email_claim: self.claims.email.clone(),
            amr_claim: self.claims.amr.clone(),
            tags: self.claims.tags.clone(),
        }
    }
}

impl AssignmentConfig {
    /// The assignment as the CLI and the Query API describe it.
    pub fn spec(&self) -> Result<AssignmentSpec, SigninError> {
        let subject = match (&self.group, &self.user) {
            (Some(g), None) => Subject::parse(&format!("group:{g}"))?,
            (None, Some(u)) => Subject::parse(&format!("user:{u}"))?,
            _ => {
                return Err(invalid(format!(
                    "assignment of {} through {}: give exactly one of group and user",
                    self.role, self.source
                )));
            }
        };
        Ok(AssignmentSpec {
            source: self.source.clone(),
            subject,
            role_arn: self.role.clone(),
            max_session_secs: self.max_session_duration,
        })
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Sources added or replaced.
    pub sources: usize,
    /// Assignments added (those already there are left as they are).
    pub assignments_added: usize,
}

/// Checks every entry (without the store), so that a bad file is refused before anything
/// is written; the error names the entry (`signin.sources[1]`).
pub fn check(config: &SigninConfig) -> Result<(), SigninError> {
    for (i, s) in config.sources.iter().enumerate() {
        s.spec()
            .validate(None)
            .map_err(|e| invalid(format!("signin.sources[{i}]: {e}")))?;
    }
    for (i, a) in config.assignments.iter().enumerate() {
        a.spec()
            .map_err(|e| invalid(format!("signin.assignments[{i}]: {e}")))?;
    }
    Ok(())
}

/// Applies the table to the store. `env` reads an environment variable (`std::env::var`
/// in the server; a map in tests). Every entry is checked, and every secret read, before
/// the first write.
pub async fn apply(
    store: &Store,
    account: &str,
    config: &SigninConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Applied, SigninError> {
    check(config)?;
    let mut secrets = Vec::with_capacity(config.sources.len());
    for s in &config.sources {
        let secret = match &s.client_secret_env {
            Some(var) => Some(Secret::new(env(var).ok_or_else(|| {
                SigninError::MissingSecret {
                    source_name: s.name.clone(),
                    variable: var.clone(),
                }
            })?)),
            None => None,
        };
        secrets.push(secret);
    }
    let mut applied = Applied::default();
    for (s, secret) in config.sources.iter().zip(secrets) {
        let exists = match store.get_signin_source(account, &s.name).await {
            Ok(_) => true,
            Err(StoreError::NoSuchEntity { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        let put = put_source(store, account, &s.spec(), secret.clone(), exists).await;
        match put {
            // Another node sharing the store added it since we looked: ours replaces it.
            Err(SigninError::Store(StoreError::EntityAlreadyExists { .. })) if !exists => {
                put_source(store, account, &s.spec(), secret, true).await?;
            }
            other => {
                other?;
            }
        }
        applied.sources += 1;
    }
    for (i, a) in config.assignments.iter().enumerate() {
        match assign(store, account, &a.spec()?).await {
            Ok(_) => applied.assignments_added += 1,
            Err(SigninError::Store(StoreError::EntityAlreadyExists { .. })) => {}
            Err(e) => return Err(invalid(format!("signin.assignments[{i}]: {e}"))),
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_table_parses_strictly() {
        let text = r#"
            [[sources]]
            name = "corp"
            issuer = "https://idp.example.com"
            client_id = "gatehouse"
            client_secret_env = "CORP_SECRET"
            scopes = ["openid", "email", "groups"]
            [sources.claims]
            groups = "roles"
            tags = { department = "dept" }

            [[assignments]]
            source = "corp"
            group = "ml-eng"
            role = "arn:gatehouse:iam::111122223333:role/ml"
            max_session_duration = 3600
        "#;
        let c: SigninConfig = toml::from_str(text).unwrap();
        check(&c).unwrap();
        assert_eq!(c.sources[0].spec().groups_claim.as_deref(), Some("roles"));
        assert_eq!(
            c.assignments[0].spec().unwrap().subject,
            Subject::Group("ml-eng".into())
        );
        assert!(
            toml::from_str::<SigninConfig>("[[sources]]\nname = \"x\"\nsecret = \"s\"").is_err()
        );
    }

    #[test]
    fn check_names_the_bad_entry() {
        let c: SigninConfig = toml::from_str(
            r#"
            [[assignments]]
            source = "corp"
            group = "a"
            user = "b"
            role = "arn:gatehouse:iam::111122223333:role/ml"
            "#,
        )
        .unwrap();
        let e = check(&c).unwrap_err().to_string();
        assert!(e.starts_with("signin.assignments[0]: "), "{e}");
        let c: SigninConfig = toml::from_str(
            r#"
            [[sources]]
            name = "ok"
            issuer = "https://idp.example.com"
            client_id = "c"
            [[sources]]
            name = "bad"
            issuer = "http://idp.example.com"
            client_id = "c"
            "#,
        )
        .unwrap();
        let e = check(&c).unwrap_err().to_string();
        assert!(e.starts_with("signin.sources[1]: issuer"), "{e}");
    }
}
