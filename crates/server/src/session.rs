//! Sessions on the server side: the signing key ring kept (sealed) in the store, and the
//! resolution of a session token into a principal the policy engine can decide for.
//!
//! `gatehouse-auth` verifies a session token without I/O; what it cannot know is what the
//! role allows *now*. This module joins the two: a verified token's claims plus the role's
//! compiled policies (cached per store generation, so a policy change or a revocation made
//! on any node reaches every node) plus the session policies carried in the token (compiled
//! once per session). The gateway authenticates `Authorization: Bearer <SessionToken>` with
//! [`authenticate_bearer`] and decides with [`SessionPrincipal::evaluation`].
//!
//! Revocation follows AWS's `aws:TokenIssueTime` approach: `gatehouse admin
//! revoke-sessions --role NAME` attaches an inline deny policy to the role that refuses
//! every session issued before that moment; it is an ordinary policy change, so every node
//! applies it as soon as it sees the new store generation.

use crate::AppState;
use crate::authz::CompiledPrincipal;
use crate::error::ApiError;
use axum::http::StatusCode;
use gatehouse_auth::session::{self, SessionClaims, SessionError, SigningKeyRing};
use gatehouse_policy::{Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request};
use gatehouse_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The meta key holding the session-token signing keys (sealed).
const RING_META_KEY: &str = "sts/signing-key-ring";
/// The name of the inline role policy `revoke-sessions` writes (AWS uses the same idea).
pub const REVOKE_POLICY_NAME: &str = "GatehouseRevokeOlderSessions";
/// Compiled session policies kept at most (then the cache starts over).
const SESSION_CACHE_MAX: usize = 8192;

#[derive(Serialize, Deserialize)]
struct StoredRing {
    active: String,
    keys: BTreeMap<String, String>,
}

/// Why the key ring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored ring is not what this version wrote.
    #[error("the stored signing key ring is corrupt: {0}")]
    Corrupt(String),
}

fn ring_text(text: &gatehouse_store::Secret) -> Result<&str, RingError> {
    text.expose_str()
        .ok_or_else(|| RingError::Corrupt("not UTF-8".into()))
}

fn decode_ring(text: &str) -> Result<SigningKeyRing, RingError> {
    let stored: StoredRing =
        serde_json::from_str(text).map_err(|e| RingError::Corrupt(e.to_string()))?;
    let mut ring: Option<SigningKeyRing> = None;
    for (kid, hex_key) in &stored.keys {
        let raw = hex::decode(hex_key).map_err(|e| RingError::Corrupt(e.to_string()))?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| RingError::Corrupt("key is not 32 bytes".into()))?;
        match &mut ring {
            None => {
                ring = Some(
                    SigningKeyRing::new(kid.clone(), key)
                        .map_err(|e| RingError::Corrupt(e.to_string()))?,
                );
            }
            Some(r) => r
                .insert(kid.clone(), key)
                .map_err(|e| RingError::Corrupt(e.to_string()))?,
        }
    }
    let mut ring = ring.ok_or_else(|| RingError::Corrupt("no keys".into()))?;
    ring.set_active(&stored.active)
        .map_err(|e| RingError::Corrupt(e.to_string()))?;
    Ok(ring)
}

