//! OpenID Connect web identity: validating a token issued by a registered provider, for
//! `AssumeRoleWithWebIdentity`.
//!
//! The provider is found by the token's `iss` among the role account's registered
//! providers. Its keys come from its discovery document's `jwks_uri` (or from an inline
//! JWKS registered with it, for issuers Gatehouse cannot reach), cached for an hour and
//! fetched again when a token names a `kid` the cache does not have (rate-limited, so
//! tokens with made-up key ids cannot make Gatehouse hammer the provider). Only asymmetric
//! signatures are accepted (RS256, ES256, EdDSA): `none` does not parse as an algorithm,
//! and HMAC would make the provider's public data a signing key. `iss`, `aud` (one of the
//! provider's client ids), `exp`, `nbf` and `iat` are checked with a bounded clock skew.
//!
//! Errors carry AWS's codes: `ExpiredTokenException` for an expired token,
//! `IDPRejectedClaim` for a token whose claims are unusable (no `sub`, issued in the
//! future, not yet valid), `InvalidIdentityToken` for everything else.

use crate::error::ApiError;
use axum::http::StatusCode;
use gatehouse_store::OidcProvider;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const MAX_SKEW_SECS: u64 = 60;
/// How long fetched keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches for one issuer caused by unknown key ids.
const REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The largest web identity token accepted (AWS: 20,000 characters).
pub const MAX_TOKEN_LEN: usize = 20_000;

/// What a valid token asserts, ready for the trust policy.
#[derive(Debug, Clone)]
pub struct WebIdentity {
    /// The provider that issued it.
    pub provider_arn: String,
    /// The issuer without its scheme: the prefix of the condition keys (`ISSUER:sub`).
    pub issuer_key: String,
    /// `sub`.
    pub subject: String,
    /// The audience that matched one of the provider's client ids.
    pub audience: String,
    /// Condition keys from the claims: `ISSUER:sub`, `ISSUER:aud`, `ISSUER:amr` and every
    /// other top-level claim that is a string or a list of strings.
    pub condition_keys: Vec<(String, Vec<String>)>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidIdentityToken", msg)
}

fn rejected(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "IDPRejectedClaim", msg)
}

fn expired() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "ExpiredTokenException",
        "Token expired: current date/time is after the token's exp claim (allowing for clock skew).",
    )
}

struct Cached {
    keys: JwkSet,
    fetched: Instant,
}

