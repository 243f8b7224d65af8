//! Who is calling the gateway.
//!
//! Three forms, tried in this order:
//! - `Authorization: AWS4-HMAC-SHA256 ...` — SigV4, verified exactly as on the control plane;
//! - `Authorization: Bearer ACCESS_KEY_ID:SECRET_ACCESS_KEY` — an access key, for OpenAI
//!   clients (`OpenAI(api_key="AKIA...:secret")`); the form HTTP Basic uses, so that a key id
//!   and its secret never need a custom header;
//! - `Authorization: Bearer SESSION_TOKEN` — an STS session token (no colon), resolved by
//!   [`resolve_session_token`].
//!
//! Verified access keys are cached by id with a digest of their secret for one store
//! generation: disabling or deleting a key bumps the generation and empties the cache.

use super::budget::{SessionBudget, Subject, session_limits};
use super::error::GatewayError;
use crate::authz::CompiledPrincipal;
use crate::identity::Caller;
use crate::{AppState, fetch_secret};
use axum::http::HeaderMap;
use gatehouse_policy::PolicySet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// An authenticated gateway caller.
#[derive(Debug, Clone)]
pub struct GatewayCaller {
    /// Principal ARN.
    pub arn: String,
    /// The caller's account.
    pub account_id: String,
    /// Compiled policies; `None` for the account's root credentials (not subject to policy).
    pub principal: Option<Arc<CompiledPrincipal>>,
    /// Session policies that intersect with `principal`'s (STS sessions created with any).
    pub session_policy: Option<Arc<PolicySet>>,
    /// Context keys the credential itself carries (session tags, MFA, token issue time).
    pub context: Vec<(String, String)>,
    /// How the caller authenticated, to load it again mid-stream ([`refresh`]).
    pub source: CallerSource,
    /// The assumed role's ARN, for role sessions (role budgets count all its sessions).
    pub role_arn: Option<String>,
    /// The session's own budget from its `gatehouse:*` session tags, for sessions.
    pub session_budget: Option<SessionBudget>,
}

impl GatewayCaller {
    /// The just-in-time grant a session caller's session was opened under (its
    /// `gatehouse:ElevationId`), for the audit record.
    pub fn elevation_id(&self) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == crate::authz::ELEVATION_ID)
            .map(|(_, v)| v.as_str())
    }

    /// What this caller's traffic counts against, for budget matching.
    pub fn budget_subject(&self) -> Subject<'_> {
        Subject {
            principal: &self.arn,
            role: self.role_arn.as_deref(),
            groups: self
                .principal
                .as_ref()
                .map_or(&[][..], |p| p.info.group_arns.as_slice()),
            session: self.session_budget.as_ref(),
        }
    }
}

