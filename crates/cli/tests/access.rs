//! `gatehouse who-can` and `gatehouse what-can` over an authorization-details export whose
//! answers are known: group membership, a permissions boundary, an explicit deny and a
//! condition each change who can do what.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::gatehouse;

use std::path::Path;

const MODEL: &str = "arn:aws:bedrock:us-east-1::foundation-model/llama";

fn details() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/access/details.json")
        .display()
        .to_string()
}

fn who(action: &str, resource: &str, extra: &[&str]) -> Vec<(String, String)> {
    let d = details();
    let mut args = vec![
        "who-can",
        action,
        resource,
        "--details",
        &d,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = gatehouse(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["arn"]
                    .as_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_owned(),
                p["access"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn who_can_honours_groups_boundaries_denies_and_conditions() {
    let got = who("bedrock:InvokeModel", MODEL, &[]);
    assert_eq!(
        got,
        vec![
            pair("group/invokers", "allowed"),
            pair("user/alice", "allowed"),
            pair("user/bob", "conditional"),
            pair("role/deployer", "allowed"),
        ],
        "carol is denied explicitly"
    );
    let got = who(
        "bedrock:InvokeModel",
        MODEL,
        &["--context", "aws:SourceIp=10.2.3.4"],
    );
    assert!(got.contains(&pair("user/bob", "allowed")), "{got:?}");
    // The boundary keeps the deployer role from everything but invocation.
    let got = who("bedrock:CreateModelCustomizationJob", "*", &[]);
    assert_eq!(got, vec![pair("user/carol", "allowed")]);

    let (_, text, _) = gatehouse(&[
        "who-can",
        "bedrock:InvokeModel",
        MODEL,
        "--details",
        &details(),
    ]);
    assert!(
        text.contains("user/alice allowed bedrock:InvokeModel via identity-based policy `arn:aws:iam::111122223333:policy/Invoke` statement `InvokeModels`"),
        "{text}"
    );
    assert!(
        text.contains("user/bob conditional bedrock:InvokeModel (if IpAddress aws:SourceIp)"),
        "{text}"
    );
}

#[test]
fn what_can_lists_actions_resources_and_conditions() {
    let (code, out, _) = gatehouse(&["what-can", "bob", "--details", &details()]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "arn:aws:iam::111122223333:user/bob can bedrock:InvokeModel on arn:aws:bedrock:us-east-1::foundation-model/* when aws:SourceIp is in 10.0.0.0/8\n"
    );
    let (_, out, _) = gatehouse(&[
        "what-can",
        "role/deployer",
        "--details",
        &details(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let allowed = v["allowed"].as_array().unwrap();
    assert_eq!(
        allowed.len(),
        1,
        "the boundary leaves only invocation: {out}"
    );
    assert_eq!(
        allowed[0]["actions"],
        serde_json::json!([
            "bedrock:InvokeModel",
            "bedrock:InvokeModelWithResponseStream"
        ])
    );
    let (_, out, _) = gatehouse(&[
        "what-can",
        "carol",
        "--details",
        &details(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all: Vec<&str> = v["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
        })
        .collect();
    assert!(all.contains(&"bedrock:CreateModelCustomizationJob"));
    assert!(!all.contains(&"bedrock:InvokeModel"), "explicitly denied");
}

#[test]
fn errors_exit_2() {
    let (code, _, err) = gatehouse(&["what-can", "nobody", "--details", &details()]);
    assert_eq!(code, 2);
    assert!(err.contains("no user, group or role named nobody"), "{err}");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diff/old.json");
    let (code, _, err) = gatehouse(&[
        "who-can",
        "ai:InvokeModel",
        "*",
        "--details",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not an `aws iam get-account-authorization-details` export"),
        "{err}"
    );
}

#[test]
fn review_in_markdown_html_and_json() {
    let d = details();
    let (code, md, err) = gatehouse(&["review", "--details", &d]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("## Who can invoke which models"));
    assert!(
        md.contains("| arn:aws:bedrock:us-east-1::foundation-model/* | arn:aws:iam::111122223333:user/bob | bedrock:InvokeModel | aws:SourceIp is in 10.0.0.0/8 | identity-based policy `user bob/office-only` statement #0 |"),
        "{md}"
    );
    let (_, json, _) = gatehouse(&["review", "--details", &d, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    // carol is denied InvokeModel explicitly but still streams: the review says so.
    let star = v["model_invocation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["models"] == "*")
        .unwrap();
    assert_eq!(
        star["invokers"][0]["principal"],
        "arn:aws:iam::111122223333:user/carol"
    );
    assert_eq!(
        star["invokers"][0]["actions"],
        serde_json::json!(["bedrock:InvokeModelWithResponseStream"])
    );
    let changers: Vec<&str> = v["guardrail_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["principal"].as_str().unwrap())
        .collect();
    assert_eq!(
        changers,
        vec!["arn:aws:iam::111122223333:user/carol"],
        "the boundary stops the deployer role"
    );
    assert_eq!(
        v["service_identities"][0]["role"],
        "arn:aws:iam::111122223333:role/deployer"
    );
    assert_eq!(
        v["service_identities"][0]["services"][0],
        "lambda.amazonaws.com"
    );
    let (_, html, _) = gatehouse(&["review", "--details", &d, "--format", "html"]);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<td>arn:aws:iam::111122223333:user/alice</td>"));
    assert!(
        !html.contains("`user bob/office-only`<"),
        "cells are escaped text"
    );
}

#[test]
fn review_lists_trust_paths_of_the_corpus_export() {
    let Some(corpus) =
        gatehouse_testenv::corpus(&gatehouse_testenv::repo_root(env!("CARGO_MANIFEST_DIR")))
    else {
        return;
    };
    let f = corpus.join("authorization-details/example-authz-details.json");
    let (code, json, err) = gatehouse(&[
        "review",
        "--details",
        f.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    // Three identities hold `*` (AdministratorAccess directly, through the admin group, or
    // an inline `*:*`): each can invoke every model and change every guardrail.
    let who = |section: &serde_json::Value| -> Vec<String> {
        section
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a["principal"]
                    .as_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let admins = vec![
        "group/admin",
        "user/obama",
        "user/userwithlotsofpermissions",
    ];
    assert_eq!(v["model_invocation"][0]["models"], "*");
    assert_eq!(who(&v["model_invocation"][0]["invokers"]), admins);
    assert_eq!(who(&v["guardrail_changes"]), admins);
    assert_eq!(v["trust_paths"], serde_json::json!([]));
    assert_eq!(
        v["service_identities"][0]["role"],
        "arn:aws:iam::012345678901:role/OverprivilegedEC2"
    );
}

#[test]
fn review_with_a_credential_report() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../analyzer/tests/fixtures/GH-HY-003/fire");
    let details = dir.join("details.json");
    let report = dir.join("credential-report.csv");
    let (code, out, err) = gatehouse(&[
        "review",
        "--details",
        details.to_str().unwrap(),
        "--credential-report",
        report.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["unused_access"].is_array());
    // The report must go with an export, and be a report.
    let (code, _, _) = gatehouse(&["review", "--credential-report", report.to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, _, err) = gatehouse(&[
        "review",
        "--details",
        details.to_str().unwrap(),
        "--credential-report",
        details.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("details.json: line 1: not an `aws iam get-credential-report` CSV"),
        "{err}"
    );
}

/// One person of a `review --by-person --format json` answer.
fn v_person(json: &str, person: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["person"] == person)
        .cloned()
        .unwrap_or_else(|| panic!("{person} not in {json}"))
}

#[test]
fn review_by_person_joins_clouds_and_refuses_a_bad_groups_file() {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../analyzer/tests/fixtures/by-person");
    let f = |n: &str| fixtures.join(n).display().to_string();
    let (code, json, err) = gatehouse(&[
        "review",
        "--by-person",
        "--details",
        &f("aws-authorization-details.json"),
        "--groups",
        &f("groups.json"),
        &f("azure-role-assignments.json"),
        &f("gcp-project-iam-policy.json"),
        &f("identity-center"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    // IAM Identity Center's listings name who holds its role's permission set.
    let grace = v_person(&json, "grace@example.com");
    assert_eq!(grace["grants"][0]["via"][0], "ml engineers", "{grace}");
    let dave = v_person(&json, "dave@example.com");
    let clouds: Vec<&str> = dave["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["cloud"].as_str().unwrap())
        .collect();
    assert_eq!(clouds, ["aws", "azure", "gcp"]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("groups.json");
    std::fs::write(&bad, r#"{"groups": {"a": "not a list"}}"#).unwrap();
    let (code, _, err) = gatehouse(&[
        "review",
        "--by-person",
        "--groups",
        &bad.display().to_string(),
        &f("gcp-project-iam-policy.json"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}: invalid type", bad.display())),
        "{err}"
    );
}
