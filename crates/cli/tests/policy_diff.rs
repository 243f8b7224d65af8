//! `gatehouse policy diff OLD NEW`: the text and JSON answers, and the exit code CI reads
//! (1 when NEW grants new access, 0 when not, 2 on bad input).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::gatehouse;

use std::path::{Path, PathBuf};

fn data(name: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/diff")
        .join(name);
    p.display().to_string()
}

#[test]
fn new_access_is_described_and_exits_1() {
    let (code, out, _) = gatehouse(&["policy", "diff", &data("old.json"), &data("new.json")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "newly allows ai:UpdateGuardrail on arn:gatehouse:ai:local:111122223333:guardrail/* when aws:SourceIp is outside 10.0.0.0/8 (or absent)"
        ),
        "{out}"
    );
    assert!(
        !out.contains("InvokeModel"),
        "unchanged access is not reported: {out}"
    );

    let (code, out, _) = gatehouse(&[
        "policy",
        "diff",
        &data("old.json"),
        &data("new.json"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["grants_new_access"], true);
    let change = &v["newly_allowed"][0];
    assert_eq!(change["actions"][0], "ai:UpdateGuardrail");
    assert_eq!(change["when"][0][0]["operator"], "NotIpAddress");
    assert_eq!(change["when"][0][0]["holds"], true);
    assert_eq!(change["example"]["action"], "ai:UpdateGuardrail");
}

#[test]
fn removing_access_is_not_new_access() {
    let (code, out, _) = gatehouse(&["policy", "diff", &data("new.json"), &data("old.json")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no longer allows ai:UpdateGuardrail"), "{out}");
    let (code, out, _) = gatehouse(&["policy", "diff", &data("old.json"), &data("old.json")]);
    assert_eq!(code, 0);
    assert_eq!(out, "no difference in what is allowed\n");
}

#[test]
fn bad_input_exits_2_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
    )
    .unwrap();
    let (code, out, err) = gatehouse(&["policy", "diff", &data("old.json"), bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains(&format!("{}: $.Statement[0].Effect", bad.display())),
        "{err}"
    );
    let (code, _, err) = gatehouse(&["policy", "diff", "/nonexistent/old.json", &data("new.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/old.json"), "{err}");
}

#[test]
fn opening_a_trust_policy_to_everyone_names_the_principal_and_exits_1() {
    let (code, out, err) = gatehouse(&[
        "policy",
        "diff",
        &data("trust-account.json"),
        &data("trust-everyone.json"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out,
        "newly allows sts:AssumeRole for principal AWS:* except \
         AWS:arn:aws:iam::111122223333:root (such as arn:aws:iam::999999999999:user/Zz) when always\n"
    );

    let (code, out, _) = gatehouse(&[
        "policy",
        "diff",
        &data("trust-account.json"),
        &data("trust-everyone.json"),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["grants_new_access"], true);
    assert_eq!(v["kind"], "resource");
    let change = &v["newly_allowed"][0];
    assert_eq!(change["actions"][0], "sts:AssumeRole");
    assert_eq!(change["principals"][0]["matching"][0], "AWS:*");
    assert_eq!(
        change["principals"][0]["excluding"][0],
        "AWS:arn:aws:iam::111122223333:root"
    );
    // The example is a request the new trust policy allows and the old one did not.
    let example = &change["example"];
    assert_eq!(example["action"], "sts:AssumeRole");
    assert!(
        !example["principal"]
            .as_str()
            .unwrap()
            .contains("111122223333"),
        "{example}"
    );
}

#[test]
fn narrowing_a_trust_policy_reports_removed_access_and_exits_0() {
    let (code, out, err) = gatehouse(&[
        "policy",
        "diff",
        &data("trust-account.json"),
        &data("trust-deployer.json"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("newly allows"), "{out}");
    assert!(
        out.contains(
            "no longer allows sts:AssumeRole for principal AWS:arn:aws:iam::111122223333:root"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "no longer allows sts:AssumeRole for principal AWS:arn:aws:iam::111122223333:role/deployer"
        ) && out.contains("when sts:ExternalId does not match release-7 (or is absent)"),
        "{out}"
    );
}

#[test]
fn identity_and_trust_policies_are_not_compared_exit_2() {
    let (code, out, err) = gatehouse(&[
        "policy",
        "diff",
        &data("old.json"),
        &data("trust-everyone.json"),
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!(
            "{}: $.Statement[0].Principal: this is a resource-based or trust policy",
            data("trust-everyone.json")
        )),
        "{err}"
    );
    assert!(err.contains("is an identity-based policy"), "{err}");
}
