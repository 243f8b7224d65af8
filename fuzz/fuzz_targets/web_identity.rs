//! Web identity tokens (`AssumeRoleWithWebIdentity`) against a fixed set of providers whose
//! keys are inline (`seeds/keys/jwks.json`: RS256, ES256, EdDSA; no network). The first
//! byte picks the mode:
//! - even: the rest is a token as a caller sends it;
//! - odd: the rest is a claims object, signed here with the provider's Ed25519 key, so that
//!   the checks after the signature (issuer, audience, times, subject, condition keys) see
//!   arbitrary claims.
//!
//! Never a panic; a refusal carries one of AWS's three codes and never echoes the token; an
//! accepted token names a registered provider, one of its client ids as audience, a
//! non-empty subject, an unexpired `exp`, and only condition keys under its issuer.
#![no_main]

use gatehouse_server::oidc::{JwksCache, MAX_SKEW_SECS, validate};
use gatehouse_store::OidcProvider;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const JWKS: &str = include_str!("../seeds/keys/jwks.json");
const ED25519_PEM: &[u8] = include_bytes!("../seeds/keys/ed25519.pem");

struct Fixture {
    rt: tokio::runtime::Runtime,
    cache: JwksCache,
    providers: Vec<OidcProvider>,
    ed25519: EncodingKey,
}

fn provider(url: &str, client_ids: &[&str]) -> OidcProvider {
    let host = url.split_once("://").map_or(url, |(_, h)| h);
    OidcProvider {
        arn: format!("arn:gatehouse:iam::111122223333:oidc-provider/{host}"),
        account_id: "111122223333".into(),
        url: url.into(),
        client_ids: client_ids.iter().map(|s| (*s).to_owned()).collect(),
        thumbprints: Vec::new(),
        tags: Vec::new(),
        jwks: Some(JWKS.into()),
        created: Default::default(),
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}")),
        cache: JwksCache::default(),
        providers: vec![
            provider(
                "https://token.actions.githubusercontent.com",
                &["sts.amazonaws.com", "gatehouse"],
            ),
            provider("https://oidc.example.test/tenant-1", &["gatehouse"]),
            provider("https://no-audience.example.test", &[]),
        ],
        ed25519: EncodingKey::from_ed_pem(ED25519_PEM).unwrap_or_else(|e| panic!("key: {e}")),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (token, claims) = if mode % 2 == 0 {
        (String::from_utf8_lossy(rest).into_owned(), None)
    } else {
        let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(rest) else {
            return;
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("ed-1".into());
        let Ok(t) = jsonwebtoken::encode(&header, &claims, &f.ed25519) else {
            return;
        };
        (t, Some(claims))
    };
    let out = f.rt.block_on(validate(&f.cache, &f.providers, &token));
    match out {
        Err(e) => {
            assert!(
                matches!(
                    e.code.as_str(),
                    "InvalidIdentityToken" | "IDPRejectedClaim" | "ExpiredTokenException"
                ),
                "{e}"
            );
            assert!(
                token.len() < 16 || !e.message.contains(&token),
                "the error echoes the token"
            );
        }
        Ok(id) => {
            let p = f
                .providers
                .iter()
                .find(|p| p.arn == id.provider_arn)
                .unwrap_or_else(|| panic!("accepted for an unknown provider {}", id.provider_arn));
            assert!(
                p.client_ids.contains(&id.audience),
                "audience {:?}",
                id.audience
            );
            assert!(!id.subject.is_empty());
            let prefix = format!("{}:", id.issuer_key);
            assert!(
                id.condition_keys
                    .iter()
                    .all(|(k, _)| k.starts_with(&prefix))
            );
            assert!(
                id.condition_keys
                    .iter()
                    .any(|(k, v)| *k == format!("{prefix}aud") && v == &[id.audience.clone()])
            );
            if let Some(c) = claims {
                let now = chrono::Utc::now().timestamp();
                let skew = MAX_SKEW_SECS as i64;
                let exp = c.get("exp").and_then(serde_json::Value::as_f64);
                assert!(
                    exp.is_some_and(|e| e >= (now - skew) as f64),
                    "accepted with exp {exp:?}"
                );
                assert_eq!(
                    c.get("sub").and_then(|s| s.as_str()),
                    Some(id.subject.as_str())
                );
            }
        }
    }
});
