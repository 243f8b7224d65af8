//! The authenticate and principal steps: who is calling, with its compiled policies.
//!
//! A request carries one [`Credential`]:
//! - `Authorization: AWS4-HMAC-SHA256 ...` or a presigned URL — SigV4, verified by
//!   [`crate::identity::verify`] against the key's secret (the store's, the bootstrap
//!   root's, or the one sealed in a session token for `ASIA...` keys);
//! - `Authorization: Bearer ACCESS_KEY_ID:SECRET_ACCESS_KEY` — an access key, for OpenAI
//!   clients (`OpenAI(api_key="AKIA...:secret")`); the form HTTP Basic uses, so that a key id
//!   and its secret never need a custom header;
//! - `Authorization: Bearer SESSION_TOKEN` — an STS session token (no colon).
//!
//! Later credential kinds (OAuth access tokens for sign-in and agents) are one more variant
//! of [`Credential`] and one more arm of [`resolve`]: every face gets them at once.
//!
//! Each ends as a [`Principal`]: the caller, its ARN, its compiled identity, group,
//! boundary and guardrail policies (cached per store generation) and, for a session, its
//! claims and session policies. Verified access keys are cached by id with a digest of
//! their secret for one store generation: disabling or deleting a key bumps the
//! generation and empties the cache.

use crate::authz::CompiledPrincipal;
use crate::core::Core;
use crate::counts::LookupCounts;
use crate::error::PipelineError;
use crate::identity::{self, Authenticated, Caller};
use crate::session::{self, SessionPrincipal};
use gatehouse_auth::Secret;
use gatehouse_auth::sigv4::SigV4Identity;
use gatehouse_policy::PolicySet;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The parts of an HTTP request the authenticate step reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The URI's path.
    pub path: &'a str,
    /// The URI's query string (empty when none).
    pub query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body, for a SigV4 signature (which covers it): `Some` once read (`b""` for a
    /// request without one); `None` before it is read, when a SigV4 signature is checked
    /// against the SHA-256 the request declares in a signed `x-amz-content-sha256` header
    /// (required), so that no one without a valid signature makes a face read and hold a
    /// body; the face then checks the body against it ([`declared_body_matches`]).
    pub body: Option<&'a [u8]>,
}

/// The credential a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A SigV4 signature, in the `Authorization` header or presigned in the URL.
    SigV4,
    /// `Bearer ACCESS_KEY_ID:SECRET`.
    AccessKey {
        /// The access key id.
        id: &'a str,
        /// The secret as presented.
        secret: &'a str,
    },
    /// `Bearer SESSION_TOKEN`.
    SessionToken(&'a str),
}

/// The SigV4 `Authorization` scheme, the one credential that signs the body.
const SIGV4_SCHEME: &str = "AWS4-HMAC-SHA256";

impl<'a> Credential<'a> {
    /// The one credential of the request's `Authorization` header. Two headers are one
    /// too many (a proxy in front could read the other one); none, or another scheme, is
    /// refused.
    pub fn of_authorization(headers: &'a HeaderMap) -> Result<Credential<'a>, PipelineError> {
        if headers.get_all("authorization").iter().count() > 1 {
            return Err(PipelineError::Credentials(
                "Send exactly one Authorization header.",
            ));
        }
        let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Err(PipelineError::Credentials(
                "Missing credentials. Send `Authorization: Bearer ACCESS_KEY_ID:SECRET` or a session token.",
            ));
        };
        if auth.starts_with(SIGV4_SCHEME) {
            return Ok(Credential::SigV4);
        }
        let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .map(str::trim)
        else {
            return Err(PipelineError::Credentials(
                "Unsupported Authorization scheme; use Bearer or AWS4-HMAC-SHA256.",
            ));
        };
        Ok(match token.split_once(':') {
            Some((id, secret)) => Credential::AccessKey { id, secret },
            None => Credential::SessionToken(token),
        })
    }
}

