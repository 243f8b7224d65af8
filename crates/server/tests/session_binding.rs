//! A session is bound to its principal's unique id, not its name (issue 10): delete a
//! role or user and create another of the same name, and the old session's credentials
//! are refused everywhere — SigV4 on the Query APIs, `Authorization: Bearer` at the
//! gateway — even though the new principal has wider permissions and a trust policy
//! that would never have issued them. A `revoke-sessions` deny is not lost by the
//! delete and re-create either.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ACCOUNT, Api, Creds, Reply};
use gatehouse_server::session::{authenticate_bearer, revoke_role_sessions};

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const ALLOW_GET_ROLE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}"#;
const TRUST_NOBODY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;

fn session_creds(r: &Reply) -> Creds {
    assert_eq!(r.status, 200, "{}", r.body);
    Creds {
        key_id: r.field("AccessKeyId").unwrap(),
        secret: r.field("SecretAccessKey").unwrap(),
        token: Some(r.field("SessionToken").unwrap()),
    }
}

fn refused(r: &Reply, what: &str) {
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("InvalidClientTokenId")),
        "{what}: {}",
        r.body
    );
}

/// Deletes role `app` and creates it again, trusting nobody and allowed everything.
async fn recreate_app(api: &Api, policies: &[&str]) {
    let root = Creds::root();
    for p in policies {
        let r = api
            .iam(
                &root,
                "DeleteRolePolicy",
                &[("RoleName", "app"), ("PolicyName", p)],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(
        api.iam(&root, "DeleteRole", &[("RoleName", "app")])
            .await
            .status,
        200
    );
    let r = api
        .iam(
            &root,
            "CreateRole",
            &[
                ("RoleName", "app"),
                ("AssumeRolePolicyDocument", TRUST_NOBODY),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .iam(
            &root,
            "PutRolePolicy",
            &[
                ("RoleName", "app"),
                ("PolicyName", "all"),
                ("PolicyDocument", ALLOW_ALL),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn gateway_status(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/v1/models"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_role_session_dies_with_its_role() {
    let (state, _dir) = common::state_with_role(ALLOW_GET_ROLE).await;
    let base = common::serve_root(&state).await;
    let api = Api::new(base.clone());
    let alice = Creds::user(&state, "alice", ALLOW_ALL).await;
    let arn = format!("arn:gatehouse:iam::{ACCOUNT}:role/app");
    let session = session_creds(
        &api.sts(
            &alice,
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "s1")],
        )
        .await,
    );
    let token = session.token.clone().unwrap();
    assert_eq!(
        api.sts(&session, "GetCallerIdentity", &[]).await.status,
        200
    );
    assert_eq!(
        api.iam(&session, "GetRole", &[("RoleName", "app")])
            .await
            .status,
        200
    );
    assert_eq!(
        api.iam(&session, "ListUsers", &[]).await.code().as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(gateway_status(&base, &token).await, 200);

    recreate_app(&api, &["invoke"]).await;

    refused(&api.sts(&session, "GetCallerIdentity", &[]).await, "STS");
    refused(&api.iam(&session, "ListUsers", &[]).await, "IAM");
    let bearer = authenticate_bearer(&state, &token).await.unwrap_err();
    assert_eq!(bearer.aws_code(), "InvalidClientTokenId");
    assert_eq!(gateway_status(&base, &token).await, 401);
}

#[tokio::test]
async fn a_get_session_token_session_dies_with_its_user() {
    let (state, _dir) = common::state().await;
    let api = Api::new(common::serve_root(&state).await);
    let alice = Creds::user(
        &state,
        "alice",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#,
    )
    .await;
    let session = session_creds(&api.sts(&alice, "GetSessionToken", &[]).await);
    // (Without MFA such a session calls no IAM action, as in AWS; STS identifies it.)
    assert_eq!(
        api.sts(&session, "GetCallerIdentity", &[]).await.status,
        200
    );

    let root = Creds::root();
    for (action, params) in [
        (
            "DeleteAccessKey",
            vec![
                ("UserName", "alice"),
                ("AccessKeyId", alice.key_id.as_str()),
            ],
        ),
        (
            "DeleteUserPolicy",
            vec![("UserName", "alice"), ("PolicyName", "p")],
        ),
        ("DeleteUser", vec![("UserName", "alice")]),
        ("CreateUser", vec![("UserName", "alice")]),
        (
            "PutUserPolicy",
            vec![
                ("UserName", "alice"),
                ("PolicyName", "all"),
                ("PolicyDocument", ALLOW_ALL),
            ],
        ),
    ] {
        let r = api.iam(&root, action, &params).await;
        assert_eq!(r.status, 200, "{action}: {}", r.body);
    }

    refused(&api.iam(&session, "ListUsers", &[]).await, "IAM");
    refused(&api.sts(&session, "GetCallerIdentity", &[]).await, "STS");
    let bearer = authenticate_bearer(&state, session.token.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(bearer.aws_code(), "InvalidClientTokenId");
}

#[tokio::test]
async fn revoked_sessions_stay_revoked_after_the_role_is_recreated() {
    let (state, _dir) = common::state_with_role(ALLOW_GET_ROLE).await;
    let api = Api::new(common::serve_root(&state).await);
    let alice = Creds::user(&state, "alice", ALLOW_ALL).await;
    let arn = format!("arn:gatehouse:iam::{ACCOUNT}:role/app");
    let session = session_creds(
        &api.sts(
            &alice,
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "s1")],
        )
        .await,
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    revoke_role_sessions(&state.store, ACCOUNT, "app", chrono::Utc::now())
        .await
        .unwrap();
    let denied = api.iam(&session, "GetRole", &[("RoleName", "app")]).await;
    assert_eq!(
        denied.code().as_deref(),
        Some("AccessDenied"),
        "{}",
        denied.body
    );

    // The revocation policy goes with the role; the session still does not come back.
    recreate_app(
        &api,
        &["invoke", gatehouse_server::session::REVOKE_POLICY_NAME],
    )
    .await;
    refused(
        &api.iam(&session, "GetRole", &[("RoleName", "app")]).await,
        "IAM after re-create",
    );
    let bearer = authenticate_bearer(&state, session.token.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(bearer.aws_code(), "InvalidClientTokenId");
    // A new session of the new role is what its own trust policy says: none.
    let r = api
        .sts(
            &alice,
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "s2")],
        )
        .await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
}
