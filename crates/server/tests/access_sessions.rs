//! Role sessions opened under a just-in-time role grant end with the grant: a revoke ends
//! the sessions already open at the next call, and so does the window's end — also for a
//! session chained from one (whose own lifetime, an hour, outlasts the window). Over the
//! real router, with the Query API and the gateway's bearer path, on a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Duration;
use gatehouse_pipeline::ManualClock;
use gatehouse_server::AppState;
use gatehouse_server::session::authenticate_bearer;
use gatehouse_store::{NewRole, PrincipalKind};
use std::sync::Arc;

mod common;
use common::{ACCOUNT, Api, Creds};

const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
/// The deployer's standing rights: the access actions, and nothing to assume.
const DEPLOYER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["gatehouse:CreateAccessRequest","gatehouse:ActivateAccessRequest","gatehouse:RevokeAccessRequest"],"Resource":"*"}]}"#;
/// What the role `ops` allows its sessions: list users, and chain into `ops2`; list roles
/// only in a session under a just-in-time grant (`gatehouse:ElevationId` present).
const OPS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*"},{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:gatehouse:iam::111122223333:role/ops2"},{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*","Condition":{"Null":{"gatehouse:ElevationId":"false"},"StringEquals":{"gatehouse:ElevationJustification":"incident 7"}}}]}"#;
const OPS2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*"}]}"#;

struct World {
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
    hand: ManualClock,
    api: Api,
    deployer: Creds,
}

async fn role(state: &AppState, name: &str, policy: &str) {
    state
        .store
        .create_role(
            ACCOUNT,
            &NewRole {
                name: name.into(),
                trust_policy: TRUST_ACCOUNT.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    state
        .store
        .put_inline_policy(ACCOUNT, PrincipalKind::Role, name, "p", policy)
        .await
        .unwrap();
}

/// A deployer eligible for the role `ops` for up to 10 minutes, without approval.
async fn world() -> World {
    let hand = ManualClock::starting_now();
    let (state, dir) = common::state_on(hand.clock()).await;
    role(&state, "ops", OPS).await;
    role(&state, "ops2", OPS2).await;
    let deployer = Creds::user(&state, "deployer", DEPLOYER).await;
    gatehouse_access::create_eligibility(
        &state.store,
        &gatehouse_access::EligibilitySpec {
            account_id: ACCOUNT.into(),
            subject: format!("arn:gatehouse:iam::{ACCOUNT}:user/deployer"),
            target: format!("arn:gatehouse:iam::{ACCOUNT}:role/ops"),
            max_duration_secs: 600,
            approval_required: false,
            approvers: Vec::new(),
            mfa_required: false,
            ticket_required: false,
        },
    )
    .await
    .unwrap();
    let api = Api::new(common::serve_root(&state).await);
    World {
        state,
        _dir: dir,
        hand,
        api,
        deployer,
    }
}

/// Requests and activates the grant of `ops` for `secs`; returns the request id.
async fn elevate(w: &World, secs: &str) -> String {
    let r = w
        .api
        .iam(
            &w.deployer,
            "CreateAccessRequest",
            &[
                ("Target", &format!("arn:gatehouse:iam::{ACCOUNT}:role/ops")),
                ("DurationSeconds", secs),
                ("Justification", "incident 7"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.field("RequestId").unwrap();
    let r = w
        .api
        .iam(&w.deployer, "ActivateAccessRequest", &[("RequestId", &id)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

fn session_creds(r: &common::Reply) -> Creds {
    Creds {
        key_id: r.field("AccessKeyId").unwrap(),
        secret: r.field("SecretAccessKey").unwrap(),
        token: r.field("SessionToken"),
    }
}

async fn assume(w: &World, creds: &Creds, role: &str) -> Creds {
    let r = w
        .api
        .sts(
            creds,
            "AssumeRole",
            &[
                (
                    "RoleArn",
                    &format!("arn:gatehouse:iam::{ACCOUNT}:role/{role}"),
                ),
                ("RoleSessionName", "s1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    session_creds(&r)
}

#[tokio::test]
async fn a_revoke_ends_role_sessions_already_open_under_the_grant() {
    let w = world().await;
    // No standing right to assume the role.
    let r = w
        .api
        .sts(
            &w.deployer,
            "AssumeRole",
            &[
                ("RoleArn", &format!("arn:gatehouse:iam::{ACCOUNT}:role/ops")),
                ("RoleSessionName", "s0"),
            ],
        )
        .await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);

    let id = elevate(&w, "600").await;
    let session = assume(&w, &w.deployer, "ops").await;
    let chained = assume(&w, &session, "ops2").await;
    for s in [&session, &chained] {
        let r = w.api.iam(s, "ListUsers", &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    let r = w
        .api
        .iam(&w.deployer, "RevokeAccessRequest", &[("RequestId", &id)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The very same sessions are refused at once, over SigV4 and as a bearer token.
    for s in [&session, &chained] {
        let r = w.api.iam(s, "ListUsers", &[]).await;
        assert_eq!(
            (r.status, r.code().as_deref()),
            (403, Some("ExpiredToken")),
            "{}",
            r.body
        );
        assert!(r.body.contains(&id), "{}", r.body);
        let bearer = authenticate_bearer(&w.state, s.token.as_deref().unwrap())
            .await
            .unwrap_err();
        assert_eq!(bearer.code, "ExpiredToken");
    }
}

/// The audit records of the calls for `action`, as JSON, oldest first.
async fn records(state: &AppState, action: &str) -> Vec<serde_json::Value> {
    state
        .store
        .audit_tail(500)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.record).unwrap())
        .filter(|r| r["action"] == action)
        .collect()
}

/// Every record made under a grant names it in its own field: the steps on the request,
/// the AssumeRole the grant allowed, each call of the session opened under it (whose
/// decisions see the grant's condition keys); a call with standing rights has none.
#[tokio::test]
async fn records_made_under_a_grant_carry_its_id_and_its_sessions_its_keys() {
    let w = world().await;
    let id = elevate(&w, "600").await;
    let session = assume(&w, &w.deployer, "ops").await;
    let r = w.api.iam(&session, "ListRoles", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w.api.iam(&session, "ListUsers", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for action in [
        "gatehouse:ActivateAccessRequest",
        "sts:AssumeRole",
        "iam:ListRoles",
        "iam:ListUsers",
    ] {
        let recs = records(&w.state, action).await;
        let last = recs
            .last()
            .unwrap_or_else(|| panic!("no record of {action}"));
        assert_eq!(last["elevation_id"], id.as_str(), "{action}: {last}");
    }
    // A session opened with standing rights is under no grant: no keys, no field.
    let standing = Creds::user(
        &w.state,
        "operator",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    )
    .await;
    let plain = assume(&w, &standing, "ops").await;
    let r = w.api.iam(&plain, "ListRoles", &[]).await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = w.api.iam(&plain, "ListUsers", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let last = records(&w.state, "iam:ListUsers").await.pop().unwrap();
    assert!(last.get("elevation_id").is_none(), "{last}");
    assert!(last["principal"].as_str().unwrap().ends_with("/ops/s1"));
}

#[tokio::test]
async fn a_chained_session_ends_with_the_window_of_the_grant_it_came_from() {
    let w = world().await;
    elevate(&w, "300").await;
    let session = assume(&w, &w.deployer, "ops").await;
    // Chained sessions last an hour by default: far past the five-minute window.
    let chained = assume(&w, &session, "ops2").await;
    let token = chained.token.as_deref().unwrap();
    w.hand.advance(Duration::seconds(290));
    assert!(authenticate_bearer(&w.state, token).await.is_ok());
    w.hand.advance(Duration::seconds(11));
    let e = authenticate_bearer(&w.state, token).await.unwrap_err();
    assert_eq!(e.code, "ExpiredToken", "{}", e.message);
    // The session it was chained from ended with the window too (its token's own expiry).
    assert!(
        authenticate_bearer(&w.state, session.token.as_deref().unwrap())
            .await
            .is_err()
    );
}

/// A session opened with standing rights depends on no grant: a grant the same caller
/// holds (and loses) does not touch it.
#[tokio::test]
async fn a_session_opened_with_standing_rights_outlives_an_unrelated_revoke() {
    let w = world().await;
    let id = elevate(&w, "600").await;
    let standing = Creds::user(
        &w.state,
        "operator",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    )
    .await;
    let session = assume(&w, &standing, "ops").await;
    let r = w
        .api
        .iam(&w.deployer, "RevokeAccessRequest", &[("RequestId", &id)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w.api.iam(&session, "ListUsers", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
