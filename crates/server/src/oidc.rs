//! OpenID Connect web identity: validating a token issued by a registered provider, for
//! `AssumeRoleWithWebIdentity`.
//!
//! The provider is found by the token's `iss` among the role account's registered
//! providers. Its keys come from its discovery document's `jwks_uri` (or from an inline
//! JWKS registered with it, for issuers Gatehouse cannot reach). Fetched keys are trusted
//! for the key set's `Cache-Control: max-age`, bounded to [`MIN_KEYS_TTL`]..[`MAX_KEYS_TTL`]
//! (5 minutes without one), so a key the provider removed stops working within minutes;
//! they are fetched again sooner when a token names a `kid` the cache does not have
//! (rate-limited, so tokens with made-up key ids cannot make Gatehouse hammer the
//! provider). A failed fetch is remembered for [`FAILURE_TTL`] (tokens are refused without
//! asking again), and concurrent fetches for one provider are merged into one, so
//! anonymous callers cannot make Gatehouse hammer a failing provider either; callers whose
//! keys are cached never wait for a fetch. Only asymmetric signatures are accepted
//! (RS256, ES256, EdDSA): `none` does not parse as an algorithm, and HMAC would make the
//! provider's public data a signing key; a key must not say it is for encryption
//! (`use: enc`) or for another algorithm than the token's. `iss`, `aud` (one of the
//! provider's client ids), `exp`, `nbf` and `iat` are checked with a bounded clock skew.
//!
//! Condition keys, as AWS exposes them for web identity federation: `ISSUER:sub`,
//! `ISSUER:aud` (the token's `azp` when it has one, else the audience that matched),
//! `ISSUER:oaud` (the audience that matched), `ISSUER:amr` (multivalued), plus only the
//! claims the provider's registration names in its `gatehouse:claims` tag (e.g.
//! `repository ref job_workflow_ref` for GitHub Actions) when they are strings or lists of
//! strings. A token whose claim names collide ignoring case (`sub` beside `SUB`, or a
//! name twice) is refused, and a claim never replaces a key already set (see `sts.rs`).
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const MAX_SKEW_SECS: u64 = 60;
/// The longest fetched keys are trusted before they are fetched again (also the time
/// without a `Cache-Control: max-age`).
pub const MAX_KEYS_TTL: Duration = Duration::from_secs(300);
/// The shortest, whatever `max-age` says.
pub const MIN_KEYS_TTL: Duration = Duration::from_secs(5);
/// How long a failed discovery or key-set fetch is remembered (no new fetch meanwhile).
pub const FAILURE_TTL: Duration = Duration::from_secs(10);
/// The tag of a provider that names the extra claims exposed as condition keys
/// (space-separated).
pub const CLAIMS_TAG: &str = "gatehouse:claims";
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
    /// Condition keys from the claims: `ISSUER:sub`, `ISSUER:aud`, `ISSUER:oaud`,
    /// `ISSUER:amr` (always a list) and the claims the provider's registration names.
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

/// The outcome of one fetch of a provider's keys.
struct Fetched {
    at: Instant,
    /// The keys and how long to trust them, or why they could not be had.
    keys: Result<(JwkSet, Duration), String>,
}

impl Fetched {
    fn fresh(&self) -> bool {
        match &self.keys {
            Ok((_, ttl)) => self.at.elapsed() < *ttl,
            Err(_) => self.at.elapsed() < FAILURE_TTL,
        }
    }
}

/// One provider's keys: the last fetch (read without waiting) and the lock that lets one
/// fetch run at a time (the others wait for its outcome instead of fetching again).
#[derive(Default)]
struct ProviderKeys {
    last: Mutex<Option<Arc<Fetched>>>,
    fetching: tokio::sync::Mutex<()>,
}

