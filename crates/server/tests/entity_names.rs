//! Name case does not get past a Deny (issue 10): every IAM action that names a user,
//! group or role resolves the entity first (names are unique case-insensitively, as in
//! AWS) and authorizes and audits its *stored* ARN — stored name, stored path — whatever
//! spelling the caller used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ACCOUNT, Api, Creds, Reply};
use gatehouse_server::AppState;

const USER_ARN: &str = "arn:gatehouse:iam::111122223333:user/vip/protected";
const GROUP_ARN: &str = "arn:gatehouse:iam::111122223333:group/ops/protected-group";
const ROLE_ARN: &str = "arn:gatehouse:iam::111122223333:role/svc/protected-role";
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:ListModels","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

fn mallory_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "Protect", "Effect": "Deny", "Action": "iam:*",
             "Resource": [USER_ARN, GROUP_ARN, ROLE_ARN]}
        ]
    })
    .to_string()
}

async fn ok(api: &Api, action: &str, params: &[(&str, &str)]) -> Reply {
    let r = api.iam(&Creds::root(), action, params).await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r
}

/// The audit record of the call that answered `r`.
async fn audit_of(state: &AppState, r: &Reply) -> serde_json::Value {
    let id = r.field("RequestId").unwrap();
    let all = state.store.audit_entries(0, 100_000).await.unwrap();
    let entry = all
        .iter()
        .rev()
        .find(|e| e.record.contains(&id))
        .unwrap_or_else(|| panic!("no audit record for {id}"));
    serde_json::from_str(&entry.record).unwrap()
}

