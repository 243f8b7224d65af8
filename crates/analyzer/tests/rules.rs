//! Every rule fires on its planted-risk fixture (`tests/fixtures/RULE/fire.json`) and stays
//! quiet on the near miss next to it (`quiet.json`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::{NoProgress, RULES, Settings, scan_bytes, scan_paths};
use std::path::{Path, PathBuf};

/// A fixture is `NAME.json`, `NAME.csv`, or a directory `NAME/` scanned as one run (for
/// rules that join several files).
fn fixture(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        format!("{name}.json"),
        format!("{name}.csv"),
        name.to_owned(),
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.exists())
}

fn rules_in(file: &Path) -> Vec<&'static str> {
    scan_paths(&[file.to_path_buf()], &Settings::default(), &NoProgress)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

#[test]
fn every_rule_fires_on_its_fixture_and_not_on_the_near_miss() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut failures = Vec::new();
    for rule in RULES {
        let (Some(fire), Some(quiet)) = (
            fixture(&dir.join(rule.id), "fire"),
            fixture(&dir.join(rule.id), "quiet"),
        ) else {
            panic!("fixtures missing for {}", rule.id);
        };
        let got = rules_in(&fire);
        if !got.contains(&rule.id) {
            failures.push(format!(
                "{}: did not fire on fire.json (got {got:?})",
                rule.id
            ));
        }
        let got = rules_in(&quiet);
        if got.contains(&rule.id) {
            failures.push(format!("{}: fired on quiet.json", rule.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn findings_carry_the_exact_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let file = dir.join("GH-TR-001/fire.json");
    let findings = scan_bytes("fire.json", &std::fs::read(file).unwrap());
    let f = findings.iter().find(|f| f.rule == "GH-TR-001").unwrap();
    assert_eq!(
        f.location.json_path.as_deref(),
        Some("$.RoleDetailList[0].AssumeRolePolicyDocument.Statement[0].Principal")
    );
    assert_eq!(f.location.statement.as_deref(), Some("#0"));
    assert!(!f.why.is_empty() && !f.fix.is_empty());

    let file = dir.join("GH-AI-001/fire.json");
    let findings = scan_bytes("p.json", &std::fs::read(file).unwrap());
    let f = findings.iter().find(|f| f.rule == "GH-AI-001").unwrap();
    assert_eq!(f.location.json_path.as_deref(), Some("$.Statement[0]"));
    assert_eq!(f.location.policy.as_deref(), Some("p"));
}

#[test]
fn engine_honours_deny_and_conditions() {
    // A Deny on the management action silences GH-AI-001 (checked by the fixture); a
    // condition the probe cannot satisfy silences GH-PE-005.
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["iam:PassRole","ec2:RunInstances"],"Resource":"*",
         "Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#;
    let rules: Vec<_> = scan_bytes("c.json", doc.as_bytes())
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert!(!rules.contains(&"GH-PE-005"), "{rules:?}");
    assert!(rules.contains(&"GH-OP-004"), "{rules:?}");
}

fn pe006_messages(doc: &str) -> Vec<String> {
    scan_bytes("chain.json", doc.as_bytes())
        .into_iter()
        .filter(|f| f.rule == "GH-PE-006")
        .map(|f| f.message)
        .collect()
}

#[test]
fn escalation_path_names_each_role_assumed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/GH-PE-006");
    let fire = std::fs::read_to_string(dir.join("fire.json")).unwrap();
    let got = pe006_messages(&fire);
    // alice cannot assume admin directly (its trust names only ci-deployer): the path goes
    // through ci-deployer, and ci-deployer's own one-hop path is reported too.
    assert!(
        got.iter()
            .any(|m| m.ends_with("user/alice → role/ci-deployer → role/admin")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.starts_with("role ci-deployer")
                && m.ends_with("role/ci-deployer → role/admin")),
        "{got:?}"
    );
    assert_eq!(got.len(), 2, "{got:?}");

    // Without sts:AssumeRole in alice's policies, the trust policy alone does not make an edge.
    // (alice's statement comes first in the file.)
    let without = fire.replacen(
        "\"Action\": \"sts:AssumeRole\",",
        "\"Action\": \"sts:GetCallerIdentity\",",
        1,
    );
    assert_ne!(without, fire);
    let got = pe006_messages(&without);
    assert!(got.iter().all(|m| !m.contains("alice")), "{got:?}");
    assert_eq!(got.len(), 1, "{got:?}");
}
