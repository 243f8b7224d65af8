//! What sign-in for people keeps (migration `0060_signin.sql`): the company's OpenID
//! Connect identity providers Gatehouse federates to (identity sources), and assignments —
//! an IdP group or user → a role of the account, with the longest session it may have.
//!
//! A source's client secret is a credential toward the IdP: it is sealed (like provider
//! keys) and opened only by [`Store::signin_source_client_secret`], for the token request
//! to the IdP. An assignment keeps the role's stored unique id beside its ARN, so a role
//! deleted and made again under the same name does not inherit its assignments; which
//! subjects and roles are valid is `gatehouse-signin`'s to check, the store keeps rows.
//! Every write bumps the store generation, like a policy change.

use crate::db::{Row, args};
use crate::error::{EntityKind, Result, StoreError};
use crate::model::{Timestamp, new_id, now_ms, ts};
use crate::seal::Secret;
use crate::store::{Store, require_account};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which claims of the IdP's ID token carry what Gatehouse reads about a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninClaimNames {
    /// The claim with the person's groups (a string or a list of strings).
    pub groups: String,
    /// The claim with the person's email (their `aws:SourceIdentity`).
    pub email: String,
    /// The claim with the authentication methods (RFC 8176 `amr`; `mfa`, `otp`, `hwk`...
    /// mean `aws:MultiFactorAuthPresent`).
    pub amr: String,
    /// Session tags from claims: tag key → claim name (`aws:PrincipalTag/KEY`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Default for SigninClaimNames {
    fn default() -> Self {
        SigninClaimNames {
            groups: "groups".into(),
            email: "email".into(),
            amr: "amr".into(),
            tags: BTreeMap::new(),
        }
    }
}

/// A new identity source (validated by `gatehouse-signin` before it gets here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigninSource {
    /// The name people and assignments use.
    pub name: String,
    /// The IdP's issuer URL (`iss`; discovery at `ISSUER/.well-known/openid-configuration`).
    pub issuer: String,
    /// Gatehouse's client id at the IdP.
    pub client_id: String,
    /// Gatehouse's client secret at the IdP (sealed); `None` for a public client.
    pub client_secret: Option<Secret>,
    /// The scopes asked for (`openid` among them).
    pub scopes: Vec<String>,
    /// Which claims carry groups, email, `amr` and session tags.
    pub claims: SigninClaimNames,
}

/// A stored identity source (the client secret stays sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigninSource {
    /// The account it belongs to.
    pub account_id: String,
    /// Its name.
    pub name: String,
    /// The IdP's issuer URL.
    pub issuer: String,
    /// Gatehouse's client id at the IdP.
    pub client_id: String,
    /// Whether a client secret is kept (its value is never shown).
    pub has_client_secret: bool,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// Which claims carry what.
    pub claims: SigninClaimNames,
    /// Creation time.
    pub created: Timestamp,
    /// Last change.
    pub updated: Timestamp,
}

/// A new assignment (validated, and its role resolved, by `gatehouse-signin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigninAssignment {
    /// The identity source's name.
    pub source: String,
    /// `group` (a value of the groups claim) or `user` (the IdP's immutable `sub`).
    pub subject_kind: String,
    /// The group name or the `sub`.
    pub subject: String,
    /// The role's stored unique id (`AROA...`).
    pub role_id: String,
    /// The role's ARN.
    pub role_arn: String,
    /// The longest session of the role this assignment gives, in seconds.
    pub max_session_secs: i64,
}

/// A stored assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigninAssignment {
    /// `SIGA...`.
    pub assignment_id: String,
    /// The account of the source and the role.
    pub account_id: String,
    /// The identity source's name.
    pub source: String,
    /// `group` or `user`.
    pub subject_kind: String,
    /// The group name or the `sub`.
    pub subject: String,
    /// The role's stored unique id.
    pub role_id: String,
    /// The role's ARN.
    pub role_arn: String,
    /// The longest session, in seconds.
    pub max_session_secs: i64,
    /// Creation time.
    pub created: Timestamp,
}

pub(crate) fn client_secret_aad(account: &str, name: &str) -> String {
    format!("signin-source-client-secret:{account}:{name}")
}

const SOURCE_COLS: &str = "account_id, name, issuer, client_id, client_secret_sealed, scopes, claims, created_ms, updated_ms";

const ASSIGNMENT_COLS: &str = "assignment_id, account_id, source, subject_kind, subject, role_id, \
     role_arn, max_session_secs, created_ms";

fn stored_json<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Database(format!("stored {what} do not parse: {e}")))
}

fn source_from(r: &Row) -> Result<SigninSource> {
    Ok(SigninSource {
        account_id: r.text(0)?,
        name: r.text(1)?,
        issuer: r.text(2)?,
        client_id: r.text(3)?,
        has_client_secret: r.opt_text(4)?.is_some(),
        scopes: stored_json("scopes", &r.text(5)?)?,
        claims: stored_json("claim names", &r.text(6)?)?,
        created: ts(r.i64(7)?),
        updated: ts(r.i64(8)?),
    })
}