impl ProviderKeys {
    fn last(&self) -> Option<Arc<Fetched>> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

/// Key sets per issuer, and the HTTP client that fetches them.
#[derive(Default)]
pub struct JwksCache {
    http: reqwest::Client,
    providers: Mutex<HashMap<String, Arc<ProviderKeys>>>,
    /// Discovery and key-set requests sent (for tests and metrics).
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").finish_non_exhaustive()
    }
}

/// A document and its `Cache-Control: max-age`, if any.
async fn get_json(http: &reqwest::Client, url: &str) -> Result<(Value, Option<u64>), String> {
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
    let max_age = resp
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(max_age);
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("{url}: document too large"));
    }
    let v = serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
    Ok((v, max_age))
}

/// The `max-age` of a `Cache-Control` value, in seconds (`no-cache`/`no-store`: 0).
fn max_age(header: &str) -> u64 {
    let mut age = None;
    for d in header.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return 0;
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    age.unwrap_or(u64::MAX)
}

/// How long to trust keys served with `max_age` (seconds), within the bounds.
fn keys_ttl(max_age: Option<u64>) -> Duration {
    max_age
        .map(Duration::from_secs)
        .unwrap_or(MAX_KEYS_TTL)
        .clamp(MIN_KEYS_TTL, MAX_KEYS_TTL)
}

impl JwksCache {
    /// How many discovery and key-set requests this cache has sent.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn fetch(&self, provider: &OidcProvider) -> Result<(JwkSet, Duration), String> {
        use std::sync::atomic::Ordering::Relaxed;
        let discovery_url = format!("{}/.well-known/openid-configuration", provider.url);
        self.fetches.fetch_add(1, Relaxed);
        let (discovery, _) = get_json(&self.http, &discovery_url).await?;
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
        self.fetches.fetch_add(1, Relaxed);
        let (set, max_age) = get_json(&self.http, jwks_uri).await?;
        let set =
            serde_json::from_value(set).map_err(|e| format!("{jwks_uri}: not a JWKS: {e}"))?;
        Ok((set, keys_ttl(max_age)))
    }

    fn provider_keys(&self, arn: &str) -> Arc<ProviderKeys> {
        match self.providers.lock() {
            Ok(mut m) => Arc::clone(m.entry(arn.to_owned()).or_default()),
            Err(_) => Arc::new(ProviderKeys::default()),
        }
    }

    /// The key for `kid` (or the only key usable with `alg` when the token names none),
    /// fetching the provider's keys when they are not cached, are stale, or lack `kid`.
    async fn key_for(
        &self,
        provider: &OidcProvider,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk, ApiError> {
        let unknown_key = || invalid("The token's signing key is not one of the provider's keys.");
        let unreachable =
            || invalid("Couldn't retrieve verification key from your identity provider.");
        if let Some(inline) = &provider.jwks {
            let set: JwkSet = serde_json::from_str(inline).map_err(|e| {
                tracing::warn!(provider = provider.arn, error = %e, "inline JWKS unreadable");
                unreachable()
            })?;
            return pick(&set, kid, alg).ok_or_else(unknown_key);
        }
        let keys = self.provider_keys(&provider.arn);
        // What is cached decides without waiting for anyone.
        let decided = |f: &Fetched| -> Option<Result<Jwk, ApiError>> {
            match &f.keys {
                Ok((set, _)) => match pick(set, kid, alg) {
                    Some(k) if f.fresh() => Some(Ok(k)),
                    // An unknown kid may be a new key: fetch again, but not too often.
                    None if f.at.elapsed() < REFETCH_MIN_INTERVAL => Some(Err(unknown_key())),
                    _ => None,
                },
                Err(_) if f.fresh() => Some(Err(unreachable())),
                Err(_) => None,
            }
        };
        if let Some(outcome) = keys.last().as_deref().and_then(decided) {
            return outcome;
        }
        let started = Instant::now();
        let _one_fetch = keys.fetching.lock().await;
        // A fetch that finished while this caller waited is this caller's answer too.
        if let Some(last) = keys.last()
            && last.at >= started
        {
            return match &last.keys {
                Ok((set, _)) => pick(set, kid, alg).ok_or_else(unknown_key),
                Err(_) => Err(unreachable()),
            };
        }
        let result = self.fetch(provider).await;
        if let Err(e) = &result {
            tracing::warn!(provider = provider.arn, error = %e, "could not fetch the provider's keys");
        }
        let fetched = Arc::new(Fetched {
            at: Instant::now(),
            keys: result,
        });
        if let Ok(mut l) = keys.last.lock() {
            *l = Some(Arc::clone(&fetched));
        }
        match &fetched.keys {
            Ok((set, _)) => pick(set, kid, alg).ok_or_else(unknown_key),
            Err(_) => Err(unreachable()),
        }
    }
}

