//! Session-token verification cost: what every request made with temporary
//! credentials (SigV4 with `X-Amz-Security-Token`, or `Authorization: Bearer`)
//! pays before the policy engine runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use chrono::{DateTime, Duration};
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_auth::session::{self, SessionClaims, SigningKeyRing};

fn bench_verify(c: &mut Criterion) {
    let mut ring = SigningKeyRing::generate();
    ring.rotate();
    let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
    let (akid, secret) = session::generate_temporary_credentials();
    let mut claims = SessionClaims::new(
        akid,
        "arn:gatehouse:sts::111122223333:assumed-role/search-app/worker-1",
        "111122223333",
        now,
        now + Duration::hours(1),
    );
    claims.role_arn = Some("arn:gatehouse:iam::111122223333:role/search-app".to_owned());
    claims.session_name = Some("worker-1".to_owned());
    claims.principal_id = "AROAEXAMPLEROLEID0001:worker-1".to_owned();
    claims.tags.insert("team".to_owned(), "search".to_owned());
    claims.tags.insert("env".to_owned(), "prod".to_owned());
    claims.source_identity = Some("ci@example.com".to_owned());
    let token = session::issue(&ring, &claims, &secret).unwrap();

    c.bench_function("session_token_verify", |b| {
        b.iter(|| session::verify(black_box(&ring), black_box(&token), black_box(now)).unwrap());
    });

    claims.session_policies = vec![
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ai:InvokeModel","ai:InvokeModelWithResponseStream"],"Resource":"arn:gatehouse:ai:local:111122223333:model/llama-3-8b","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#.to_owned(),
    ];
    let token_with_policy = session::issue(&ring, &claims, &secret).unwrap();
    c.bench_function("session_token_verify_with_session_policy", |b| {
        b.iter(|| {
            session::verify(
                black_box(&ring),
                black_box(&token_with_policy),
                black_box(now),
            )
            .unwrap()
        });
    });

    // What the SigV4 path does for an ASIA key: verify, unseal, and bind to the key id.
    let akid = claims.access_key_id.clone();
    c.bench_function("session_token_resolve_for_sigv4", |b| {
        b.iter(|| {
            session::resolve_for_sigv4(
                black_box(&ring),
                black_box(&akid),
                black_box(Some(token.as_str())),
                black_box(now),
            )
            .unwrap()
        });
    });

    c.bench_function("session_token_issue", |b| {
        b.iter(|| {
            session::issue(black_box(&ring), black_box(&claims), black_box(&secret)).unwrap()
        });
    });
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
