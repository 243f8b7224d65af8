//! STS session tokens: self-contained, signed temporary credentials.
//!
//! `AssumeRole`, `AssumeRoleWithWebIdentity` and `GetSessionToken` hand out an
//! `ASIA...` access key id, a secret access key and a session token. Gatehouse nodes
//! are stateless, so the token itself carries everything needed to authenticate a
//! later request made with those credentials — the [`SessionClaims`] (who, which
//! role, until when, tags, MFA, session policies) and the session's secret access
//! key — and any node holding the [`SigningKeyRing`] can verify it without a
//! database round trip.
//!
//! Format (URL-safe, versioned): `ghs1.<kid>.<payload>.<mac>` where `payload` is
//! base64url (no padding) JSON and `mac` is base64url HMAC-SHA256 over
//! `ghs1.<kid>.<payload>`. The secret access key inside the payload is sealed with
//! AES-256-GCM (random 96-bit nonce, the prefix, kid and access key id as associated
//! data), so the token never carries a secret in the clear. Both the MAC key and the
//! sealing key are derived from the ring key named by `kid` (HMAC-SHA256 with
//! distinct labels).
//!
//! Rotation: [`SigningKeyRing::rotate`] adds a new active key; tokens signed with
//! older keys keep verifying until those keys are [`SigningKeyRing::remove`]d, so
//! live sessions survive a rotation.
//!
//! Unknown JSON fields are ignored and new fields have defaults, so nodes of
//! different versions can verify each other's tokens during a rolling upgrade.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD};
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::sigv4::{LookupError, ResolvedCredential, hmac_sha256};
use gatehouse_secret::{SealError, SealingKey, Secret};

/// Version prefix of every token this module issues.
pub const TOKEN_PREFIX: &str = "ghs1";
/// Tokens longer than this are refused before any work (AWS allows ~2 KiB packed
/// policies; session policies can make tokens large, but not unbounded).
pub const MAX_TOKEN_LEN: usize = 32 * 1024;
/// Prefix of temporary access key ids.
pub const TEMPORARY_KEY_PREFIX: &str = "ASIA";

const MAC_LABEL: &[u8] = b"gatehouse/session-token/mac/v1";
const SEAL_LABEL: &[u8] = b"gatehouse/session-token/seal/v1";

/// Why a session token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The session has expired.
    #[error("The security token included in the request is expired")]
    Expired,
    /// The token is not a well-formed Gatehouse session token.
    #[error("The security token included in the request is invalid.")]
    Malformed,
    /// The token was not signed by a key in the ring (forged or tampered).
    #[error("The security token included in the request is invalid.")]
    BadSignature,
    /// The token names a signing key that is not (or no longer) in the ring.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
}

impl SessionError {
    /// The AWS error code for this failure (`ExpiredToken` or `InvalidClientTokenId`).
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::Expired => "ExpiredToken",
            Self::Malformed | Self::BadSignature | Self::UnknownKey => "InvalidClientTokenId",
        }
    }
}

/// Why a key ring change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// Key ids are 1–32 characters of `A-Z a-z 0-9 - _`.
    #[error("invalid signing key id")]
    InvalidKid,
    /// No key with that id.
    #[error("no signing key with that id")]
    UnknownKid,
    /// A key with that id already exists.
    #[error("a signing key with that id already exists")]
    DuplicateKid,
    /// The active key cannot be removed; rotate first.
    #[error("the active signing key cannot be removed")]
    RemoveActive,
}

struct RingKey {
    raw: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
    cipher: SealingKey,
    /// The key authorization-failure messages are sealed under.
    message: SealingKey,
}

impl RingKey {
    fn new(raw: [u8; 32]) -> Self {
        let raw = Zeroizing::new(raw);
        let mac = Zeroizing::new(hmac_sha256(raw.as_slice(), MAC_LABEL));
        let seal = Zeroizing::new(hmac_sha256(raw.as_slice(), SEAL_LABEL));
        let cipher = SealingKey::from_bytes(*seal);
        let message = SealingKey::from_bytes(hmac_sha256(raw.as_slice(), MESSAGE_LABEL));
        Self {
            raw,
            mac,
            cipher,
            message,
        }
    }
}

/// The session-token signing keys: `kid → 32-byte key`, exactly one active.
///
/// `Debug` shows only the key ids.
pub struct SigningKeyRing {
    keys: BTreeMap<String, RingKey>,
    active: String,
}

