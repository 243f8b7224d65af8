//! The `gatehouse policy` CLI contract: line formats, JSON fields and exit codes that tools
//! outside the project rely on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gatehouse(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const INVOKE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Invoke","Effect":"Allow","Action":"ai:InvokeModel",
   "Resource":"arn:gatehouse:ai:local:111122223333:model/${aws:PrincipalTag/team}-*",
   "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
  {"Sid":"Cap","Effect":"Deny","Action":"ai:Invoke*","Resource":"*",
   "Condition":{"NumericGreaterThan":{"ai:MaxTokens":4096}}}]}"#;

fn request(max_tokens: u32, ip: &str) -> String {
    format!(
        r#"{{"principal":"arn:gatehouse:iam::111122223333:user/alice","action":"ai:InvokeModel",
           "resource":"arn:gatehouse:ai:local:111122223333:model/search-llama",
           "context":{{"aws:PrincipalTag/team":"search","aws:SourceIp":"{ip}","ai:MaxTokens":"{max_tokens}"}}}}"#
    )
}

#[test]
fn validate_exit_codes_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "good.json", INVOKE);
    write(
        d,
        "bad.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:InvokeModel","Resource":"*"},
            {"Effect":"Allow","Action":"ai:X","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}]}"#,
    );
    let ok = gatehouse(&["policy", "validate", "good.json"], d);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert_eq!(stdout(&ok), "");

    let bad = gatehouse(&["policy", "validate", "good.json", "bad.json"], d);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stdout(&bad).lines().collect::<Vec<_>>(),
        vec![
            "bad.json: $.Statement[1].Condition.StringEqualz: unknown condition operator `StringEqualz`"
        ]
    );

    let json = gatehouse(
        &[
            "policy",
            "validate",
            "--format",
            "json",
            "good.json",
            "bad.json",
        ],
        d,
    );
    assert_eq!(json.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"][0]["valid"], true);
    assert_eq!(
        v["files"][1]["diagnostics"][0]["path"],
        "$.Statement[1].Condition.StringEqualz"
    );
    assert_eq!(v["files"][1]["diagnostics"][0]["severity"], "error");

    let missing = gatehouse(&["policy", "validate", "nope.json"], d);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).starts_with("nope.json: $: cannot read the file"));
}

#[test]
fn validate_accepts_get_policy_version_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "pv.json",
        &format!(
            r#"{{"PolicyVersion":{{"Document":{INVOKE},"VersionId":"v1","IsDefaultVersion":true}}}}"#
        ),
    );
    write(
        d,
        "pvbad.json",
        r#"{"PolicyVersion":{"Document":{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ai:X"}}}}"#,
    );
    assert_eq!(
        gatehouse(&["policy", "validate", "pv.json"], d)
            .status
            .code(),
        Some(0)
    );
    let bad = gatehouse(&["policy", "validate", "pvbad.json"], d);
    assert_eq!(
        stdout(&bad).trim(),
        "pvbad.json: $.PolicyVersion.Document.Statement: missing Resource or NotResource"
    );
}

#[test]
fn eval_decides_and_explains() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.json", INVOKE);
    let cases = [
        (request(512, "10.1.2.3"), "Allow", Some("Invoke")),
        (request(8192, "10.1.2.3"), "ExplicitDeny", Some("Cap")),
        (request(512, "192.168.1.1"), "ImplicitDeny", None),
    ];
    for (req, expect, sid) in cases {
        write(d, "r.json", &req);
        let o = gatehouse(
            &[
                "policy",
                "eval",
                "--request",
                "r.json",
                "--policy",
                "p.json",
                "--format",
                "json",
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(0));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["decision"], expect, "{v}");
        match sid {
            Some(sid) => assert_eq!(v["statements"][0]["sid"], sid),
            None => {
                assert_eq!(v["missing"]["code"], "identity_allow");
                let near = v["near_misses"].as_array().unwrap();
                let invoke = near
                    .iter()
                    .find(|n| n["statement"]["sid"] == "Invoke")
                    .unwrap();
                assert_eq!(invoke["failed_conditions"][0], "IpAddress aws:SourceIp");
            }
        }
    }
    // --fail-on-deny gives CI an exit code
    let o = gatehouse(
        &[
            "policy",
            "eval",
            "--request",
            "r.json",
            "--policy",
            "p.json",
            "--fail-on-deny",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).starts_with("ImplicitDeny"));
}

