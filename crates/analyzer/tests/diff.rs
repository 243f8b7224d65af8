//! `policy diff` checked against the engine by sampling: for random pairs of policies and
//! random requests, the diff says a request is newly allowed exactly when the engine denies
//! it under OLD and allows it under NEW (and the same for "no longer allowed"); and every
//! example request the diff reports is decided that way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::diff::{PROBE_PRINCIPAL, diff_documents};
use gatehouse_policy::{
    ContextValue, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use proptest::prelude::*;

mod common;
use common::add_conditions;
use serde_json::{Value, json};

const ACTION_PATTERNS: &[&str] = &[
    "ai:*",
    "ai:Invoke*",
    "ai:*Guardrail",
    "ai:InvokeModel",
    "iam:PassRole",
    "s3:Get*",
    "*",
];
const ACTIONS: &[&str] = &[
    "ai:InvokeModel",
    "ai:InvokeModelWithResponseStream",
    "ai:UpdateGuardrail",
    "ai:GetGuardrail",
    "ai:CreateDeployment",
    "ai:SomethingNew",
    "iam:PassRole",
    "iam:CreateUser",
    "s3:GetObject",
    "ec2:RunInstances",
];
const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:ai:local:111122223333:model/*",
    "arn:aws:ai:local:111122223333:model/llama-*",
    "arn:aws:ai:local:111122223333:guardrail/*",
    "arn:aws:ai:local:111122223333:guardrail/g1",
];
const RESOURCES: &[&str] = &[
    "arn:aws:ai:local:111122223333:model/llama-3",
    "arn:aws:ai:local:111122223333:model/gpt-4",
    "arn:aws:ai:local:111122223333:guardrail/g1",
    "arn:aws:ai:local:111122223333:guardrail/g2",
    "arn:aws:s3:::bucket/key",
    "arn:aws:iam::111122223333:role/trainer",
];

fn condition() -> impl Strategy<Value = (String, String, Value)> {
    prop_oneof![
        Just(("IpAddress", "aws:SourceIp", json!("10.0.0.0/8"))),
        Just(("NotIpAddress", "aws:SourceIp", json!("10.0.0.0/8"))),
        Just(("StringEquals", "aws:PrincipalTag/team", json!("search"))),
        Just((
            "StringNotEquals",
            "aws:PrincipalTag/team",
            json!(["search", "ads"])
        )),
        Just(("Bool", "aws:MultiFactorAuthPresent", json!("true"))),
        Just(("NumericLessThan", "ai:MaxTokens", json!("1000"))),
        Just(("StringLike", "ai:ModelId", json!("llama-*"))),
        Just(("ForAnyValue:StringEquals", "aws:TagKeys", json!(["team"]))),
        Just(("Null", "aws:PrincipalTag/team", json!("true"))),
    ]
    .prop_map(|(o, k, v)| (o.to_owned(), k.to_owned(), v))
}

fn statement() -> impl Strategy<Value = Value> {
    (
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.15),
        prop::sample::subsequence(ACTION_PATTERNS, 1..3),
        prop::bool::weighted(0.1),
        prop::sample::subsequence(RESOURCE_PATTERNS, 1..3),
        prop::collection::vec(condition(), 0..3),
    )
        .prop_map(
            |(deny, not_action, actions, not_resource, resources, conds)| {
                let mut st = json!({"Effect": if deny { "Deny" } else { "Allow" }});
                st[if not_action { "NotAction" } else { "Action" }] = json!(actions);
                st[if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                }] = json!(resources);
                add_conditions(&mut st, conds);
                st
            },
        )
}

fn policy() -> impl Strategy<Value = PolicyDocument> {
    common::policy(statement())
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(ACTIONS),
        prop::sample::select(RESOURCES),
        prop::option::of(prop::sample::select(
            &["10.1.2.3", "192.168.0.1", "11.0.0.0", "9.255.255.255"][..],
        )),
        prop::option::of(prop::sample::select(&["search", "ads", "web"][..])),
        prop::option::of(prop::sample::select(&["true", "false"][..])),
        prop::option::of(prop::sample::select(&["10", "999", "1000", "5000"][..])),
        prop::option::of(prop::sample::select(&["llama-3", "gpt-4"][..])),
        prop::option::of(prop::sample::select(TAG_KEYS)),
    )
        .prop_map(|(a, r, ip, team, mfa, max, model, tags)| {
            let mut req = Request::new(PROBE_PRINCIPAL, a, r);
            if let Some(v) = ip {
                req = req.with("aws:SourceIp", v);
            }
            if let Some(v) = team {
                req = req.with("aws:PrincipalTag/team", v);
            }
            if let Some(v) = mfa {
                req = req.with("aws:MultiFactorAuthPresent", v);
            }
            if let Some(v) = max {
                req = req.with("ai:MaxTokens", v);
            }
            if let Some(v) = model {
                req = req.with("ai:ModelId", v);
            }
            if let Some(v) = tags {
                req.context.insert(
                    "aws:TagKeys",
                    ContextValue::Many(v.iter().map(|s| (*s).to_owned()).collect()),
                );
            }
            req
        })
}

const TAG_KEYS: &[&[&str]] = &[&["team"], &["env"], &["team", "env"], &[]];

fn allows(doc: &PolicyDocument, req: &Request) -> bool {
    let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("p", doc.clone())]).unwrap();
    Evaluation::identity(&set).decide(req).is_allow()
}

proptest! {
    // 96 cases from a fixed seed; PROPTEST_CASES=N / PROPTEST_RNG_SEED=S for others.
    #![proptest_config(common::config(96))]

    #[test]
    fn diff_agrees_with_the_engine(
        old in policy(),
        new in policy(),
        requests in prop::collection::vec(request(), 40),
    ) {
        let d = diff_documents(&old, &new).unwrap();
        common::agrees_with_the_engine(&d, &requests, |r| allows(&old, r), |r| allows(&new, r))?;
    }
}

#[test]
fn a_deny_added_removes_access_and_grants_none() {
    let old = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let new = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:*","Resource":"*"},
        {"Effect":"Deny","Action":"ai:ReadInvocationLogs","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]}"#,
    )
    .unwrap();
    let d = diff_documents(&old, &new).unwrap();
    assert!(!d.grants_new_access(), "{}", d.text());
    assert_eq!(d.no_longer_allowed.len(), 1, "{}", d.text());
    assert_eq!(
        d.no_longer_allowed[0].actions,
        vec!["ai:ReadInvocationLogs".to_owned()]
    );
    assert!(
        d.text().contains("aws:MultiFactorAuthPresent is false"),
        "{}",
        d.text()
    );
}
