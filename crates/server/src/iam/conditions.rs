//! The condition keys each IAM and STS action puts into its request context, from AWS's
//! Service Authorization Reference ("Actions, resources, and condition keys for AWS
//! Identity and Access Management" and "... for AWS Security Token Service"), so that the
//! policies people write for AWS — "never attach AdministratorAccess", "only create users
//! with this boundary", "only tag with these keys" — hold here too.
//!
//! Three sources: the request's parameters (`iam:PolicyARN`, a requested
//! `iam:PermissionsBoundary`, `aws:RequestTag/K`, `aws:TagKeys`, `sts:*`), the addressed
//! entity as stored (`aws:ResourceTag/K`, `iam:ResourceTag/K` for users and roles, its
//! current `iam:PermissionsBoundary`), and — outside this module — the caller and the
//! connection (`aws:PrincipalArn`, `aws:SourceIp`, MFA...).
//!
//! Keys the reference lists that have nothing to describe in Gatehouse are left out on
//! purpose (see [`NOT_APPLICABLE`]): there is no `iam:PassRole` (no service here takes a
//! role), no service-linked roles (`iam:AWSServiceName`), no Organizations access reports
//! (`iam:OrganizationsPolicyId`), no role templates, no FIDO security keys, no SAML.

use super::entity::{Entity, Kind};
use crate::error::ApiError;
use crate::query::Params;
use gatehouse_policy::ContextValue;

/// Where an action's `iam:PermissionsBoundary` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    /// The action does not document the key.
    None,
    /// The `PermissionsBoundary` parameter: the boundary being set.
    Requested,
    /// The boundary the addressed user or role has now.
    Current,
}

/// What one action documents, besides the resource's own tags.
#[derive(Debug, Clone, Copy)]
struct Spec {
    /// `service:Action`.
    action: &'static str,
    /// `aws:RequestTag/K` and `aws:TagKeys` from `Tags.member.N`.
    request_tags: bool,
    /// `aws:TagKeys` from `TagKeys.member.N` (the keys being removed).
    removed_tag_keys: bool,
    /// `iam:PolicyARN` from `PolicyArn`.
    policy_arn: bool,
    boundary: Boundary,
    /// `sts:RoleSessionName`, `sts:ExternalId`, `sts:SourceIdentity`,
    /// `sts:TransitiveTagKeys` from the parameters of the same names.
    sts_session: bool,
}

const fn spec(action: &'static str) -> Spec {
    Spec {
        action,
        request_tags: false,
        removed_tag_keys: false,
        policy_arn: false,
        boundary: Boundary::None,
        sts_session: false,
    }
}

const fn tagging(action: &'static str) -> Spec {
    Spec {
        request_tags: true,
        ..spec(action)
    }
}

const fn untagging(action: &'static str) -> Spec {
    Spec {
        removed_tag_keys: true,
        ..spec(action)
    }
}

const fn current_boundary(action: &'static str) -> Spec {
    Spec {
        boundary: Boundary::Current,
        ..spec(action)
    }
}

const fn attaching(action: &'static str, boundary: Boundary) -> Spec {
    Spec {
        policy_arn: true,
        boundary,
        ..spec(action)
    }
}

