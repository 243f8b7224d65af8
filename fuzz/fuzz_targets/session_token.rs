//! Session tokens (`ghs1.KID.PAYLOAD.TAG`) with a fixed signing ring. The first byte picks
//! the mode:
//! - 0: the rest is a token as a caller sends it (Bearer, or `X-Amz-Security-Token`), and
//!   also an encoded authorization message: verify, resolve for SigV4, open;
//! - 1: the rest is session claims (JSON): issue a token, which must verify to the same
//!   claims and secret while live, and not at all once any one character is changed;
//! - 2: the rest is a message to seal and open again.
//!
//! Never a panic; nothing verifies that this ring did not sign.
#![no_main]

use gatehouse_auth::Secret;
use gatehouse_auth::session::{self, SessionClaims, SessionError, SigningKeyRing};
use gatehouse_fuzz::now;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SECRET: &str = "session-secret-for-fuzzing-0000000000000";

fn ring() -> &'static SigningKeyRing {
    static R: OnceLock<SigningKeyRing> = OnceLock::new();
    R.get_or_init(|| {
        let mut r =
            SigningKeyRing::new("fuzz-old", [3u8; 32]).unwrap_or_else(|e| panic!("ring: {e}"));
        r.insert("fuzz-1", [7u8; 32])
            .unwrap_or_else(|e| panic!("ring: {e}"));
        r.set_active("fuzz-1")
            .unwrap_or_else(|e| panic!("ring: {e}"));
        r
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ring = ring();
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            if let Ok(v) = session::verify(ring, &token, now()) {
                // Only tokens this ring issued verify; the fuzzer cannot forge one, so an
                // accepted token must at least be live and name a temporary key.
                assert!(now() < v.claims.expires_at);
                assert!(session::is_temporary_access_key_id(&v.claims.access_key_id));
            }
            let _ = session::resolve_for_sigv4(ring, "ASIAFUZZFUZZFUZZFUZZ", Some(&token), now());
            let _ = session::open_message(ring, &token);
        }
        1 => {
            let Ok(claims) = serde_json::from_slice::<SessionClaims>(rest) else {
                return;
            };
            let secret = Secret::from(SECRET);
            let Ok(token) = session::issue(ring, &claims, &secret) else {
                return;
            };
            if token.len() > session::MAX_TOKEN_LEN {
                return;
            }
            match session::verify(ring, &token, now()) {
                Ok(v) => {
                    assert!(now() < claims.expires_at);
                    assert_eq!(v.claims, claims);
                    assert_eq!(v.secret, secret);
                }
                Err(SessionError::Expired) => assert!(now() >= claims.expires_at),
                Err(e) => panic!("an issued token does not verify: {e}"),
            }
            // Change one character, chosen by the input: never a valid token.
            let i = rest.len().wrapping_mul(31) % token.len();
            let mut bytes = token.into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8_lossy(&bytes);
            assert!(
                session::verify(ring, &changed, now()).is_err(),
                "a changed token verifies"
            );
        }
        _ => {
            let sealed = session::seal_message(ring, rest).unwrap_or_else(|e| panic!("{e}"));
            let opened = session::open_message(ring, &sealed).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(opened, rest);
        }
    }
});