fn assignment_from(r: &Row) -> Result<SigninAssignment> {
    Ok(SigninAssignment {
        assignment_id: r.text(0)?,
        account_id: r.text(1)?,
        source: r.text(2)?,
        subject_kind: r.text(3)?,
        subject: r.text(4)?,
        role_id: r.text(5)?,
        role_arn: r.text(6)?,
        max_session_secs: r.i64(7)?,
        created: ts(r.i64(8)?),
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Validation(e.to_string()))
}

impl Store {
    /// Adds an identity source (`create`) or replaces one (`!create`; its assignments stay).
    pub async fn put_signin_source(
        &self,
        account: &str,
        s: &NewSigninSource,
        create: bool,
    ) -> Result<SigninSource> {
        let scopes = to_json(&s.scopes)?;
        let claims = to_json(&s.claims)?;
        let mut tx = self.begin_write().await?;
        require_account(&mut tx.conn, account).await?;
        let exists = tx
            .conn
            .opt(
                "SELECT 1 FROM signin_sources WHERE account_id = $1 AND name = $2",
                args![account, s.name.as_str()],
            )
            .await?
            .is_some();
        match (exists, create) {
            (true, true) => return Err(StoreError::exists(EntityKind::SigninSource, &s.name)),
            (false, false) => return Err(StoreError::no_such(EntityKind::SigninSource, &s.name)),
            _ => {}
        }
        let sealed = match &s.client_secret {
            Some(v) => Some(
                self.seal_in(&mut tx.conn, &client_secret_aad(account, &s.name), v)
                    .await?,
            ),
            None => None,
        };
        let values = args![
            account,
            s.name.as_str(),
            s.issuer.as_str(),
            s.client_id.as_str(),
            sealed,
            scopes.as_str(),
            claims.as_str(),
            now_ms()
        ];
        if create {
            tx.conn
                .exec(
                    "INSERT INTO signin_sources (account_id, name, issuer, client_id, \
                     client_secret_sealed, scopes, claims, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    values,
                )
                .await
                .map_err(|e| crate::db::map_unique(e, EntityKind::SigninSource, &s.name))?;
        } else {
            tx.conn
                .exec(
                    "UPDATE signin_sources SET issuer = $3, client_id = $4, \
                     client_secret_sealed = $5, scopes = $6, claims = $7, updated_ms = $8 \
                     WHERE account_id = $1 AND name = $2",
                    values,
                )
                .await?;
        }
        self.commit(tx).await?;
        self.get_signin_source(account, &s.name).await
    }

    /// One identity source.
    pub async fn get_signin_source(&self, account: &str, name: &str) -> Result<SigninSource> {
        let mut c = self.inner.pool.conn().await?;
        let sql =
            format!("SELECT {SOURCE_COLS} FROM signin_sources WHERE account_id = $1 AND name = $2");
        match c.opt(&sql, args![account, name]).await? {
            Some(r) => source_from(&r),
            None => Err(StoreError::no_such(EntityKind::SigninSource, name)),
        }
    }

    /// The identity sources of an account, by name.
    pub async fn list_signin_sources(&self, account: &str) -> Result<Vec<SigninSource>> {
        let mut c = self.inner.pool.conn().await?;
        let sql =
            format!("SELECT {SOURCE_COLS} FROM signin_sources WHERE account_id = $1 ORDER BY name");
        c.all(&sql, args![account])
            .await?
            .iter()
            .map(source_from)
            .collect()
    }

    /// A source's client secret, opened, for the token request to the IdP only.
    pub async fn signin_source_client_secret(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<Secret>> {
        let mut c = self.inner.pool.conn().await?;
        let row = c
            .opt(
                "SELECT client_secret_sealed FROM signin_sources \
                 WHERE account_id = $1 AND name = $2",
                args![account, name],
            )
            .await?
            .ok_or_else(|| StoreError::no_such(EntityKind::SigninSource, name))?;
        drop(c);
        match row.opt_text(0)? {
            Some(sealed) => Ok(Some(
                self.open_sealed(&client_secret_aad(account, name), &sealed)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Removes an identity source; refused (`DeleteConflict`) while assignments name it.
    pub async fn delete_signin_source(&self, account: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if tx
            .conn
            .opt(
                "SELECT 1 FROM signin_assignments WHERE account_id = $1 AND source = $2",
                args![account, name],
            )
            .await?
            .is_some()
        {
            return Err(StoreError::DeleteConflict(format!(
                "identity source {name} still has assignments; remove them first"
            )));
        }
        let n = tx
            .conn
            .exec(
                "DELETE FROM signin_sources WHERE account_id = $1 AND name = $2",
                args![account, name],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(EntityKind::SigninSource, name));
        }
        self.commit(tx).await
    }

    /// Adds an assignment. The same subject, source and role twice is `EntityAlreadyExists`.
    pub async fn create_signin_assignment(
        &self,
        account: &str,
        a: &NewSigninAssignment,
    ) -> Result<SigninAssignment> {
        let mut tx = self.begin_write().await?;
        if tx
            .conn
            .opt(
                "SELECT 1 FROM signin_sources WHERE account_id = $1 AND name = $2",
                args![account, a.source.as_str()],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::no_such(EntityKind::SigninSource, &a.source));
        }
        let id = new_id("SIGA");
        let what = format!("{}:{} -> {}", a.subject_kind, a.subject, a.role_arn);
        tx.conn
            .exec(
                "INSERT INTO signin_assignments (assignment_id, account_id, source, subject_kind, \
                 subject, role_id, role_arn, max_session_secs, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                args![
                    id.as_str(),
                    account,
                    a.source.as_str(),
                    a.subject_kind.as_str(),
                    a.subject.as_str(),
                    a.role_id.as_str(),
                    a.role_arn.as_str(),
                    a.max_session_secs,
                    now_ms()
                ],
            )
            .await
            .map_err(|e| crate::db::map_unique(e, EntityKind::SigninAssignment, &what))?;
        self.commit(tx).await?;
        let mut c = self.inner.pool.conn().await?;
        let sql =
            format!("SELECT {ASSIGNMENT_COLS} FROM signin_assignments WHERE assignment_id = $1");
        match c.opt(&sql, args![id.as_str()]).await? {
            Some(r) => assignment_from(&r),
            None => Err(StoreError::no_such(EntityKind::SigninAssignment, id)),
        }
    }

    /// The assignments of an account (of one source when `source` is given), by source,
    /// subject and role.
    pub async fn list_signin_assignments(
        &self,
        account: &str,
        source: Option<&str>,
    ) -> Result<Vec<SigninAssignment>> {
        let mut c = self.inner.pool.conn().await?;
        let order = "ORDER BY source, subject_kind, subject, role_arn";
        let rows = match source {
            Some(s) => {
                let sql = format!(
                    "SELECT {ASSIGNMENT_COLS} FROM signin_assignments \
                     WHERE account_id = $1 AND source = $2 {order}"
                );
                c.all(&sql, args![account, s]).await?
            }
            None => {
                let sql = format!(
                    "SELECT {ASSIGNMENT_COLS} FROM signin_assignments WHERE account_id = $1 {order}"
                );
                c.all(&sql, args![account]).await?
            }
        };
        rows.iter().map(assignment_from).collect()
    }

    /// Removes an assignment by id.
    pub async fn delete_signin_assignment(&self, account: &str, assignment_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = tx
            .conn
            .exec(
                "DELETE FROM signin_assignments WHERE account_id = $1 AND assignment_id = $2",
                args![account, assignment_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::no_such(
                EntityKind::SigninAssignment,
                assignment_id,
            ));
        }
        self.commit(tx).await
    }
}

/// A new authorization code (its hash; the code itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthorizationCode {
    /// SHA-256 of the code, hex.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// The resource (RFC 8707) the token will be for.
    pub resource: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// What redeeming it mints (JSON, `gatehouse-signin`'s).
    pub grant_json: String,
    /// When it stops working.
    pub expires: Timestamp,
}

impl Store {
    /// Keeps a new authorization code, and removes codes that expired before `now`.
    pub async fn put_authorization_code(
        &self,
        code: &NewAuthorizationCode,
        now: Timestamp,
    ) -> Result<()> {
        let mut c = self.inner.pool.write_tx().await?;
        c.exec(
            "DELETE FROM signin_codes WHERE expires_ms < $1",
            args![now.timestamp_millis()],
        )
        .await?;
        c.exec(
            "INSERT INTO signin_codes (code_hash, client_id, redirect_uri, resource, \
             code_challenge, grant_json, expires_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![
                code.code_hash.as_str(),
                code.client_id.as_str(),
                code.redirect_uri.as_str(),
                code.resource.clone(),
                code.code_challenge.as_str(),
                code.grant_json.as_str(),
                code.expires.timestamp_millis(),
                now.timestamp_millis()
            ],
        )
        .await?;
        // Codes change nothing any policy decides on: no generation bump.
        c.commit().await
    }

    /// Takes an authorization code by its hash: the row is deleted as it is read (one
    /// statement), so of two redemptions, on any nodes, at most one gets it. Expiry and
    /// bindings are the caller's to check on what comes back.
    pub async fn take_authorization_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<NewAuthorizationCode>> {
        let mut c = self.inner.pool.write_tx().await?;
        let row = c
            .opt(
                "DELETE FROM signin_codes WHERE code_hash = $1 RETURNING client_id, \
                 redirect_uri, resource, code_challenge, grant_json, expires_ms",
                args![code_hash],
            )
            .await?;
        c.commit().await?;
        row.map(|r| {
            Ok(NewAuthorizationCode {
                code_hash: code_hash.to_owned(),
                client_id: r.text(0)?,
                redirect_uri: r.text(1)?,
                resource: r.opt_text(2)?,
                code_challenge: r.text(3)?,
                grant_json: r.text(4)?,
                expires: ts(r.i64(5)?),
            })
        })
        .transpose()
    }
}
