//! Session tokens: round trip, tampering, expiry, key rotation, secrecy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use data_encoding::{BASE64, BASE64URL_NOPAD};
use gatehouse_auth::Secret;
use gatehouse_auth::session::{
    self, KeyRingError, SessionClaims, SessionError, SigningKeyRing, TOKEN_PREFIX,
};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_000_000, 0).unwrap()
}

fn claims(akid: &str) -> SessionClaims {
    let mut c = SessionClaims::new(
        akid,
        "arn:gatehouse:sts::111122223333:assumed-role/ml-ops/alice",
        "111122223333",
        t0(),
        t0() + Duration::hours(1),
    );
    c.principal_id = "AROAEXAMPLEROLEID0001:alice".to_owned();
    c.role_arn = Some("arn:gatehouse:iam::111122223333:role/ml-ops".to_owned());
    c.session_name = Some("alice".to_owned());
    c.source_identity = Some("alice@example.com".to_owned());
    c.tags.insert("team".to_owned(), "search".to_owned());
    c.tags.insert("env".to_owned(), "prod".to_owned());
    c.transitive_tag_keys = vec!["team".to_owned()];
    c.mfa_present = true;
    c.mfa_auth_time = Some(t0() - Duration::seconds(30));
    c.session_policies = vec![
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"}]}"#.to_owned(),
    ];
    c.policy_arns = vec!["arn:gatehouse:iam::111122223333:policy/readonly".to_owned()];
    c.role_chained = false;
    c
}

#[test]
fn round_trip() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let c = claims(&akid);
    let token = session::issue(&ring, &c, &secret).unwrap();
    assert!(token.starts_with(&format!("{TOKEN_PREFIX}.{}.", ring.active_kid())));
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "token is URL-safe"
    );
    let v = session::verify(&ring, &token, t0() + Duration::minutes(59)).unwrap();
    assert_eq!(v.claims, c);
    assert_eq!(v.secret, secret);
    // Two tokens for the same claims differ (fresh nonce) and both verify.
    let token2 = session::issue(&ring, &c, &secret).unwrap();
    assert_ne!(token, token2);
    assert!(session::verify(&ring, &token2, t0()).is_ok());
}

#[test]
fn minimal_claims_round_trip() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let c = SessionClaims::new(
        akid,
        "arn:gatehouse:iam::111122223333:user/bob",
        "111122223333",
        t0(),
        t0() + Duration::seconds(900),
    );
    let token = session::issue(&ring, &c, &secret).unwrap();
    assert_eq!(session::verify(&ring, &token, t0()).unwrap().claims, c);
}

#[test]
fn no_secret_in_the_token() {
    let ring = SigningKeyRing::generate();
    for _ in 0..50 {
        let (akid, secret) = session::generate_temporary_credentials();
        let token = session::issue(&ring, &claims(&akid), &secret).unwrap();
        let s = secret.expose_str().unwrap();
        assert!(!token.contains(s));
        // Nor in the decoded payload, nor in any base64 rendering of the secret.
        let payload = token.split('.').nth(2).unwrap();
        let json = String::from_utf8(BASE64URL_NOPAD.decode(payload.as_bytes()).unwrap()).unwrap();
        assert!(!json.contains(s));
        assert!(!json.contains(&BASE64.encode(secret.expose())));
        assert!(json.contains(&akid));
        // A 12-character window of the secret does not appear either.
        for w in s.as_bytes().windows(12) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(!token.contains(w) && !json.contains(w));
        }
    }
}

#[test]
fn tampering_any_byte_is_rejected() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let token = session::issue(&ring, &claims(&akid), &secret).unwrap();
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [b'A', b'b', b'0', b'-', b'_', b'.'] {
            if bytes[i] == replacement {
                continue;
            }
            let mut t = bytes.to_vec();
            t[i] = replacement;
            let t = String::from_utf8(t).unwrap();
            assert!(
                session::verify(&ring, &t, t0()).is_err(),
                "byte {i} -> {} accepted",
                char::from(replacement)
            );
        }
    }
    // Truncation and extension.
    assert!(session::verify(&ring, &token[..token.len() - 1], t0()).is_err());
    assert!(session::verify(&ring, &format!("{token}A"), t0()).is_err());
    assert!(session::verify(&ring, &format!("{token}.A"), t0()).is_err());
}

