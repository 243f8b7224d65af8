//! Usage and lifecycle: unused permissions from an audit log (and what happens when the log
//! is younger than the window), MFA and deprecated deployments read from Gatehouse's store,
//! idle AWS roles and deprecated Bedrock models in the access review.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use gatehouse_analyzer::generate::{AuditRecord, from_audit};
use gatehouse_analyzer::lifecycle::DeployedModel;
use gatehouse_analyzer::review::{review, review_store};
use gatehouse_analyzer::usage::is_principal;
use gatehouse_analyzer::{Settings, Severity, StoreSnapshot, scan_store};
use serde_json::json;
use std::path::Path;

const ACCT: &str = "111122223333";

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel),
    )
    .unwrap()
}

fn rec(time: &str, principal: &str, action: &str, decision: &str) -> AuditRecord {
    serde_json::from_value(
        json!({"time": time, "principal": principal, "action": action,
        "resource": "*", "decision": decision}),
    )
    .unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn alice() -> String {
    format!("arn:gatehouse:iam::{ACCT}:user/alice")
}

/// alice (iam:ListUsers, iam:GetUser, ai:InvokeModel on llama-*) and role app.
fn snapshot(audit: Vec<AuditRecord>) -> StoreSnapshot {
    StoreSnapshot {
        name: "gatehouse store".into(),
        details: fixture("GH-HY-004/fire/details.json"),
        audit,
        region: "local".into(),
        ..StoreSnapshot::default()
    }
}

#[test]
fn unused_actions_are_exact_and_name_their_policy() {
    let s = snapshot(vec![
        rec("2026-01-01T00:00:00Z", &alice(), "iam:GetUser", "Allow"),
        rec("2026-04-20T00:00:00Z", &alice(), "iam:ListUsers", "Allow"),
        // Refused calls are not use.
        rec(
            "2026-04-21T00:00:00Z",
            &alice(),
            "ai:InvokeModel",
            "ImplicitDeny",
        ),
    ]);
    let r = scan_store(&s, at("2026-04-30T00:00:00Z"), 90, &Settings::default()).unwrap();
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "GH-HY-004")
        .collect();
    // alice, and role app (which did nothing at all).
    assert_eq!(f.len(), 2, "{f:#?}");
    let a = f
        .iter()
        .find(|f| f.location.entity.as_deref() == Some("user alice"))
        .unwrap();
    assert_eq!(a.severity, Severity::Medium);
    assert!(
        a.message
            .contains("not used 2 of its 3 allowed actions in the last 90 days"),
        "{}",
        a.message
    );
    assert!(
        a.message.contains(
            "ai:InvokeModel (through identity-based policy `user alice/work` statement `Invoke`)"
        ),
        "{}",
        a.message
    );
    assert!(a.message.contains("iam:GetUser (through"), "{}", a.message);
    assert!(!a.message.contains("iam:ListUsers"), "{}", a.message);
    assert!(a.message.contains(&format!(
        "gatehouse policy generate --principal {} --since 90d",
        alice()
    )));
    assert!(r.notices.is_empty(), "{:?}", r.notices);

    // A shorter window makes GetUser's old use count as unused, a longer one as used.
    let r = scan_store(&s, at("2026-04-30T00:00:00Z"), 200, &Settings::default()).unwrap();
    let a = r
        .findings
        .iter()
        .find(|f| f.rule == "GH-HY-004" && f.location.entity.as_deref() == Some("user alice"))
        .unwrap();
    assert!(!a.message.contains("iam:GetUser"), "{}", a.message);
    // ... but the log (119 days) does not cover 200: lower severity, and said so.
    assert_eq!(a.severity, Severity::Low);
    assert!(
        a.message
            .contains("in the 119 days the audit log covers (of 200 asked"),
        "{}",
        a.message
    );
    assert_eq!(r.notices.len(), 1);
    assert!(
        r.notices[0].contains("119 of the 200 days"),
        "{:?}",
        r.notices
    );
}

#[test]
fn a_role_is_credited_with_its_sessions_use() {
    let session = format!("arn:gatehouse:sts::{ACCT}:assumed-role/app/job-7");
    let s = snapshot(vec![
        rec("2026-01-01T00:00:00Z", &alice(), "iam:GetUser", "Allow"),
        rec("2026-04-29T00:00:00Z", &session, "ai:InvokeModel", "Allow"),
    ]);
    let r = scan_store(&s, at("2026-04-30T00:00:00Z"), 90, &Settings::default()).unwrap();
    assert!(
        !r.findings
            .iter()
            .any(|f| f.rule == "GH-HY-004" && f.location.entity.as_deref() == Some("role app"))
    );
    assert!(is_principal(
        &session,
        &format!("arn:gatehouse:iam::{ACCT}:role/team/app")
    ));
    assert!(!is_principal(
        &session,
        &format!("arn:gatehouse:iam::{ACCT}:role/application")
    ));
    assert!(!is_principal(
        &session,
        "arn:gatehouse:iam::444455556666:role/app"
    ));
    // policy generate for the role covers its sessions too.
    let g = from_audit(
        &s.audit,
        &format!("arn:gatehouse:iam::{ACCT}:role/app"),
        at("2026-04-01T00:00:00Z"),
    );
    assert_eq!(g.used, 1);
}