#[test]
fn eval_applies_every_policy_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.json", INVOKE);
    write(d, "r.json", &request(512, "10.1.2.3"));
    let allow_all =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    let allow_other = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ai:GetModel","Resource":"*"}}"#;
    write(d, "all.json", allow_all);
    write(d, "other.json", allow_other);
    let run = |extra: &[&str]| -> Value {
        let mut args = vec![
            "policy",
            "eval",
            "--request",
            "r.json",
            "--policy",
            "p.json",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let o = gatehouse(&args, d);
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    assert_eq!(run(&["--boundary", "all.json"])["decision"], "Allow");
    let v = run(&["--boundary", "other.json"]);
    assert_eq!(
        (v["decision"].as_str(), v["missing"]["code"].as_str()),
        (Some("ImplicitDeny"), Some("boundary_allow"))
    );
    let v = run(&["--guardrail", "other.json"]);
    assert_eq!(v["missing"]["code"], "guardrail_allow");
    assert_eq!(
        run(&["--guardrail", "other.json", "--guardrail", "all.json"])["decision"],
        "Allow"
    );
    let v = run(&["--session-policy", "other.json"]);
    assert_eq!(v["missing"]["code"], "session_allow");

    // a resource policy naming the user grants on its own within the account
    write(d, "none.json", allow_other);
    write(
        d,
        "rp.json",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:gatehouse:iam::111122223333:user/alice"},"Action":"ai:InvokeModel"}}"#,
    );
    let o = gatehouse(
        &[
            "policy",
            "eval",
            "--request",
            "r.json",
            "--policy",
            "none.json",
            "--resource-policy",
            "rp.json",
            "--format",
            "json",
        ],
        d,
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["decision"], "Allow");
    assert_eq!(v["statements"][0]["policy_type"], "resource");
}

#[test]
fn eval_fails_closed_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.json", INVOKE);
    write(d, "bad.json", r#"{"Statement":[{"Effect":"Allow"}]}"#);
    write(d, "r.json", &request(512, "10.1.2.3"));
    write(d, "badreq.json", r#"{"principal":"p","action":"a:b"}"#);
    for (req, pol) in [
        ("r.json", "bad.json"),
        ("badreq.json", "p.json"),
        ("missing.json", "p.json"),
    ] {
        let o = gatehouse(
            &[
                "policy",
                "eval",
                "--request",
                req,
                "--policy",
                pol,
                "--format",
                "json",
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(2), "{req} {pol}");
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["decision"], "ImplicitDeny");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let o = gatehouse(
        &[
            "policy",
            "eval",
            "--request",
            "r.json",
            "--policy",
            "bad.json",
        ],
        d,
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("bad.json: $.Statement[0]: missing Action or NotAction")
    );
}

#[test]
fn bench_reports_counts_and_cost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "p.json", INVOKE);
    let reqs = format!(
        "[{},{},{}]",
        request(512, "10.1.2.3"),
        request(8192, "10.1.2.3"),
        request(512, "192.168.0.1")
    );
    write(d, "reqs.json", &reqs);
    let o = gatehouse(
        &[
            "policy",
            "bench",
            "--requests",
            "reqs.json",
            "--policy",
            "p.json",
            "--iterations",
            "50",
            "--format",
            "json",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["requests"], 3);
    assert_eq!(v["iterations"], 50);
    assert_eq!(
        (
            v["allow"].as_u64(),
            v["explicit_deny"].as_u64(),
            v["implicit_deny"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert!(v["ns_per_decision"].as_f64().is_some_and(|n| n > 0.0));
}