/// Every action with keys of its own, as the Service Authorization Reference lists them.
const SPECS: &[Spec] = &[
    Spec {
        request_tags: true,
        boundary: Boundary::Requested,
        ..spec("iam:CreateUser")
    },
    Spec {
        request_tags: true,
        boundary: Boundary::Requested,
        ..spec("iam:CreateRole")
    },
    tagging("iam:CreatePolicy"),
    tagging("iam:CreateVirtualMFADevice"),
    tagging("iam:CreateOpenIDConnectProvider"),
    tagging("iam:TagUser"),
    tagging("iam:TagRole"),
    tagging("iam:TagPolicy"),
    untagging("iam:UntagUser"),
    untagging("iam:UntagRole"),
    untagging("iam:UntagPolicy"),
    tagging("iam:TagOpenIDConnectProvider"),
    untagging("iam:UntagOpenIDConnectProvider"),
    attaching("iam:AttachUserPolicy", Boundary::Current),
    attaching("iam:DetachUserPolicy", Boundary::Current),
    attaching("iam:AttachRolePolicy", Boundary::Current),
    attaching("iam:DetachRolePolicy", Boundary::Current),
    attaching("iam:AttachGroupPolicy", Boundary::None),
    attaching("iam:DetachGroupPolicy", Boundary::None),
    current_boundary("iam:PutUserPolicy"),
    current_boundary("iam:DeleteUserPolicy"),
    current_boundary("iam:PutRolePolicy"),
    current_boundary("iam:DeleteRolePolicy"),
    current_boundary("iam:DeleteUserPermissionsBoundary"),
    current_boundary("iam:DeleteRolePermissionsBoundary"),
    current_boundary("iam:DeleteRole"),
    current_boundary("iam:GetRole"),
    current_boundary("iam:UpdateAssumeRolePolicy"),
    current_boundary("iam:UpdateRole"),
    Spec {
        boundary: Boundary::Requested,
        ..spec("iam:PutUserPermissionsBoundary")
    },
    Spec {
        boundary: Boundary::Requested,
        ..spec("iam:PutRolePermissionsBoundary")
    },
    // AssumeRole's keys are also the context of the sts:TagSession and
    // sts:SetSourceIdentity checks made for the same call, as in AWS.
    Spec {
        request_tags: true,
        sts_session: true,
        ..spec("sts:AssumeRole")
    },
    Spec {
        sts_session: true,
        ..spec("sts:AssumeRoleWithWebIdentity")
    },
];

/// Keys the reference lists for actions Gatehouse answers that describe nothing here.
#[cfg(test)]
pub(crate) const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "iam:RoleTemplateARN",
        "role templates are an AWS feature Gatehouse does not have",
    ),
    (
        "iam:FIDO-certification",
        "virtual (TOTP) MFA devices only; no FIDO security keys",
    ),
    (
        "iam:FIDO-FIPS-140-2-certification",
        "virtual (TOTP) MFA devices only; no FIDO security keys",
    ),
    (
        "iam:FIDO-FIPS-140-3-certification",
        "virtual (TOTP) MFA devices only; no FIDO security keys",
    ),
    (
        "iam:RegisterSecurityKey",
        "virtual (TOTP) MFA devices only; no FIDO security keys",
    ),
    (
        "sts:RoleAuthorizedByIdp",
        "no identity-provider-authorized roles in Gatehouse",
    ),
];

/// Resource types whose tags Gatehouse keeps (their actions get `aws:ResourceTag/K`).
/// MFA devices carry no tags here, so the key is absent for their actions, as for an
/// untagged resource in AWS.
#[cfg(test)]
const TAGGED_RESOURCES: &[&str] = &["user", "role", "policy", "oidc-provider"];

fn spec_of(action: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.action.eq_ignore_ascii_case(action))
}

/// The condition keys of `action` (`service:Action`) for a request with parameters `p`
/// addressing `entity` (as resolved from the store; `None` for actions on `*`).
pub(crate) fn request_keys(
    action: &str,
    p: &Params,
    entity: Option<&Entity>,
) -> Result<Vec<(String, ContextValue)>, ApiError> {
    let mut keys: Vec<(String, ContextValue)> = Vec::new();
    if let Some(e) = entity {
        resource_tags(e, &mut keys);
    }
    let Some(spec) = spec_of(action) else {
        return Ok(keys);
    };
    if spec.request_tags {
        request_tags(&p.tags("Tags")?, &mut keys);
    }
    if spec.removed_tag_keys {
        let removed = p.list("TagKeys");
        if !removed.is_empty() {
            keys.push(("aws:TagKeys".into(), removed.into()));
        }
    }
    if spec.policy_arn
        && let Some(arn) = p.get("PolicyArn")
    {
        keys.push(("iam:PolicyARN".into(), arn.into()));
    }
    let boundary = match spec.boundary {
        Boundary::None => None,
        Boundary::Requested => p.get("PermissionsBoundary"),
        Boundary::Current => entity.and_then(Entity::boundary),
    };
    if let Some(b) = boundary {
        keys.push(("iam:PermissionsBoundary".into(), b.into()));
    }
    if spec.sts_session {
        for (param, key) in [
            ("RoleSessionName", "sts:RoleSessionName"),
            ("ExternalId", "sts:ExternalId"),
            ("SourceIdentity", "sts:SourceIdentity"),
        ] {
            if let Some(v) = p.get(param) {
                keys.push((key.into(), v.into()));
            }
        }
        let transitive = p.list("TransitiveTagKeys");
        if !transitive.is_empty() {
            keys.push(("sts:TransitiveTagKeys".into(), transitive.into()));
        }
    }
    Ok(keys)
}