#[test]
fn an_empty_audit_log_claims_nothing() {
    let r = scan_store(&snapshot(Vec::new()), Utc::now(), 90, &Settings::default()).unwrap();
    assert!(!r.findings.iter().any(|f| f.rule == "GH-HY-004"));
    assert!(
        r.notices.iter().any(|n| n.contains("audit log is empty")),
        "{:?}",
        r.notices
    );
}

fn store_details() -> Vec<u8> {
    let user = |name: &str, actions: &[&str], resource: &str| {
        json!({"UserName": name, "Arn": format!("arn:gatehouse:iam::{ACCT}:user/{name}"), "Path": "/",
            "GroupList": [], "AttachedManagedPolicies": [],
            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}}]})
    };
    serde_json::to_vec(&json!({
        "UserDetailList": [
            user("admin", &["iam:CreateUser", "iam:AttachUserPolicy"], "*"),
            user("secure-admin", &["iam:CreateUser"], "*"),
            user("reader", &["iam:ListUsers", "ai:InvokeModel"], "*"),
            user("search", &["ai:InvokeModel"], &format!("arn:gatehouse:ai:local:{ACCT}:model/llama-*")),
        ],
        "GroupDetailList": [], "RoleDetailList": [], "Policies": []}))
    .unwrap()
}

#[test]
fn users_without_mfa_who_manage_are_found_in_the_store() {
    let arn = |n: &str| format!("arn:gatehouse:iam::{ACCT}:user/{n}");
    let s = StoreSnapshot {
        name: "gatehouse store".into(),
        details: store_details(),
        // secure-admin has an MFA device; reader has none but cannot manage.
        users_without_mfa: vec![arn("admin"), arn("reader"), arn("search")],
        region: "local".into(),
        ..StoreSnapshot::default()
    };
    let r = scan_store(&s, Utc::now(), 90, &Settings::default()).unwrap();
    let mfa: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "GH-HY-003")
        .collect();
    assert_eq!(mfa.len(), 1, "{mfa:#?}");
    assert_eq!(mfa[0].location.entity.as_deref(), Some("user admin"));
    assert!(
        mfa[0]
            .message
            .ends_with("has no MFA device enabled, and may perform iam:AttachUserPolicy"),
        "{}",
        mfa[0].message
    );
}

#[test]
fn deprecated_deployments_still_invocable() {
    let s = StoreSnapshot {
        name: "gatehouse store".into(),
        details: store_details(),
        deprecated: vec![
            DeployedModel {
                account: ACCT.into(),
                model: "llama-2-13b".into(),
                deprecated_on: "2026-01-31".into(),
            },
            DeployedModel {
                account: ACCT.into(),
                model: "mistral-7b".into(),
                deprecated_on: "2026-09-30".into(),
            },
        ],
        region: "local".into(),
        ..StoreSnapshot::default()
    };
    let now = at("2026-04-30T00:00:00Z");
    let r = scan_store(&s, now, 90, &Settings::default()).unwrap();
    let f: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "GH-AI-007")
        .collect();
    // Past its date: reader (ai:InvokeModel on *) and search (llama-*); the upcoming one is
    // not a finding yet.
    let who: Vec<_> = f
        .iter()
        .map(|f| f.location.entity.clone().unwrap())
        .collect();
    assert_eq!(
        who,
        [
            format!("arn:gatehouse:iam::{ACCT}:user/reader"),
            format!("arn:gatehouse:iam::{ACCT}:user/search")
        ],
        "{f:#?}"
    );
    assert!(f.iter().all(|f| {
        f.message
            .contains("llama-2-13b (deprecated since 2026-01-31)")
    }));
    assert!(f[1].message.contains("`user search/p`"), "{}", f[1].message);

    let rv = review_store(&s, now, 90, &Settings::default()).unwrap();
    assert_eq!(rv.deprecated_models.len(), 2);
    let upcoming = rv
        .deprecated_models
        .iter()
        .find(|m| m.model == "mistral-7b")
        .unwrap();
    assert_eq!(upcoming.status, "deprecated on 2026-09-30 (upcoming)");
    assert_eq!(
        upcoming.invokers.len(),
        1,
        "only reader's `*` reaches mistral"
    );
    assert!(
        rv.markdown()
            .contains("## Deprecated models still reachable")
    );
}

#[test]
fn review_lists_granted_against_used() {
    let s = snapshot(vec![
        rec("2026-01-01T00:00:00Z", &alice(), "iam:GetUser", "Allow"),
        rec("2026-04-20T00:00:00Z", &alice(), "iam:ListUsers", "Allow"),
    ]);
    let rv = review_store(&s, at("2026-04-30T00:00:00Z"), 90, &Settings::default()).unwrap();
    let a = rv
        .unused_access
        .iter()
        .find(|u| u.principal == alice())
        .unwrap();
    assert_eq!((a.granted, a.used), (3, 1));
    assert_eq!(a.basis, "audit log, last 90 days");
    assert_eq!(a.last_used.as_deref(), Some("2026-04-20T00:00:00+00:00"));
    let md = rv.markdown();
    assert!(
        md.contains("## Identities holding more than they used"),
        "{md}"
    );
    assert!(rv.html().contains("Identities holding more than they used"));
}