/// The credential a caller presented.
#[derive(Debug, Clone)]
pub enum CallerSource {
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
    /// An STS session token.
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
    lookups: crate::metrics::LookupCounts,
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
    pub fn lookups(&self) -> &crate::metrics::LookupCounts {
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

/// The SigV4 `Authorization` scheme, the one credential that signs the body.
const SIGV4_SCHEME: &str = "AWS4-HMAC-SHA256";

/// Whether the request's one credential is a SigV4 signature, which covers the body.
pub fn signs_body(headers: &HeaderMap) -> bool {
    let mut auth = headers.get_all("authorization").iter();
    match (auth.next(), auth.next()) {
        (Some(v), None) => v.as_bytes().starts_with(SIGV4_SCHEME.as_bytes()),
        _ => false,
    }
}

/// Whether `body` is the one a SigV4-signed request declared in `x-amz-content-sha256`
/// (checked by [`authenticate`] before the body was read).
pub fn declared_body_matches(headers: &HeaderMap, body: &[u8]) -> bool {
    headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|d| gatehouse_auth::sigv4::declared_payload_matches(d, body))
}

/// Authenticates a gateway request; `Err` is always a 401 in OpenAI's shape.
///
/// `body` is the request's body when it has been read (or `b""` for a request without
/// one); `None` before it is read: a SigV4 signature is then checked against the SHA-256
/// the request declares in a signed `x-amz-content-sha256` header (required), so that no
/// one without a valid signature makes the gateway read and hold a body, and the caller
/// checks the body against it once read ([`declared_body_matches`]).
pub async fn authenticate(
    state: &AppState,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Result<GatewayCaller, GatewayError> {
    // Two credentials are one too many: a proxy in front could read the other one.
    if headers.get_all("authorization").iter().count() > 1 {
        return Err(GatewayError::unauthenticated(
            "Send exactly one Authorization header.",
        ));
    }
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(GatewayError::unauthenticated(
            "Missing credentials. Send `Authorization: Bearer ACCESS_KEY_ID:SECRET` or a session token.",
        ));
    };
    let caller = if auth.starts_with(SIGV4_SCHEME) {
        let fetched = fetch_secret(state, headers, query)
            .await
            .map_err(|_| GatewayError::internal())?;
        // The gateway's actions are the `ai` service's: a signature for `iam` or `sts`
        // is not one for this API.
        let verified = match body {
            Some(body) => crate::identity::verify(
                method,
                path,
                query,
                headers,
                body,
                fetched,
                &state.ring(),
                "ai",
                state.clock.now(),
            ),
            None => crate::identity::verify_before_body(
                method,
                path,
                query,
                headers,
                fetched,
                &state.ring(),
                "ai",
                state.clock.now(),
            ),
        };
        let (authenticated, _) = verified.map_err(|e| GatewayError::unauthenticated(e.message))?;
        if let Some(claims) = authenticated.session {
            // Temporary credentials: the token travels beside the signature; keep it so
            // that a stream can re-check the session.
            let token = headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == "X-Amz-Security-Token")
                        .map(|(_, v)| v.into_owned())
                })
                .ok_or_else(invalid_key)?;
            let s = crate::session::session_principal(state, claims)
                .await
                .map_err(|e| GatewayError::unauthenticated(e.message))?;
            return Ok(session_caller(s, token, state.clock.now()));
        }
        authenticated.caller
    } else {
        let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .map(str::trim)
        else {
            return Err(GatewayError::unauthenticated(
                "Unsupported Authorization scheme; use Bearer or AWS4-HMAC-SHA256.",
            ));
        };
        match token.split_once(':') {
            Some((id, secret)) => access_key(state, id, secret).await?,
            None => return resolve_session_token(state, token).await,
        }
    };
    to_gateway_caller(state, caller).await
}

fn invalid_key() -> GatewayError {
    GatewayError::unauthenticated("Incorrect API key provided.")
}

async fn access_key(state: &AppState, id: &str, secret: &str) -> Result<Caller, GatewayError> {
    let generation = state.cache.generation();
    let presented = digest(secret.as_bytes());
    if let Some((d, caller)) = state.gateway.keys.get(generation, id) {
        // Digests, not secrets, are compared: timing reveals nothing about the secret.
        return if d == presented {
            Ok(caller)
        } else {
            Err(invalid_key())
        };
    }
    let (expected, caller) = if id == state.config.root_access_key_id {
        (
            digest(state.config.root_secret.expose()),
            Caller::Root {
                account_id: state.config.account_id.clone(),
            },
        )
    } else {
        match state.store.access_key_for_auth(id).await {
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
                return Err(GatewayError::internal());
            }
        }
    };
    if expected != presented {
        return Err(invalid_key());
    }
    state
        .gateway
        .keys
        .put(generation, id.to_owned(), expected, caller.clone());
    Ok(caller)
}

