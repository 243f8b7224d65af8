//! The conformance suite: table-driven cases in `tests/conformance/*.json`, each traceable
//! to a rule in AWS's documentation (see `tests/conformance/README.md`). Every case is
//! decided through the index and by the linear reference scan; both must give the
//! documented answer. All failures are reported together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_policy::{
    DecisionKind, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct File {
    topic: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    rule: String,
    source: String,
    policies: Policies,
    request: Request,
    expect: DecisionKind,
    #[serde(default)]
    #[allow(dead_code)]
    version_note: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Policies {
    #[serde(default)]
    identity: Vec<Value>,
    #[serde(default)]
    boundary: Option<Value>,
    #[serde(default)]
    guardrails: Vec<Vec<Value>>,
    #[serde(default)]
    session: Option<Value>,
    #[serde(default)]
    resource: Option<Value>,
}

fn set(kind: PolicyType, name: &str, docs: &[Value]) -> Result<PolicySet, String> {
    let policies = docs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            PolicyDocument::parse(&v.to_string())
                .map(|d| NamedPolicy::new(format!("{name}[{i}]"), d))
                .map_err(|e| format!("{name}[{i}] does not parse: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    PolicySet::new(kind, policies).map_err(|e| e.to_string())
}

fn run_case(case: &Case) -> Result<(), String> {
    let p = &case.policies;
    let identity = set(PolicyType::Identity, "identity", &p.identity)?;
    let one = |kind, name, v: &Option<Value>| -> Result<Option<PolicySet>, String> {
        v.as_ref()
            .map(|v| set(kind, name, std::slice::from_ref(v)))
            .transpose()
    };
    let resource = one(PolicyType::Resource, "resource", &p.resource)?;
    let boundary = one(PolicyType::Boundary, "boundary", &p.boundary)?;
    let session = one(PolicyType::Session, "session", &p.session)?;
    let guardrails = p
        .guardrails
        .iter()
        .enumerate()
        .map(|(i, level)| set(PolicyType::Guardrail, &format!("guardrail{i}"), level))
        .collect::<Result<Vec<_>, _>>()?;
    let eval = Evaluation {
        identity: &identity,
        resource: resource.as_ref(),
        boundary: boundary.as_ref(),
        guardrails: &guardrails,
        session: session.as_ref(),
    };
    let indexed = eval.decide(&case.request);
    let linear = eval.decide_linear(&case.request);
    if indexed != linear {
        return Err(format!(
            "index and linear scan disagree: {indexed:?} vs {linear:?}"
        ));
    }
    if indexed.decision != case.expect {
        return Err(format!(
            "expected {}, got {} ({:?})",
            case.expect, indexed.decision, indexed
        ));
    }
    Ok(())
}

#[test]
fn conformance_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let file: File =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for case in &file.cases {
            total += 1;
            assert!(
                !case.rule.is_empty() && case.source.starts_with("https://"),
                "{}: case `{}` must cite a rule and its source",
                path.display(),
                case.name
            );
            if let Err(e) = run_case(case) {
                failures.push(format!(
                    "{} / {} / {}: {e}\n    rule: {}\n    source: {}",
                    path.file_name().unwrap().to_string_lossy(),
                    file.topic,
                    case.name,
                    case.rule,
                    case.source
                ));
            }
        }
    }
    println!("{total} conformance cases in {} files", files.len());
    assert!(
        total >= 200,
        "the suite must hold at least 200 cases, has {total}"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
