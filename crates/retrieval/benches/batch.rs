//! Batch decisions per second: one person's session (a department policy with a
//! principal-tag variable and a deny on confidential documents without MFA) deciding 10,000
//! documents with their tags, half of them refused — the batch decision API's work after
//! its body is read (`decide`), and with reading the JSON body (`parse_and_decide`).
//!
//! `cargo bench -p gatehouse-retrieval --bench batch`; figures in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_pipeline::authz::CompiledPrincipal;
use gatehouse_policy::Request;
use gatehouse_retrieval::Subject;
use gatehouse_retrieval::batch::{BatchRequest, decide_documents};
use gatehouse_store::{PolicySource, PrincipalPolicies, SourcedPolicy, Tag};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;

const KB: &str = "arn:gatehouse:ai:local:111122223333:knowledge-base/corp";
const N: usize = 10_000;

fn subject() -> Subject {
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Retrieve", "Resource": KB},
        {"Effect": "Allow", "Action": "ai:Retrieve", "Resource": format!("{KB}/document/*"),
         "Condition": {"StringEquals": {"ai:DocumentTag/department": "${aws:PrincipalTag/team}"}}},
        {"Effect": "Deny", "Action": "ai:Retrieve", "Resource": format!("{KB}/document/*"),
         "Condition": {"StringEquals": {"ai:DocumentTag/classification": "confidential"},
                       "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
    ]});
    let arn = "arn:gatehouse:iam::111122223333:user/alice";
    let info = PrincipalPolicies {
        account_id: "111122223333".into(),
        principal_arn: arn.into(),
        principal_id: "AIDAALICE".into(),
        principal_name: "alice".into(),
        tags: vec![Tag {
            key: "team".into(),
            value: "hr".into(),
        }],
        groups: Vec::new(),
        group_arns: Vec::new(),
        identity_policies: vec![SourcedPolicy {
            source: PolicySource::Inline {
                policy_name: "kb".into(),
                via_group: None,
            },
            document: policy.to_string(),
        }],
        boundary: None,
        guardrails: Vec::new(),
        elevations: Vec::new(),
        generation: 1,
    };
    let principal = Arc::new(CompiledPrincipal::compile(info).unwrap());
    let mut base = Request::new(arn, "", "");
    base.context.insert("aws:SourceIp", "10.0.0.1");
    base.context
        .insert("aws:CurrentTime", "2026-12-03T20:00:00Z");
    base.context.insert("aws:MultiFactorAuthPresent", "false");
    principal.fill_context(&mut base);
    Subject {
        arn: arn.into(),
        account: "111122223333".into(),
        base,
        policies: Some(principal),
        session: None,
        now: chrono::Utc::now(),
    }
}

/// 10,000 documents: a quarter HR internal (allowed), a quarter HR confidential (denied:
/// no MFA), half of other departments (denied), each with an acl list.
fn body() -> String {
    let docs: Vec<_> = (0..N)
        .map(|i| {
            let (dept, class) = match i % 4 {
                0 => ("hr", "internal"),
                1 => ("hr", "confidential"),
                2 => ("eng", "internal"),
                _ => ("finance", "public"),
            };
            json!({"id": format!("doc-{i:05}"), "tags": {
                "department": dept, "classification": class, "acl": [dept, "all"], "owner": format!("u{}", i % 97)}})
        })
        .collect();
    json!({"session_token": "unused-here", "documents": docs}).to_string()
}

fn bench(c: &mut Criterion) {
    let subject = subject();
    let text = body();
    let req: BatchRequest = serde_json::from_str(&text).unwrap();
    let allowed = decide_documents(&subject, KB, &req.documents)
        .iter()
        .filter(|ok| **ok)
        .count();
    assert_eq!(allowed, N / 4, "a quarter allowed");
    let mut g = c.benchmark_group("batch_decisions");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("decide_10000", |b| {
        b.iter(|| decide_documents(black_box(&subject), KB, black_box(&req.documents)))
    });
    g.bench_function("parse_and_decide_10000", |b| {
        b.iter(|| {
            let req: BatchRequest = serde_json::from_str(black_box(&text)).unwrap();
            decide_documents(&subject, KB, &req.documents)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