/// Resolves a bare STS session token (`Authorization: Bearer SESSION_TOKEN`) to a caller:
/// the token service verifies it with the node's key ring and attaches its role's current
/// policies and its session policies.
pub async fn resolve_session_token(
    state: &AppState,
    token: &str,
) -> Result<GatewayCaller, GatewayError> {
    let s = crate::session::authenticate_bearer(state, token)
        .await
        .map_err(|e| GatewayError::unauthenticated(e.message))?;
    Ok(session_caller(s, token.to_owned(), state.clock.now()))
}

/// A gateway caller for a verified session, with the context keys the session defines
/// (session tags, MFA, token issue time, source identity).
fn session_caller(
    s: crate::session::SessionPrincipal,
    token: String,
    now: chrono::DateTime<chrono::Utc>,
) -> GatewayCaller {
    let req = s.request("", "", now);
    GatewayCaller {
        arn: s.claims.principal_arn.clone(),
        account_id: s.principal.info.account_id.clone(),
        principal: Some(s.principal.clone()),
        session_policy: s.session_policy.clone(),
        context: req
            .context
            .iter()
            .filter_map(|(k, v)| v.as_slice().first().map(|x| (k.to_owned(), x.clone())))
            .collect(),
        source: CallerSource::Session { token },
        role_arn: s.claims.role_arn.clone(),
        session_budget: Some(SessionBudget {
            key: s.claims.access_key_id.clone(),
            limits: session_limits(&s.claims.tags),
        }),
    }
}

async fn to_gateway_caller(
    state: &AppState,
    caller: Caller,
) -> Result<GatewayCaller, GatewayError> {
    match &caller {
        // Sessions are resolved with their token above; an unsigned caller never reaches
        // the gateway.
        Caller::AssumedRole { .. } | Caller::Anonymous { .. } => Err(invalid_key()),
        Caller::Root { account_id } => Ok(GatewayCaller {
            arn: caller.arn(String::new),
            account_id: account_id.clone(),
            principal: None,
            session_policy: None,
            context: Vec::new(),
            source: CallerSource::Root,
            role_arn: None,
            session_budget: None,
        }),
        Caller::User {
            account_id,
            user_name,
            access_key_id,
        } => {
            let p = state
                .user_policies(account_id, user_name)
                .await
                .map_err(|e| {
                    if e.status.is_server_error() {
                        GatewayError::internal()
                    } else {
                        GatewayError::denied("The caller's policies could not be evaluated.")
                    }
                })?;
            Ok(GatewayCaller {
                arn: p.info.principal_arn.clone(),
                account_id: account_id.clone(),
                principal: Some(p),
                session_policy: None,
                // Long-term keys carry no MFA keys, as in AWS: `aws:MultiFactorAuthPresent`
                // is absent, so `BoolIfExists` policies treat them as without MFA.
                context: Vec::new(),
                source: CallerSource::User {
                    account_id: account_id.clone(),
                    user_name: user_name.clone(),
                    access_key_id: access_key_id.clone(),
                },
                role_arn: None,
                session_budget: None,
            })
        }
    }
}

/// Loads a caller again with what the store says now (key status, policies, session
/// validity), so that a revocation made while a stream runs reaches it.
pub async fn refresh(
    state: &AppState,
    caller: &GatewayCaller,
) -> Result<GatewayCaller, GatewayError> {
    match &caller.source {
        CallerSource::Root => Ok(caller.clone()),
        CallerSource::Session { token } => resolve_session_token(state, token).await,
        CallerSource::User {
            account_id,
            user_name,
            access_key_id,
        } => {
            match state.store.access_key_for_auth(access_key_id).await {
                Ok((k, _)) if k.status == gatehouse_store::AccessKeyStatus::Active => {}
                Ok(_) | Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => {
                    return Err(invalid_key());
                }
                Err(e) => {
                    tracing::error!(error = %e, "access key lookup failed");
                    return Err(GatewayError::internal());
                }
            }
            to_gateway_caller(
                state,
                Caller::User {
                    account_id: account_id.clone(),
                    user_name: user_name.clone(),
                    access_key_id: access_key_id.clone(),
                },
            )
            .await
        }
    }
}