/// Whether the request's one credential is a SigV4 signature, which covers the body (so
/// the body must be read before the caller is known). Any other credential, or none, is
/// checked before a byte of the body is read.
pub fn signs_body(headers: &HeaderMap) -> bool {
    let mut auth = headers.get_all("authorization").iter();
    match (auth.next(), auth.next()) {
        (Some(v), None) => v.as_bytes().starts_with(SIGV4_SCHEME.as_bytes()),
        _ => false,
    }
}

/// Whether `body` is the one a SigV4-signed request declared in `x-amz-content-sha256`
/// (checked by [`Core::authenticate`] before the body was read, `RequestParts::body` `None`).
pub fn declared_body_matches(headers: &HeaderMap, body: &[u8]) -> bool {
    headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|d| gatehouse_auth::sigv4::declared_payload_matches(d, body))
}

/// An authenticated caller with its compiled policies: what `decide` decides for.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who signed (root, a user, a role session, or nobody for unsigned calls).
    pub caller: Caller,
    /// The caller's ARN (a session's is `assumed-role/ROLE/SESSION`).
    pub arn: String,
    /// The caller's account.
    pub account_id: String,
    /// Compiled policies; `None` for the account's root credentials (not subject to
    /// policy) and for unsigned callers (denied everything).
    pub policies: Option<Arc<CompiledPrincipal>>,
    /// The session, when the caller used temporary credentials.
    pub session: Option<Arc<SessionPrincipal>>,
    /// How the caller authenticated, to load it again mid-stream ([`refresh`]).
    pub source: CallerSource,
}

impl Principal {
    /// An unsigned caller of `account_id` (only actions whose own token is the proof
    /// accept one; every decision for it is a deny).
    pub fn anonymous(account_id: String) -> Principal {
        let caller = Caller::Anonymous {
            account_id: account_id.clone(),
        };
        Principal {
            arn: caller.arn(String::new),
            caller,
            account_id,
            policies: None,
            session: None,
            source: CallerSource::Anonymous,
        }
    }

    /// The session policies that intersect with the principal's (sessions created with any).
    pub fn session_policy(&self) -> Option<&PolicySet> {
        self.session
            .as_ref()
            .and_then(|s| s.session_policy.as_deref())
    }

    /// The just-in-time grant the caller's session was opened under, if any: every call
    /// of such a session is made under it (its id goes in the audit record).
    pub fn elevation_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.elevation_id())
    }

    /// The caller's groups' ARNs (users and their `GetSessionToken` sessions).
    pub fn group_arns(&self) -> &[String] {
        self.policies
            .as_ref()
            .map_or(&[][..], |p| p.info.group_arns.as_slice())
    }
}

/// The credential a caller presented, kept to load the caller again ([`refresh`]).
#[derive(Debug, Clone)]
pub enum CallerSource {
    /// An unsigned request.
    Anonymous,
    /// The account's bootstrap root key.
    Root,
    /// A user's access key (Bearer or SigV4).
    User {
        /// The user's account.
        account_id: String,
        /// The user's name.
        user_name: String,
        /// The key used.
        access_key_id: String,
    },
    /// An STS session token (Bearer, or beside a SigV4 signature).
    Session {
        /// The token.
        token: String,
    },
}

/// Access key id → (SHA-256 of its secret, caller).
type Verified = HashMap<String, ([u8; 32], Caller)>;

/// Verified access keys, for one generation.
#[derive(Debug, Default)]
pub struct KeyCache {
    inner: RwLock<(i64, Verified)>,
    lookups: LookupCounts,
}

impl KeyCache {
    fn get(&self, generation: i64, id: &str) -> Option<([u8; 32], Caller)> {
        let found = self
            .inner
            .read()
            .ok()
            .filter(|g| g.0 == generation)
            .and_then(|g| g.1.get(id).cloned());
        self.lookups.record(found.is_some());
        found
    }

    /// Hits and misses so far (for `/metrics`).
    pub fn lookups(&self) -> &LookupCounts {
        &self.lookups
    }

    fn put(&self, generation: i64, id: String, digest: [u8; 32], caller: Caller) {
        if let Ok(mut g) = self.inner.write() {
            if g.0 != generation {
                g.0 = generation;
                g.1.clear();
            }
            // Bounded: a flood of distinct keys must not grow memory without end.
            if g.1.len() >= 100_000 {
                g.1.clear();
            }
            g.1.insert(id, (digest, caller));
        }
    }
}

fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

fn invalid_key() -> PipelineError {
    PipelineError::Credentials("Incorrect API key provided.")
}

impl Core {
    /// The authenticate and principal steps for a face that takes any credential kind
    /// in the `Authorization` header (the AI gateway, the MCP gateway): exactly one
    /// header, SigV4 (scoped to `service`), a Bearer access key or a Bearer session token.
    pub async fn authenticate(
        &self,
        parts: &RequestParts<'_>,
        service: &str,
    ) -> Result<Principal, PipelineError> {
        match Credential::of_authorization(parts.headers)? {
            Credential::SigV4 => Ok(self.authenticate_signed(parts, service).await?.0),
            Credential::AccessKey { id, secret } => {
                let caller = self.access_key(id, secret).await?;
                self.principal_of(caller).await
            }
            Credential::SessionToken(token) => self.session_token(token).await,
        }
    }

    /// The authenticate and principal steps for a SigV4-signed request (header or
    /// presigned URL) whose credential scope names `service`: the Query APIs, which take
    /// no other credential. Also returns the signature's facts (where it was, its scope).
    pub async fn authenticate_signed(
        &self,
        parts: &RequestParts<'_>,
        service: &str,
    ) -> Result<(Principal, SigV4Identity), PipelineError> {
        let fetched = self.fetch_secret(parts.headers, parts.query).await?;
        let (authenticated, sig) = match parts.body {
            Some(body) => identity::verify(
                parts.method,
                parts.path,
                parts.query,
                parts.headers,
                body,
                fetched,
                &self.ring(),
                service,
                self.clock.now(),
            ),
            None => identity::verify_before_body(
                parts.method,
                parts.path,
                parts.query,
                parts.headers,
                fetched,
                &self.ring(),
                service,
                self.clock.now(),
            ),
        }?;
        let Authenticated { caller, session } = authenticated;
        if let Caller::User { access_key_id, .. } = &caller {
            self.note_key_use(access_key_id, &sig.service, &sig.region)
                .await;
        }
        let principal = match session {
            Some(claims) => {
                // Temporary credentials: the token travels beside the signature; keep it
                // so that a stream can check the session again.
                let token = parts
                    .headers
                    .get("x-amz-security-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .or_else(|| {
                        form_urlencoded::parse(parts.query.as_bytes())
                            .find(|(k, _)| k == "X-Amz-Security-Token")
                            .map(|(_, v)| v.into_owned())
                    })
                    .ok_or_else(invalid_key)?;
                let s = session::session_principal(self, claims).await?;
                session_principal(caller, s, token)
            }
            None => self.principal_of(caller).await?,
        };
        Ok((principal, sig))
    }

    /// Resolves a bare STS session token (`Authorization: Bearer SESSION_TOKEN`): verified
    /// with the node's key ring, with its role's current policies and its session policies.
    pub async fn session_token(&self, token: &str) -> Result<Principal, PipelineError> {
        let s = session::authenticate_bearer(self, token).await?;
        let caller = identity::caller_of_session(&s.claims);
        Ok(session_principal(caller, s, token.to_owned()))
    }

    /// Finds the secret of the access key a SigV4 request claims (before verifying
    /// anything): the bootstrap root's, or an active key's from the store.
    pub async fn fetch_secret(
        &self,
        headers: &HeaderMap,
        query: &str,
    ) -> Result<Option<(String, Secret, Caller)>, PipelineError> {
        let Some(key_id) = identity::claimed_access_key(headers, query) else {
            return Ok(None);
        };
        if key_id == self.config.root_access_key_id {
            return Ok(Some((
                key_id,
                self.config.root_secret.clone(),
                Caller::Root {
                    account_id: self.config.account_id.clone(),
                },
            )));
        }
        match self.store.access_key_for_auth(&key_id).await {
            Ok((key, secret)) if key.status == gatehouse_store::AccessKeyStatus::Active => {
                let caller = Caller::User {
                    account_id: key.account_id.clone(),
                    user_name: key.user_name.clone(),
                    access_key_id: key.access_key_id.clone(),
                };
                Ok(Some((key_id, secret, caller)))
            }
            Ok(_) | Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "access key lookup failed");
                Err(e.into())
            }
        }
    }

    /// `Bearer ACCESS_KEY_ID:SECRET`: the key's caller when the secret matches.
    async fn access_key(&self, id: &str, secret: &str) -> Result<Caller, PipelineError> {
        let generation = self.cache.generation();
        let presented = digest(secret.as_bytes());
        if let Some((d, caller)) = self.keys.get(generation, id) {
            // Digests, not secrets, are compared: timing reveals nothing about the secret.
            return if d == presented {
                Ok(caller)
            } else {
                Err(invalid_key())
            };
        }
        let (expected, caller) = if id == self.config.root_access_key_id {
            (
                digest(self.config.root_secret.expose()),
                Caller::Root {
                    account_id: self.config.account_id.clone(),
                },
            )
        } else {
            match self.store.access_key_for_auth(id).await {
                Ok((key, s)) if key.status == gatehouse_store::AccessKeyStatus::Active => (
                    digest(s.expose()),
                    Caller::User {
                        account_id: key.account_id.clone(),
                        user_name: key.user_name.clone(),
                        access_key_id: key.access_key_id.clone(),
                    },
                ),
                Ok(_) | Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => {
                    return Err(invalid_key());
                }
                Err(e) => {
                    tracing::error!(error = %e, "access key lookup failed");
                    return Err(e.into());
                }
            }
        };
        if expected != presented {
            return Err(invalid_key());
        }
        self.keys
            .put(generation, id.to_owned(), expected, caller.clone());
        Ok(caller)
    }

    /// The principal of a caller authenticated with a long-term credential (root, or a
    /// user's access key): its compiled policies.
    async fn principal_of(&self, caller: Caller) -> Result<Principal, PipelineError> {
        match caller {
            // Sessions are resolved with their token; an unsigned caller is made by the
            // face that accepts one.
            Caller::AssumedRole { .. } | Caller::Anonymous { .. } => Err(invalid_key()),
            Caller::Root { ref account_id } => Ok(Principal {
                arn: caller.arn(String::new),
                account_id: account_id.clone(),
                policies: None,
                session: None,
                source: CallerSource::Root,
                caller,
            }),
            Caller::User {
                ref account_id,
                ref user_name,
                ref access_key_id,
            } => {
                let p = self.user_policies(account_id, user_name).await?;
                Ok(Principal {
                    arn: p.info.principal_arn.clone(),
                    account_id: account_id.clone(),
                    policies: Some(p),
                    session: None,
                    source: CallerSource::User {
                        account_id: account_id.clone(),
                        user_name: user_name.clone(),
                        access_key_id: access_key_id.clone(),
                    },
                    caller,
                })
            }
        }
    }

    /// Loads a principal again with what the store says now (key status, policies,
    /// session validity), so that a revocation made while a stream runs reaches it.
    pub async fn refresh(&self, principal: &Principal) -> Result<Principal, PipelineError> {
        match &principal.source {
            CallerSource::Root => Ok(principal.clone()),
            CallerSource::Anonymous => Err(invalid_key()),
            CallerSource::Session { token } => self.session_token(token).await,
            CallerSource::User { access_key_id, .. } => {
                match self.store.access_key_for_auth(access_key_id).await {
                    Ok((k, _)) if k.status == gatehouse_store::AccessKeyStatus::Active => {}
                    Ok(_) | Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => {
                        return Err(invalid_key());
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "access key lookup failed");
                        return Err(e.into());
                    }
                }
                self.principal_of(principal.caller.clone()).await
            }
        }
    }
}

/// The principal of a verified session.
fn session_principal(caller: Caller, s: SessionPrincipal, token: String) -> Principal {
    Principal {
        arn: s.claims.principal_arn.clone(),
        account_id: s.principal.info.account_id.clone(),
        policies: Some(Arc::clone(&s.principal)),
        session: Some(Arc::new(s)),
        source: CallerSource::Session { token },
        caller,
    }
}
