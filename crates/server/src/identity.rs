//! Authentication: who signed this request?
//!
//! SigV4 is verified by `gatehouse-auth`; this module finds the secret it needs. Long-term
//! access keys (`AKIA...`) are looked up in the store (their secret is sealed there); the
//! bootstrap root key comes from the server's configuration; temporary keys (`ASIA...`)
//! carry their sealed secret inside the session token and are verified without the store.

use crate::error::ApiError;
use axum::http::HeaderMap;
use gatehouse_auth::Secret;
use gatehouse_auth::sigv4::{self, LookupError, ResolvedCredential, VerifyOptions};

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
}

impl Caller {
    /// The caller's ARN.
    pub fn arn(&self, user_arn: impl FnOnce() -> String) -> String {
        match self {
            Caller::Root { account_id } => {
                format!("arn:{}:iam::{account_id}:root", gatehouse_store::PARTITION)
            }
            Caller::User { .. } => user_arn(),
        }
    }

    /// The caller's account.
    pub fn account_id(&self) -> &str {
        match self {
            Caller::Root { account_id } | Caller::User { account_id, .. } => account_id,
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

/// Verifies the request's signature against a secret fetched beforehand; returns the
/// caller and the signature's facts (service and region of the credential scope).
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    fetched: Option<(String, Secret, Caller)>,
) -> Result<(Caller, sigv4::SigV4Identity), ApiError> {
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
    let lookup =
        |key_id: &str, token: Option<&str>| -> Result<ResolvedCredential<Caller>, LookupError> {
            match &fetched {
                Some((id, secret, caller)) if id == key_id => {
                    if token.is_some() {
                        return Err(LookupError::InvalidSessionToken);
                    }
                    Ok(ResolvedCredential {
                        secret: secret.clone(),
                        context: caller.clone(),
                    })
                }
                _ => Err(LookupError::UnknownAccessKey),
            }
        };
    let verified = sigv4::verify(&req, &lookup, chrono::Utc::now(), &VerifyOptions::default())?;
    Ok((verified.context, verified.identity))
}
