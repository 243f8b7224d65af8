//! `gatehouse scan`: exit codes with `--fail-on`, the SARIF 2.1.0 fields CI tools read, and
//! audit logs joined with an export (unused permissions, and a log too young to tell).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analyzer/tests/fixtures")
}

fn scan(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("scan")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn fail_on_sets_the_exit_code() {
    let admin = fixtures().join("GH-OP-001/fire.json"); // critical
    let benign = fixtures().join("GH-OP-001/quiet.json"); // s3:* on one bucket: medium at most
    let a = admin.to_str().unwrap();
    let b = benign.to_str().unwrap();
    assert_eq!(scan(&[a]).0, 0, "no --fail-on: always 0");
    assert_eq!(scan(&[a, "--fail-on", "critical"]).0, 1);
    assert_eq!(scan(&[a, "--fail-on", "low"]).0, 1);
    assert_eq!(scan(&[b, "--fail-on", "critical"]).0, 0);
    assert_eq!(scan(&["/nonexistent/gatehouse-scan-input"]).0, 2);
    let (code, text) = scan(&[a]);
    assert_eq!(code, 0);
    assert!(text.contains("== CRITICAL"), "{text}");
    assert!(text.contains("[GH-OP-001]"));
    assert!(
        !text.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn sarif_has_the_required_fields() {
    let dir = fixtures();
    let (code, out) = scan(&[
        dir.to_str().unwrap(),
        "--format",
        "sarif",
        "--fail-on",
        "high",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["$schema"].as_str().unwrap().contains("sarif"));
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "gatehouse");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "GH-AI-001"));
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(r["ruleId"].as_str().unwrap().starts_with("GH-"));
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0];
        assert!(loc["physicalLocation"]["artifactLocation"]["uri"].is_string());
        assert!(loc["logicalLocations"][0]["name"].is_string());
    }
}

#[test]
fn json_output_counts() {
    let f = fixtures().join("GH-TR-003/fire.json");
    let (code, out) = scan(&[f.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"], 1);
    assert_eq!(v["counts"]["critical"], 1);
    assert_eq!(v["findings"][0]["rule"], "GH-TR-003");
    assert_eq!(v["findings"][0]["location"]["json_path"], "$.bindings[0]");
}

#[test]
fn an_audit_log_joins_the_export_and_a_young_log_says_so() {
    let dir = tempdir();
    let src = fixtures().join("GH-HY-004/fire");
    std::fs::copy(src.join("details.json"), dir.join("details.json")).unwrap();
    // Only the last 10 days of the log: it cannot speak for 90.
    let log = std::fs::read_to_string(src.join("audit.jsonl")).unwrap();
    let young: Vec<&str> = log.lines().filter(|l| l.contains("2026-04-")).collect();
    std::fs::write(dir.join("audit.jsonl"), young.join("\n")).unwrap();
    let (code, out) = scan(&[
        dir.to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "medium",
    ]);
    assert_eq!(code, 0, "a young log's findings are low: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"], 2);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "GH-HY-004")
        .unwrap();
    assert_eq!(f["severity"], "low");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("in the 10 days the audit log covers (of 90 asked")
    );
    assert!(
        v["notices"][0]
            .as_str()
            .unwrap()
            .contains("10 of the 90 days"),
        "{v}"
    );
    let (_, sarif) = scan(&[dir.to_str().unwrap(), "--format", "sarif"]);
    let s: serde_json::Value = serde_json::from_str(&sarif).unwrap();
    let notes = &s["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert!(
        notes[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("10 of the 90 days")
    );

    // The whole log covers the window: medium, and --fail-on medium fails.
    std::fs::write(dir.join("audit.jsonl"), log).unwrap();
    assert_eq!(scan(&[dir.to_str().unwrap(), "--fail-on", "medium"]).0, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_needs_paths_or_the_store() {
    let (code, _) = scan(&[]);
    assert_eq!(code, 2);
    let (code, _) = scan(&["--store", "--unused-days", "0"]);
    assert_eq!(code, 2);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gatehouse-scan-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `--bedrock-models` reads the account's `aws bedrock list-foundation-models` output: a
/// model it lists as Legacy is deprecated for GH-AI-007 although the compiled-in list does
/// not know it; a malformed file is refused with its JSON path.
#[test]
fn the_accounts_model_list_adds_legacy_models() {
    let policy = fixtures().join("GH-AI-007/quiet.json");
    let p = policy.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("gh-bedrock-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let models = dir.join("models.json");
    std::fs::write(
        &models,
        r#"{"modelSummaries": [
          {"modelId": "anthropic.claude-3-7-sonnet-20250219-v1:0", "modelLifecycle": {"status": "LEGACY"}},
          {"modelId": "amazon.nova-pro-v1:0", "modelLifecycle": {"status": "ACTIVE"}}]}"#,
    )
    .unwrap();
    let (code, out) = scan(&[p, "--format", "json"]);
    assert_eq!(code, 0);
    assert!(!out.contains("GH-AI-007"), "{out}");
    let (code, out) = scan(&[
        p,
        "--format",
        "json",
        "--bedrock-models",
        models.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "GH-AI-007")
        .collect();
    assert_eq!(hits.len(), 1, "{out}");
    assert!(
        hits[0].to_string().contains("claude-3-7-sonnet"),
        "{}",
        hits[0]
    );
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"modelSummaries": [{"modelId": "m"}]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["scan", p, "--bedrock-models", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.json: $.modelSummaries[0].modelLifecycle.status"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn org_bounds_the_accounts_by_their_scps() {
    let dir = fixtures().join("organizations");
    let accounts = dir.join("accounts");
    let org = dir.join("organizations");
    let rules = |args: &[&str]| -> Vec<(String, String)> {
        let (code, out) = scan(args);
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut got: Vec<(String, String)> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                ["GH-PE-001", "GH-TR-001", "GH-PE-006"].contains(&f["rule"].as_str().unwrap())
            })
            .map(|f| {
                let entity = f["location"]["entity"].as_str().unwrap_or_default();
                let file = f["location"]["file"].as_str().unwrap();
                let account = Path::new(file).file_stem().unwrap().to_str().unwrap();
                (
                    f["rule"].as_str().unwrap().to_owned(),
                    format!("{account} {entity}"),
                )
            })
            .collect();
        got.sort();
        got
    };
    let a = accounts.to_str().unwrap();
    let with = rules(&[a, "--org", org.to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        with,
        [
            ("GH-PE-001", "111111111111 user org-maintainer"),
            ("GH-PE-001", "222222222222 user maintainer"),
            ("GH-PE-006", "333333333333 user ci"),
            ("GH-TR-001", "222222222222 role vendor-audit"),
        ]
        .map(|(r, e)| (r.to_owned(), e.to_owned()))
    );
    let without = rules(&[a, "--format", "json"]);
    assert!(without.contains(&("GH-PE-001".into(), "333333333333 user maintainer".into())));

    // Organizations data that does not read stops the run with the file.
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["scan", a, "--org", accounts.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("describe-organization.json: cannot read"),
        "{err}"
    );
}
