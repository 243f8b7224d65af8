//! The IAM and STS condition keys AWS documents reach the decision (issue 10), through the
//! router on a loopback port: the standard guardrails people copy from AWS's examples hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ACCOUNT, Api, Creds, Reply};

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:ListModels","Resource":"*"}]}"#;
const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

fn policy(statements: serde_json::Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

async fn root(api: &Api, action: &str, params: &[(&str, &str)]) -> Reply {
    let r = api.iam(&Creds::root(), action, params).await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r
}

fn code(r: &Reply) -> Option<String> {
    r.code()
}

async fn setup(caller_policy: serde_json::Value) -> (Api, Creds, tempfile::TempDir) {
    let (state, dir) = common::state().await;
    let api = Api::new(common::serve_root(&state).await);
    let caller = Creds::user(&state, "caller", &policy(caller_policy)).await;
    // The server task holds the state from here on.
    drop(state);
    (api, caller, dir)
}

#[tokio::test]
async fn never_attach_administrator_access() {
    let (api, caller, _dir) = setup(serde_json::json!([
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Sid": "NoAdmin", "Effect": "Deny", "Action": "iam:Attach*Policy", "Resource": "*",
         "Condition": {"ArnLike": {"iam:PolicyARN": "arn:gatehouse:iam::*:policy/AdministratorAccess"}}}
    ]))
    .await;
    let admin = root(
        &api,
        "CreatePolicy",
        &[
            ("PolicyName", "AdministratorAccess"),
            ("PolicyDocument", DOC),
        ],
    )
    .await
    .field("Arn")
    .unwrap();
    let other = root(
        &api,
        "CreatePolicy",
        &[("PolicyName", "reader"), ("PolicyDocument", DOC)],
    )
    .await
    .field("Arn")
    .unwrap();
    root(&api, "CreateUser", &[("UserName", "bob")]).await;
    root(&api, "CreateGroup", &[("GroupName", "devs")]).await;
    root(
        &api,
        "CreateRole",
        &[
            ("RoleName", "svc"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await;
    for (action, param, name) in [
        ("AttachUserPolicy", "UserName", "bob"),
        ("AttachUserPolicy", "UserName", "caller"),
        ("AttachGroupPolicy", "GroupName", "devs"),
        ("AttachRolePolicy", "RoleName", "svc"),
    ] {
        let r = api
            .iam(&caller, action, &[(param, name), ("PolicyArn", &admin)])
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("AccessDenied"),
            "{action} {name}: {}",
            r.body
        );
        let r = api
            .iam(&caller, action, &[(param, name), ("PolicyArn", &other)])
            .await;
        assert_eq!(r.status, 200, "{action} {name} reader: {}", r.body);
    }
}

#[tokio::test]
async fn users_and_roles_may_only_be_created_with_the_boundary() {
    let boundary_arn = format!("arn:gatehouse:iam::{ACCOUNT}:policy/boundary");
    let (api, caller, _dir) = setup(serde_json::json!([
        {"Effect": "Allow", "Action": ["iam:CreateUser", "iam:CreateRole",
                                       "iam:PutUserPermissionsBoundary", "iam:PutRolePermissionsBoundary"],
         "Resource": "*",
         "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}},
        {"Effect": "Allow", "Action": ["iam:PutUserPolicy", "iam:DeleteUserPermissionsBoundary"], "Resource": "*",
         "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}},
        {"Effect": "Allow", "Action": "iam:CreatePolicy", "Resource": "*"}
    ]))
    .await;
    root(
        &api,
        "CreatePolicy",
        &[("PolicyName", "boundary"), ("PolicyDocument", DOC)],
    )
    .await;
    let other = root(
        &api,
        "CreatePolicy",
        &[("PolicyName", "wide"), ("PolicyDocument", DOC)],
    )
    .await
    .field("Arn")
    .unwrap();
    let r = api
        .iam(&caller, "CreateUser", &[("UserName", "free")])
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api
        .iam(
            &caller,
            "CreateUser",
            &[("UserName", "free"), ("PermissionsBoundary", &other)],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api
        .iam(
            &caller,
            "CreateUser",
            &[
                ("UserName", "bounded"),
                ("PermissionsBoundary", &boundary_arn),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .iam(
            &caller,
            "CreateRole",
            &[
                ("RoleName", "bounded-role"),
                ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
                ("PermissionsBoundary", &boundary_arn),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The user's current boundary decides what may be done to it.
    let put = [
        ("UserName", "bounded"),
        ("PolicyName", "p"),
        ("PolicyDocument", DOC),
    ];
    assert_eq!(api.iam(&caller, "PutUserPolicy", &put).await.status, 200);
    root(&api, "CreateUser", &[("UserName", "unbounded")]).await;
    let put = [
        ("UserName", "unbounded"),
        ("PolicyName", "p"),
        ("PolicyDocument", DOC),
    ];
    let r = api.iam(&caller, "PutUserPolicy", &put).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    // Moving a user to another boundary needs the permission for the new one.
    let r = api
        .iam(
            &caller,
            "PutUserPermissionsBoundary",
            &[("UserName", "bounded"), ("PermissionsBoundary", &other)],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api
        .iam(
            &caller,
            "DeleteUserPermissionsBoundary",
            &[("UserName", "bounded")],
        )
        .await;
    assert_eq!(r.status, 200, "removing the boundary it has: {}", r.body);
}

#[tokio::test]
async fn resource_and_request_tags_decide() {
    let (api, caller, _dir) = setup(serde_json::json!([
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Sid": "HandsOff", "Effect": "Deny", "Action": "iam:*", "Resource": "*",
         "Condition": {"StringEquals": {"iam:ResourceTag/protected": "true"}}},
        {"Sid": "PolicyHandsOff", "Effect": "Deny", "Action": "iam:*Policy*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/protected": "true"}}},
        {"Sid": "OwnerTagIsSet", "Effect": "Deny", "Action": ["iam:Tag*", "iam:Untag*", "iam:Create*"],
         "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}}},
        {"Sid": "OnlyProdOrDev", "Effect": "Deny", "Action": "iam:TagRole", "Resource": "*",
         "Condition": {"StringNotEqualsIfExists": {"aws:RequestTag/env": ["prod", "dev"]}}}
    ]))
    .await;
    let tag = |k: &'static str, v: &'static str| {
        vec![("Tags.member.1.Key", k), ("Tags.member.1.Value", v)]
    };
    root(
        &api,
        "CreateUser",
        &[&[("UserName", "vip")][..], &tag("protected", "true")].concat(),
    )
    .await;
    root(&api, "CreateUser", &[("UserName", "plain")]).await;
    let r = api.iam(&caller, "GetUser", &[("UserName", "vip")]).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api.iam(&caller, "GetUser", &[("UserName", "VIP")]).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    assert_eq!(
        api.iam(&caller, "GetUser", &[("UserName", "plain")])
            .await
            .status,
        200
    );
    let pol = root(
        &api,
        "CreatePolicy",
        &[
            &[("PolicyName", "kept"), ("PolicyDocument", DOC)][..],
            &tag("protected", "true"),
        ]
        .concat(),
    )
    .await
    .field("Arn")
    .unwrap();
    let r = api
        .iam(
            &caller,
            "CreatePolicyVersion",
            &[("PolicyArn", &pol), ("PolicyDocument", DOC)],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);

    let r = api
        .iam(
            &caller,
            "TagUser",
            &[&[("UserName", "plain")][..], &tag("owner", "me")].concat(),
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api
        .iam(
            &caller,
            "CreateUser",
            &[&[("UserName", "mine")][..], &tag("owner", "me")].concat(),
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api
        .iam(
            &caller,
            "TagUser",
            &[&[("UserName", "plain")][..], &tag("team", "a")].concat(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    root(
        &api,
        "TagUser",
        &[&[("UserName", "plain")][..], &tag("owner", "root")].concat(),
    )
    .await;
    let r = api
        .iam(
            &caller,
            "UntagUser",
            &[("UserName", "plain"), ("TagKeys.member.1", "owner")],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);

    root(
        &api,
        "CreateRole",
        &[
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await;
    let r = api
        .iam(
            &caller,
            "TagRole",
            &[&[("RoleName", "r")][..], &tag("env", "test")].concat(),
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api
        .iam(
            &caller,
            "TagRole",
            &[&[("RoleName", "r")][..], &tag("env", "prod")].concat(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn assume_role_sees_the_role_tags_and_the_session_keys() {
    let (api, caller, _dir) = setup(serde_json::json!([
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:ResourceTag/assumable": "yes"},
                       "StringLike": {"sts:RoleSessionName": "${aws:username}-*"}}}
    ]))
    .await;
    let tag = [
        ("Tags.member.1.Key", "assumable"),
        ("Tags.member.1.Value", "yes"),
    ];
    root(
        &api,
        "CreateRole",
        &[
            &[
                ("RoleName", "open"),
                ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
            ][..],
            &tag,
        ]
        .concat(),
    )
    .await;
    root(
        &api,
        "CreateRole",
        &[
            ("RoleName", "closed"),
            ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
        ],
    )
    .await;
    let assume = |role: &'static str, session: &'static str| {
        let arn = format!("arn:gatehouse:iam::{ACCOUNT}:role/{role}");
        let api = &api;
        let caller = &caller;
        async move {
            api.sts(
                caller,
                "AssumeRole",
                &[("RoleArn", &arn), ("RoleSessionName", session)],
            )
            .await
        }
    };
    assert_eq!(assume("open", "caller-1").await.status, 200);
    assert_eq!(
        code(&assume("closed", "caller-1").await).as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(
        code(&assume("open", "someone-1").await).as_deref(),
        Some("AccessDenied")
    );
}