#[test]
fn error_kinds() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let token = session::issue(&ring, &claims(&akid), &secret).unwrap();
    let parts: Vec<&str> = token.split('.').collect();

    assert_eq!(
        session::verify(&ring, "", t0()).unwrap_err(),
        SessionError::Malformed
    );
    assert_eq!(
        session::verify(&ring, "garbage", t0()).unwrap_err(),
        SessionError::Malformed
    );
    let v2 = format!("ghs2.{}.{}.{}", parts[1], parts[2], parts[3]);
    assert_eq!(
        session::verify(&ring, &v2, t0()).unwrap_err(),
        SessionError::Malformed
    );
    let unknown = format!("{}.kzzzzzzzz.{}.{}", parts[0], parts[2], parts[3]);
    assert_eq!(
        session::verify(&ring, &unknown, t0()).unwrap_err(),
        SessionError::UnknownKey
    );
    let bad_sig = format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], "AAAA");
    assert_eq!(
        session::verify(&ring, &bad_sig, t0()).unwrap_err(),
        SessionError::BadSignature
    );
    // A token from another ring with the same kid is a forgery.
    let other = SigningKeyRing::new(ring.active_kid(), [7u8; 32]).unwrap();
    let forged = session::issue(&other, &claims(&akid), &secret).unwrap();
    assert_eq!(
        session::verify(&ring, &forged, t0()).unwrap_err(),
        SessionError::BadSignature
    );
    // Oversized.
    let huge = "a".repeat(session::MAX_TOKEN_LEN + 1);
    assert_eq!(
        session::verify(&ring, &huge, t0()).unwrap_err(),
        SessionError::Malformed
    );

    assert_eq!(SessionError::Expired.aws_code(), "ExpiredToken");
    assert_eq!(
        SessionError::BadSignature.aws_code(),
        "InvalidClientTokenId"
    );
}

#[test]
fn expiry() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let c = claims(&akid);
    let token = session::issue(&ring, &c, &secret).unwrap();
    assert!(session::verify(&ring, &token, c.expires_at - Duration::milliseconds(1)).is_ok());
    assert_eq!(
        session::verify(&ring, &token, c.expires_at).unwrap_err(),
        SessionError::Expired
    );
    assert_eq!(
        session::verify(&ring, &token, c.expires_at + Duration::days(1)).unwrap_err(),
        SessionError::Expired
    );
}

#[test]
fn rotation_keeps_live_sessions_until_the_old_key_is_removed() {
    let mut ring = SigningKeyRing::generate();
    let old_kid = ring.active_kid().to_owned();
    let (akid, secret) = session::generate_temporary_credentials();
    let old_token = session::issue(&ring, &claims(&akid), &secret).unwrap();

    let new_kid = ring.rotate();
    assert_ne!(new_kid, old_kid);
    assert_eq!(ring.active_kid(), new_kid);
    assert_eq!(ring.kids().count(), 2);
    // The old session still verifies after rotation.
    let v = session::verify(&ring, &old_token, t0()).unwrap();
    assert_eq!(v.secret, secret);
    // New sessions are signed with the new key.
    let new_token = session::issue(&ring, &claims(&akid), &secret).unwrap();
    assert!(new_token.starts_with(&format!("{TOKEN_PREFIX}.{new_kid}.")));

    // The active key cannot be removed.
    assert_eq!(ring.remove(&new_kid), Err(KeyRingError::RemoveActive));
    // Retiring the old key ends the old sessions.
    ring.remove(&old_kid).unwrap();
    assert_eq!(
        session::verify(&ring, &old_token, t0()).unwrap_err(),
        SessionError::UnknownKey
    );
    assert!(session::verify(&ring, &new_token, t0()).is_ok());
    assert_eq!(ring.remove(&old_kid), Err(KeyRingError::UnknownKid));
}

