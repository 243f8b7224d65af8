//! `session::authenticate_bearer`, the gateway's way in: a session token alone resolves to
//! the same principal and decisions as SigV4 with the temporary credentials would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use gatehouse_auth::session;
use gatehouse_pipeline::ManualClock;
use gatehouse_policy::DecisionKind;
use gatehouse_server::AppState;
use gatehouse_server::session::{authenticate_bearer, revoke_role_sessions};
use gatehouse_store::{MasterKey, Store};

mod common;
use common::ACCOUNT;

/// The state, reading time from a manual clock that the test moves.
async fn state() -> (std::sync::Arc<AppState>, tempfile::TempDir, ManualClock) {
    let hand = ManualClock::starting_now();
    let (state, dir) = common::state_with_role_on(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*",
           "Condition":{"StringEquals":{"aws:PrincipalTag/team":"search"}}}]}"#,
        hand.clock(),
    )
    .await;
    (state, dir, hand)
}

async fn token(
    state: &AppState,
    team: &str,
    issued: chrono::DateTime<Utc>,
    ttl: Duration,
) -> String {
    let (mut c, secret) = common::app_session(state, "s1", issued, ttl).await;
    c.tags.insert("team".into(), team.into());
    session::issue(&state.ring(), &c, &secret).unwrap()
}

const MODEL: &str = "arn:gatehouse:ai:local:111122223333:model/llama";

#[tokio::test]
async fn bearer_token_resolves_to_the_role_session() {
    let (state, _dir, hand) = state().await;
    let now = hand.now();
    let good = token(&state, "search", now, Duration::hours(1)).await;
    let good = authenticate_bearer(&state, &good).await.unwrap();
    assert_eq!(
        good.claims.principal_arn,
        format!("arn:gatehouse:sts::{ACCOUNT}:assumed-role/app/s1")
    );
    let req = good.request("ai:InvokeModel", MODEL, hand.now());
    assert_eq!(
        good.evaluation(None).decide(&req).decision,
        DecisionKind::Allow
    );
    let req = good.request("ai:DeleteDeployment", MODEL, hand.now());
    assert_eq!(
        good.evaluation(None).decide(&req).decision,
        DecisionKind::ImplicitDeny
    );

    // Session tags are aws:PrincipalTag: another team's session is denied.
    let ads = token(&state, "ads", now, Duration::hours(1)).await;
    let ads = authenticate_bearer(&state, &ads).await.unwrap();
    let req = ads.request("ai:InvokeModel", MODEL, hand.now());
    assert_eq!(
        ads.evaluation(None).decide(&req).decision,
        DecisionKind::ImplicitDeny
    );
}

#[tokio::test]
async fn expired_forged_and_revoked_tokens_are_useless() {
    let (state, _dir, hand) = state().await;
    let now = hand.now();
    let expired = token(
        &state,
        "search",
        now - Duration::hours(2),
        Duration::hours(1),
    )
    .await;
    assert_eq!(
        authenticate_bearer(&state, &expired)
            .await
            .unwrap_err()
            .aws_code(),
        "ExpiredToken"
    );
    let mut forged = token(&state, "search", now, Duration::hours(1)).await;
    forged.insert(10, 'x');
    assert_eq!(
        authenticate_bearer(&state, &forged)
            .await
            .unwrap_err()
            .aws_code(),
        "InvalidClientTokenId"
    );
    let other = AppState::new(
        Store::open_sqlite(tempfile::tempdir().unwrap().path(), MasterKey::generate())
            .await
            .unwrap(),
        state.config.clone(),
    );
    // Claims this store would accept, signed with another installation's ring.
    let (claims, secret) = common::app_session(&state, "s1", now, Duration::hours(1)).await;
    let foreign = session::issue(&other.ring(), &claims, &secret).unwrap();
    assert_eq!(
        authenticate_bearer(&state, &foreign)
            .await
            .unwrap_err()
            .aws_code(),
        "InvalidClientTokenId"
    );

    let stolen = token(
        &state,
        "search",
        now - Duration::seconds(1),
        Duration::hours(1),
    )
    .await;
    revoke_role_sessions(&state.store, ACCOUNT, "app", hand.now())
        .await
        .unwrap();
    // This node's cache follows the store generation (the server's watcher does this).
    state
        .cache
        .invalidate(state.store.policy_generation().await.unwrap());
    let s = authenticate_bearer(&state, &stolen).await.unwrap();
    let req = s.request("ai:InvokeModel", MODEL, hand.now());
    assert_eq!(
        s.evaluation(None).decide(&req).decision,
        DecisionKind::ExplicitDeny
    );
    // A session issued after the revocation is not touched by it.
    hand.advance(Duration::milliseconds(5));
    let fresh = token(&state, "search", hand.now(), Duration::hours(1)).await;
    let fresh = authenticate_bearer(&state, &fresh).await.unwrap();
    let req = fresh.request("ai:InvokeModel", MODEL, hand.now());
    assert_eq!(
        fresh.evaluation(None).decide(&req).decision,
        DecisionKind::Allow
    );
}

/// The server reads the time from its clock: a session valid now is refused as expired once
/// the clock passes its end, with no sleeping and no token issued in the past.
#[tokio::test]
async fn a_session_expires_when_the_servers_clock_passes_its_end() {
    let (state, _dir, hand) = state().await;
    let t = token(&state, "search", hand.now(), Duration::hours(1)).await;
    let s = authenticate_bearer(&state, &t).await.unwrap();
    let req = s.request("ai:InvokeModel", MODEL, hand.now());
    assert_eq!(
        s.evaluation(None).decide(&req).decision,
        DecisionKind::Allow
    );
    hand.advance(Duration::minutes(59));
    assert!(authenticate_bearer(&state, &t).await.is_ok());
    hand.advance(Duration::minutes(2));
    assert_eq!(
        authenticate_bearer(&state, &t)
            .await
            .unwrap_err()
            .aws_code(),
        "ExpiredToken"
    );
}
