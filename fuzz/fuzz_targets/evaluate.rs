//! Bytes split into a policy and a request: parse both, compile the policy as every policy
//! type, and decide. Never a panic, and the indexed decision equals the linear reference
//! scan exactly (kind, statements, missing).
#![no_main]

use gatehouse_policy::{Evaluation, NamedPolicy, PolicySet, PolicyType, Request, parse_policy_bytes};
use libfuzzer_sys::fuzz_target;

/// Splits at the first NUL byte (NUL is never valid inside JSON text), so that a seed can be
/// written as `POLICY \0 REQUEST`.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn check(eval: &Evaluation<'_>, req: &Request) {
    let indexed = eval.decide(req);
    let linear = eval.decide_linear(req);
    assert_eq!(indexed, linear, "index and scan disagree on {req:?}");
    assert_eq!(eval.explain(req).decision, indexed);
}

fuzz_target!(|data: &[u8]| {
    let (policy, request) = split(data);
    let Some(doc) = parse_policy_bytes(policy).document else {
        return;
    };
    let Ok(req) = serde_json::from_slice::<Request>(request) else {
        return;
    };
    let set = |kind| PolicySet::new(kind, [NamedPolicy::new("fuzz", doc.clone())]);
    let (Ok(identity), Ok(resource), Ok(boundary), Ok(guardrail), Ok(session)) = (
        set(PolicyType::Identity),
        set(PolicyType::Resource),
        set(PolicyType::Boundary),
        set(PolicyType::Guardrail),
        set(PolicyType::Session),
    ) else {
        panic!("a parsed document does not compile");
    };
    let empty = PolicySet::empty(PolicyType::Identity);
    check(&Evaluation::identity(&identity), &req);
    let guardrails = [guardrail];
    // The document in every role at once.
    check(
        &Evaluation {
            identity: &identity,
            resource: Some(&resource),
            boundary: Some(&boundary),
            guardrails: &guardrails,
            session: Some(&session),
        },
        &req,
    );
    // Only as a resource-based policy.
    check(
        &Evaluation {
            identity: &empty,
            resource: Some(&resource),
            boundary: None,
            guardrails: &[],
            session: None,
        },
        &req,
    );
});