impl fmt::Debug for SigningKeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRing")
            .field("active", &self.active)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn valid_kid(kid: &str) -> bool {
    (1..=32).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn random_kid() -> String {
    let mut b = [0u8; 5];
    rand::rng().fill_bytes(&mut b);
    format!("k{}", BASE32_NOPAD.encode(&b).to_ascii_lowercase())
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    k
}

impl SigningKeyRing {
    /// A ring with one active key `kid`.
    pub fn new(kid: impl Into<String>, key: [u8; 32]) -> Result<Self, KeyRingError> {
        let kid = kid.into();
        if !valid_kid(&kid) {
            return Err(KeyRingError::InvalidKid);
        }
        let mut keys = BTreeMap::new();
        keys.insert(kid.clone(), RingKey::new(key));
        Ok(Self { keys, active: kid })
    }

    /// A ring with one freshly generated active key (random kid, CSPRNG key).
    pub fn generate() -> Self {
        let kid = random_kid();
        let mut keys = BTreeMap::new();
        keys.insert(kid.clone(), RingKey::new(random_key()));
        Self { keys, active: kid }
    }

    /// Adds a (non-active) key, e.g. when loading the ring from the store.
    pub fn insert(&mut self, kid: impl Into<String>, key: [u8; 32]) -> Result<(), KeyRingError> {
        let kid = kid.into();
        if !valid_kid(&kid) {
            return Err(KeyRingError::InvalidKid);
        }
        if self.keys.contains_key(&kid) {
            return Err(KeyRingError::DuplicateKid);
        }
        self.keys.insert(kid, RingKey::new(key));
        Ok(())
    }

    /// Makes an existing key the one new tokens are signed with.
    pub fn set_active(&mut self, kid: &str) -> Result<(), KeyRingError> {
        if !self.keys.contains_key(kid) {
            return Err(KeyRingError::UnknownKid);
        }
        kid.clone_into(&mut self.active);
        Ok(())
    }

    /// Adds a freshly generated key and makes it active; returns its kid. Older keys
    /// keep verifying the tokens they signed.
    pub fn rotate(&mut self) -> String {
        let mut kid = random_kid();
        while self.keys.contains_key(&kid) {
            kid = random_kid();
        }
        self.keys.insert(kid.clone(), RingKey::new(random_key()));
        self.active.clone_from(&kid);
        kid
    }

    /// Removes a retired key: tokens it signed stop verifying (`UnknownKey`).
    pub fn remove(&mut self, kid: &str) -> Result<(), KeyRingError> {
        if kid == self.active {
            return Err(KeyRingError::RemoveActive);
        }
        self.keys
            .remove(kid)
            .map(|_| ())
            .ok_or(KeyRingError::UnknownKid)
    }

    /// The kid new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active
    }

    /// All kids, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The raw key for `kid`, to persist (sealed) in the store. Do not log.
    pub fn export_key(&self, kid: &str) -> Option<Secret> {
        self.keys.get(kid).map(|k| Secret::new(k.raw.to_vec()))
    }
}

mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.timestamp_millis())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let ms = i64::deserialize(d)?;
        DateTime::from_timestamp_millis(ms).ok_or_else(|| D::Error::custom("time out of range"))
    }

    pub mod opt {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer, de::Error};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&t.timestamp_millis()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<i64>::deserialize(d)? {
                Some(ms) => DateTime::from_timestamp_millis(ms)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom("time out of range")),
                None => Ok(None),
            }
        }
    }
}

/// What a session token asserts. Contains no secret. Times are kept to the
/// millisecond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The temporary access key id (`ASIA` + 16 characters).
    pub access_key_id: String,
    /// The session principal, e.g.
    /// `arn:gatehouse:sts::111122223333:assumed-role/ROLE/SESSION`, or the user's ARN
    /// for `GetSessionToken` sessions.
    pub principal_arn: String,
    /// `aws:userid`, e.g. `AROA...:SESSION` (empty when unknown).
    #[serde(default)]
    pub principal_id: String,
    /// The assumed role's ARN (`None` for `GetSessionToken` sessions).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// `RoleSessionName`.
    #[serde(default)]
    pub session_name: Option<String>,
    /// The 12-digit account of the principal.
    pub account: String,
    /// When the session was issued (`aws:TokenIssueTime`; revocation compares it).
    #[serde(with = "millis")]
    pub issued_at: DateTime<Utc>,
    /// When the session ends.
    #[serde(with = "millis")]
    pub expires_at: DateTime<Utc>,
    /// `SourceIdentity`, set once and kept through role chains.
    #[serde(default)]
    pub source_identity: Option<String>,
    /// Session tags (`aws:PrincipalTag/K`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Keys of session tags that pass on to chained sessions.
    #[serde(default)]
    pub transitive_tag_keys: Vec<String>,
    /// Whether MFA was used to obtain the session (`aws:MultiFactorAuthPresent`).
    #[serde(default)]
    pub mfa_present: bool,
    /// When MFA authenticated (`aws:MultiFactorAuthAge` is measured from it).
    #[serde(default, with = "millis::opt")]
    pub mfa_auth_time: Option<DateTime<Utc>>,
    /// Inline session policy documents (JSON text), intersected with the role's.
    #[serde(default)]
    pub session_policies: Vec<String>,
    /// Managed session policy ARNs (`PolicyArns`).
    #[serde(default)]
    pub policy_arns: Vec<String>,
    /// Whether the session was obtained by role chaining (capped at one hour).
    #[serde(default)]
    pub role_chained: bool,
    /// The just-in-time elevations the session was opened under (by `AssumeRole` allowed
    /// only by a grant, or inherited through a role chain): the server refuses the session
    /// as soon as any of them is no longer active (revoked, or its window over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elevations: Vec<SessionElevation>,
}

