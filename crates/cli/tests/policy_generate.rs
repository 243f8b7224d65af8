//! `gatehouse policy template` output validates with `gatehouse policy validate` (no errors,
//! no warnings) for every role; `gatehouse policy generate --audit-log` reads exported audit
//! records. (Generation from a running server's store: `crates/server/tests/e2e/test_analyzer.py`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::gatehouse;

#[test]
fn every_template_validates_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for role in ["invoker", "admin", "fine-tuning", "deployer", "auditor"] {
        for extra in [
            &[][..],
            &["--listener", "office", "--account", "111122223333"][..],
        ] {
            let mut args = vec![
                "policy",
                "template",
                role,
                "--model",
                "llama-3-8b",
                "--model",
                "mistral-7b",
            ];
            args.extend_from_slice(extra);
            let (code, out, err) = gatehouse(&args);
            assert_eq!(code, 0, "{err}");
            let f = dir.path().join(format!("{role}.json"));
            std::fs::write(&f, &out).unwrap();
            let (code, vout, verr) = gatehouse(&["policy", "validate", f.to_str().unwrap()]);
            assert_eq!(
                (code, vout.as_str(), verr.as_str()),
                (0, "", ""),
                "{role} {extra:?}:\n{out}"
            );
            if extra.is_empty() {
                assert!(out.contains("arn:gatehouse:ai:local:*:"), "{out}");
            } else {
                assert!(out.contains("\"aws:SourceVpce\": \"office\""), "{out}");
            }
        }
    }
    let (code, _, err) = gatehouse(&["policy", "template", "invoker"]);
    assert_eq!(code, 2, "a template needs a model: {err}");
}

#[test]
fn generate_reads_an_exported_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let t = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let me = "arn:gatehouse:iam::111122223333:user/alice";
    let lines = [
        serde_json::json!({"time": t(1), "request_id": "1", "principal": me, "action": "ai:InvokeModel",
            "resource": "arn:gatehouse:ai:local:111122223333:model/llama-3-8b", "decision": "Allow", "source_ip": "10.0.0.1"}),
        serde_json::json!({"time": t(40), "request_id": "2", "principal": me, "action": "ai:UpdateGuardrail",
            "resource": "arn:gatehouse:ai:local:111122223333:guardrail/g1", "decision": "Allow", "source_ip": "10.0.0.1"}),
    ];
    let f = dir.path().join("audit.jsonl");
    std::fs::write(
        &f,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let (code, out, err) = gatehouse(&[
        "policy",
        "generate",
        "--principal",
        me,
        "--since",
        "30d",
        "--audit-log",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Statement"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["Statement"][0]["Action"],
        serde_json::json!(["ai:InvokeModel"])
    );
    let (code, out, _) = gatehouse(&[
        "policy",
        "generate",
        "--principal",
        me,
        "--since",
        "60d",
        "--audit-log",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["Statement"].as_array().unwrap().len(),
        2,
        "the older call is in a 60-day window"
    );

    std::fs::write(&f, "{\"not\": \"a record\"}\n").unwrap();
    let (code, _, err) = gatehouse(&[
        "policy",
        "generate",
        "--principal",
        me,
        "--audit-log",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}: line 1: not an audit record", f.display())),
        "{err}"
    );
    let (code, _, err) = gatehouse(&[
        "policy",
        "generate",
        "--principal",
        me,
        "--since",
        "soon",
        "--audit-log",
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--since soon"), "{err}");
}