#[test]
fn ring_persisted_and_reloaded_on_another_node() {
    let mut ring = SigningKeyRing::generate();
    let k1 = ring.active_kid().to_owned();
    let k2 = ring.rotate();
    let (akid, secret) = session::generate_temporary_credentials();
    let token = session::issue(&ring, &claims(&akid), &secret).unwrap();

    // Another node loads the same keys (as the store would, after unsealing them).
    let raw =
        |kid: &str| -> [u8; 32] { ring.export_key(kid).unwrap().expose().try_into().unwrap() };
    let mut other = SigningKeyRing::new(k1.clone(), raw(&k1)).unwrap();
    other.insert(k2.clone(), raw(&k2)).unwrap();
    other.set_active(&k2).unwrap();
    let v = session::verify(&other, &token, t0()).unwrap();
    assert_eq!(v.secret, secret);

    assert_eq!(
        other.insert(k2.clone(), [0; 32]),
        Err(KeyRingError::DuplicateKid)
    );
    assert_eq!(
        other.insert("bad kid!", [0; 32]),
        Err(KeyRingError::InvalidKid)
    );
    assert_eq!(other.set_active("nope"), Err(KeyRingError::UnknownKid));
    assert!(SigningKeyRing::new("", [0; 32]).is_err());
    // Debug shows kids but no key material.
    let dbg = format!("{other:?}");
    assert!(dbg.contains(&k1) && dbg.contains(&k2));
    assert!(!dbg.contains(&format!("{:?}", raw(&k1))));
}

#[test]
fn generated_credentials() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let (akid, secret) = session::generate_temporary_credentials();
        assert_eq!(akid.len(), 20);
        assert!(akid.starts_with("ASIA"));
        assert!(
            akid.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        let s = secret.expose_str().unwrap();
        assert_eq!(s.len(), 40);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        );
        assert!(seen.insert(akid));
        assert!(seen.insert(s.to_owned()));
    }
    let ak = session::generate_access_key_id("AKIA");
    assert!(ak.starts_with("AKIA") && ak.len() == 20);
}

#[test]
fn verified_session_debug_is_redacted() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let token = session::issue(&ring, &claims(&akid), &secret).unwrap();
    let v = session::verify(&ring, &token, t0()).unwrap();
    let dbg = format!("{v:?}");
    assert!(!dbg.contains(secret.expose_str().unwrap()));
    assert!(dbg.contains(&akid));
    let _ = Secret::from("x");
}

#[test]
fn issue_refuses_bad_claims() {
    let ring = SigningKeyRing::generate();
    let (akid, secret) = session::generate_temporary_credentials();
    let mut c = claims("AKIAIOSFODNN7EXAMPLE");
    assert_eq!(
        session::issue(&ring, &c, &secret).unwrap_err(),
        SessionError::Malformed
    );
    c.access_key_id = akid;
    c.expires_at = c.issued_at;
    assert_eq!(
        session::issue(&ring, &c, &secret).unwrap_err(),
        SessionError::Malformed
    );
    assert!(session::is_temporary_access_key_id(&c.access_key_id));
}

#[test]
fn mfa_age() {
    let c = claims("ASIAAAAAAAAAAAAAAAAA");
    assert_eq!(c.mfa_age_secs(t0() + Duration::seconds(60)), Some(90));
    let mut no_mfa = c.clone();
    no_mfa.mfa_present = false;
    assert_eq!(no_mfa.mfa_age_secs(t0()), None);
    assert!(c.is_live(t0()));
    assert!(!c.is_live(c.expires_at));
}

#[test]
fn the_principal_unique_id_is_the_id_before_the_session_name() {
    let role = claims("ASIAEXAMPLE000000001");
    assert_eq!(role.principal_unique_id(), "AROAEXAMPLEROLEID0001");
    let mut user = claims("ASIAEXAMPLE000000002");
    user.principal_id = "AIDAEXAMPLEUSERID0001".to_owned();
    assert_eq!(user.principal_unique_id(), "AIDAEXAMPLEUSERID0001");
    user.principal_id.clear();
    assert_eq!(user.principal_unique_id(), "");
}