/// A just-in-time grant a session depends on: whose it is (so any node can look up its
/// state with the principal's compiled policies) and its request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionElevation {
    /// The access request (`REQ...`) whose grant allowed the session.
    pub request_id: String,
    /// The ARN of the user or role the grant belongs to (the requester).
    pub principal_arn: String,
    /// The requester's stored unique id (`AIDA...`/`AROA...`): a principal deleted and made
    /// again under the same name holds none of the old grants.
    pub principal_id: String,
}

impl SessionClaims {
    /// Claims with the required fields set and everything optional empty.
    pub fn new(
        access_key_id: impl Into<String>,
        principal_arn: impl Into<String>,
        account: impl Into<String>,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            principal_arn: principal_arn.into(),
            principal_id: String::new(),
            role_arn: None,
            session_name: None,
            account: account.into(),
            issued_at,
            expires_at,
            source_identity: None,
            tags: BTreeMap::new(),
            transitive_tag_keys: Vec::new(),
            mfa_present: false,
            mfa_auth_time: None,
            session_policies: Vec::new(),
            policy_arns: Vec::new(),
            role_chained: false,
            elevations: Vec::new(),
        }
    }
}

impl SessionClaims {
    /// The unique id (`AROA...`, `AIDA...`) of the role or user the session belongs to:
    /// `principal_id` up to the session name. Names can be reused after a delete; this id
    /// cannot, so a server checks it against the principal it resolves the session to.
    /// Empty when the token carries none.
    pub fn principal_unique_id(&self) -> &str {
        self.principal_id
            .split_once(':')
            .map_or(self.principal_id.as_str(), |(id, _)| id)
    }

    /// Seconds since MFA authentication at `now` (`aws:MultiFactorAuthAge`), if MFA
    /// was used.
    pub fn mfa_age_secs(&self, now: DateTime<Utc>) -> Option<i64> {
        if !self.mfa_present {
            return None;
        }
        self.mfa_auth_time.map(|t| (now - t).num_seconds().max(0))
    }

