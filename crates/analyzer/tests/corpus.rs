//! The shared corpus (`../shared/corpus`, third-party exports) with expected findings per
//! rule. The counts are a regression record: a change in a rule that moves them must
//! explain why in its commit. Skipped (with a notice) when the corpus is absent; set
//! GATEHOUSE_CORPUS when the repository is a worktree not beside `shared/`.
//!
//! Expected, and why:
//! - AWS managed policies (1,525 files; 2 are empty upstream → 2 × GH-IN-001): 2 × GH-OP-001
//!   (`AdministratorAccess` and one other full-access policy), 14 × GH-OP-002 (e.g.
//!   `AmazonBedrockFullAccess`: `bedrock:*`), 1,692 × GH-OP-004 (resource `*` on scopable
//!   writes is common in AWS's own policies), and engine-decided AI and escalation findings.
//!   `AmazonBedrockFullAccess` passes roles only under `iam:PassedToService`, so it does not
//!   get GH-AI-003. 9 × GH-AI-007 (low): statements allowing Bedrock invocation on
//!   `arn:aws:bedrock:*::foundation-model/*`, which covers the deprecated models of
//!   `data/bedrock-lifecycle.json` (policies on resource `*` are GH-AI-006's).
//! - Authorization details (Cloudsplaining's two examples, full of planted privesc users and
//!   roles): escalation findings for each, 2 × GH-TR-001 (an organization role and a
//!   StackSets role trusted from the management account without conditions), 1 × GH-PE-006
//!   (`AWS-QuickSetup-StackSet-Local-AdministrationRole` may assume the
//!   `...-ExecutionRole`, whose trust admits it and which has full administrative access).
//!   30 × GH-HY-005: roles whose `RoleLastUsed` (or, with none, `CreateDate`) is 90+ days
//!   before the export's latest date and that may still write — 27 in `example.json` (16
//!   QuickSetup config-recording roles last used 2022-08-07, service-linked, StackSets and
//!   organization roles, and its copies of `MyRole`, `MyOtherRole`, `OverprivilegedEC2`), 3 in
//!   `example-authz-details.json` (`OverprivilegedEC2` idle 332 days; `MyRole` and
//!   `MyOtherRole` with no recorded use).
//! - Azure: the invalid `Microsoft.Container Registries/registries/*` is GH-IN-002; 6 custom
//!   roles grant write wildcards at `/` or subscription scope (GH-TR-004).
//! - GCP: 3 × `roles/owner` and 3 × `roles/editor` (GH-OP-005), 1 × `roles/aiplatform.admin`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::{NoProgress, Report, Settings, scan_paths};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    gatehouse_testenv::corpus(&gatehouse_testenv::repo_root(env!("CARGO_MANIFEST_DIR")))
}

fn scan(sub: &str) -> Option<Report> {
    Some(scan_paths(&[corpus()?.join(sub)], &Settings::default(), &NoProgress).unwrap())
}

fn counts(r: &Report) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for f in &r.findings {
        *m.entry(f.rule).or_default() += 1;
    }
    m
}

fn expect(r: &Report, want: &[(&'static str, usize)]) {
    let got = counts(r);
    let want: BTreeMap<_, _> = want.iter().copied().collect();
    assert_eq!(got, want, "per-rule finding counts changed");
}

#[test]
fn aws_managed_policies() {
    let Some(r) = scan("aws-managed-policies") else {
        return;
    };
    assert_eq!(r.files, 1525);
    expect(
        &r,
        &[
            ("GH-AI-001", 22),
            ("GH-AI-002", 6),
            ("GH-AI-004", 149),
            ("GH-AI-005", 13),
            ("GH-AI-006", 20),
            ("GH-AI-007", 9),
            ("GH-IN-001", 2),
            ("GH-OP-001", 2),
            ("GH-OP-002", 14),
            ("GH-OP-003", 9),
            ("GH-OP-004", 1692),
            ("GH-PE-001", 3),
            ("GH-PE-002", 2),
            ("GH-PE-003", 2),
            ("GH-PE-004", 2),
            ("GH-PE-005", 17),
        ],
    );
    let of = |name: &str, rule: &str| {
        r.findings
            .iter()
            .any(|f| f.rule == rule && f.location.file.ends_with(&format!("/{name}")))
    };
    assert!(of("AmazonBedrockFullAccess", "GH-OP-002"));
    assert!(of("AmazonBedrockFullAccess", "GH-AI-001"));
    assert!(!of("AmazonBedrockFullAccess", "GH-AI-003"));
    assert!(of("AdministratorAccess", "GH-OP-001"));
    assert!(of("AWSCodePipelineFullAccess", "GH-IN-001"));
    assert!(!of("AmazonS3ReadOnlyAccess", "GH-OP-004"));
}

#[test]
fn authorization_details() {
    let Some(r) = scan("authorization-details") else {
        return;
    };
    assert_eq!(r.files, 2);
    expect(
        &r,
        &[
            ("GH-AI-003", 2),
            ("GH-AI-004", 11),
            ("GH-HY-005", 30),
            ("GH-OP-001", 5),
            ("GH-OP-003", 3),
            ("GH-OP-004", 153),
            ("GH-PE-001", 19),
            ("GH-PE-002", 5),
            ("GH-PE-003", 11),
            ("GH-PE-004", 5),
            ("GH-PE-005", 27),
            ("GH-PE-006", 1),
            ("GH-TR-001", 2),
        ],
    );
    assert!(
        r.findings.iter().any(|f| f.rule == "GH-PE-005"
            && f.location.entity.as_deref() == Some("user privesc-sre-user"))
    );
    let idle = r
        .findings
        .iter()
        .find(|f| {
            f.rule == "GH-HY-005"
                && f.location.file.ends_with("example-authz-details.json")
                && f.location.entity.as_deref() == Some("role OverprivilegedEC2")
        })
        .unwrap();
    assert!(
        idle.message.contains("332 days before the export"),
        "{}",
        idle.message
    );
    assert!(
        idle.message.contains("iam:CreateAccessKey"),
        "{}",
        idle.message
    );
}

#[test]
fn azure_roles() {
    let Some(r) = scan("azure-roles") else { return };
    assert_eq!(r.files, 12);
    expect(&r, &[("GH-IN-002", 1), ("GH-TR-004", 6)]);
    let bad = r.findings.iter().find(|f| f.rule == "GH-IN-002").unwrap();
    assert!(bad.location.file.ends_with("senior-developer.json"));
    assert_eq!(
        bad.location.json_path.as_deref(),
        Some("$.Permissions[0].Actions[9]")
    );
    assert!(
        bad.message
            .contains("Microsoft.Container Registries/registries/*")
    );
}

#[test]
fn gcp_policies() {
    let Some(r) = scan("gcp-policies") else {
        return;
    };
    assert_eq!(r.files, 6);
    expect(&r, &[("GH-OP-002", 1), ("GH-OP-005", 6)]);
}

#[test]
fn whole_corpus_every_file_recognized() {
    let Some(dir) = corpus() else { return };
    let r = scan_paths(&[dir], &Settings::default(), &NoProgress).unwrap();
    // README.md is not a JSON file; the 2 empty managed policies are the only unrecognized.
    assert_eq!(r.files, 1545);
    assert_eq!(
        r.findings.iter().filter(|f| f.rule == "GH-IN-001").count(),
        2
    );
}