struct Setup {
    state: std::sync::Arc<AppState>,
    api: Api,
    mallory: Creds,
    policy_arn: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let (state, dir) = common::state().await;
    let api = Api::new(common::serve_root(&state).await);
    ok(
        &api,
        "CreateUser",
        &[("UserName", "protected"), ("Path", "/vip/")],
    )
    .await;
    ok(
        &api,
        "CreateGroup",
        &[("GroupName", "protected-group"), ("Path", "/ops/")],
    )
    .await;
    ok(
        &api,
        "CreateRole",
        &[
            ("RoleName", "protected-role"),
            ("Path", "/svc/"),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    )
    .await;
    let r = ok(
        &api,
        "CreatePolicy",
        &[("PolicyName", "extra"), ("PolicyDocument", DOC)],
    )
    .await;
    let policy_arn = r.field("Arn").unwrap();
    let mallory = Creds::user(&state, "mallory", &mallory_policy()).await;
    Setup {
        state,
        api,
        mallory,
        policy_arn,
        _dir: dir,
    }
}

/// An action, its parameters, and the stored ARN its decision must name.
type Call<'a> = (&'static str, Vec<(&'static str, &'a str)>, &'static str);

#[tokio::test]
async fn every_action_on_a_differently_cased_name_meets_the_deny_on_the_stored_arn() {
    let s = setup().await;
    let pa = s.policy_arn.as_str();
    let user = "PROTECTED";
    let group = "Protected-Group";
    let role = "PROTECTED-ROLE";
    let tag = [("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")];
    // Every IAM action that takes a user, group or role name (the action table of
    // iam/mod.rs and federation.rs), with the parameters it needs to get that far.
    let calls: Vec<Call<'_>> = vec![
        ("GetUser", vec![("UserName", user)], USER_ARN),
        (
            "UpdateUser",
            vec![("UserName", user), ("NewUserName", "renamed")],
            USER_ARN,
        ),
        ("DeleteUser", vec![("UserName", user)], USER_ARN),
        ("ListGroupsForUser", vec![("UserName", user)], USER_ARN),
        ("CreateAccessKey", vec![("UserName", user)], USER_ARN),
        ("ListAccessKeys", vec![("UserName", user)], USER_ARN),
        (
            "UpdateAccessKey",
            vec![
                ("UserName", user),
                ("AccessKeyId", "AKIAEXAMPLE000000000"),
                ("Status", "Inactive"),
            ],
            USER_ARN,
        ),
        (
            "DeleteAccessKey",
            vec![("UserName", user), ("AccessKeyId", "AKIAEXAMPLE000000000")],
            USER_ARN,
        ),
        (
            "TagUser",
            [vec![("UserName", user)], tag.to_vec()].concat(),
            USER_ARN,
        ),
        (
            "UntagUser",
            vec![("UserName", user), ("TagKeys.member.1", "k")],
            USER_ARN,
        ),
        ("ListUserTags", vec![("UserName", user)], USER_ARN),
        (
            "AttachUserPolicy",
            vec![("UserName", user), ("PolicyArn", pa)],
            USER_ARN,
        ),
        (
            "DetachUserPolicy",
            vec![("UserName", user), ("PolicyArn", pa)],
            USER_ARN,
        ),
        (
            "ListAttachedUserPolicies",
            vec![("UserName", user)],
            USER_ARN,
        ),
        (
            "PutUserPolicy",
            vec![
                ("UserName", user),
                ("PolicyName", "p"),
                ("PolicyDocument", DOC),
            ],
            USER_ARN,
        ),
        (
            "GetUserPolicy",
            vec![("UserName", user), ("PolicyName", "p")],
            USER_ARN,
        ),
        (
            "DeleteUserPolicy",
            vec![("UserName", user), ("PolicyName", "p")],
            USER_ARN,
        ),
        ("ListUserPolicies", vec![("UserName", user)], USER_ARN),
        (
            "PutUserPermissionsBoundary",
            vec![("UserName", user), ("PermissionsBoundary", pa)],
            USER_ARN,
        ),
        (
            "DeleteUserPermissionsBoundary",
            vec![("UserName", user)],
            USER_ARN,
        ),
        (
            "EnableMFADevice",
            vec![
                ("UserName", user),
                ("SerialNumber", "arn:gatehouse:iam::111122223333:mfa/x"),
                ("AuthenticationCode1", "123456"),
                ("AuthenticationCode2", "654321"),
            ],
            USER_ARN,
        ),
        (
            "DeactivateMFADevice",
            vec![
                ("UserName", user),
                ("SerialNumber", "arn:gatehouse:iam::111122223333:mfa/x"),
            ],
            USER_ARN,
        ),
        ("ListMFADevices", vec![("UserName", user)], USER_ARN),
        ("GetGroup", vec![("GroupName", group)], GROUP_ARN),
        ("DeleteGroup", vec![("GroupName", group)], GROUP_ARN),
        (
            "AddUserToGroup",
            vec![("GroupName", group), ("UserName", "mallory")],
            GROUP_ARN,
        ),
        (
            "RemoveUserFromGroup",
            vec![("GroupName", group), ("UserName", "mallory")],
            GROUP_ARN,
        ),
        (
            "AttachGroupPolicy",
            vec![("GroupName", group), ("PolicyArn", pa)],
            GROUP_ARN,
        ),
        (
            "DetachGroupPolicy",
            vec![("GroupName", group), ("PolicyArn", pa)],
            GROUP_ARN,
        ),
        (
            "ListAttachedGroupPolicies",
            vec![("GroupName", group)],
            GROUP_ARN,
        ),
        (
            "PutGroupPolicy",
            vec![
                ("GroupName", group),
                ("PolicyName", "p"),
                ("PolicyDocument", DOC),
            ],
            GROUP_ARN,
        ),
        (
            "GetGroupPolicy",
            vec![("GroupName", group), ("PolicyName", "p")],
            GROUP_ARN,
        ),
        (
            "DeleteGroupPolicy",
            vec![("GroupName", group), ("PolicyName", "p")],
            GROUP_ARN,
        ),
        ("ListGroupPolicies", vec![("GroupName", group)], GROUP_ARN),
        ("GetRole", vec![("RoleName", role)], ROLE_ARN),
        ("DeleteRole", vec![("RoleName", role)], ROLE_ARN),
        (
            "UpdateAssumeRolePolicy",
            vec![("RoleName", role), ("PolicyDocument", TRUST)],
            ROLE_ARN,
        ),
        (
            "UpdateRole",
            vec![("RoleName", role), ("MaxSessionDuration", "7200")],
            ROLE_ARN,
        ),
        (
            "TagRole",
            [vec![("RoleName", role)], tag.to_vec()].concat(),
            ROLE_ARN,
        ),
        (
            "UntagRole",
            vec![("RoleName", role), ("TagKeys.member.1", "k")],
            ROLE_ARN,
        ),
        ("ListRoleTags", vec![("RoleName", role)], ROLE_ARN),
        (
            "AttachRolePolicy",
            vec![("RoleName", role), ("PolicyArn", pa)],
            ROLE_ARN,
        ),
        (
            "DetachRolePolicy",
            vec![("RoleName", role), ("PolicyArn", pa)],
            ROLE_ARN,
        ),
        (
            "ListAttachedRolePolicies",
            vec![("RoleName", role)],
            ROLE_ARN,
        ),
        (
            "PutRolePolicy",
            vec![
                ("RoleName", role),
                ("PolicyName", "p"),
                ("PolicyDocument", DOC),
            ],
            ROLE_ARN,
        ),
        (
            "GetRolePolicy",
            vec![("RoleName", role), ("PolicyName", "p")],
            ROLE_ARN,
        ),
        (
            "DeleteRolePolicy",
            vec![("RoleName", role), ("PolicyName", "p")],
            ROLE_ARN,
        ),
        ("ListRolePolicies", vec![("RoleName", role)], ROLE_ARN),
        (
            "PutRolePermissionsBoundary",
            vec![("RoleName", role), ("PermissionsBoundary", pa)],
            ROLE_ARN,
        ),
        (
            "DeleteRolePermissionsBoundary",
            vec![("RoleName", role)],
            ROLE_ARN,
        ),
    ];
    for (action, params, stored_arn) in &calls {
        let r = s.api.iam(&s.mallory, action, params).await;
        assert_eq!(
            (r.status, r.code().as_deref()),
            (403, Some("AccessDenied")),
            "{action} {params:?}: {}",
            r.body
        );
        let record = audit_of(&s.state, &r).await;
        assert_eq!(record["resource"], *stored_arn, "{action}: {record}");
        assert_eq!(record["decision"], "ExplicitDeny", "{action}: {record}");
        assert_eq!(
            record["action"],
            format!("iam:{action}"),
            "{action}: {record}"
        );
    }

