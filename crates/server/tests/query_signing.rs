//! What a Query API signature covers, through the router on a loopback port (issue 10):
//! a presigned URL grants the call in its URL and nothing else — an unsigned payload is
//! refused, and no body may add or override its parameters — and a credential scope's
//! service must be the addressed API's own (`iam`, `sts`, `ai`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Api, Creds, IAM_VERSION, STS_VERSION};
use gatehouse_auth::sigv4::{UNSIGNED_PAYLOAD, sha256_hex};
use reqwest::Method;

const CREATE_EVIL: &str = "Action=CreateUser&Version=2010-05-08&UserName=evil";

async fn setup() -> (
    std::sync::Arc<gatehouse_server::AppState>,
    Api,
    tempfile::TempDir,
) {
    let (state, dir) = common::state().await;
    let api = Api::new(common::serve_root(&state).await);
    let keeper = api
        .iam(&Creds::root(), "CreateUser", &[("UserName", "keeper")])
        .await;
    assert_eq!(keeper.status, 200, "{}", keeper.body);
    (state, api, dir)
}

async fn evil_exists(state: &gatehouse_server::AppState) -> bool {
    state.store.get_user(common::ACCOUNT, "evil").await.is_ok()
}

const GET_KEEPER: &[(&str, &str)] = &[
    ("Action", "GetUser"),
    ("Version", IAM_VERSION),
    ("UserName", "keeper"),
];

#[tokio::test]
async fn a_url_presigned_for_get_user_cannot_create_a_user() {
    let (state, api, _dir) = setup().await;
    let root = Creds::root();

    // The URL as botocore presigns for IAM (the empty body's hash) works, as a GET.
    let url = api.presign("GET", &root, "iam", GET_KEEPER, &sha256_hex(b""));
    let ok = api.send_presigned(Method::GET, &url, &[], "").await;
    assert_eq!(
        ok.field("UserName").as_deref(),
        Some("keeper"),
        "{}",
        ok.body
    );

    // Presigned with UNSIGNED-PAYLOAD (an S3-style presigner): refused outright, and a
    // form body naming another action does not run it.
    let unsigned = api.presign("POST", &root, "iam", GET_KEEPER, UNSIGNED_PAYLOAD);
    let r = api.send_presigned(Method::POST, &unsigned, &[], "").await;
    assert_eq!(
        r.code().as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        r.body
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = api
        .send_presigned(Method::POST, &unsigned, &form, CREATE_EVIL)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let declared = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
    ];
    let r = api
        .send_presigned(Method::POST, &unsigned, &declared, CREATE_EVIL)
        .await;
    assert_eq!(
        r.code().as_deref(),
        Some("XAmzContentSHA256Mismatch"),
        "{}",
        r.body
    );

    // The URL signed for the empty body, sent with one: the signature does not match.
    let r = api
        .send_presigned(Method::POST, &url, &form, CREATE_EVIL)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Even a body the presigner signed (its hash in the canonical request) does not add
    // parameters to a presigned URL: the request is refused.
    let signed_body = api.presign(
        "POST",
        &root,
        "iam",
        GET_KEEPER,
        &sha256_hex(CREATE_EVIL.as_bytes()),
    );
    let r = api
        .send_presigned(Method::POST, &signed_body, &form, CREATE_EVIL)
        .await;
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("InvalidParameterCombination")),
        "{}",
        r.body
    );
    assert!(
        !evil_exists(&state).await,
        "a presigned GetUser created a user"
    );
}

#[tokio::test]
async fn the_credential_scope_names_the_addressed_api() {
    let (state, api, _dir) = setup().await;
    let root = Creds::root();
    let iam_body = CREATE_EVIL;
    for service in ["sts", "ai", "s3"] {
        let r = api.post(&root, service, "", iam_body).await;
        assert_eq!(
            (r.status, r.code().as_deref()),
            (403, Some("SignatureDoesNotMatch")),
            "IAM signed for {service}: {}",
            r.body
        );
        assert!(
            r.body.contains("correct service: &apos;iam&apos;"),
            "{}",
            r.body
        );
    }
    assert!(!evil_exists(&state).await);

    let sts_body = format!("Action=GetCallerIdentity&Version={STS_VERSION}");
    for service in ["iam", "ai"] {
        let r = api.post(&root, service, "", &sts_body).await;
        assert_eq!(
            r.code().as_deref(),
            Some("SignatureDoesNotMatch"),
            "STS signed for {service}: {}",
            r.body
        );
    }
    let ai_body = "Action=GetDeployment&Version=2024-01-01&ModelId=m";
    for service in ["iam", "sts"] {
        let r = api.post(&root, service, "", ai_body).await;
        assert_eq!(
            r.code().as_deref(),
            Some("SignatureDoesNotMatch"),
            "ai signed for {service}: {}",
            r.body
        );
    }

    // Each API with its own service works.
    assert_eq!(api.post(&root, "iam", "", iam_body).await.status, 200);
    assert!(evil_exists(&state).await);
    assert_eq!(api.post(&root, "sts", "", &sts_body).await.status, 200);
    let r = api.post(&root, "ai", "", ai_body).await;
    assert_ne!(
        r.code().as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        r.body
    );
}