fn encode_ring(ring: &SigningKeyRing) -> String {
    let keys = ring
        .kids()
        .filter_map(|kid| {
            ring.export_key(kid)
                .map(|k| (kid.to_owned(), hex::encode(k.expose())))
        })
        .collect();
    let stored = StoredRing {
        active: ring.active_kid().to_owned(),
        keys,
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The ring every node signs and verifies session tokens with, kept sealed in the store;
/// created on first start. Reading it back after writing makes two nodes starting at once
/// settle on the ring that was written last.
pub async fn load_or_create_ring(store: &Store) -> Result<SigningKeyRing, RingError> {
    if let Some(text) = store.get_meta_secret(RING_META_KEY).await? {
        return decode_ring(ring_text(&text)?);
    }
    let ring = SigningKeyRing::generate();
    let text = gatehouse_store::Secret::new(encode_ring(&ring));
    store.put_meta_secret(RING_META_KEY, &text).await?;
    match store.get_meta_secret(RING_META_KEY).await? {
        Some(text) => decode_ring(ring_text(&text)?),
        None => Ok(ring),
    }
}

/// Adds a new signing key to the ring kept in the store and makes it the one new sessions
/// are signed with; returns its kid. Older keys stay, so live sessions keep verifying. The
/// write bumps the store's generation, and every node reloads the ring when it sees that
/// (within a second).
pub async fn rotate_ring(store: &Store) -> Result<String, RingError> {
    let mut ring = load_or_create_ring(store).await?;
    let kid = ring.rotate();
    let text = gatehouse_store::Secret::new(encode_ring(&ring));
    store.put_meta_secret(RING_META_KEY, &text).await?;
    Ok(kid)
}

/// Session policies compiled once per session (keyed by the temporary access key id,
/// which is unique and bound to the token by its MAC).
#[derive(Debug, Default)]
pub struct SessionPolicyCache {
    inner: Mutex<HashMap<String, Arc<PolicySet>>>,
}

impl SessionPolicyCache {
    fn get_or_compile(&self, claims: &SessionClaims) -> Result<Option<Arc<PolicySet>>, ApiError> {
        if claims.session_policies.is_empty() {
            return Ok(None);
        }
        if let Ok(m) = self.inner.lock()
            && let Some(s) = m.get(&claims.access_key_id)
        {
            return Ok(Some(Arc::clone(s)));
        }
        let set = Arc::new(compile_session_policies(&claims.session_policies)?);
        if let Ok(mut m) = self.inner.lock() {
            if m.len() >= SESSION_CACHE_MAX {
                m.clear();
            }
            m.insert(claims.access_key_id.clone(), Arc::clone(&set));
        }
        Ok(Some(set))
    }
}

/// Compiles session policy documents into one set: AWS intersects the role's permissions
/// with the union of the inline and managed session policies.
pub fn compile_session_policies(docs: &[String]) -> Result<PolicySet, ApiError> {
    let named = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            PolicyDocument::parse(d)
                .map(|doc| NamedPolicy::new(format!("session-policy-{}", i + 1), doc))
                .map_err(|e| ApiError::malformed_policy(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    PolicySet::new(PolicyType::Session, named)
        .map_err(|e| ApiError::malformed_policy(e.to_string()))
}

/// A verified session, ready for decisions: its claims, the compiled policies of its role
/// (or user, for `GetSessionToken` sessions) and its session policies.
#[derive(Debug, Clone)]
pub struct SessionPrincipal {
    /// What the token asserts.
    pub claims: SessionClaims,
    /// The role's (or user's) compiled policies, boundary and guardrails.
    pub principal: Arc<CompiledPrincipal>,
    /// The just-in-time grant the session was opened under (the latest of a chain), as
    /// active now: every call of the session carries its `gatehouse:Elevation*` keys and
    /// its id in the audit record.
    pub elevation: Option<gatehouse_store::ActiveElevation>,
    /// The session policies, when the session was created with any.
    pub session_policy: Option<Arc<PolicySet>>,
}

impl SessionPrincipal {
    /// The policies a decision for this session uses: the role's identity policies,
    /// boundary and guardrails, intersected with the session policies.
    pub fn evaluation<'a>(&'a self, resource: Option<&'a PolicySet>) -> Evaluation<'a> {
        self.principal
            .evaluation(resource, self.session_policy.as_deref())
    }

    /// A decision request for this session with every context key the session defines
    /// (`aws:PrincipalTag/K` from session tags, then role tags; `aws:TokenIssueTime`,
    /// `aws:MultiFactorAuth*`, `aws:SourceIdentity`, `aws:userid`, `aws:PrincipalArn`...).
    pub fn request(
        &self,
        action: &str,
        resource: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Request {
        let mut req = Request::new(self.claims.principal_arn.clone(), action, resource);
        self.fill_context(&mut req, now);
        self.principal.fill_context(&mut req);
        req
    }

    /// Adds the context keys the session defines ([`fill_session_context`]) and those of
    /// the grant it was opened under.
    pub fn fill_context(&self, req: &mut Request, now: chrono::DateTime<chrono::Utc>) {
        fill_session_context(req, &self.claims, now);
        if let Some(grant) = &self.elevation {
            crate::authz::insert_elevation_keys(req, grant);
        }
    }

    /// The id of the grant the session was opened under, if any.
    pub fn elevation_id(&self) -> Option<&str> {
        self.elevation.as_ref().map(|g| g.request_id.as_str())
    }
}

/// Adds the context keys a session defines. Session tags go in first so that they win over
/// the role's own tags of the same key, as in AWS.
pub fn fill_session_context(
    req: &mut Request,
    claims: &SessionClaims,
    now: chrono::DateTime<chrono::Utc>,
) {
    let ctx = &mut req.context;
    for (k, v) in &claims.tags {
        ctx.insert(format!("aws:PrincipalTag/{k}"), v.as_str());
    }
    if !claims.principal_id.is_empty() {
        ctx.insert("aws:userid", claims.principal_id.as_str());
    }
    ctx.insert(
        "aws:TokenIssueTime",
        claims
            .issued_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    ctx.insert(
        "aws:MultiFactorAuthPresent",
        if claims.mfa_present { "true" } else { "false" },
    );
    if let Some(age) = claims.mfa_age_secs(now) {
        ctx.insert("aws:MultiFactorAuthAge", age.to_string());
    }
    if let Some(si) = &claims.source_identity {
        ctx.insert("aws:SourceIdentity", si.as_str());
    }
    ctx.insert(
        "aws:PrincipalType",
        if claims.role_arn.is_some() {
            "AssumedRole"
        } else {
            "User"
        },
    );
}

fn token_error(e: SessionError) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, e.aws_code(), e.to_string())
}

/// The session behind verified claims: loads (or reuses) the compiled policies of its role
/// or user and its session policies. A session whose role or user no longer exists — or
/// whose name now belongs to another principal (the token's unique id differs) — is
/// refused as an invalid token.
pub async fn session_principal(
    state: &AppState,
    claims: SessionClaims,
) -> Result<SessionPrincipal, ApiError> {
    let principal = match crate::identity::caller_of_session(&claims) {
        crate::identity::Caller::AssumedRole {
            account_id,
            role_name,
            ..
        } => state.role_policies(&account_id, &role_name).await,
        crate::identity::Caller::User {
            account_id,
            user_name,
            ..
        } => state.user_policies(&account_id, &user_name).await,
        crate::identity::Caller::Root { .. } | crate::identity::Caller::Anonymous { .. } => {
            Err(token_error(SessionError::Malformed))
        }
    }
    .map_err(|e| {
        if e.code == "NoSuchEntity" {
            token_error(SessionError::Malformed)
        } else {
            e
        }
    })?;
    // A name can be reused; a unique id cannot. A session whose principal was deleted and
    // created again (same name, maybe another trust policy, wider permissions, none of
    // the old revocations) belongs to nobody who exists. The compiled principal comes
    // from the cache, so this costs no store round trip.
    let bound = claims.principal_unique_id();
    if bound.is_empty() || bound != principal.info.principal_id {
        tracing::info!(
            principal = claims.principal_arn,
            access_key_id = claims.access_key_id,
            "session token of a principal that no longer exists; refused"
        );
        return Err(token_error(SessionError::Malformed));
    }
    let mut elevation = None;
    for e in &claims.elevations {
        elevation = Some(require_elevation(state, &claims, e).await?);
    }
    let session_policy = state.session_policies.get_or_compile(&claims)?;
    Ok(SessionPrincipal {
        claims,
        principal,
        elevation,
        session_policy,
    })
}

/// Refuses a session opened under a just-in-time grant that is no longer active at the
/// node's clock: revoked (the store generation moved, so the requester's policies are
/// compiled again, here and on every other node) or past its window. The grant is looked
/// up in the requester's compiled policies, which the cache holds, so a live session costs
/// no store round trip. Any failure to find it is a refusal (fail closed).
async fn require_elevation(
    state: &AppState,
    claims: &SessionClaims,
    e: &session::SessionElevation,
) -> Result<gatehouse_store::ActiveElevation, ApiError> {
    let ended = || {
        tracing::info!(
            principal = claims.principal_arn,
            access_key_id = claims.access_key_id,
            elevation = e.request_id,
            "session opened under a just-in-time grant that has ended; refused"
        );
        ApiError::new(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            format!(
                "The security token included in the request is expired: the session was opened under the just-in-time elevation {}, which has ended (revoked or its window is over).",
                e.request_id
            ),
        )
    };
    let Some((account, kind, name)) = split_principal_arn(&e.principal_arn) else {
        return Err(ended());
    };
    let requester = match kind {
        "user" => state.user_policies(account, name).await,
        "role" => state.role_policies(account, name).await,
        _ => return Err(ended()),
    };
    let requester = match requester {
        Ok(p) => p,
        Err(err) if err.code == "NoSuchEntity" => return Err(ended()),
        Err(err) => return Err(err),
    };
    if requester.info.principal_id != e.principal_id {
        return Err(ended());
    }
    requester
        .elevation(&e.request_id, state.clock.now())
        .cloned()
        .ok_or_else(ended)
}

/// `arn:gatehouse:iam::ACCOUNT:KIND/PATH/NAME` as (account, kind, name).
fn split_principal_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:gatehouse:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let (kind, path_name) = resource.split_once('/')?;
    let name = path_name.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some((account, kind, name))
}

/// Resolves a session token presented alone (`Authorization: Bearer <SessionToken>`, as
/// OpenAI-compatible clients send it) to the same identity SigV4 with the temporary
/// credentials would give: signature and expiry checked with the node's key ring (no store
/// round trip), then the role's current policies attached (cached per store generation).
///
/// Errors are `ExpiredToken` (403) for an expired session and `InvalidClientTokenId` (403)
/// for anything forged, tampered, unknown or whose role is gone. A revoked session still
/// resolves: its role's revocation policy denies every action it attempts.
pub async fn authenticate_bearer(
    state: &AppState,
    token: &str,
) -> Result<SessionPrincipal, ApiError> {
    let verified = session::verify(&state.ring(), token, state.clock.now()).map_err(token_error)?;
    session_principal(state, verified.claims).await
}

/// The policy `revoke-sessions` attaches to a role: deny everything to sessions issued
/// before `before`.
pub fn revoke_policy(before: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "RevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {
                "aws:TokenIssueTime": before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }}
        }]
    })
    .to_string()
}

/// Ends every session of a role issued before now, on every node (see the module docs).
pub async fn revoke_role_sessions(
    store: &Store,
    account: &str,
    role_name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    store
        .put_inline_policy(
            account,
            gatehouse_store::PrincipalKind::Role,
            role_name,
            REVOKE_POLICY_NAME,
            &revoke_policy(now),
        )
        .await?;
    Ok(now)
}