/// Key sets per issuer, and the HTTP client that fetches them.
#[derive(Default)]
pub struct JwksCache {
    http: reqwest::Client,
    sets: Mutex<HashMap<String, std::sync::Arc<Cached>>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").finish_non_exhaustive()
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("fetching {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("fetching {url}: HTTP {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!("{url}: document too large"));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("{url}: document too large"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

impl JwksCache {
    async fn fetch(&self, provider: &OidcProvider) -> Result<JwkSet, String> {
        if let Some(inline) = &provider.jwks {
            return serde_json::from_str(inline).map_err(|e| format!("inline JWKS: {e}"));
        }
        let discovery_url = format!("{}/.well-known/openid-configuration", provider.url);
        let discovery = get_json(&self.http, &discovery_url).await?;
        let issuer = discovery.get("issuer").and_then(Value::as_str);
        if issuer.map(|i| i.trim_end_matches('/')) != Some(provider.url.as_str()) {
            return Err(format!(
                "the discovery document's issuer {issuer:?} is not {}",
                provider.url
            ));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        let set = get_json(&self.http, jwks_uri).await?;
        serde_json::from_value(set).map_err(|e| format!("{jwks_uri}: not a JWKS: {e}"))
    }

    /// The key for `kid` (or the only key usable with `alg` when the token names none),
    /// fetching the provider's keys when they are not cached, are stale, or lack `kid`.
    async fn key_for(
        &self,
        provider: &OidcProvider,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk, ApiError> {
        let cached = self
            .sets
            .lock()
            .ok()
            .and_then(|m| m.get(&provider.arn).cloned());
        if let Some(c) = &cached
            && c.fetched.elapsed() < JWKS_TTL
            && let Some(k) = pick(&c.keys, kid, alg)
        {
            return Ok(k);
        }
        if let Some(c) = &cached
            && c.fetched.elapsed() < REFETCH_MIN_INTERVAL
        {
            return Err(invalid(
                "The token's signing key is not one of the provider's keys.",
            ));
        }
        let keys = self.fetch(provider).await.map_err(|e| {
            tracing::warn!(provider = provider.arn, error = %e, "could not fetch the provider's keys");
            invalid("Couldn't retrieve verification key from your identity provider.")
        })?;
        let found = pick(&keys, kid, alg);
        if let Ok(mut m) = self.sets.lock() {
            m.insert(
                provider.arn.clone(),
                std::sync::Arc::new(Cached {
                    keys,
                    fetched: Instant::now(),
                }),
            );
        }
        found.ok_or_else(|| invalid("The token's signing key is not one of the provider's keys."))
    }
}

fn pick(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    match kid {
        Some(k) => set.find(k).cloned(),
        None => {
            let usable: Vec<&Jwk> = set
                .keys
                .iter()
                .filter(|k| {
                    k.common
                        .key_algorithm
                        .is_none_or(|a| a.to_string() == format!("{alg:?}"))
                })
                .collect();
            match usable.as_slice() {
                [only] => Some((*only).clone()),
                _ => None,
            }
        }
    }
}

/// The `iss` of a token, read before its signature is checked (to find the provider).
fn unverified_issuer(token: &str) -> Result<String, ApiError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("The web identity token is not a JWT."))?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .map_err(|_| invalid("The web identity token is not a JWT."))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| invalid("The web identity token is not a JWT."))?;
    v.get("iss")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_owned())
        .ok_or_else(|| invalid("The web identity token has no iss claim."))
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// Validates a web identity token against the providers registered in `account`.
pub async fn validate(
    cache: &JwksCache,
    providers: &[OidcProvider],
    token: &str,
) -> Result<WebIdentity, ApiError> {
    if token.len() > MAX_TOKEN_LEN || token.is_empty() {
        return Err(invalid(
            "The web identity token must be 1 to 20000 characters.",
        ));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        invalid("The web identity token's header is not valid (or its alg is not allowed).")
    })?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
    ) {
        return Err(invalid(format!(
            "The web identity token is signed with {:?}; only RS256, ES256 and EdDSA are accepted.",
            header.alg
        )));
    }
    let iss = unverified_issuer(token)?;
    let provider = providers.iter().find(|p| p.url == iss).ok_or_else(|| {
        invalid(format!(
            "No OpenIDConnect provider found in your account for {iss}"
        ))
    })?;
    if provider.client_ids.is_empty() {
        return Err(invalid(
            "The provider has no client ids: no audience is accepted.",
        ));
    }
    let jwk = cache
        .key_for(provider, header.kid.as_deref(), header.alg)
        .await?;
    let key =
        DecodingKey::from_jwk(&jwk).map_err(|_| invalid("The provider's key is not usable."))?;
    let mut v = Validation::new(header.alg);
    v.leeway = MAX_SKEW_SECS;
    v.validate_nbf = true;
    v.set_issuer(&[provider.url.as_str(), &format!("{}/", provider.url)]);
    v.set_audience(&provider.client_ids);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => expired(),
            K::ImmatureSignature => rejected("The token is not yet valid (nbf)."),
            K::InvalidAudience => invalid("Incorrect token audience."),
            K::InvalidIssuer => invalid("Incorrect token issuer."),
            K::MissingRequiredClaim(c) => rejected(format!("The token has no {c} claim.")),
            K::InvalidSignature => invalid("The token's signature is not valid."),
            _ => invalid("The web identity token is not valid."),
        }
    })?;
    let claims = data.claims;
    let now = chrono::Utc::now().timestamp();
    let skew = i64::try_from(MAX_SKEW_SECS).unwrap_or(60);
    match claims.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= now + skew => {}
        Some(_) => return Err(rejected("The token was issued in the future (iat).")),
        None => return Err(rejected("The token's iat claim is not a number.")),
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| rejected("The token's sub claim is empty."))?
        .to_owned();
    let auds = claims.get("aud").and_then(strings).unwrap_or_default();
    let audience = auds
        .iter()
        .find(|a| provider.client_ids.contains(a))
        .cloned()
        .ok_or_else(|| invalid("Incorrect token audience."))?;
    let issuer_key = provider
        .url
        .split_once("://")
        .map_or(provider.url.as_str(), |(_, rest)| rest)
        .to_owned();
    let mut condition_keys = Vec::new();
    if let Value::Object(map) = &claims {
        for (k, val) in map {
            if matches!(k.as_str(), "exp" | "iat" | "nbf" | "aud") {
                continue;
            }
            if let Some(vals) = strings(val) {
                condition_keys.push((format!("{issuer_key}:{k}"), vals));
            }
        }
    }
    condition_keys.push((format!("{issuer_key}:aud"), vec![audience.clone()]));
    Ok(WebIdentity {
        provider_arn: provider.arn.clone(),
        issuer_key,
        subject,
        audience,
        condition_keys,
    })
}
