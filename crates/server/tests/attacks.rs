//! The control plane attacked as an account administrator, a stolen session and a
//! neighbouring account would (issue 10, "then attack it yourself"). The first tests are
//! holes found and closed; the rest pin down what held, so that it keeps holding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ACCOUNT, Api, Creds, Reply};
use gatehouse_server::AppState;
use gatehouse_store::{NewPolicy, NewRole, NewUser, PrincipalKind};
use std::sync::Arc;

const OTHER: &str = "444455556666";
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:ListModels","Resource":"*"}]}"#;
const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

struct World {
    state: Arc<AppState>,
    api: Api,
    /// An administrator of the default account (allowed everything).
    admin: Creds,
    /// A policy of the other account.
    foreign_policy: String,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let (state, dir) = common::state().await;
    let api = Api::new(common::serve_root(&state).await);
    let admin = Creds::user(&state, "admin", ALLOW_ALL).await;
    state
        .store
        .create_account(Some(OTHER), "partner")
        .await
        .unwrap();
    let foreign = state
        .store
        .create_policy(
            OTHER,
            &NewPolicy {
                name: "theirs".into(),
                document: DOC.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    World {
        state,
        api,
        admin,
        foreign_policy: foreign.arn,
        _dir: dir,
    }
}

fn code(r: &Reply) -> Option<String> {
    r.code()
}

fn session(r: &Reply) -> Creds {
    assert_eq!(r.status, 200, "{}", r.body);
    Creds {
        key_id: r.field("AccessKeyId").unwrap(),
        secret: r.field("SecretAccessKey").unwrap(),
        token: r.field("SessionToken"),
    }
}

// ------------------------------------------------------------------ holes found and closed

/// AWS: credentials from GetSessionToken call no IAM action without MFA, and no STS action
/// but AssumeRole and GetCallerIdentity. Before, a stolen MFA-less session token could
/// mint a long-term access key for its user — persistence beyond the session.
#[tokio::test]
async fn a_get_session_token_session_without_mfa_cannot_mint_keys() {
    let w = world().await;
    let s = session(&w.api.sts(&w.admin, "GetSessionToken", &[]).await);
    let r = w
        .api
        .iam(&s, "CreateAccessKey", &[("UserName", "admin")])
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = w.api.iam(&s, "ListUsers", &[]).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = w
        .api
        .sts(&s, "DecodeAuthorizationMessage", &[("EncodedMessage", "x")])
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    assert_eq!(w.api.sts(&s, "GetCallerIdentity", &[]).await.status, 200);
    let keys = w
        .state
        .store
        .list_access_keys(ACCOUNT, "admin", &gatehouse_store::ListParams::first(10))
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1, "only the key the test made");
}

/// Session policies by ARN come from the role's account. Before, any account's managed
/// policy was read, and whether it existed was told (200 versus NoSuchEntity).
#[tokio::test]
async fn session_policy_arns_of_another_account_are_not_read() {
    let w = world().await;
    w.state
        .store
        .create_role(
            ACCOUNT,
            &NewRole {
                name: "app".into(),
                trust_policy: TRUST_ACCOUNT.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let arn = format!("arn:gatehouse:iam::{ACCOUNT}:role/app");
    let missing = format!("arn:gatehouse:iam::{OTHER}:policy/nothing-here");
    let mut answers = Vec::new();
    for p in [w.foreign_policy.as_str(), missing.as_str()] {
        let r = w
            .api
            .sts(
                &w.admin,
                "AssumeRole",
                &[
                    ("RoleArn", &arn),
                    ("RoleSessionName", "s1"),
                    ("PolicyArns.member.1.arn", p),
                ],
            )
            .await;
        answers.push((r.status, code(&r)));
    }
    assert_eq!(
        answers[0], answers[1],
        "existing and missing foreign policies answer alike"
    );
    assert_eq!(answers[0].1.as_deref(), Some("NoSuchEntity"));
}

/// Another account's access key id is answered as a missing one. Before, it was
/// AccessDenied (and a missing one NoSuchEntity): an oracle for other accounts' keys.
#[tokio::test]
async fn get_access_key_last_used_does_not_tell_other_accounts_keys() {
    let w = world().await;
    let store = &w.state.store;
    store
        .create_user(
            OTHER,
            &NewUser {
                name: "neighbour".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (theirs, _) = store.create_access_key(OTHER, "neighbour").await.unwrap();
    let a = w
        .api
        .iam(
            &w.admin,
            "GetAccessKeyLastUsed",
            &[("AccessKeyId", &theirs.access_key_id)],
        )
        .await;
    let b = w
        .api
        .iam(
            &w.admin,
            "GetAccessKeyLastUsed",
            &[("AccessKeyId", "AKIANOTAKEY000000000")],
        )
        .await;
    assert_eq!(
        (a.status, code(&a)),
        (b.status, code(&b)),
        "{} / {}",
        a.body,
        b.body
    );
    assert_eq!(code(&a).as_deref(), Some("NoSuchEntity"));
}

/// Tag keys were unique by Unicode lower case in the store, while the engine folds ASCII
/// letters only in condition keys: `aws:RequestTag/\u{212A}ind` (the Kelvin sign) is not
/// `aws:RequestTag/kind` to a policy but `\u{212A}ind` was `kind` to the store, so a tagger
/// denied the key `kind` overwrote it (and its spelling), silently changing what
/// `aws:ResourceTag/kind` and `aws:PrincipalTag/kind` see.
#[tokio::test]
async fn a_kelvin_sign_tag_key_does_not_overwrite_a_protected_tag() {
    let w = world().await;
    let tagger = Creds::user(
        &w.state,
        "tagger",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iam:*","Resource":"*"},
            {"Effect":"Deny","Action":"iam:TagUser","Resource":"*",
             "Condition":{"Null":{"aws:RequestTag/kind":"false"}}}]}"#,
    )
    .await;
    let tag = |key: &'static str, value: &'static str| {
        [
            ("UserName", "admin"),
            ("Tags.member.1.Key", key),
            ("Tags.member.1.Value", value),
        ]
    };
    let r = w
        .api
        .iam(&w.admin, "TagUser", &tag("kind", "protected"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = w.api.iam(&tagger, "TagUser", &tag("KIND", "x")).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = w
        .api
        .iam(&tagger, "TagUser", &tag("\u{212A}ind", "x"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tags = w
        .state
        .store
        .list_tags(
            ACCOUNT,
            gatehouse_store::TaggedKind::User,
            "admin",
            &gatehouse_store::ListParams::first(10),
        )
        .await
        .unwrap()
        .items;
    assert!(
        tags.contains(&gatehouse_store::Tag::new("kind", "protected")),
        "{tags:?}"
    );
    let r = w
        .api
        .iam(
            &tagger,
            "UntagUser",
            &[("UserName", "admin"), ("TagKeys.member.1", "\u{212A}ind")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tags = w
        .state
        .store
        .list_tags(
            ACCOUNT,
            gatehouse_store::TaggedKind::User,
            "admin",
            &gatehouse_store::ListParams::first(10),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(tags, [gatehouse_store::Tag::new("kind", "protected")]);
}

/// Control characters were accepted in tag values and session tags (AWS allows space
/// separators, not tab or line feed), in role and policy descriptions (an escape sequence
/// shown in an operator's terminal) and in an OIDC provider's URL (the URL parser drops a
/// line feed, so it was stored, and named in the provider's ARN, with one).
#[tokio::test]
async fn control_characters_are_refused_where_names_and_text_are_stored() {
    let w = world().await;
    let api = &w.api;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let r = api
        .iam(
            &w.admin,
            "CreateRole",
            &[("RoleName", "r"), ("AssumeRolePolicyDocument", trust)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let role = format!("arn:gatehouse:iam::{ACCOUNT}:role/r");
    /// (API, action, parameters).
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "iam",
            "TagUser",
            vec![
                ("UserName", "admin"),
                ("Tags.member.1.Key", "t"),
                ("Tags.member.1.Value", "a\nb"),
            ],
        ),
        (
            "iam",
            "CreateRole",
            vec![
                ("RoleName", "r2"),
                ("AssumeRolePolicyDocument", trust),
                ("Description", "\u{1b}[31mred"),
            ],
        ),
        (
            "iam",
            "UpdateRole",
            vec![("RoleName", "r"), ("Description", "nul\u{0}")],
        ),
        (
            "iam",
            "CreatePolicy",
            vec![
                ("PolicyName", "p"),
                ("PolicyDocument", DOC),
                ("Description", "bell\u{7}"),
            ],
        ),
        (
            "iam",
            "CreateOpenIDConnectProvider",
            vec![
                ("Url", "https://idp.example/\nx"),
                ("ClientIDList.member.1", "c"),
            ],
        ),
        (
            "sts",
            "AssumeRole",
            vec![
                ("RoleArn", &role),
                ("RoleSessionName", "s1"),
                ("Tags.member.1.Key", "team"),
                ("Tags.member.1.Value", "a\nb"),
            ],
        ),
        (
            "sts",
            "AssumeRole",
            vec![
                ("RoleArn", &role),
                ("RoleSessionName", "s1"),
                ("Tags.member.1.Key", "t\u{0}"),
                ("Tags.member.1.Value", "v"),
            ],
        ),
    ];
    for (service, action, params) in &cases {
        let r = if *service == "iam" {
            api.iam(&w.admin, action, params).await
        } else {
            api.sts(&w.admin, action, params).await
        };
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{action} {params:?}: {}",
            r.body
        );
    }
    let store = &w.state.store;
    assert!(store.get_role(ACCOUNT, "r2").await.is_err());
    assert_eq!(
        store.get_role(ACCOUNT, "r").await.unwrap().description,
        None
    );
    assert!(
        store
            .list_policies(ACCOUNT, &gatehouse_store::ListParams::first(10))
            .await
            .unwrap()
            .items
            .iter()
            .all(|p| p.name != "p")
    );
}

/// A transitive tag key named in another case than its tag (`Tags: team=a`,
/// `TransitiveTagKeys: TEAM`, which AWS accepts) was looked up by its exact spelling in the
/// chained call: the tag was silently dropped, and the chained session could set `team`
/// again — a role trusting or granting on `aws:PrincipalTag/team` saw the value the caller
/// chose instead of the one the first role's trust policy admitted.
#[tokio::test]
async fn a_transitive_tag_named_in_another_case_is_kept_and_cannot_be_overridden() {
    let w = world().await;
    let store = &w.state.store;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    for (name, policy) in [
        ("first", ALLOW_ALL),
        (
            "second",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a"}}}]}"#,
        ),
    ] {
        store
            .create_role(
                ACCOUNT,
                &NewRole {
                    name: name.into(),
                    trust_policy: trust.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        store
            .put_inline_policy(ACCOUNT, PrincipalKind::Role, name, "p", policy)
            .await
            .unwrap();
    }
    let arn = |n: &str| format!("arn:gatehouse:iam::{ACCOUNT}:role/{n}");
    let api = &w.api;
    let first = session(
        &api.sts(
            &w.admin,
            "AssumeRole",
            &[
                ("RoleArn", &arn("first")),
                ("RoleSessionName", "s1"),
                ("Tags.member.1.Key", "team"),
                ("Tags.member.1.Value", "a"),
                ("TransitiveTagKeys.member.1", "TEAM"),
            ],
        )
        .await,
    );
    let r = api
        .sts(
            &first,
            "AssumeRole",
            &[
                ("RoleArn", &arn("second")),
                ("RoleSessionName", "s2"),
                ("Tags.member.1.Key", "team"),
                ("Tags.member.1.Value", "b"),
            ],
        )
        .await;
    assert_eq!(
        code(&r).as_deref(),
        Some("InvalidParameterValue"),
        "{}",
        r.body
    );
    let second = session(
        &api.sts(
            &first,
            "AssumeRole",
            &[("RoleArn", &arn("second")), ("RoleSessionName", "s2")],
        )
        .await,
    );
    let r = api.iam(&second, "ListUsers", &[]).await;
    assert_eq!(r.status, 200, "the transitive tag team=a: {}", r.body);
}

/// A virtual MFA device's path was checked for its slashes only: a line feed, `//`,
/// spaces and non-ASCII went into the device's serial number (its ARN), which policies and
/// `aws:MultiFactorAuth*` checks name. Other paths are `/` or `/a/b/` of printable ASCII.
#[tokio::test]
async fn an_mfa_device_path_is_checked_as_other_paths_are() {
    let w = world().await;
    for path in ["/a\n/", "//", "/a b/", "/\u{fc}/", "/a\u{7}/"] {
        let r = w
            .api
            .iam(
                &w.admin,
                "CreateVirtualMFADevice",
                &[("VirtualMFADeviceName", "d"), ("Path", path)],
            )
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{path:?}: {}",
            r.body
        );
    }
    let r = w.api.iam(&w.admin, "ListVirtualMFADevices", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("<SerialNumber>"), "{}", r.body);
    let r = w
        .api
        .iam(
            &w.admin,
            "CreateVirtualMFADevice",
            &[("VirtualMFADeviceName", "d"), ("Path", "/team/")],
        )
        .await;
    assert_eq!(
        r.field("SerialNumber").as_deref(),
        Some("arn:gatehouse:iam::111122223333:mfa/team/d"),
        "{}",
        r.body
    );
}

/// AWS's ExternalId is `[\w+=,.@:/-]`; a line feed or a space was accepted, and the value
/// is what `sts:ExternalId` conditions compare and the audit record keeps.
#[tokio::test]
async fn an_external_id_is_checked_as_aws_checks_it() {
    let w = world().await;
    w.state
        .store
        .create_role(
            ACCOUNT,
            &NewRole {
                name: "r".into(),
                trust_policy: TRUST_ACCOUNT.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let arn = format!("arn:gatehouse:iam::{ACCOUNT}:role/r");
    for bad in ["a\nb", "a b", "x\u{0}y", "caf\u{e9}"] {
        let r = w
            .api
            .sts(
                &w.admin,
                "AssumeRole",
                &[
                    ("RoleArn", &arn),
                    ("RoleSessionName", "s1"),
                    ("ExternalId", bad),
                ],
            )
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{bad:?}: {}",
            r.body
        );
    }
    let r = w
        .api
        .sts(
            &w.admin,
            "AssumeRole",
            &[
                ("RoleArn", &arn),
                ("RoleSessionName", "s1"),
                ("ExternalId", "urn:partner/42+x=y,z.w@v-_"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A statement id is what a decision cites (the audit record's statement, `simulate`
/// output); one with an escape sequence or a line feed was stored and cited, reaching an
/// operator's terminal. AWS allows letters and digits only in IAM policies; control
/// characters are refused here in every document the API stores.
#[tokio::test]
async fn a_statement_id_with_control_characters_is_refused() {
    let w = world().await;
    let api = &w.api;
    let doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"a\\u001b[2Jb\",\"Effect\":\"Allow\",\"Action\":\"ai:ListModels\",\"Resource\":\"*\"}]}";
    let trust = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"line\\nfeed\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"111122223333\"},\"Action\":\"sts:AssumeRole\"}]}";
    let r = api
        .iam(
            &w.admin,
            "CreateRole",
            &[
                ("RoleName", "r"),
                ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (action, params) in [
        (
            "PutUserPolicy",
            vec![
                ("UserName", "admin"),
                ("PolicyName", "p"),
                ("PolicyDocument", doc),
            ],
        ),
        (
            "CreatePolicy",
            vec![("PolicyName", "p"), ("PolicyDocument", doc)],
        ),
        (
            "UpdateAssumeRolePolicy",
            vec![("RoleName", "r"), ("PolicyDocument", trust)],
        ),
    ] {
        let r = api.iam(&w.admin, action, &params).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("MalformedPolicyDocument"),
            "{action}: {}",
            r.body
        );
    }
    let store = &w.state.store;
    assert_eq!(
        store.get_role(ACCOUNT, "r").await.unwrap().trust_policy,
        TRUST_ACCOUNT
    );
    assert!(
        store
            .list_policies(ACCOUNT, &gatehouse_store::ListParams::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

// ------------------------------------------------------------------ what held

#[tokio::test]
async fn another_accounts_entities_cannot_be_reached_by_arn() {
    let w = world().await;
    let api = &w.api;
    let fp = w.foreign_policy.as_str();
    api.iam(&w.admin, "CreateUser", &[("UserName", "u")]).await;
    for (action, params) in [
        ("GetPolicy", vec![("PolicyArn", fp)]),
        ("DeletePolicy", vec![("PolicyArn", fp)]),
        (
            "CreatePolicyVersion",
            vec![
                ("PolicyArn", fp),
                ("PolicyDocument", ALLOW_ALL),
                ("SetAsDefault", "true"),
            ],
        ),
        (
            "SetDefaultPolicyVersion",
            vec![("PolicyArn", fp), ("VersionId", "v1")],
        ),
        (
            "DeletePolicyVersion",
            vec![("PolicyArn", fp), ("VersionId", "v1")],
        ),
        (
            "TagPolicy",
            vec![
                ("PolicyArn", fp),
                ("Tags.member.1.Key", "k"),
                ("Tags.member.1.Value", "v"),
            ],
        ),
        (
            "AttachUserPolicy",
            vec![("UserName", "u"), ("PolicyArn", fp)],
        ),
        (
            "PutUserPermissionsBoundary",
            vec![("UserName", "u"), ("PermissionsBoundary", fp)],
        ),
        (
            "CreateUser",
            vec![("UserName", "bounded"), ("PermissionsBoundary", fp)],
        ),
    ] {
        let r = api.iam(&w.admin, action, &params).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("NoSuchEntity"),
            "{action}: {}",
            r.body
        );
    }
    let foreign_user = format!("arn:gatehouse:iam::{OTHER}:user/neighbour");
    let r = api
        .iam(
            &w.admin,
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", &foreign_user),
                ("ActionNames.member.1", "iam:GetUser"),
            ],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("ValidationError"), "{}", r.body);
    // The foreign policy is as it was.
    let p = w.state.store.get_policy(OTHER, fp).await.unwrap();
    assert_eq!(p.default_version_id, "v1");
    assert!(w.state.store.get_user(ACCOUNT, "bounded").await.is_err());
}

#[tokio::test]
async fn policy_versions_keep_their_limits() {
    let w = world().await;
    let api = &w.api;
    let arn = api
        .iam(
            &w.admin,
            "CreatePolicy",
            &[("PolicyName", "pv"), ("PolicyDocument", DOC)],
        )
        .await
        .field("Arn")
        .unwrap();
    for _ in 0..4 {
        let r = api
            .iam(
                &w.admin,
                "CreatePolicyVersion",
                &[("PolicyArn", &arn), ("PolicyDocument", DOC)],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = api
        .iam(
            &w.admin,
            "CreatePolicyVersion",
            &[("PolicyArn", &arn), ("PolicyDocument", DOC)],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("LimitExceeded"), "{}", r.body);
    let r = api
        .iam(
            &w.admin,
            "DeletePolicyVersion",
            &[("PolicyArn", &arn), ("VersionId", "v1")],
        )
        .await;
    assert_eq!(
        code(&r).as_deref(),
        Some("DeleteConflict"),
        "default version: {}",
        r.body
    );
    for bad in ["v9"] {
        let r = api
            .iam(
                &w.admin,
                "SetDefaultPolicyVersion",
                &[("PolicyArn", &arn), ("VersionId", bad)],
            )
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("NoSuchEntity"),
            "{bad}: {}",
            r.body
        );
    }
    // AWS's v[1-9][0-9]*: before, "v01" named v1 and "v0" was a missing version.
    for bad in ["x1", "v", "v1234567890", "v-1", "v0", "v01", "v+1"] {
        let r = api
            .iam(
                &w.admin,
                "SetDefaultPolicyVersion",
                &[("PolicyArn", &arn), ("VersionId", bad)],
            )
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{bad}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn names_paths_and_markers_are_checked() {
    let w = world().await;
    let api = &w.api;
    for name in ["bad\nname", "bäd", "a/b", "x y", "", &"n".repeat(65)] {
        let r = api.iam(&w.admin, "CreateUser", &[("UserName", name)]).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{name:?}: {}",
            r.body
        );
    }
    for path in [
        "/a\u{7}/",
        "/ü/",
        "/a b/",
        "a/",
        "/a",
        "//",
        &format!("/{}/", "p".repeat(511)),
    ] {
        let r = api
            .iam(&w.admin, "CreateUser", &[("UserName", "p"), ("Path", path)])
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{path:?}: {}",
            r.body
        );
        let r = api
            .iam(
                &w.admin,
                "CreatePolicy",
                &[("PolicyName", "p"), ("PolicyDocument", DOC), ("Path", path)],
            )
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "policy {path:?}: {}",
            r.body
        );
    }
    assert!(w.state.store.get_user(ACCOUNT, "p").await.is_err());
    for marker in ["%%%", "not base64!", "AAAA\u{0}"] {
        let r = api.iam(&w.admin, "ListUsers", &[("Marker", marker)]).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{marker:?}: {}",
            r.body
        );
    }
    for max in ["0", "1001", "-1", "1e3"] {
        let r = api.iam(&w.admin, "ListUsers", &[("MaxItems", max)]).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{max}: {}",
            r.body
        );
    }
    let r = api
        .iam(
            &w.admin,
            "GetAccountAuthorizationDetails",
            &[("Marker", "gaad-99999999999999999999999")],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("ValidationError"), "{}", r.body);
}

#[tokio::test]
async fn deleting_what_is_still_in_use_is_refused() {
    let w = world().await;
    let api = &w.api;
    let ok = |r: Reply| assert_eq!(r.status, 200, "{}", r.body);
    ok(api
        .iam(
            &w.admin,
            "CreateRole",
            &[
                ("RoleName", "r"),
                ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
            ],
        )
        .await);
    ok(api
        .iam(
            &w.admin,
            "PutRolePolicy",
            &[
                ("RoleName", "r"),
                ("PolicyName", "p"),
                ("PolicyDocument", DOC),
            ],
        )
        .await);
    let arn = api
        .iam(
            &w.admin,
            "CreatePolicy",
            &[("PolicyName", "att"), ("PolicyDocument", DOC)],
        )
        .await
        .field("Arn")
        .unwrap();
    ok(api
        .iam(
            &w.admin,
            "AttachRolePolicy",
            &[("RoleName", "r"), ("PolicyArn", &arn)],
        )
        .await);
    let r = api.iam(&w.admin, "DeleteRole", &[("RoleName", "R")]).await;
    assert_eq!(code(&r).as_deref(), Some("DeleteConflict"), "{}", r.body);
    ok(api
        .iam(
            &w.admin,
            "DeleteRolePolicy",
            &[("RoleName", "r"), ("PolicyName", "p")],
        )
        .await);
    let r = api.iam(&w.admin, "DeleteRole", &[("RoleName", "r")]).await;
    assert_eq!(
        code(&r).as_deref(),
        Some("DeleteConflict"),
        "attached: {}",
        r.body
    );
    let r = api
        .iam(&w.admin, "DeletePolicy", &[("PolicyArn", &arn)])
        .await;
    assert_eq!(code(&r).as_deref(), Some("DeleteConflict"), "{}", r.body);
    ok(api
        .iam(
            &w.admin,
            "CreateUser",
            &[("UserName", "bounded"), ("PermissionsBoundary", &arn)],
        )
        .await);
    ok(api
        .iam(
            &w.admin,
            "DetachRolePolicy",
            &[("RoleName", "r"), ("PolicyArn", &arn)],
        )
        .await);
    let r = api
        .iam(&w.admin, "DeletePolicy", &[("PolicyArn", &arn)])
        .await;
    assert_eq!(
        code(&r).as_deref(),
        Some("DeleteConflict"),
        "a boundary: {}",
        r.body
    );
    ok(api.iam(&w.admin, "DeleteRole", &[("RoleName", "r")]).await);
    let r = api
        .iam(&w.admin, "DeleteUser", &[("UserName", "admin")])
        .await;
    assert_eq!(
        code(&r).as_deref(),
        Some("DeleteConflict"),
        "keys: {}",
        r.body
    );
}

#[tokio::test]
async fn role_chains_and_durations_keep_their_caps() {
    let w = world().await;
    let store = &w.state.store;
    for (name, max) in [("first", 43200), ("second", 43200)] {
        store
            .create_role(
                ACCOUNT,
                &NewRole {
                    name: name.into(),
                    trust_policy: TRUST_ACCOUNT.into(),
                    max_session_duration: Some(max),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        store
            .put_inline_policy(ACCOUNT, PrincipalKind::Role, name, "p", ALLOW_ALL)
            .await
            .unwrap();
    }
    let arn = |n: &str| format!("arn:gatehouse:iam::{ACCOUNT}:role/{n}");
    let api = &w.api;
    let r = api
        .sts(
            &w.admin,
            "AssumeRole",
            &[
                ("RoleArn", &arn("first")),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "43201"),
            ],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("ValidationError"), "{}", r.body);
    let first = session(
        &api.sts(
            &w.admin,
            "AssumeRole",
            &[
                ("RoleArn", &arn("first")),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "43200"),
            ],
        )
        .await,
    );
    let r = api
        .sts(
            &first,
            "AssumeRole",
            &[
                ("RoleArn", &arn("second")),
                ("RoleSessionName", "s2"),
                ("DurationSeconds", "3601"),
            ],
        )
        .await;
    assert_eq!(
        code(&r).as_deref(),
        Some("ValidationError"),
        "chained past an hour: {}",
        r.body
    );
    let r = api
        .sts(
            &first,
            "AssumeRole",
            &[("RoleArn", &arn("second")), ("RoleSessionName", "s2")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let exp = chrono::DateTime::parse_from_rfc3339(&r.field("Expiration").unwrap()).unwrap();
    assert!(exp.signed_duration_since(chrono::Utc::now()).num_seconds() <= 3600);
    for d in [
        "899",
        "0",
        "-5",
        "x",
        "1e3",
        "3600.0",
        " 3600",
        "99999999999999999999",
    ] {
        let r = api
            .sts(
                &w.admin,
                "AssumeRole",
                &[
                    ("RoleArn", &arn("first")),
                    ("RoleSessionName", "s1"),
                    ("DurationSeconds", d),
                ],
            )
            .await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{d}: {}",
            r.body
        );
    }
    // Root credentials assume no role, as in AWS.
    let r = api
        .sts(
            &Creds::root(),
            "AssumeRole",
            &[("RoleArn", &arn("first")), ("RoleSessionName", "s1")],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
}

#[tokio::test]
async fn spelled_differently_a_policy_or_role_arn_meets_its_deny_or_nothing() {
    let w = world().await;
    let api = &w.api;
    let admin_policy = api
        .iam(
            &w.admin,
            "CreatePolicy",
            &[
                ("PolicyName", "AdministratorAccess"),
                ("PolicyDocument", ALLOW_ALL),
            ],
        )
        .await
        .field("Arn")
        .unwrap();
    let guarded = format!("arn:gatehouse:iam::{ACCOUNT}:role/guarded");
    let limited = Creds::user(
        &w.state,
        "limited",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},
            {{"Effect":"Deny","Action":["iam:Attach*Policy","iam:Put*PermissionsBoundary"],"Resource":"*",
              "Condition":{{"ArnEquals":{{"iam:PolicyARN":"{admin_policy}"}}}}}},
            {{"Effect":"Deny","Action":["iam:Put*PermissionsBoundary","iam:CreateUser"],"Resource":"*",
              "Condition":{{"StringEquals":{{"iam:PermissionsBoundary":"{admin_policy}"}}}}}},
            {{"Effect":"Deny","Action":"iam:CreatePolicyVersion","Resource":"{admin_policy}"}},
            {{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"{guarded}"}}]}}"#
        ),
    )
    .await;
    let r = api
        .iam(
            &w.admin,
            "CreateRole",
            &[
                ("RoleName", "guarded"),
                ("AssumeRolePolicyDocument", TRUST_ACCOUNT),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let spelled = |arn: &str, from: &str, to: &str| arn.replace(from, to);
    for (arn, expected) in [
        (admin_policy.clone(), "AccessDenied"),
        (
            spelled(&admin_policy, "policy/", "policy/x/"),
            "NoSuchEntity",
        ),
        (
            spelled(&admin_policy, "policy/", "policy//"),
            "NoSuchEntity",
        ),
        (
            spelled(&admin_policy, "AdministratorAccess", "administratoraccess"),
            "NoSuchEntity",
        ),
    ] {
        for (action, params) in [
            (
                "AttachUserPolicy",
                vec![("UserName", "limited"), ("PolicyArn", arn.as_str())],
            ),
            (
                "PutUserPermissionsBoundary",
                vec![
                    ("UserName", "limited"),
                    ("PermissionsBoundary", arn.as_str()),
                ],
            ),
            (
                "CreateUser",
                vec![
                    ("UserName", "bounded"),
                    ("PermissionsBoundary", arn.as_str()),
                ],
            ),
            (
                "CreatePolicyVersion",
                vec![
                    ("PolicyArn", arn.as_str()),
                    ("PolicyDocument", DOC),
                    ("SetAsDefault", "true"),
                ],
            ),
        ] {
            let r = api.iam(&limited, action, &params).await;
            assert_eq!(
                code(&r).as_deref(),
                Some(expected),
                "{action} {arn}: {}",
                r.body
            );
        }
    }
    for (arn, expected) in [
        (guarded.clone(), "AccessDenied"),
        (spelled(&guarded, "role/", "role/x/"), "AccessDenied"),
        (spelled(&guarded, "role/", "role//"), "AccessDenied"),
        (spelled(&guarded, "guarded", "GUARDED"), "AccessDenied"),
        (spelled(&guarded, "iam::", "iam:us-east-1:"), "AccessDenied"),
        (
            spelled(&guarded, "arn:gatehouse:", "arn:aws:"),
            "ValidationError",
        ),
        (format!("{guarded}/"), "ValidationError"),
        (spelled(&guarded, "role/", "user/"), "ValidationError"),
    ] {
        let r = api
            .sts(
                &limited,
                "AssumeRole",
                &[("RoleArn", &arn), ("RoleSessionName", "s1")],
            )
            .await;
        assert_eq!(code(&r).as_deref(), Some(expected), "{arn}: {}", r.body);
    }
    let p = w
        .state
        .store
        .get_policy(ACCOUNT, &admin_policy)
        .await
        .unwrap();
    assert_eq!(p.default_version_id, "v1");
}

#[tokio::test]
async fn markers_root_and_session_kinds_reach_nothing_more() {
    let w = world().await;
    let api = &w.api;
    let store = &w.state.store;
    for name in ["r1", "r2"] {
        store
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
    }
    store
        .create_user(
            OTHER,
            &NewUser {
                name: "neighbour".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .put_inline_policy(OTHER, PrincipalKind::User, "neighbour", "p", ALLOW_ALL)
        .await
        .unwrap();
    let (key, secret) = store.create_access_key(OTHER, "neighbour").await.unwrap();
    let neighbour = Creds {
        key_id: key.access_key_id,
        secret: secret.expose_str().unwrap_or_default().to_owned(),
        token: None,
    };
    // A marker is a position in the caller's own account's listing, whatever listing or
    // account it came from.
    let marker = api
        .iam(&w.admin, "ListRoles", &[("MaxItems", "1")])
        .await
        .field("Marker")
        .unwrap();
    let r = api
        .iam(&neighbour, "ListRoles", &[("Marker", &marker)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("<RoleName>"), "{}", r.body);
    let r = api
        .iam(&neighbour, "ListUsers", &[("Marker", &marker)])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("admin"), "{}", r.body);
    // A neighbour allowed everything at home assumes no role that does not trust it.
    let r1 = format!("arn:gatehouse:iam::{ACCOUNT}:role/r1");
    let r = api
        .sts(
            &neighbour,
            "AssumeRole",
            &[("RoleArn", &r1), ("RoleSessionName", "s1")],
        )
        .await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    // Root: no session, no access key of its own through the API.
    let root = Creds::root();
    let r = api.sts(&root, "GetSessionToken", &[]).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    for action in ["CreateAccessKey", "ListAccessKeys", "GetUser"] {
        let r = api.iam(&root, action, &[]).await;
        assert_eq!(
            code(&r).as_deref(),
            Some("ValidationError"),
            "{action}: {}",
            r.body
        );
    }
    // Sessions mint no further GetSessionToken sessions and have no user of their own.
    let gst = session(&api.sts(&w.admin, "GetSessionToken", &[]).await);
    let r = api.sts(&gst, "GetSessionToken", &[]).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let role_session = session(
        &api.sts(
            &w.admin,
            "AssumeRole",
            &[("RoleArn", &r1), ("RoleSessionName", "s1")],
        )
        .await,
    );
    let r = api.sts(&role_session, "GetSessionToken", &[]).await;
    assert_eq!(code(&r).as_deref(), Some("AccessDenied"), "{}", r.body);
    let r = api.iam(&role_session, "CreateAccessKey", &[]).await;
    assert_eq!(code(&r).as_deref(), Some("ValidationError"), "{}", r.body);
    let keys = store
        .list_access_keys(ACCOUNT, "admin", &gatehouse_store::ListParams::first(10))
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1);
}