#[test]
fn aws_review_idle_roles_and_deprecated_bedrock_models() {
    let rv = review("fire.json", &fixture("GH-HY-005/fire.json")).unwrap();
    assert_eq!(rv.unused_access.len(), 1);
    assert_eq!(
        rv.unused_access[0].principal,
        "arn:aws:iam::111122223333:role/batch-writer"
    );
    assert_eq!(rv.unused_access[0].unused[0].actions, ["s3:PutObject"]);
    assert!(
        rv.unused_access[0]
            .basis
            .contains("RoleLastUsed: idle 142 days")
    );
    let rv = review("quiet.json", &fixture("GH-HY-005/quiet.json")).unwrap();
    assert!(rv.unused_access.is_empty());

    let details = json!({"UserDetailList": [
        {"UserName": "old-app", "Arn": "arn:aws:iam::111122223333:user/old-app", "GroupList": [], "AttachedManagedPolicies": [],
         "UserPolicyList": [{"PolicyName": "claude", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-*"}]}}]},
        {"UserName": "new-app", "Arn": "arn:aws:iam::111122223333:user/new-app", "GroupList": [], "AttachedManagedPolicies": [],
         "UserPolicyList": [{"PolicyName": "nova", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-pro-v1:0"}]}}]}],
        "GroupDetailList": [], "RoleDetailList": [], "Policies": []});
    let rv = review("d.json", &serde_json::to_vec(&details).unwrap()).unwrap();
    let models: Vec<&str> = rv
        .deprecated_models
        .iter()
        .map(|m| m.model.as_str())
        .collect();
    assert!(models.contains(&"anthropic.claude-v2"), "{models:?}");
    assert!(rv.deprecated_models.iter().all(|m| {
        m.resource.starts_with("arn:aws:bedrock:eu-west-1::")
            && m.invokers
                .iter()
                .all(|a| a.principal.ends_with("user/old-app") && a.through[0].contains("claude"))
    }));
}

#[test]
fn aws_review_idle_users_from_a_credential_report() {
    let details = json!({"UserDetailList": [
        {"UserName": "deploy-bot", "Arn": "arn:aws:iam::111122223333:user/deploy-bot", "GroupList": [], "AttachedManagedPolicies": [],
         "UserPolicyList": [{"PolicyName": "deploy", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::site/*"}]}}]},
        {"UserName": "busy-bot", "Arn": "arn:aws:iam::111122223333:user/busy-bot", "GroupList": [], "AttachedManagedPolicies": [],
         "UserPolicyList": [{"PolicyName": "deploy", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::site/*"}]}}]},
        {"UserName": "reader", "Arn": "arn:aws:iam::111122223333:user/reader", "GroupList": [], "AttachedManagedPolicies": [],
         "UserPolicyList": [{"PolicyName": "read", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}}]}],
        "GroupDetailList": [], "RoleDetailList": [], "Policies": []});
    let header = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    let row = |u: &str, used: &str| {
        format!(
            "{u},arn:aws:iam::111122223333:user/{u},2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2025-01-01T00:00:00+00:00,{used},us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
        )
    };
    // The report's latest date is busy-bot's use on 2026-06-01; deploy-bot's key was last
    // used 2026-01-01 (151 days before), reader's never (but reader only reads).
    let csv = [
        header.to_owned(),
        row("deploy-bot", "2026-01-01T00:00:00+00:00"),
        row("busy-bot", "2026-06-01T00:00:00+00:00"),
        row("reader", "N/A"),
    ]
    .join("\n");
    let bytes = serde_json::to_vec(&details).unwrap();
    let rv = gatehouse_analyzer::review::review_aws(
        "d.json",
        &bytes,
        Some(("report.csv", csv.as_bytes())),
        90,
    )
    .unwrap();
    let idle: Vec<_> = rv
        .unused_access
        .iter()
        .map(|u| (u.principal.as_str(), u.basis.as_str()))
        .collect();
    assert_eq!(
        idle,
        [(
            "arn:aws:iam::111122223333:user/deploy-bot",
            "credential report: idle 151 days"
        )]
    );
    assert_eq!(rv.unused_access[0].unused[0].actions, ["s3:PutObject"]);
    // A longer window: nobody is idle.
    let rv = gatehouse_analyzer::review::review_aws(
        "d.json",
        &bytes,
        Some(("report.csv", csv.as_bytes())),
        200,
    )
    .unwrap();
    assert!(rv.unused_access.is_empty());
    // Something else given as the report is an error naming it.
    let e = gatehouse_analyzer::review::review_aws("d.json", &bytes, Some(("x.csv", b"{}")), 90)
        .unwrap_err();
    assert!(e.to_string().starts_with("x.csv: line 1:"), "{e}");
}