    // Nothing happened to the protected entities.
    let store = &s.state.store;
    let keys = store
        .list_access_keys(
            ACCOUNT,
            "protected",
            &gatehouse_store::ListParams::first(10),
        )
        .await
        .unwrap();
    assert!(
        keys.items.is_empty(),
        "a key was created for the protected user"
    );
    assert_eq!(
        store
            .get_role(ACCOUNT, "protected-role")
            .await
            .unwrap()
            .trust_policy,
        TRUST
    );
    assert!(
        store
            .list_group_members(
                ACCOUNT,
                "protected-group",
                &gatehouse_store::ListParams::first(10)
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // SimulatePrincipalPolicy names the user by ARN: another spelling names nobody.
    let upper = USER_ARN.replace("protected", "PROTECTED");
    let r = s
        .api
        .iam(
            &s.mallory,
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", &upper),
                ("ActionNames.member.1", "iam:GetUser"),
            ],
        )
        .await;
    assert_eq!(r.code().as_deref(), Some("NoSuchEntity"), "{}", r.body);
    let r = s
        .api
        .iam(
            &s.mallory,
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", USER_ARN),
                ("ActionNames.member.1", "iam:GetUser"),
            ],
        )
        .await;
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
}

#[tokio::test]
async fn another_spelling_acts_on_the_stored_entity_and_says_so() {
    let s = setup().await;
    ok(
        &s.api,
        "CreateUser",
        &[("UserName", "bob"), ("Path", "/team/")],
    )
    .await;
    let r = s
        .api
        .iam(&s.mallory, "CreateAccessKey", &[("UserName", "BOB")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("UserName").as_deref(), Some("bob"));
    let record = audit_of(&s.state, &r).await;
    assert_eq!(
        record["resource"],
        "arn:gatehouse:iam::111122223333:user/team/bob"
    );
    assert_eq!(record["decision"], "Allow");
    let r = s
        .api
        .iam(&s.mallory, "ListAccessKeys", &[("UserName", "Bob")])
        .await;
    assert_eq!(r.field("UserName").as_deref(), Some("bob"), "{}", r.body);

    // Names are unique case-insensitively: creating BOB is refused, as in AWS.
    let r = s
        .api
        .iam(&Creds::root(), "CreateUser", &[("UserName", "BOB")])
        .await;
    assert_eq!(
        r.code().as_deref(),
        Some("EntityAlreadyExists"),
        "{}",
        r.body
    );
    let r = s
        .api
        .iam(
            &Creds::root(),
            "CreateGroup",
            &[("GroupName", "PROTECTED-GROUP")],
        )
        .await;
    assert_eq!(
        r.code().as_deref(),
        Some("EntityAlreadyExists"),
        "{}",
        r.body
    );
    let r = s
        .api
        .iam(
            &Creds::root(),
            "CreateRole",
            &[
                ("RoleName", "Protected-Role"),
                ("AssumeRolePolicyDocument", TRUST),
            ],
        )
        .await;
    assert_eq!(
        r.code().as_deref(),
        Some("EntityAlreadyExists"),
        "{}",
        r.body
    );
    let r = s
        .api
        .iam(
            &Creds::root(),
            "CreatePolicy",
            &[("PolicyName", "EXTRA"), ("PolicyDocument", DOC)],
        )
        .await;
    assert_eq!(
        r.code().as_deref(),
        Some("EntityAlreadyExists"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_missing_entity_is_reported_only_to_a_caller_allowed_to_ask() {
    let s = setup().await;
    let reader = Creds::user(
        &s.state,
        "reader",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:gatehouse:iam::111122223333:user/team/*"}]}"#,
    )
    .await;
    // Not allowed on user/ghost: denied, whether or not it exists.
    for name in ["ghost", "protected"] {
        let r = s.api.iam(&reader, "GetUser", &[("UserName", name)]).await;
        assert_eq!(
            r.code().as_deref(),
            Some("AccessDenied"),
            "{name}: {}",
            r.body
        );
    }
    // Allowed everywhere: a missing user is NoSuchEntity.
    let r = s
        .api
        .iam(&s.mallory, "GetUser", &[("UserName", "ghost")])
        .await;
    assert_eq!(r.code().as_deref(), Some("NoSuchEntity"), "{}", r.body);
    let r = s
        .api
        .iam(&s.mallory, "CreateAccessKey", &[("UserName", "ghost")])
        .await;
    assert_eq!(r.code().as_deref(), Some("NoSuchEntity"), "{}", r.body);
}
