//! A store failure on the way to a decision is a deny (issue 10): before, a failed lookup
//! of an entity's path became path `/`, so the call was authorized against an ARN that is
//! not the stored one — and a Deny on the stored path did not apply. The failure is
//! injected by breaking a column the entity lookup reads and the action's own write does
//! not (`users.permissions_boundary`; `PutUserPolicy` finds the user by id and name only),
//! on a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ACCOUNT, Api, Creds};
use gatehouse_store::{NewRole, NewUser, PrincipalKind};

const ATTACKER_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"*","Resource":"*"},
  {"Effect":"Deny","Action":"iam:*","Resource":"arn:gatehouse:iam::111122223333:user/vip/*"}]}"#;

#[tokio::test]
async fn a_failed_entity_lookup_fails_the_call_instead_of_guessing_its_path() {
    let (state, dir) = common::state().await;
    let store = &state.store;
    store
        .create_user(
            ACCOUNT,
            &NewUser {
                name: "protected".into(),
                path: Some("/vip/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The caller is a role session: resolving it reads the roles table only, which the
    // injected failure leaves alone.
    store
        .create_role(
            ACCOUNT,
            &NewRole {
                name: "ops".into(),
                trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .put_inline_policy(ACCOUNT, PrincipalKind::Role, "ops", "p", ATTACKER_POLICY)
        .await
        .unwrap();
    let alice = Creds::user(
        &state,
        "alice",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    )
    .await;
    let api = Api::new(common::serve_root(&state).await);
    let r = api
        .sts(
            &alice,
            "AssumeRole",
            &[
                ("RoleArn", "arn:gatehouse:iam::111122223333:role/ops"),
                ("RoleSessionName", "s1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let session = Creds {
        key_id: r.field("AccessKeyId").unwrap(),
        secret: r.field("SecretAccessKey").unwrap(),
        token: r.field("SessionToken"),
    };
    let doc =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let params = [
        ("UserName", "protected"),
        ("PolicyName", "backdoor"),
        ("PolicyDocument", doc),
    ];
    let attempt = || api.iam(&session, "PutUserPolicy", &params);
    assert_eq!(attempt().await.code().as_deref(), Some("AccessDenied"));

    let url = format!(
        "sqlite://{}",
        dir.path().join(gatehouse_store::SQLITE_FILE).display()
    );
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE users RENAME COLUMN permissions_boundary TO broken_boundary")
        .execute(&raw)
        .await
        .unwrap();

    let r = attempt().await;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (500, Some("ServiceFailure")),
        "{}",
        r.body
    );
    let planted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inline_policies WHERE name = 'backdoor'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(planted, 0, "a policy was put on the protected user");
    // The cause is not in the answer.
    assert!(!r.body.contains("broken_boundary") && !r.body.contains("permissions_boundary"));
}
