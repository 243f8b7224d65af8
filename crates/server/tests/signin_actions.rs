//! Sign-in management over the Query API, through the router with a signing client:
//! identity sources and assignments are authorized as `gatehouse:` actions (an assignment
//! also as `iam:PassRole` on its role), audited, and refused input changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ACCOUNT, Api, Creds};

const ROLE: &str = "arn:gatehouse:iam::111122223333:role/app";
const SECRET: &str = "idp-client-secret-7d1e";

fn allow(actions: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"{resource}"}}]}}"#
    )
}

async fn stored(state: &gatehouse_server::AppState) -> String {
    let s = &state.store;
    format!(
        "{}{}",
        serde_json::to_string(&s.list_signin_sources(ACCOUNT).await.unwrap()).unwrap(),
        serde_json::to_string(&s.list_signin_assignments(ACCOUNT, None).await.unwrap()).unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_and_assignments_through_the_query_api() {
    let (state, _dir) =
        common::state_with_role("{\"Version\":\"2012-10-17\",\"Statement\":[]}").await;
    let api = Api::new(common::serve_root(&state).await);
    let root = Creds::root();

    let r = api
        .iam(
            &root,
            "CreateIdentitySource",
            &[
                ("Name", "corp"),
                ("Issuer", "http://127.0.0.1:9/oidc"),
                ("ClientId", "gatehouse"),
                ("ClientSecret", SECRET),
                ("Scopes.member.1", "openid"),
                ("Scopes.member.2", "groups"),
                ("SessionTagClaims.member.1.Key", "department"),
                ("SessionTagClaims.member.1.Claim", "dept"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("HasClientSecret").as_deref(), Some("true"));
    assert_eq!(r.field("Claim").as_deref(), Some("dept"));
    assert!(!r.body.contains(SECRET), "the secret is never echoed");
    let sealed = state
        .store
        .signin_source_client_secret(ACCOUNT, "corp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealed.expose_str(), Some(SECRET));

    let r = api
        .iam(
            &root,
            "CreateAssignment",
            &[
                ("IdentitySource", "corp"),
                ("Subject", "group:ml-eng"),
                ("RoleArn", ROLE),
                ("MaxSessionDuration", "900"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.field("AssignmentId").unwrap();
    assert!(id.starts_with("SIGA"));
    let r = api.iam(&root, "ListAssignments", &[]).await;
    assert_eq!(r.field("Subject").as_deref(), Some("group:ml-eng"));
    let r = api.iam(&root, "ListIdentitySources", &[]).await;
    assert_eq!(
        r.field("Issuer").as_deref(),
        Some("http://127.0.0.1:9/oidc")
    );

    // The write's audit record names the gatehouse: action.
    let tail = state.store.audit_tail(20).await.unwrap();
    assert!(
        tail.iter()
            .any(|e| e.record.contains("\"gatehouse:CreateAssignment\"")),
        "no audit record of CreateAssignment"
    );
    assert!(tail.iter().all(|e| !e.record.contains(SECRET)));

    // Bad input: the protocol's error, nothing stored changes.
    let before = stored(&state).await;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let bad: Vec<Case> = vec![
        (
            "CreateIdentitySource",
            vec![
                ("Name", "plain"),
                ("Issuer", "http://idp.example.com"),
                ("ClientId", "c"),
            ],
            "ValidationError",
        ),
        (
            "CreateIdentitySource",
            vec![
                ("Name", "corp"),
                ("Issuer", "https://idp.example.com"),
                ("ClientId", "c"),
            ],
            "EntityAlreadyExists",
        ),
        (
            "CreateAssignment",
            vec![
                ("IdentitySource", "corp"),
                ("Subject", "team:x"),
                ("RoleArn", ROLE),
            ],
            "ValidationError",
        ),
        (
            "CreateAssignment",
            vec![
                ("IdentitySource", "nope"),
                ("Subject", "group:x"),
                ("RoleArn", ROLE),
            ],
            "NoSuchEntity",
        ),
        (
            "CreateAssignment",
            vec![
                ("IdentitySource", "corp"),
                ("Subject", "group:x"),
                ("RoleArn", ROLE),
                ("MaxSessionDuration", "86400"),
            ],
            "ValidationError",
        ),
        (
            "DeleteIdentitySource",
            vec![("Name", "corp")],
            "DeleteConflict",
        ),
        (
            "DeleteAssignment",
            vec![("AssignmentId", "SIGANOSUCH")],
            "NoSuchEntity",
        ),
    ];
    for (action, params, code) in &bad {
        let r = api.iam(&root, action, params).await;
        assert_eq!(r.code().as_deref(), Some(*code), "{action}: {}", r.body);
    }
    assert_eq!(stored(&state).await, before);

    let r = api
        .iam(&root, "DeleteAssignment", &[("AssignmentId", &id)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .iam(&root, "DeleteIdentitySource", &[("Name", "corp")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        state
            .store
            .list_signin_sources(ACCOUNT)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigning_a_role_needs_pass_role_on_it() {
    let (state, _dir) =
        common::state_with_role("{\"Version\":\"2012-10-17\",\"Statement\":[]}").await;
    let api = Api::new(common::serve_root(&state).await);
    let r = api
        .iam(
            &Creds::root(),
            "CreateIdentitySource",
            &[
                ("Name", "corp"),
                ("Issuer", "https://idp.example.com"),
                ("ClientId", "gatehouse"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let params = [
        ("IdentitySource", "corp"),
        ("Subject", "user:00u-alice"),
        ("RoleArn", ROLE),
    ];
    // Nobody but root without a policy.
    let nobody = Creds::user(&state, "nobody", &allow("\"iam:GetUser\"", "*")).await;
    let r = api.iam(&nobody, "CreateAssignment", &params).await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api.iam(&nobody, "ListIdentitySources", &[]).await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
    // gatehouse:CreateAssignment alone is not enough: the role must be passable.
    let assigner = Creds::user(
        &state,
        "assigner",
        &allow(
            "[\"gatehouse:CreateAssignment\",\"gatehouse:ListAssignments\"]",
            "*",
        ),
    )
    .await;
    let r = api.iam(&assigner, "CreateAssignment", &params).await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
    assert!(r.body.contains("iam:PassRole"), "{}", r.body);
    assert!(
        state
            .store
            .list_signin_assignments(ACCOUNT, None)
            .await
            .unwrap()
            .is_empty()
    );
    let passer = Creds::user(
        &state,
        "passer",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"gatehouse:CreateAssignment","Resource":"arn:gatehouse:gatehouse::{ACCOUNT}:assignment/*"}},{{"Effect":"Allow","Action":"iam:PassRole","Resource":"{ROLE}"}}]}}"#
        ),
    )
    .await;
    let r = api.iam(&passer, "CreateAssignment", &params).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.iam(&assigner, "ListAssignments", &[]).await;
    assert_eq!(r.field("Subject").as_deref(), Some("user:00u-alice"));
}
