//! `policy diff` of resource-based and trust policies checked against the engine by
//! sampling: for random pairs of policies naming principals (`*`, `AWS:*`, accounts, account
//! roots, roles, users, services, identity providers, with `Principal` or `NotPrincipal`)
//! and random requests from principals named in them and from strangers, the diff says a
//! request is newly allowed exactly when the engine denies it under OLD and allows it under
//! NEW (and the same for "no longer allowed"); every example it reports is decided that way.
//!
//! The engine's answer is its full evaluation logic: the request comes from another account
//! than the resource's, and the caller's identity policy allows everything, so the decision
//! is what the resource policy grants (AWS: across accounts both sides must allow).
//!
//! Deterministic: a fixed seed unless `PROPTEST_RNG_SEED` is set; `PROPTEST_CASES=N` for a
//! longer run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::diff::diff_documents;
use gatehouse_policy::{Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request};
use proptest::prelude::*;

mod common;
use common::add_conditions;
use serde_json::{Value, json};

const PRINCIPALS: &[&str] = &[
    r#""*""#,
    r#"{"AWS":"*"}"#,
    r#"{"AWS":"111122223333"}"#,
    r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
    r#"{"AWS":"arn:aws:iam::444455556666:root"}"#,
    r#"{"AWS":"arn:aws:iam::111122223333:role/deployer"}"#,
    r#"{"AWS":["arn:aws:iam::444455556666:user/alice","arn:aws:iam::111122223333:role/deployer"]}"#,
    r#"{"AWS":"arn:aws:sts::444455556666:assumed-role/ci/build"}"#,
    r#"{"Service":"ai.gatehouse.internal"}"#,
    r#"{"Federated":"token.actions.githubusercontent.com"}"#,
    r#"{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com","AWS":"444455556666"}"#,
    r#"{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}"#,
];

/// Principals requests come from: every one named above, others in the same accounts,
/// sessions, and strangers (a random account is added per request).
const CALLERS: &[&str] = &[
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::111122223333:user/bob",
    "arn:aws:iam::111122223333:role/deployer",
    "arn:aws:sts::111122223333:assumed-role/deployer/s1",
    "arn:aws:sts::111122223333:assumed-role/other/s1",
    "arn:aws:iam::444455556666:root",
    "arn:aws:iam::444455556666:user/alice",
    "arn:aws:iam::444455556666:user/mallory",
    "arn:aws:sts::444455556666:assumed-role/ci/build",
    "arn:aws:sts::444455556666:assumed-role/ci/other",
    "ai.gatehouse.internal",
    "other.gatehouse.internal",
    "token.actions.githubusercontent.com",
    "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
    "accounts.google.com",
    "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
];

