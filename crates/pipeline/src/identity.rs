//! Authentication: who signed this request?
//!
//! SigV4 is verified by `gatehouse-auth`; this module finds the secret it needs. Long-term
//! access keys (`AKIA...`) are looked up in the store (their secret is sealed there); the
//! bootstrap root key comes from the server's configuration; temporary keys (`ASIA...`)
//! carry their sealed secret inside the session token and are verified without the store.

use crate::error::PipelineError;
use gatehouse_auth::Secret;
use gatehouse_auth::session::{self, SessionClaims, SigningKeyRing};
use gatehouse_auth::sigv4::{self, LookupError, ResolvedCredential, VerifyOptions};
use http::HeaderMap;

/// The party that signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The bootstrap root credentials of an account.
    Root {
        /// The account.
        account_id: String,
    },
    /// An IAM user, through one of its access keys.
    User {
        /// The account.
        account_id: String,
        /// The user's name.
        user_name: String,
        /// The access key used.
        access_key_id: String,
    },
    /// A role session (`AssumeRole`, `AssumeRoleWithWebIdentity`): temporary credentials
    /// whose session token names the role.
    AssumedRole {
        /// The role's account.
        account_id: String,
        /// The role's name.
        role_name: String,
        /// `RoleSessionName`.
        session_name: String,
    },
    /// An unsigned request, for the actions that authenticate with a token of their own
    /// (`AssumeRoleWithWebIdentity`). Never authorized for anything else.
    Anonymous {
        /// The default account.
        account_id: String,
    },
}

/// A verified request: who signed it, and the session token's claims when temporary
/// credentials were used.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The caller.
    pub caller: Caller,
    /// The session's claims (`ASIA...` keys only).
    pub session: Option<SessionClaims>,
}

/// The caller a session's claims describe: a role session or a user's
/// `GetSessionToken` session.
pub fn caller_of_session(claims: &SessionClaims) -> Caller {
    if let (Some(role_arn), Some(session_name)) = (&claims.role_arn, &claims.session_name) {
        let role_name = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
        return Caller::AssumedRole {
            account_id: claims.account.clone(),
            role_name,
            session_name: session_name.clone(),
        };
    }
    let user_name = claims
        .principal_arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    Caller::User {
        account_id: claims.account.clone(),
        user_name,
        access_key_id: claims.access_key_id.clone(),
    }
}

impl Caller {
    /// The caller's ARN.
    pub fn arn(&self, user_arn: impl FnOnce() -> String) -> String {
        match self {
            Caller::Root { account_id } => {
                format!("arn:{}:iam::{account_id}:root", gatehouse_store::PARTITION)
            }
            Caller::User { .. } | Caller::AssumedRole { .. } => user_arn(),
            Caller::Anonymous { .. } => "anonymous".to_owned(),
        }
    }

    /// The caller's account.
    pub fn account_id(&self) -> &str {
        match self {
            Caller::Root { account_id }
            | Caller::User { account_id, .. }
            | Caller::AssumedRole { account_id, .. }
            | Caller::Anonymous { account_id } => account_id,
        }
    }
}

/// The access key id a request claims, read without verifying anything (to fetch its
/// secret before verification, which is synchronous).
pub fn claimed_access_key(headers: &HeaderMap, query: &str) -> Option<String> {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    from_header.or_else(|| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .and_then(|(_, v)| v.split('/').next().map(str::to_owned))
    })
}

/// Verifies the request's signature against a secret fetched beforehand, or, for
/// temporary (`ASIA...`) keys, against the secret sealed in the session token (checked
/// with `ring`, no store access). Returns the caller and the signature's facts (service and
/// region of the credential scope).
///
/// `service` is the one service the addressed API answers for (`iam`, `sts`, `ai`): a
/// signature scoped to another is refused, as AWS refuses an IAM call signed for STS.
/// `UNSIGNED-PAYLOAD` is refused (the Query APIs' parameters may be in the body).
#[allow(clippy::too_many_arguments)]
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    fetched: Option<(String, Secret, Caller)>,
    ring: &SigningKeyRing,
    service: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Authenticated, sigv4::SigV4Identity), PipelineError> {
    let opts = VerifyOptions::with_services([service]);
    verify_with(
        method, path, query, headers, body, fetched, ring, &opts, now,
    )
}

/// [`verify`] before the body is read: the request must declare the body's SHA-256 in a
/// signed `x-amz-content-sha256` header ([`VerifyOptions::body_follows`]), and the caller
/// checks the body against it once read ([`sigv4::declared_payload_matches`]).
#[allow(clippy::too_many_arguments)]
pub fn verify_before_body(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    fetched: Option<(String, Secret, Caller)>,
    ring: &SigningKeyRing,
    service: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Authenticated, sigv4::SigV4Identity), PipelineError> {
    let opts = VerifyOptions {
        body_follows: true,
        ..VerifyOptions::with_services([service])
    };
    verify_with(method, path, query, headers, b"", fetched, ring, &opts, now)
}

#[allow(clippy::too_many_arguments)]
fn verify_with(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    fetched: Option<(String, Secret, Caller)>,
    ring: &SigningKeyRing,
    opts: &VerifyOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Authenticated, sigv4::SigV4Identity), PipelineError> {
    let header_pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let req = sigv4::Request {
        method,
        path,
        query,
        headers: &header_pairs,
        body,
    };
    let lookup = |key_id: &str,
                  token: Option<&str>|
     -> Result<ResolvedCredential<Authenticated>, LookupError> {
        if session::is_temporary_access_key_id(key_id) {
            let r = session::resolve_for_sigv4(ring, key_id, token, now)?;
            return Ok(ResolvedCredential {
                secret: r.secret,
                context: Authenticated {
                    caller: caller_of_session(&r.context),
                    session: Some(r.context),
                },
            });
        }
        match &fetched {
            Some((id, secret, caller)) if id == key_id => {
                if token.is_some() {
                    return Err(LookupError::InvalidSessionToken);
                }
                Ok(ResolvedCredential {
                    secret: secret.clone(),
                    context: Authenticated {
                        caller: caller.clone(),
                        session: None,
                    },
                })
            }
            _ => Err(LookupError::UnknownAccessKey),
        }
    };
    let verified = sigv4::verify(&req, &lookup, now, opts)?;
    Ok((verified.context, verified.identity))
}
