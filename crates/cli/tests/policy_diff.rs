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