    /// Whether the session is still valid at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

#[derive(Serialize, Deserialize)]
struct WirePayload {
    c: SessionClaims,
    /// base64url(nonce || AES-256-GCM(secret access key)).
    s: String,
}

/// A verified session: its claims and the recovered secret access key.
#[derive(Debug, Clone)]
pub struct VerifiedSession {
    /// What the token asserts.
    pub claims: SessionClaims,
    /// The session's secret access key (to verify SigV4 made with it).
    pub secret: Secret,
}

fn aad(kid: &str, access_key_id: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(TOKEN_PREFIX.len() + kid.len() + access_key_id.len() + 2);
    v.extend_from_slice(TOKEN_PREFIX.as_bytes());
    v.push(0);
    v.extend_from_slice(kid.as_bytes());
    v.push(0);
    v.extend_from_slice(access_key_id.as_bytes());
    v
}

fn mac(key: &RingKey, signed_part: &str) -> [u8; 32] {
    hmac_sha256(key.mac.as_slice(), signed_part.as_bytes())
}

/// Whether `id` looks like a temporary access key id: `ASIA` + 16 of `A-Z 0-9`.
pub fn is_temporary_access_key_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with(TEMPORARY_KEY_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Issues a session token for `claims` carrying `secret` (sealed), signed with the
/// ring's active key.
///
/// Refuses (`Malformed`) claims whose access key id is not an `ASIA` id (see
/// [`is_temporary_access_key_id`]) or that expire before they are issued.
pub fn issue(
    ring: &SigningKeyRing,
    claims: &SessionClaims,
    secret: &Secret,
) -> Result<String, SessionError> {
    if !is_temporary_access_key_id(&claims.access_key_id) || claims.expires_at <= claims.issued_at {
        return Err(SessionError::Malformed);
    }
    let kid = ring.active_kid();
    let key = ring.keys.get(kid).ok_or(SessionError::UnknownKey)?;
    let blob = key
        .cipher
        .seal(&aad(kid, &claims.access_key_id), secret.expose())
        .map_err(|_| SessionError::Malformed)?;
    let payload = WirePayload {
        c: claims.clone(),
        s: BASE64URL_NOPAD.encode(&blob),
    };
    let json = serde_json::to_vec(&payload).map_err(|_| SessionError::Malformed)?;
    let mut token = format!("{TOKEN_PREFIX}.{kid}.{}", BASE64URL_NOPAD.encode(&json));
    let tag = mac(key, &token);
    token.push('.');
    token.push_str(&BASE64URL_NOPAD.encode(&tag));
    Ok(token)
}

/// Verifies a session token at `now`: format, key, MAC (constant-time), expiry, and
/// unseals the secret access key.
pub fn verify(
    ring: &SigningKeyRing,
    token: &str,
    now: DateTime<Utc>,
) -> Result<VerifiedSession, SessionError> {
    if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
        return Err(SessionError::Malformed);
    }
    let Some((signed_part, tag_b64)) = token.rsplit_once('.') else {
        return Err(SessionError::Malformed);
    };
    let mut parts = signed_part.split('.');
    let (Some(prefix), Some(kid), Some(payload_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Malformed);
    };
    if prefix != TOKEN_PREFIX || !valid_kid(kid) {
        return Err(SessionError::Malformed);
    }
    let key = ring.keys.get(kid).ok_or(SessionError::UnknownKey)?;
    let tag = BASE64URL_NOPAD
        .decode(tag_b64.as_bytes())
        .map_err(|_| SessionError::BadSignature)?;
    let expected = mac(key, signed_part);
    if !bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
        return Err(SessionError::BadSignature);
    }
    // Authentic from here on: a decoding failure means a bug or a version mismatch.
    let json = BASE64URL_NOPAD
        .decode(payload_b64.as_bytes())
        .map_err(|_| SessionError::Malformed)?;
    let payload: WirePayload =
        serde_json::from_slice(&json).map_err(|_| SessionError::Malformed)?;
    if now >= payload.c.expires_at {
        return Err(SessionError::Expired);
    }
    let blob = BASE64URL_NOPAD
        .decode(payload.s.as_bytes())
        .map_err(|_| SessionError::Malformed)?;
    let secret = key
        .cipher
        .open(&aad(kid, &payload.c.access_key_id), &blob)
        .map_err(|e| match e {
            SealError::Truncated => SessionError::Malformed,
            _ => SessionError::BadSignature,
        })?;
    Ok(VerifiedSession {
        claims: payload.c,
        secret,
    })
}

