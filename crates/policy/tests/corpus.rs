//! Every AWS managed policy in `../shared/corpus/aws-managed-policies/` (the output of
//! `aws iam get-policy-version`, see the corpus README) parses and validates without
//! errors, round-trips through the model, compiles, and decides sensibly; the two empty
//! files give one clear error. Counts are asserted so that a regression shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use gatehouse_policy::{
    Catalog, DecisionKind, Effect, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType,
    Request, parse_policy_bytes, validate_bytes,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

const EMPTY_FILES: [&str; 2] = [
    "AWSCodePipelineFullAccess",
    "AWSECRPullThroughCacheServiceRolePolicy",
];

/// Figures from the corpus README (upstream commit 0387244e): 1,525 files, of which 1,523
/// parse, with 7,972 statements (7,891 Allow, 81 Deny).
const FILES: usize = 1525;
const DOCUMENTS: usize = 1523;
const STATEMENTS: usize = 7972;
const ALLOW_STATEMENTS: usize = 7891;
const DENY_STATEMENTS: usize = 81;

fn corpus_files() -> Option<Vec<(String, PathBuf)>> {
    let dir = common::shared_corpus()?.join("aws-managed-policies");
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    files.sort();
    Some(files)
}

/// Parses the whole corpus once: name → document (the empty files excluded).
fn load() -> Option<BTreeMap<String, PolicyDocument>> {
    let files = corpus_files()?;
    let mut docs = BTreeMap::new();
    let mut failures = Vec::new();
    for (name, path) in &files {
        let bytes = std::fs::read(path).unwrap();
        let parsed = validate_bytes(&bytes, Catalog::builtin());
        let errors: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        if EMPTY_FILES.contains(&name.as_str()) {
            if errors != ["$: empty file: expected a JSON policy document"]
                || parsed.document.is_some()
            {
                failures.push(format!(
                    "{name}: expected the empty-file error, got {errors:?}"
                ));
            }
            continue;
        }
        match parsed.document {
            Some(doc) if errors.is_empty() => {
                docs.insert(name.clone(), doc);
            }
            _ => failures.push(format!("{name}: {errors:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(files.len(), FILES, "number of files in the corpus");
    Some(docs)
}

#[test]
fn every_managed_policy_parses_and_validates() {
    let Some(docs) = load() else { return };
    assert_eq!(docs.len(), DOCUMENTS);
    let statements: Vec<Effect> = docs
        .values()
        .flat_map(|d| d.statements.iter().map(|s| s.effect))
        .collect();
    assert_eq!(statements.len(), STATEMENTS, "statements in the corpus");
    let allow = statements.iter().filter(|e| **e == Effect::Allow).count();
    assert_eq!(allow, ALLOW_STATEMENTS);
    assert_eq!(statements.len() - allow, DENY_STATEMENTS);
    let with_condition = docs
        .values()
        .flat_map(|d| &d.statements)
        .filter(|s| !s.condition.is_empty())
        .count();
    assert_eq!(with_condition, 3251, "statements with a Condition");
    let not_action = docs
        .values()
        .flat_map(|d| &d.statements)
        .filter(|s| s.action.negated)
        .count();
    assert_eq!(not_action, 13, "statements with NotAction");
    let not_resource = docs
        .values()
        .flat_map(|d| &d.statements)
        .filter(|s| s.resource.as_ref().is_some_and(|r| r.negated))
        .count();
    assert_eq!(not_resource, 15, "statements with NotResource");
}

#[test]
fn the_empty_files_give_one_clear_error() {
    let Some(dir) = common::shared_corpus() else {
        return;
    };
    for name in EMPTY_FILES {
        let bytes = std::fs::read(dir.join("aws-managed-policies").join(name)).unwrap();
        assert!(bytes.is_empty(), "{name} is no longer empty");
        let parsed = parse_policy_bytes(&bytes);
        assert!(parsed.document.is_none());
        let shown: Vec<String> = parsed.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["$: empty file: expected a JSON policy document"]);
        let err = PolicyDocument::parse(std::str::from_utf8(&bytes).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$: empty file: expected a JSON policy document"
        );
    }
}

#[test]
fn every_managed_policy_round_trips_and_compiles() {
    let Some(docs) = load() else { return };
    let mut compiled_statements = 0;
    for (name, doc) in &docs {
        let text = doc.to_json().to_string();
        let again = PolicyDocument::parse(&text)
            .unwrap_or_else(|e| panic!("{name}: its own JSON does not parse: {e}"));
        assert_eq!(&again, doc, "{name} does not round-trip");
        let set = PolicySet::new(
            PolicyType::Identity,
            [NamedPolicy::new(name.clone(), doc.clone())],
        )
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
        assert_eq!(set.len(), doc.statements.len());
        compiled_statements += set.len();
    }
    assert_eq!(compiled_statements, STATEMENTS);
    // All of them in one set, too (a principal with many managed policies).
    let all = PolicySet::new(
        PolicyType::Identity,
        docs.iter()
            .map(|(n, d)| NamedPolicy::new(n.clone(), d.clone())),
    )
    .unwrap();
    assert_eq!(all.len(), STATEMENTS);
    assert_eq!(all.policy_count(), DOCUMENTS);
}

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

fn decide(docs: &BTreeMap<String, PolicyDocument>, policy: &str, req: &Request) -> DecisionKind {
    let doc = docs
        .get(policy)
        .unwrap_or_else(|| panic!("{policy} not in the corpus"));
    let set = PolicySet::new(
        PolicyType::Identity,
        [NamedPolicy::new(policy, doc.clone())],
    )
    .unwrap();
    let eval = Evaluation::identity(&set);
    let d = eval.decide(req);
    assert_eq!(
        d,
        eval.decide_linear(req),
        "{policy}: index and scan disagree"
    );
    d.decision
}

#[test]
fn sanity_decisions_on_real_policies() {
    use DecisionKind::*;
    let Some(docs) = load() else { return };
    let req = |a: &str, r: &str| Request::new(ALICE, a, r);
    let cases: Vec<(&str, Request, DecisionKind)> = vec![
        // {"Action": "*", "Resource": "*", "Effect": "Allow"}
        ("AdministratorAccess", req("iam:CreateUser", "*"), Allow),
        (
            "AdministratorAccess",
            req("s3:DeleteBucket", "arn:aws:s3:::b"),
            Allow,
        ),
        // ReadOnlyAccess lists Get*/List*/Describe* actions only.
        (
            "ReadOnlyAccess",
            req("s3:GetObject", "arn:aws:s3:::b/k"),
            Allow,
        ),
        ("ReadOnlyAccess", req("iam:CreateUser", "*"), ImplicitDeny),
        (
            "ReadOnlyAccess",
            req("s3:PutObject", "arn:aws:s3:::b/k"),
            ImplicitDeny,
        ),
        // {"Sid": "BedrockAll", "Action": ["bedrock:*"], "Resource": "*"}
        (
            "AmazonBedrockFullAccess",
            req(
                "bedrock:InvokeModel",
                "arn:aws:bedrock:us-east-1::foundation-model/x",
            ),
            Allow,
        ),
        (
            "AmazonBedrockFullAccess",
            req("BEDROCK:invokemodel", "*"),
            Allow,
        ),
        (
            "AmazonBedrockFullAccess",
            req("s3:GetObject", "arn:aws:s3:::b/k"),
            ImplicitDeny,
        ),
        // bedrock:Get* and bedrock:List* only.
        (
            "AmazonBedrockReadOnly",
            req("bedrock:GetFoundationModel", "*"),
            Allow,
        ),
        (
            "AmazonBedrockReadOnly",
            req(
                "bedrock:InvokeModel",
                "arn:aws:bedrock:us-east-1::foundation-model/x",
            ),
            ImplicitDeny,
        ),
        // NotAction iam:*, organizations:*, account:* (plus a few iam/account reads).
        (
            "PowerUserAccess",
            req("s3:PutObject", "arn:aws:s3:::b/k"),
            Allow,
        ),
        ("PowerUserAccess", req("iam:CreateUser", "*"), ImplicitDeny),
        ("PowerUserAccess", req("iam:ListRoles", "*"), Allow),
        // {"Effect": "Deny", "Action": ["*"], "Resource": "*"}
        ("AWSDenyAll", req("iam:CreateUser", "*"), ExplicitDeny),
        (
            "AWSDenyAll",
            req("s3:GetObject", "arn:aws:s3:::b"),
            ExplicitDeny,
        ),
    ];
    let mut wrong = Vec::new();
    for (policy, r, expect) in &cases {
        let got = decide(&docs, policy, r);
        if got != *expect {
            wrong.push(format!(
                "{policy}: {} on {}: expected {expect}, got {got}",
                r.action, r.resource
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // AdministratorAccess with AWSDenyAll as a permissions boundary-like deny: deny wins.
    let admin = PolicySet::new(
        PolicyType::Identity,
        ["AdministratorAccess", "AWSDenyAll"].map(|n| NamedPolicy::new(n, docs[n].clone())),
    )
    .unwrap();
    let d = Evaluation::identity(&admin).decide(&req("iam:CreateUser", "*"));
    assert_eq!(d.decision, ExplicitDeny);
    assert_eq!(&*d.statements[0].policy, "AWSDenyAll");
    assert_eq!(d.statements[0].sid.as_deref(), Some("DenyAll"));
}