/// Whether `k` may verify a token signed with `alg`: meant for signatures (no `use`, or
/// `sig`), its `alg` (when it names one) the token's, and of the matching key type.
fn usable(k: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve, PublicKeyUse};
    let for_signatures = matches!(
        k.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let same_alg = k
        .common
        .key_algorithm
        .is_none_or(|a| a.to_string() == format!("{alg:?}"));
    let key_type = match (&k.algorithm, alg) {
        (P::RSA(_), Algorithm::RS256) => true,
        (P::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (P::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    for_signatures && same_alg && key_type
}

/// The one key of `set` that can verify the token: named by `kid` (or, without one, the
/// only usable key). Several usable keys under one `kid` are ambiguous: none is chosen.
fn pick(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    let mut candidates = set
        .keys
        .iter()
        .filter(|k| kid.is_none_or(|id| k.common.key_id.as_deref() == Some(id)))
        .filter(|k| usable(k, alg));
    let only = candidates.next()?;
    candidates.next().is_none().then(|| only.clone())
}

/// The payload of a JWT, decoded (not verified).
fn payload(token: &str) -> Result<Vec<u8>, ApiError> {
    let not_jwt = || invalid("The web identity token is not a JWT.");
    let part = token.split('.').nth(1).ok_or_else(not_jwt)?;
    data_encoding::BASE64URL_NOPAD
        .decode(part.trim_end_matches('=').as_bytes())
        .map_err(|_| not_jwt())
}

/// The `iss` of a token, read before its signature is checked (to find the provider).
fn unverified_issuer(token: &str) -> Result<String, ApiError> {
    let v: Value = serde_json::from_slice(&payload(token)?)
        .map_err(|_| invalid("The web identity token is not a JWT."))?;
    v.get("iss")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_owned())
        .ok_or_else(|| invalid("The web identity token has no iss claim."))
}

/// Refuses a payload whose top-level claim names repeat ignoring (ASCII) case, as
/// condition keys do: `sub` beside `SUB`, or `sub` twice (which a JSON parser would
/// otherwise settle silently, last one winning).
fn distinct_claim_names(payload: &[u8]) -> Result<(), ApiError> {
    struct Names;
    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(name) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if !seen.insert(name.to_ascii_lowercase()) {
                    return Err(serde::de::Error::custom(name));
                }
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(payload);
    serde::de::Deserializer::deserialize_map(&mut de, Names).map_err(|_| {
        invalid("The token has claims whose names are the same ignoring case; refused.")
    })
}

/// The claims the provider's registration exposes besides AWS's keys (its
/// `gatehouse:claims` tag, space-separated).
fn registered_claims(provider: &OidcProvider) -> Vec<&str> {
    provider
        .tags
        .iter()
        .filter(|t| t.key.eq_ignore_ascii_case(CLAIMS_TAG))
        .flat_map(|t| t.value.split_whitespace())
        .collect()
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
    distinct_claim_names(&payload(token)?)?;
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
    // AWS's keys first; then only the claims the registration names, never one whose key
    // is already set (names compare ignoring case, as condition keys do).
    let azp = claims.get("azp").and_then(Value::as_str);
    let mut condition_keys: Vec<(String, Vec<String>)> = vec![
        (format!("{issuer_key}:sub"), vec![subject.clone()]),
        (
            format!("{issuer_key}:aud"),
            vec![azp.unwrap_or(&audience).to_owned()],
        ),
        (format!("{issuer_key}:oaud"), vec![audience.clone()]),
    ];
    if let Some(amr) = claims.get("amr").and_then(strings) {
        condition_keys.push((format!("{issuer_key}:amr"), amr));
    }
    for name in registered_claims(provider) {
        let key = format!("{issuer_key}:{name}");
        if condition_keys
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(&key))
        {
            continue;
        }
        if let Some(vals) = claims.get(name).and_then(strings) {
            condition_keys.push((key, vals));
        }
    }
    Ok(WebIdentity {
        provider_arn: provider.arn.clone(),
        issuer_key,
        subject,
        audience,
        condition_keys,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(keys: serde_json::Value) -> JwkSet {
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn rsa(kid: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut k = serde_json::json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"});
        if let (Some(o), serde_json::Value::Object(e)) = (k.as_object_mut(), extra) {
            o.extend(e);
        }
        k
    }

    #[test]
    fn only_an_unambiguous_signing_key_of_the_tokens_alg_is_picked() {
        let one = set(serde_json::json!([rsa(
            "a",
            serde_json::json!({"use": "sig", "alg": "RS256"})
        )]));
        assert!(pick(&one, Some("a"), Algorithm::RS256).is_some());
        assert!(pick(&one, None, Algorithm::RS256).is_some());
        // The header's alg must be the key's, and the key type must fit it.
        assert!(pick(&one, Some("a"), Algorithm::ES256).is_none());
        assert!(pick(&one, Some("a"), Algorithm::EdDSA).is_none());
        let enc = set(serde_json::json!([rsa(
            "a",
            serde_json::json!({"use": "enc"})
        )]));
        assert!(pick(&enc, Some("a"), Algorithm::RS256).is_none());
        let other_alg = set(serde_json::json!([rsa(
            "a",
            serde_json::json!({"alg": "RS512"})
        )]));
        assert!(pick(&other_alg, Some("a"), Algorithm::RS256).is_none());
        // Two usable keys under one kid: ambiguous, none; one of them for encryption: fine.
        let dup = set(serde_json::json!([
            rsa("a", serde_json::json!({})),
            rsa("a", serde_json::json!({}))
        ]));
        assert!(pick(&dup, Some("a"), Algorithm::RS256).is_none());
        let dup_enc = set(serde_json::json!([
            rsa("a", serde_json::json!({"use": "enc"})),
            rsa("a", serde_json::json!({"use": "sig"}))
        ]));
        assert!(pick(&dup_enc, Some("a"), Algorithm::RS256).is_some());
        assert!(pick(&dup, Some("b"), Algorithm::RS256).is_none());
        assert!(pick(&dup, None, Algorithm::RS256).is_none());
    }

    #[test]
    fn claim_names_must_differ_ignoring_case() {
        assert!(distinct_claim_names(br#"{"sub":"a","aud":"b","repository":"r"}"#).is_ok());
        assert!(distinct_claim_names(br#"{"sub":"a","SUB":"b"}"#).is_err());
        assert!(distinct_claim_names(br#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(distinct_claim_names(br#"{"ref":"a","nested":{"ref":"b","REF":"c"}}"#).is_ok());
        assert!(distinct_claim_names(b"[1]").is_err());
    }

    #[test]
    fn keys_are_trusted_for_max_age_within_bounds() {
        assert_eq!(max_age("public, max-age=120"), 120);
        assert_eq!(max_age("no-store"), 0);
        assert_eq!(max_age("public"), u64::MAX);
        assert_eq!(keys_ttl(None), MAX_KEYS_TTL);
        assert_eq!(keys_ttl(Some(120)), Duration::from_secs(120));
        assert_eq!(keys_ttl(Some(0)), MIN_KEYS_TTL);
        assert_eq!(keys_ttl(Some(86_400)), MAX_KEYS_TTL);
    }
}
