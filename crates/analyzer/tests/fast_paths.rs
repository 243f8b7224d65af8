//! The fast paths against the naive reference (`tests/reference`), on random exports of a few
//! accounts: users and roles with random policies (administrators, escalation rights,
//! `sts:AssumeRole` on roles, accounts' roles or anything, denies, boundaries) and roles with
//! random trust policies (a principal, an account, anyone, anyone under a condition on the
//! caller or not, services, denies). The export is read as a stream in parts of one or two
//! principals, so every question crosses parts.
//!
//! - the scan's GH-PE-006 findings are exactly the all-pairs graph's (same paths, same
//!   places), and every other finding is the same whether the export is read in parts of one
//!   or in one part;
//! - `who-can` gives the reference's grants, in order;
//! - the review's invocation access (a diff over the invoking actions only) allows exactly
//!   what the full diff from nothing allows, for those actions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Only the shared proptest configuration is used here, not the diff helpers.
#[allow(dead_code)]
mod common;
mod reference;

use gatehouse_analyzer::export::AwsExport;
use gatehouse_analyzer::{NoProgress, Settings};
use proptest::prelude::*;
use serde_json::{Value, json};

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];

/// A principal: (account, user or role, name index).
type Who = (usize, bool, usize);

fn arn((a, role, n): Who) -> String {
    let kind = if role { "role" } else { "user" };
    format!("arn:aws:iam::{}:{kind}/{kind}{n}", ACCOUNTS[a])
}

fn who() -> impl Strategy<Value = Who> {
    (0..3usize, any::<bool>(), 0..3usize)
}