/// Resolves temporary credentials for SigV4 verification: `session_token` must be
/// present, valid at `now`, and issued for `access_key_id`. Use it inside a
/// [`crate::sigv4::CredentialLookup`] for `ASIA` keys.
pub fn resolve_for_sigv4(
    ring: &SigningKeyRing,
    access_key_id: &str,
    session_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ResolvedCredential<SessionClaims>, LookupError> {
    let token = session_token.ok_or(LookupError::InvalidSessionToken)?;
    let session = verify(ring, token, now).map_err(|e| match e {
        SessionError::Expired => LookupError::ExpiredSessionToken,
        SessionError::Malformed | SessionError::BadSignature | SessionError::UnknownKey => {
            LookupError::InvalidSessionToken
        }
    })?;
    if !bool::from(
        session
            .claims
            .access_key_id
            .as_bytes()
            .ct_eq(access_key_id.as_bytes()),
    ) {
        return Err(LookupError::InvalidSessionToken);
    }
    Ok(ResolvedCredential {
        secret: session.secret,
        context: session.claims,
    })
}

const MESSAGE_LABEL: &[u8] = b"gatehouse/authorization-message/v1";
const MESSAGE_PREFIX: &str = "ghm1";

/// Encrypts an authorization-failure message (`DecodeAuthorizationMessage`) with a key
/// derived from the ring's active key: `ghm1.<kid>.<base64url(nonce || ciphertext)>`.
/// Only a node holding the ring can read it, so a denied caller learns nothing it could
/// not already see unless a principal allowed `sts:DecodeAuthorizationMessage` decodes it.
pub fn seal_message(ring: &SigningKeyRing, plaintext: &[u8]) -> Result<String, SessionError> {
    let kid = ring.active_kid();
    let key = ring.keys.get(kid).ok_or(SessionError::UnknownKey)?;
    let blob = key
        .message
        .seal(kid.as_bytes(), plaintext)
        .map_err(|_| SessionError::Malformed)?;
    Ok(format!(
        "{MESSAGE_PREFIX}.{kid}.{}",
        BASE64URL_NOPAD.encode(&blob)
    ))
}

/// Decrypts a message made by [`seal_message`] with any key still in the ring.
pub fn open_message(ring: &SigningKeyRing, sealed: &str) -> Result<Vec<u8>, SessionError> {
    if sealed.len() > MAX_TOKEN_LEN {
        return Err(SessionError::Malformed);
    }
    let mut parts = sealed.trim().split('.');
    let (Some(MESSAGE_PREFIX), Some(kid), Some(body), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Malformed);
    };
    let key = ring.keys.get(kid).ok_or(SessionError::UnknownKey)?;
    let blob = BASE64URL_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| SessionError::Malformed)?;
    key.message
        .open(kid.as_bytes(), &blob)
        .map(|m| m.expose().to_vec())
        .map_err(|e| match e {
            SealError::Truncated => SessionError::Malformed,
            _ => SessionError::BadSignature,
        })
}

/// A new access key id: `prefix` followed by 16 random characters of `A-Z 2-7`
/// (20 characters for a 4-character prefix such as `AKIA` or `ASIA`).
pub fn generate_access_key_id(prefix: &str) -> String {
    let mut b = [0u8; 10];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}{}", BASE32_NOPAD.encode(&b))
}

/// A new 40-character secret access key (base64 alphabet, 240 random bits).
pub fn generate_secret_access_key() -> Secret {
    let mut b = Zeroizing::new([0u8; 30]);
    rand::rng().fill_bytes(b.as_mut_slice());
    Secret::from_string(BASE64.encode(b.as_slice()))
}

/// Fresh temporary credentials: an `ASIA...` access key id and a 40-character secret.
pub fn generate_temporary_credentials() -> (String, Secret) {
    (
        generate_access_key_id(TEMPORARY_KEY_PREFIX),
        generate_secret_access_key(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// An authorization message opens with the ring that sealed it (also after a
    /// rotation), and not with another ring or after tampering.
    #[test]
    fn authorization_messages_round_trip() {
        let mut ring = SigningKeyRing::generate();
        let sealed = seal_message(&ring, b"{\"allowed\":false}").unwrap();
        assert!(!sealed.contains("allowed"));
        ring.rotate();
        assert_eq!(
            open_message(&ring, &sealed).unwrap(),
            b"{\"allowed\":false}"
        );
        let other = SigningKeyRing::generate();
        assert!(open_message(&other, &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(open_message(&ring, &tampered).is_err());
        assert!(open_message(&ring, "garbage").is_err());
    }

    /// A token whose payload has a field this version does not know still verifies
    /// (rolling upgrades), as long as it is authentic.
    #[test]
    fn unknown_payload_fields_are_ignored() {
        let ring = SigningKeyRing::generate();
        let kid = ring.active_kid().to_owned();
        let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let (akid, secret) = generate_temporary_credentials();
        let claims = SessionClaims::new(
            akid,
            "arn:gatehouse:iam::111122223333:user/bob",
            "111122223333",
            now,
            now + chrono::Duration::hours(1),
        );
        let token = issue(&ring, &claims, &secret).unwrap();
        let payload_b64 = token.split('.').nth(2).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&BASE64URL_NOPAD.decode(payload_b64.as_bytes()).unwrap())
                .unwrap();
        json["c"]["future_field"] = serde_json::json!({"x": 1});
        json["z"] = serde_json::json!(true);
        let signed = format!(
            "{TOKEN_PREFIX}.{kid}.{}",
            BASE64URL_NOPAD.encode(&serde_json::to_vec(&json).unwrap())
        );
        let key = ring.keys.get(&kid).unwrap();
        let token = format!("{signed}.{}", BASE64URL_NOPAD.encode(&mac(key, &signed)));
        let v = verify(&ring, &token, now).unwrap();
        assert_eq!(v.claims, claims);
        assert_eq!(v.secret, secret);
    }
}