/// `aws:RequestTag/K` for each tag and `aws:TagKeys` for all of them.
fn request_tags(tags: &[(String, String)], keys: &mut Vec<(String, ContextValue)>) {
    if tags.is_empty() {
        return;
    }
    for (k, v) in tags {
        keys.push((format!("aws:RequestTag/{k}"), v.as_str().into()));
    }
    let names: Vec<String> = tags.iter().map(|(k, _)| k.clone()).collect();
    keys.push(("aws:TagKeys".into(), names.into()));
}

/// `aws:ResourceTag/K` of the entity, and for users and roles `iam:ResourceTag/K` too
/// (the reference lists both for those resource types, only the first for policies).
fn resource_tags(e: &Entity, keys: &mut Vec<(String, ContextValue)>) {
    for t in &e.tags {
        keys.push((
            format!("aws:ResourceTag/{}", t.key),
            t.value.as_str().into(),
        ));
        if matches!(e.kind, Kind::User | Kind::Role) {
            keys.push((
                format!("iam:ResourceTag/{}", t.key),
                t.value.as_str().into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::iam::entity::Record;
    use gatehouse_store::{Tag, iam_arn};
    use std::collections::BTreeMap;

    const ACCOUNT: &str = "111122223333";
    const ADMIN: &str = "arn:gatehouse:iam::111122223333:policy/AdministratorAccess";
    const BOUNDARY: &str = "arn:gatehouse:iam::111122223333:policy/boundary";
    const NEW_BOUNDARY: &str = "arn:gatehouse:iam::111122223333:policy/new-boundary";

    fn user() -> Entity {
        let u = gatehouse_store::User {
            account_id: ACCOUNT.into(),
            user_id: "AIDAEXAMPLE".into(),
            name: "alice".into(),
            path: "/eng/".into(),
            permissions_boundary: Some(BOUNDARY.into()),
            created: chrono::Utc::now(),
        };
        Entity::for_test(
            Kind::User,
            &u.name.clone(),
            &u.arn(),
            vec![Tag::new("team", "search")],
            Some(Record::User(u)),
        )
    }

    fn role() -> Entity {
        let r = gatehouse_store::Role {
            account_id: ACCOUNT.into(),
            role_id: "AROAEXAMPLE".into(),
            name: "deployer".into(),
            path: "/".into(),
            trust_policy: "{}".into(),
            description: None,
            max_session_duration: 3600,
            permissions_boundary: Some(BOUNDARY.into()),
            created: chrono::Utc::now(),
        };
        Entity::for_test(
            Kind::Role,
            &r.name.clone(),
            &r.arn(),
            vec![Tag::new("env", "prod")],
            Some(Record::Role(r)),
        )
    }

    fn group() -> Entity {
        let arn = iam_arn(ACCOUNT, "group", "/", "admins");
        Entity::for_test(Kind::Group, "admins", &arn, Vec::new(), None)
    }

    fn provider() -> Entity {
        let arn = "arn:gatehouse:iam::111122223333:oidc-provider/issuer.example";
        Entity::for_test(
            Kind::OidcProvider,
            arn,
            arn,
            vec![Tag::new("gatehouse:claims", "ref")],
            None,
        )
    }

    fn policy() -> Entity {
        Entity::for_test(
            Kind::Policy,
            BOUNDARY,
            BOUNDARY,
            vec![Tag::new("owner", "sec")],
            None,
        )
    }

    type Keys = BTreeMap<String, Vec<String>>;

    fn keys(action: &str, params: &str, entity: Option<Entity>) -> Keys {
        let p = Params::parse("", params.as_bytes());
        request_keys(action, &p, entity.as_ref())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.as_slice().to_vec()))
            .collect()
    }

    fn want(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    const TAGS: &str = "Tags.member.1.Key=team&Tags.member.1.Value=search&Tags.member.2.Key=env&Tags.member.2.Value=prod";
    const USER_TAGS: &[(&str, &[&str])] = &[
        ("aws:ResourceTag/team", &["search"]),
        ("iam:ResourceTag/team", &["search"]),
    ];

    /// One row per action: (action, parameters, entity, expected keys). Rows cite the
    /// action's line in the Service Authorization Reference for IAM or STS.
    #[test]
    fn every_action_gets_the_keys_the_reference_documents() {
        let boundary_param = format!("PermissionsBoundary={NEW_BOUNDARY}");
        let admin_param = format!("PolicyArn={ADMIN}");
        let with_user = |extra: &[(&'static str, &'static [&'static str])]| {
            let mut v: Vec<(&str, &[&str])> = USER_TAGS.to_vec();
            v.extend_from_slice(extra);
            want(&v)
        };
        let role_tags: &[(&str, &[&str])] = &[
            ("aws:ResourceTag/env", &["prod"]),
            ("iam:ResourceTag/env", &["prod"]),
        ];
        let with_role = |extra: &[(&'static str, &'static [&'static str])]| {
            let mut v: Vec<(&str, &[&str])> = role_tags.to_vec();
            v.extend_from_slice(extra);
            want(&v)
        };
        let b: &'static [&'static str] = &[BOUNDARY];
        let nb: &'static [&'static str] = &[NEW_BOUNDARY];
        let admin: &'static [&'static str] = &[ADMIN];
        let req_tags: &[(&str, &[&str])] = &[
            ("aws:RequestTag/team", &["search"]),
            ("aws:RequestTag/env", &["prod"]),
            ("aws:TagKeys", &["team", "env"]),
        ];
        let with_req = |mut extra: Vec<(&'static str, &'static [&'static str])>| {
            extra.extend_from_slice(req_tags);
            want(&extra)
        };
        let rows: Vec<(&str, String, Option<Entity>, Keys)> = vec![
            // CreateUser: aws:RequestTag/${TagKey}, aws:TagKeys, iam:PermissionsBoundary
            (
                "iam:CreateUser",
                format!("{TAGS}&{boundary_param}"),
                None,
                with_req(vec![("iam:PermissionsBoundary", nb)]),
            ),
            // CreateRole: aws:RequestTag, aws:TagKeys, iam:PermissionsBoundary
            (
                "iam:CreateRole",
                format!("{TAGS}&{boundary_param}"),
                None,
                with_req(vec![("iam:PermissionsBoundary", nb)]),
            ),
            // CreateUser without tags or boundary: nothing to say
            ("iam:CreateUser", String::new(), None, want(&[])),
            // CreatePolicy: aws:RequestTag, aws:TagKeys
            ("iam:CreatePolicy", TAGS.into(), None, with_req(vec![])),
            // CreateVirtualMFADevice: aws:RequestTag, aws:TagKeys
            (
                "iam:CreateVirtualMFADevice",
                TAGS.into(),
                None,
                with_req(vec![]),
            ),
            // CreateOpenIDConnectProvider: aws:RequestTag, aws:TagKeys
            (
                "iam:CreateOpenIDConnectProvider",
                TAGS.into(),
                None,
                with_req(vec![]),
            ),
            // TagUser: aws:RequestTag, aws:TagKeys; user resource: aws/iam:ResourceTag
            ("iam:TagUser", TAGS.into(), Some(user()), {
                let mut w = with_user(&[]);
                w.extend(with_req(vec![]));
                w
            }),
            // TagRole: aws:RequestTag, aws:TagKeys; role resource: aws/iam:ResourceTag
            ("iam:TagRole", TAGS.into(), Some(role()), {
                let mut w = with_role(&[]);
                w.extend(with_req(vec![]));
                w
            }),
            // TagPolicy: aws:RequestTag, aws:TagKeys; policy resource: aws:ResourceTag
            ("iam:TagPolicy", TAGS.into(), Some(policy()), {
                let mut w = want(&[("aws:ResourceTag/owner", &["sec"])]);
                w.extend(with_req(vec![]));
                w
            }),
            // TagOpenIDConnectProvider: aws:RequestTag, aws:TagKeys; oidc-provider: aws:ResourceTag
            (
                "iam:TagOpenIDConnectProvider",
                TAGS.into(),
                Some(provider()),
                {
                    let mut w = want(&[("aws:ResourceTag/gatehouse:claims", &["ref"])]);
                    w.extend(with_req(vec![]));
                    w
                },
            ),
            // UntagOpenIDConnectProvider: aws:TagKeys
            (
                "iam:UntagOpenIDConnectProvider",
                "TagKeys.member.1=gatehouse:claims".into(),
                Some(provider()),
                want(&[
                    ("aws:ResourceTag/gatehouse:claims", &["ref"]),
                    ("aws:TagKeys", &["gatehouse:claims"]),
                ]),
            ),
            // GetOpenIDConnectProvider: oidc-provider: aws:ResourceTag
            (
                "iam:GetOpenIDConnectProvider",
                String::new(),
                Some(provider()),
                want(&[("aws:ResourceTag/gatehouse:claims", &["ref"])]),
            ),
            // UntagUser: aws:TagKeys
            (
                "iam:UntagUser",
                "TagKeys.member.1=team".into(),
                Some(user()),
                with_user(&[("aws:TagKeys", &["team"])]),
            ),
            // UntagRole: aws:TagKeys
            (
                "iam:UntagRole",
                "TagKeys.member.1=env&TagKeys.member.2=x".into(),
                Some(role()),
                with_role(&[("aws:TagKeys", &["env", "x"])]),
            ),
            // UntagPolicy: aws:TagKeys
            (
                "iam:UntagPolicy",
                "TagKeys.member.1=owner".into(),
                Some(policy()),
                want(&[
                    ("aws:ResourceTag/owner", &["sec"]),
                    ("aws:TagKeys", &["owner"]),
                ]),
            ),
            // AttachUserPolicy: iam:PermissionsBoundary, iam:PolicyARN
            (
                "iam:AttachUserPolicy",
                admin_param.clone(),
                Some(user()),
                with_user(&[("iam:PolicyARN", admin), ("iam:PermissionsBoundary", b)]),
            ),
            // DetachUserPolicy: iam:PermissionsBoundary, iam:PolicyARN
            (
                "iam:DetachUserPolicy",
                admin_param.clone(),
                Some(user()),
                with_user(&[("iam:PolicyARN", admin), ("iam:PermissionsBoundary", b)]),
            ),
            // AttachRolePolicy: iam:PermissionsBoundary, iam:PolicyARN
            (
                "iam:AttachRolePolicy",
                admin_param.clone(),
                Some(role()),
                with_role(&[("iam:PolicyARN", admin), ("iam:PermissionsBoundary", b)]),
            ),
            // DetachRolePolicy: iam:PermissionsBoundary, iam:PolicyARN
            (
                "iam:DetachRolePolicy",
                admin_param.clone(),
                Some(role()),
                with_role(&[("iam:PolicyARN", admin), ("iam:PermissionsBoundary", b)]),
            ),
            // AttachGroupPolicy: iam:PolicyARN
            (
                "iam:AttachGroupPolicy",
                admin_param.clone(),
                Some(group()),
                want(&[("iam:PolicyARN", admin)]),
            ),
            // DetachGroupPolicy: iam:PolicyARN
            (
                "iam:DetachGroupPolicy",
                admin_param.clone(),
                Some(group()),
                want(&[("iam:PolicyARN", admin)]),
            ),
            // PutUserPolicy: iam:PermissionsBoundary
            (
                "iam:PutUserPolicy",
                String::new(),
                Some(user()),
                with_user(&[("iam:PermissionsBoundary", b)]),
            ),
            // DeleteUserPolicy: iam:PermissionsBoundary
            (
                "iam:DeleteUserPolicy",
                String::new(),
                Some(user()),
                with_user(&[("iam:PermissionsBoundary", b)]),
            ),
            // PutRolePolicy: iam:PermissionsBoundary
            (
                "iam:PutRolePolicy",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // DeleteRolePolicy: iam:PermissionsBoundary
            (
                "iam:DeleteRolePolicy",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // PutUserPermissionsBoundary: iam:PermissionsBoundary (the one being set)
            (
                "iam:PutUserPermissionsBoundary",
                boundary_param.clone(),
                Some(user()),
                with_user(&[("iam:PermissionsBoundary", nb)]),
            ),
            // PutRolePermissionsBoundary: iam:PermissionsBoundary (the one being set)
            (
                "iam:PutRolePermissionsBoundary",
                boundary_param.clone(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", nb)]),
            ),
            // DeleteUserPermissionsBoundary: iam:PermissionsBoundary (the one removed)
            (
                "iam:DeleteUserPermissionsBoundary",
                String::new(),
                Some(user()),
                with_user(&[("iam:PermissionsBoundary", b)]),
            ),
            // DeleteRolePermissionsBoundary: iam:PermissionsBoundary (the one removed)
            (
                "iam:DeleteRolePermissionsBoundary",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // DeleteRole: iam:PermissionsBoundary
            (
                "iam:DeleteRole",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // GetRole: iam:PermissionsBoundary
            (
                "iam:GetRole",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // UpdateAssumeRolePolicy: iam:PermissionsBoundary
            (
                "iam:UpdateAssumeRolePolicy",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // UpdateRole: iam:PermissionsBoundary
            (
                "iam:UpdateRole",
                String::new(),
                Some(role()),
                with_role(&[("iam:PermissionsBoundary", b)]),
            ),
            // GetUser: no action keys; the user resource's tags
            ("iam:GetUser", String::new(), Some(user()), with_user(&[])),
            // CreateAccessKey: no action keys; the user resource's tags
            (
                "iam:CreateAccessKey",
                String::new(),
                Some(user()),
                with_user(&[]),
            ),
            // GetPolicy: no action keys; the policy resource's tags
            (
                "iam:GetPolicy",
                String::new(),
                Some(policy()),
                want(&[("aws:ResourceTag/owner", &["sec"])]),
            ),
            // AddUserToGroup: none (groups have no tags)
            (
                "iam:AddUserToGroup",
                String::new(),
                Some(group()),
                want(&[]),
            ),
            // ListUsers: none
            ("iam:ListUsers", String::new(), None, want(&[])),
            // sts:AssumeRole: aws:RequestTag, aws:TagKeys, sts:ExternalId, sts:RoleSessionName,
            // sts:SourceIdentity, sts:TransitiveTagKeys; role resource: aws/iam:ResourceTag
            (
                "sts:AssumeRole",
                format!(
                    "RoleSessionName=s1&ExternalId=ext-1&SourceIdentity=alice&{TAGS}&TransitiveTagKeys.member.1=team"
                ),
                Some(role()),
                {
                    let mut w = with_role(&[
                        ("sts:RoleSessionName", &["s1"]),
                        ("sts:ExternalId", &["ext-1"]),
                        ("sts:SourceIdentity", &["alice"]),
                        ("sts:TransitiveTagKeys", &["team"]),
                    ]);
                    w.extend(with_req(vec![]));
                    w
                },
            ),
            // sts:AssumeRole with the minimum
            (
                "sts:AssumeRole",
                "RoleSessionName=s1".into(),
                Some(role()),
                with_role(&[("sts:RoleSessionName", &["s1"])]),
            ),
            // sts:AssumeRoleWithWebIdentity: sts:RoleSessionName (the token's claims are
            // added by the OIDC validation); role resource: aws/iam:ResourceTag
            (
                "sts:AssumeRoleWithWebIdentity",
                "RoleSessionName=ci".into(),
                Some(role()),
                with_role(&[("sts:RoleSessionName", &["ci"])]),
            ),
        ];
        for (action, params, entity, expected) in rows {
            assert_eq!(keys(action, &params, entity), expected, "{action} {params}");
        }
    }

    /// The resource types' keys, from the same reference ("Resource types defined by
    /// AWS Identity and Access Management"); the built-in catalog lists only ARNs.
    fn resource_type_keys(resource: &str) -> &'static [&'static str] {
        match resource {
            "user" | "role" => &["aws:ResourceTag/${TagKey}", "iam:ResourceTag/${TagKey}"],
            "policy" | "mfa" | "oidc-provider" | "instance-profile" => {
                &["aws:ResourceTag/${TagKey}"]
            }
            _ => &[],
        }
    }

    /// Cross-check with the catalog (AWS's reference as data): every key the reference
    /// lists for an action Gatehouse answers is either produced by [`request_keys`] or
    /// named in [`NOT_APPLICABLE`] with its reason.
    #[test]
    fn no_documented_key_is_forgotten() {
        let catalog = gatehouse_policy::Catalog::builtin();
        let answered: Vec<String> = super::super::answered_actions()
            .map(|a| format!("iam:{a}"))
            .chain(crate::sts::answered_actions().map(|a| format!("sts:{a}")))
            .collect();
        for action in &answered {
            let Some((_, info)) = catalog.action(action) else {
                continue;
            };
            let mut documented: Vec<&str> =
                info.condition_keys.iter().map(String::as_str).collect();
            for r in &info.resources {
                documented.extend_from_slice(resource_type_keys(r));
            }
            let spec = spec_of(action);
            let tagged_resource = info
                .resources
                .iter()
                .any(|r| TAGGED_RESOURCES.contains(&r.as_str()));
            for key in documented {
                // Web identity claims (ISSUER:claim) and SAML keys come from the token.
                let from_token = !key.starts_with("iam:")
                    && !key.starts_with("aws:")
                    && !key.starts_with("sts:");
                let produced = match key {
                    "iam:PolicyARN" => spec.is_some_and(|s| s.policy_arn),
                    "iam:PermissionsBoundary" => spec.is_some_and(|s| s.boundary != Boundary::None),
                    "aws:RequestTag/${TagKey}" => spec.is_some_and(|s| s.request_tags),
                    "aws:TagKeys" => spec.is_some_and(|s| s.request_tags || s.removed_tag_keys),
                    "aws:ResourceTag/${TagKey}" | "iam:ResourceTag/${TagKey}" => tagged_resource,
                    "sts:RoleSessionName"
                    | "sts:ExternalId"
                    | "sts:SourceIdentity"
                    | "sts:TransitiveTagKeys" => spec.is_some_and(|s| s.sts_session),
                    _ => false,
                };
                let untagged_resource = key == "aws:ResourceTag/${TagKey}" && !tagged_resource;
                // Session tags and a source identity carried in a web identity token
                // (AWS's `https://aws.amazon.com/tags` claim) are not supported: such a
                // session has none, so these keys are absent.
                let web_session_tags = action == "sts:AssumeRoleWithWebIdentity"
                    && ["aws:RequestTag/${TagKey}", "aws:TagKeys"].contains(&key);
                let excused = NOT_APPLICABLE.iter().any(|(k, _)| *k == key)
                    || from_token
                    || untagged_resource
                    || web_session_tags;
                assert!(
                    produced || excused,
                    "{action}: the reference documents {key}, which is neither set nor excused"
                );
            }
        }
    }
}
