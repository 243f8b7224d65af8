//! Authorization codes: issued after the person signed in, redeemed once at the token
//! endpoint. A code is 256 random bits; the store keeps only its SHA-256, with what it
//! is bound to — client, redirect URI, resource, PKCE challenge — and what redeeming it
//! mints. It lives [`CODE_TTL_SECS`]; redeeming takes it out of the store whatever the
//! outcome, so a code that met a wrong verifier or redirect URI cannot be tried again.

use crate::error::SigninError;
use crate::oauth::{AuthorizationRequest, OAuthError, single, verify_pkce_s256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_store::{NewAuthorizationCode, Store, Timestamp};
use sha2::{Digest as _, Sha256};

/// How long a code may wait for its redemption, in seconds (RFC 6749 §4.1.2 recommends
/// at most 10 minutes; a loopback client redeems within a second).
pub const CODE_TTL_SECS: i64 = 60;

fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Issues a code for a checked authorization request; `grant_json` is what redeeming it
/// mints. Returns the code, which is never stored.
pub async fn issue_code(
    store: &Store,
    request: &AuthorizationRequest,
    grant_json: String,
    now: Timestamp,
) -> Result<String, SigninError> {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    let code = URL_SAFE_NO_PAD.encode(bytes);
    store
        .put_authorization_code(
            &NewAuthorizationCode {
                code_hash: code_hash(&code),
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                resource: request.resource.clone(),
                code_challenge: request.code_challenge.clone(),
                grant_json,
                expires: now + chrono::Duration::seconds(CODE_TTL_SECS),
            },
            now,
        )
        .await?;
    Ok(code)
}

/// An `authorization_code` token request (RFC 6749 §4.1.3 with PKCE and RFC 8707).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTokenRequest {
    /// The code.
    pub code: String,
    /// The client (public clients name themselves).
    pub client_id: String,
    /// The redirect URI of the authorization request, exactly.
    pub redirect_uri: String,
    /// The PKCE verifier.
    pub code_verifier: String,
    /// The resource, when the authorization request named one (it must be the same).
    pub resource: Option<String>,
}

impl CodeTokenRequest {
    /// Reads the token endpoint's form parameters (a parameter given twice is refused).
    pub fn from_form(params: &[(String, String)]) -> Result<CodeTokenRequest, OAuthError> {
        let one = |name: &str| single(params, name);
        let need = |name: &str| {
            one(name)?.ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
        };
        match one("grant_type")?.as_deref() {
            Some("authorization_code") => {}
            Some(other) => return Err(OAuthError::unsupported_grant_type(other)),
            None => return Err(OAuthError::invalid_request("grant_type is missing")),
        }
        Ok(CodeTokenRequest {
            code: need("code")?,
            client_id: need("client_id")?,
            redirect_uri: need("redirect_uri")?,
            code_verifier: need("code_verifier")?,
            resource: one("resource")?,
        })
    }
}

/// Redeems a code: taken from the store (once), then checked — not expired at `now`,
/// issued to this client, for this redirect URI and resource, and the verifier matches
/// the challenge. Returns what the code mints.
pub async fn redeem_code(
    store: &Store,
    request: &CodeTokenRequest,
    now: Timestamp,
) -> Result<String, SigninError> {
    let Some(stored) = store
        .take_authorization_code(&code_hash(&request.code))
        .await?
    else {
        return Err(OAuthError::invalid_grant("the code is unknown, used or expired").into());
    };
    if stored.expires <= now {
        return Err(OAuthError::invalid_grant("the code is unknown, used or expired").into());
    }
    if stored.client_id != request.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client").into());
    }
    if stored.redirect_uri != request.redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        )
        .into());
    }
    if stored.resource != request.resource {
        return Err(
            OAuthError::invalid_grant("resource differs from the authorization request's").into(),
        );
    }
    verify_pkce_s256(&request.code_verifier, &stored.code_challenge)?;
    Ok(stored.grant_json)
}