fn statement() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => who().prop_map(|w| json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn((w.0, true, w.2))})),
        3 => (0..3usize).prop_map(|a| json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": format!("arn:aws:iam::{}:role/*", ACCOUNTS[a])})),
        2 => Just(json!({"Effect": "Allow", "Action": "sts:*", "Resource": "*"})),
        2 => Just(json!({"Effect": "Allow", "Action": "*", "Resource": "*"})),
        1 => Just(json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})),
        2 => Just(json!({"Effect": "Allow", "Action": ["iam:PutRolePolicy", "iam:AttachRolePolicy"], "Resource": "*"})),
        1 => Just(json!({"Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction"], "Resource": "*"})),
        1 => Just(json!({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"})),
        1 => Just(json!({"Effect": "Allow", "Action": ["bedrock:InvokeModel", "bedrock:UpdateGuardrail"], "Resource": "*"})),
        1 => Just(json!({"Effect": "Allow", "Action": "bedrock:Invoke*", "Resource": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})),
        1 => Just(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}})),
        1 => who().prop_map(|w| json!({"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": arn((w.0, true, w.2))})),
    ]
}

fn trust_statement() -> impl Strategy<Value = Value> {
    let assume = |principal: Value| json!({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"});
    prop_oneof![
        who().prop_map(move |w| assume(json!({"AWS": arn(w)}))),
        (0..3usize).prop_map(move |a| assume(json!({"AWS": ACCOUNTS[a]}))),
        (0..3usize).prop_map(move |a| assume(
            json!({"AWS": format!("arn:aws:iam::{}:root", ACCOUNTS[a])})
        )),
        Just(assume(json!({"AWS": "*"}))),
        Just(assume(json!("*"))),
        Just(
            json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "x"}}})
        ),
        (0..3usize).prop_map(
            |a| json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNTS[a]}}})
        ),
        Just(assume(json!({"Service": "lambda.amazonaws.com"}))),
        who().prop_map(
            |w| json!({"Effect": "Deny", "Principal": {"AWS": arn(w)}, "Action": "sts:AssumeRole"})
        ),
    ]
}

fn document(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// One principal's entry: inline policies, a managed policy, maybe a boundary.
fn entry(w: Who, inline: Vec<Value>, managed: bool, boundary: bool, trust: Vec<Value>) -> Value {
    let kind = if w.1 { "Role" } else { "User" };
    let mut e = json!({
        format!("{kind}Name"): arn(w).rsplit('/').next().unwrap(),
        "Arn": arn(w),
        "CreateDate": "2024-01-01T00:00:00Z",
        format!("{kind}PolicyList"): [{"PolicyName": "inline", "PolicyDocument": document(inline)}],
        "AttachedManagedPolicies": if managed {
            json!([{"PolicyName": "escalate", "PolicyArn": "arn:aws:iam::111111111111:policy/escalate"}])
        } else { json!([]) },
    });
    if boundary {
        e["PermissionsBoundary"] = json!({"PermissionsBoundaryType": "Policy",
            "PermissionsBoundaryArn": "arn:aws:iam::111111111111:policy/boundary"});
    }
    if w.1 {
        e["AssumeRolePolicyDocument"] = document(trust);
        e["RoleLastUsed"] = json!({});
    } else {
        e["GroupList"] = json!([]);
    }
    e
}

fn export() -> impl Strategy<Value = Value> {
    let principal = (
        prop::collection::vec(statement(), 1..4),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::collection::vec(trust_statement(), 1..3),
    );
    (
        prop::collection::btree_set(who(), 5..12),
        prop::collection::vec(principal, 12),
        prop::collection::vec(statement(), 1..3),
    )
        .prop_map(|(whos, specs, managed)| {
            let (mut users, mut roles) = (Vec::new(), Vec::new());
            for (w, (inline, m, b, trust)) in whos.into_iter().zip(specs) {
                let e = entry(w, inline, m, b, trust);
                if w.1 { roles.push(e) } else { users.push(e) }
            }
            let policy = |name: &str, doc: Value| json!({
                "PolicyName": name, "Arn": format!("arn:aws:iam::111111111111:policy/{name}"),
                "DefaultVersionId": "v1",
                "PolicyVersionList": [{"Document": doc, "VersionId": "v1", "IsDefaultVersion": true}]});
            json!({
                "UserDetailList": users,
                "GroupDetailList": [],
                "RoleDetailList": roles,
                "Policies": [
                    policy("escalate", document(managed)),
                    policy("boundary", document(vec![json!({"Effect": "Allow", "Action": ["sts:AssumeRole", "bedrock:*"], "Resource": "*"})])),
                ]
            })
        })
}

fn scan(bytes: &[u8], part_size: usize) -> Vec<gatehouse_analyzer::Finding> {
    let mut e = AwsExport::from_bytes("org.json", bytes).unwrap().unwrap();
    e.set_part_size(part_size);
    gatehouse_analyzer::scan_export_report(&e, &Settings::default(), &NoProgress)
        .unwrap()
        .findings
}

fn sorted(mut v: Vec<gatehouse_analyzer::Finding>) -> Vec<String> {
    let mut out: Vec<String> = v
        .drain(..)
        .map(|f| format!("{} {:?} {} @ {}", f.rule, f.severity, f.message, f.location))
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(common::config(48))]

    #[test]
    fn fast_paths_agree_with_the_all_pairs_reference(v in export()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let in_parts = scan(&bytes, 1);
        let whole = scan(&bytes, 10_000);
        prop_assert_eq!(sorted(in_parts.clone()), sorted(whole));

        let inv = gatehouse_analyzer::import::import("org.json", &bytes).0;
        let (paths, others): (Vec<_>, Vec<_>) =
            in_parts.into_iter().partition(|f| f.rule == "GH-PE-006");
        let expected = reference::escalation_paths(&inv, &others);
        prop_assert_eq!(sorted(paths), sorted(expected));

        let mut e = AwsExport::from_bytes("org.json", &bytes).unwrap().unwrap();
        e.set_part_size(2);
        let dir = gatehouse_analyzer::access::Directory::new(e, Settings::default());
        for (action, resource) in [
            ("sts:AssumeRole", format!("arn:aws:iam::{}:role/role1", ACCOUNTS[1])),
            ("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2".to_owned()),
            ("iam:PutRolePolicy", "*".to_owned()),
        ] {
            let fast: Vec<(String, &str, Vec<String>)> = dir
                .who_can(action, &resource, &Default::default(), &NoProgress)
                .unwrap()
                .into_iter()
                .map(|g| (g.arn, g.access, g.through))
                .collect();
            prop_assert_eq!(fast, reference::who_can(&inv, action, &resource));
        }
    }
}

/// The generator makes the cases the property is about: paths through several roles,
/// across accounts, and trust open to anyone under a condition on the caller.
#[test]
fn random_exports_exercise_the_graph() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::new(common::config(48));
    let (mut with_paths, mut multi_hop, mut across) = (0, 0, 0);
    for _ in 0..48 {
        let v = export().new_tree(&mut runner).unwrap().current();
        let findings = scan(&serde_json::to_vec(&v).unwrap(), 1);
        let paths: Vec<_> = findings.iter().filter(|f| f.rule == "GH-PE-006").collect();
        with_paths += usize::from(!paths.is_empty());
        multi_hop += usize::from(paths.iter().any(|f| f.message.matches('→').count() >= 2));
        across += usize::from(
            paths
                .iter()
                .any(|f| ACCOUNTS.iter().filter(|a| f.message.contains(*a)).count() >= 2),
        );
    }
    assert!(with_paths >= 10, "{with_paths} of 48 exports had a path");
    assert!(
        multi_hop >= 3,
        "{multi_hop} of 48 exports had a path of two hops"
    );
    assert!(
        across >= 3,
        "{across} of 48 exports had a path across accounts"
    );
}

/// The review's restricted diff: over the invoking actions, what it allows is exactly what
/// the full diff from nothing allows.
mod restricted {
    use super::*;
    use gatehouse_analyzer::diff::{diff_evaluations, diff_evaluations_for};
    use gatehouse_policy::{
        Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
    };

    const ACTIONS: [&str; 4] = [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "ai:InvokeModel",
        "bedrock:UpdateGuardrail",
    ];

    fn statement() -> impl Strategy<Value = Value> {
        let action = prop::sample::select(vec![
            "*",
            "bedrock:*",
            "bedrock:Invoke*",
            "bedrock:InvokeModel",
            "ai:*",
            "s3:*",
            "bedrock:UpdateGuardrail",
            "ai:InvokeModel",
        ]);
        let resource = prop::sample::select(vec![
            "*",
            "arn:aws:bedrock:us-east-1::foundation-model/*",
            "arn:aws:bedrock:*::foundation-model/anthropic.*",
            "arn:aws:bedrock:us-east-1:111111111111:guardrail/g1",
            "arn:gatehouse:ai:local:111111111111:model/llama-*",
        ]);
        let condition = prop::sample::select(vec![
            Value::Null,
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        ]);
        (any::<bool>(), any::<bool>(), action, resource, condition).prop_map(
            |(allow, not_action, action, resource, condition)| {
                let mut st =
                    json!({"Effect": if allow { "Allow" } else { "Deny" }, "Resource": resource});
                st[if not_action && allow {
                    "NotAction"
                } else {
                    "Action"
                }] = json!(action);
                if !condition.is_null() {
                    st["Condition"] = condition;
                }
                st
            },
        )
    }

    fn requests() -> Vec<Request> {
        let mut out = Vec::new();
        for action in ACTIONS {
            for resource in [
                "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
                "arn:aws:bedrock:eu-west-1::foundation-model/meta.llama3",
                "arn:aws:bedrock:us-east-1:111111111111:guardrail/g1",
                "arn:gatehouse:ai:local:111111111111:model/llama-3",
                "arn:aws:s3:::bucket",
            ] {
                for ctx in [
                    None,
                    Some(("aws:SourceIp", "10.1.2.3")),
                    Some(("aws:MultiFactorAuthPresent", "true")),
                ] {
                    let mut r =
                        Request::new(gatehouse_analyzer::diff::PROBE_PRINCIPAL, action, resource);
                    if let Some((k, v)) = ctx {
                        r = r.with(k, v);
                    }
                    out.push(r);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(common::config(64))]

        #[test]
        fn restricted_diff_allows_what_the_full_diff_allows(
            statements in prop::collection::vec(statement(), 1..5),
        ) {
            let doc = PolicyDocument::parse(&document(statements).to_string()).unwrap();
            let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("p", doc.clone())]).unwrap();
            let nothing = PolicySet::empty(PolicyType::Identity);
            let sts: Vec<&gatehouse_policy::Statement> = doc.statements.iter().collect();
            let full = diff_evaluations(&Evaluation::identity(&nothing), &Evaluation::identity(&set), &sts);
            let only = diff_evaluations_for(&Evaluation::identity(&nothing), &Evaluation::identity(&set), &sts, &ACTIONS);
            for r in requests() {
                prop_assert_eq!(only.newly_allows(&r), full.newly_allows(&r), "{:?}", r);
                prop_assert_eq!(only.newly_allows(&r), Evaluation::identity(&set).decide(&r).is_allow(), "{:?}", r);
            }
        }
    }
}
