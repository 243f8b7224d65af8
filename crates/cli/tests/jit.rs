//! `gatehouse access ...` on a real SQLite store: eligibility, request, approval (and the
//! refusals: self-approval, over-long duration, a replayed approval), activation, listing
//! and revocation, each step in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::gatehouse;

use gatehouse_store::{MasterKey, NewPolicy, NewUser, Store};

const ACCT: &str = "111122223333";
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ai:UpdateDeployment","Resource":"*"}]}"#;

fn user(name: &str) -> String {
    format!("arn:gatehouse:iam::{ACCT}:user/{name}")
}

async fn seed(dir: &std::path::Path) {
    let store = Store::open_sqlite(dir, MasterKey::load_or_create(dir).unwrap())
        .await
        .unwrap();
    store.ensure_default_account(ACCT, "default").await.unwrap();
    for name in ["deployer", "alice"] {
        store
            .create_user(
                ACCT,
                &NewUser {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    store
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "deploy".into(),
                document: DOC.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store.close().await;
}

fn run(dir: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["access"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir]);
    gatehouse(&all)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn the_whole_life_of_a_request_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seed(&data));
    let dir = data.to_str().unwrap();
    let policy = format!("arn:gatehouse:iam::{ACCT}:policy/deploy");

    let (code, out, err) = run(
        dir,
        &[
            "eligible",
            "--subject",
            &user("deployer"),
            "--target",
            &policy,
            "--max-duration",
            "3600",
            "--approver",
            &user("alice"),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["max_duration_secs"], 3600);
    let elig = json(&out)["eligibility_id"].as_str().unwrap().to_owned();

    let (code, _, err) = run(
        dir,
        &[
            "request",
            "--as",
            &user("deployer"),
            "--target",
            &policy,
            "--duration",
            "7200",
            "--justification",
            "hotfix",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("exceeds the maximum of 3600"), "{err}");

    let (code, out, err) = run(
        dir,
        &[
            "request",
            "--as",
            &user("deployer"),
            "--target",
            &policy,
            "--duration",
            "1800",
            "--justification",
            "hotfix 1.2.3",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let req = json(&out);
    assert_eq!(req["request"]["state"], "pending");
    let id = req["request"]["request_id"].as_str().unwrap().to_owned();

    let (code, _, err) = run(dir, &["approve", &id, "--as", &user("deployer")]);
    assert_ne!(code, 0);
    assert!(err.contains("same identity"), "{err}");

    let (code, out, err) = run(
        dir,
        &["approve", &id, "--as", &user("alice"), "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["request"]["state"], "approved");

    let (code, _, err) = run(dir, &["approve", &id, "--as", &user("alice")]);
    assert_ne!(code, 0);
    assert!(err.contains("is approved; it cannot be approved"), "{err}");

    let (code, out, err) = run(dir, &["activate", &id, "--as", &user("deployer")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("activated {id}  active")), "{out}");

    // The review of the store: standing access, and who may ask, holds, approved.
    let (code, out, err) = gatehouse(&["review", "--data-dir", dir, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let jit = json(&out)["just_in_time"].clone();
    assert_eq!(jit["eligible"][0]["subject"], user("deployer"), "{jit}");
    assert_eq!(jit["eligible"][0]["target"], policy.as_str());
    assert_eq!(jit["elevated"][0]["request_id"], id.as_str(), "{jit}");
    assert_eq!(jit["elevated"][0]["approved_by"], user("alice"));
    assert_eq!(jit["decisions"].as_array().unwrap().len(), 1, "{jit}");
    assert_eq!(jit["decisions"][0]["decision"], "approved");
    assert_eq!(jit["decisions"][0]["by"], user("alice"));
    let (code, out, err) = gatehouse(&["review", "--data-dir", dir]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("## Just-in-time access"), "{out}");
    assert!(
        out.contains(&format!(
            "{} approved {}'s request for {policy}",
            user("alice"),
            user("deployer")
        )),
        "{out}"
    );

    // An eligibility with an open grant cannot be deleted.
    let (code, _, err) = run(dir, &["eligible", "--delete", &elig]);
    assert_ne!(code, 0);
    assert!(err.contains("open access request"), "{err}");

    let (code, out, err) = run(dir, &["list", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let list = json(&out);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["state"], "active");

    let (code, out, err) = run(dir, &["revoke", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("revoked"), "{out}");

    let (code, out, err) = gatehouse(&["review", "--data-dir", dir, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let jit = json(&out)["just_in_time"].clone();
    assert_eq!(jit["elevated"], serde_json::json!([]), "{jit}");
    assert_eq!(jit["decisions"][1]["decision"], "revoked", "{jit}");

    let (code, out, err) = run(dir, &["eligible", "--delete", &elig]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("deleted {elig}"));
    let (code, out, err) = run(dir, &["eligible", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out), serde_json::json!([]));

    // Every step is in the audit log, refusals with their error code.
    let (code, out, err) = gatehouse(&[
        "audit",
        "tail",
        "--data-dir",
        dir,
        "--lines",
        "20",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let actions: Vec<(String, Option<String>)> = out
        .lines()
        .map(|l| {
            let v = json(l);
            (
                v["action"].as_str().unwrap().to_owned(),
                v["error_code"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let expect = [
        ("gatehouse:CreateEligibility", None),
        ("gatehouse:CreateAccessRequest", Some("ValidationError")),
        ("gatehouse:CreateAccessRequest", None),
        ("gatehouse:ApproveAccessRequest", Some("AccessDenied")),
        ("gatehouse:ApproveAccessRequest", None),
        (
            "gatehouse:ApproveAccessRequest",
            Some("InvalidRequestState"),
        ),
        ("gatehouse:ActivateAccessRequest", None),
        ("gatehouse:DeleteEligibility", Some("DeleteConflict")),
        ("gatehouse:RevokeAccessRequest", None),
        ("gatehouse:DeleteEligibility", None),
    ];
    let expect: Vec<(String, Option<String>)> = expect
        .iter()
        .map(|(a, e)| ((*a).to_owned(), e.map(str::to_owned)))
        .collect();
    assert_eq!(actions, expect);
}