const ACTION_PATTERNS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:TagSession",
    "ai:InvokeModel",
    "ai:*",
    "*",
];
const ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:TagSession",
    "ai:InvokeModel",
    "ai:UpdateGuardrail",
    "s3:GetObject",
];
const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:ai:local:111122223333:model/*",
    "arn:aws:ai:local:111122223333:model/x",
];
const RESOURCES: &[&str] = &[
    "arn:aws:iam::111122223333:role/target",
    "arn:aws:ai:local:111122223333:model/x",
    "arn:aws:ai:local:111122223333:model/y",
];

fn condition() -> impl Strategy<Value = (String, String, Value)> {
    prop_oneof![
        Just(("StringEquals", "sts:ExternalId", json!("ext-1"))),
        Just((
            "StringLike",
            "token.actions.githubusercontent.com:sub",
            json!("repo:acme/*")
        )),
        Just((
            "StringEquals",
            "token.actions.githubusercontent.com:aud",
            json!("sts.amazonaws.com")
        )),
        Just((
            "StringEquals",
            "aws:PrincipalAccount",
            json!("111122223333")
        )),
        Just((
            "ArnLike",
            "aws:PrincipalArn",
            json!("arn:aws:iam::*:role/deployer")
        )),
        Just(("NotIpAddress", "aws:SourceIp", json!("10.0.0.0/8"))),
        Just(("Bool", "aws:SecureTransport", json!("true"))),
    ]
    .prop_map(|(o, k, v)| (o.to_owned(), k.to_owned(), v))
}

fn statement() -> impl Strategy<Value = Value> {
    (
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        prop::sample::select(PRINCIPALS),
        prop::sample::subsequence(ACTION_PATTERNS, 1..3),
        prop::option::weighted(0.4, prop::sample::subsequence(RESOURCE_PATTERNS, 1..3)),
        prop::collection::vec(condition(), 0..3),
    )
        .prop_map(
            |(deny, not_principal, principal, actions, resources, conds)| {
                let mut st =
                    json!({"Effect": if deny { "Deny" } else { "Allow" }, "Action": actions});
                // AWS supports NotPrincipal only with Deny.
                let key = if deny && not_principal {
                    "NotPrincipal"
                } else {
                    "Principal"
                };
                st[key] = serde_json::from_str(principal).unwrap();
                if let Some(r) = resources {
                    st["Resource"] = json!(r);
                }
                add_conditions(&mut st, conds);
                st
            },
        )
}

fn policy() -> impl Strategy<Value = PolicyDocument> {
    common::policy(statement())
}

fn caller() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(CALLERS).prop_map(str::to_owned),
        1 => (100_000_000_000u64..1_000_000_000_000).prop_map(|a| format!("arn:aws:iam::{a}:root")),
        1 => (100_000_000_000u64..1_000_000_000_000).prop_map(|a| format!("arn:aws:iam::{a}:user/x")),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        caller(),
        prop::sample::select(ACTIONS),
        prop::sample::select(RESOURCES),
        prop::option::of(prop::sample::select(&["ext-1", "ext-2"][..])),
        prop::option::of(prop::sample::select(
            &["repo:acme/app:ref:refs/heads/main", "repo:evil/app:ref:x"][..],
        )),
        prop::option::of(prop::sample::select(&["sts.amazonaws.com", "other"][..])),
        prop::option::of(prop::sample::select(&["10.1.2.3", "203.0.113.7"][..])),
        prop::option::of(prop::sample::select(&["true", "false"][..])),
    )
        .prop_map(|(p, a, r, ext, sub, aud, ip, tls)| {
            let mut req = Request::new(p, a, r);
            for (k, v) in [
                ("sts:ExternalId", ext),
                ("token.actions.githubusercontent.com:sub", sub),
                ("token.actions.githubusercontent.com:aud", aud),
                ("aws:SourceIp", ip),
                ("aws:SecureTransport", tls),
            ] {
                if let Some(v) = v {
                    req = req.with(k, v);
                }
            }
            req
        })
}

/// The engine's full decision for a caller in another account whose own policies allow
/// everything: exactly what the resource policy grants.
fn allows(doc: &PolicyDocument, req: &Request) -> bool {
    let resource =
        PolicySet::new(PolicyType::Resource, [NamedPolicy::new("r", doc.clone())]).unwrap();
    let everything = PolicySet::new(
        PolicyType::Identity,
        [NamedPolicy::new(
            "all",
            PolicyDocument::parse(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            )
            .unwrap(),
        )],
    )
    .unwrap();
    let eval = Evaluation {
        resource: Some(&resource),
        ..Evaluation::identity(&everything)
    };
    let mut foreign = req.clone();
    foreign.resource_account = Some("000000000000".into());
    let full = eval.decide(&foreign).is_allow();
    // The engine's own entry point for "what this one policy grants" must say the same.
    assert_eq!(full, resource.allows(req), "{req:?}");
    full
}

proptest! {
    #![proptest_config(common::config(128))]

    #[test]
    fn resource_diff_agrees_with_the_engine(
        old in policy(),
        new in policy(),
        requests in prop::collection::vec(request(), 48),
    ) {
        let d = diff_documents(&old, &new).unwrap();
        for c in d.newly_allowed.iter().chain(&d.no_longer_allowed) {
            prop_assert!(!c.principals.is_empty(), "{}", d.text());
        }
        common::agrees_with_the_engine(&d, &requests, |r| allows(&old, r), |r| allows(&new, r))?;
    }
}
