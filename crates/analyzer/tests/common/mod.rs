//! What the `policy diff` property tests share: building random statements' conditions and
//! documents, a deterministic configuration, and the one property they check.

use gatehouse_analyzer::diff::PolicyDiff;
use gatehouse_policy::{PolicyDocument, Request};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};
use serde_json::{Value, json};

/// Adds `(operator, key, value)` entries to a statement as its `Condition`.
pub fn add_conditions(st: &mut Value, conds: Vec<(String, String, Value)>) {
    if conds.is_empty() {
        return;
    }
    let mut c = serde_json::Map::new();
    for (op, key, v) in conds {
        let entry = c.entry(op).or_insert_with(|| json!({}));
        entry[key] = v;
    }
    st["Condition"] = Value::Object(c);
}

/// Documents of one to three random statements.
pub fn policy(statement: impl Strategy<Value = Value>) -> impl Strategy<Value = PolicyDocument> {
    prop::collection::vec(statement, 1..4).prop_map(|sts| {
        let v = json!({"Version": "2012-10-17", "Statement": sts});
        PolicyDocument::parse(&v.to_string()).unwrap()
    })
}

/// `cases` cases (`PROPTEST_CASES` overrides) from a fixed seed (`PROPTEST_RNG_SEED`
/// overrides), so that CI runs the same cases every time.
pub fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        rng_seed: match base.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x6761_7465),
            fixed => fixed,
        },
        ..base
    }
}

/// The property: every example the diff reports is decided that way by the engine, and a
/// request lies in a reported change exactly when the engine's answers for OLD and NEW
/// differ that way.
pub fn agrees_with_the_engine(
    d: &PolicyDiff,
    requests: &[Request],
    old: impl Fn(&Request) -> bool,
    new: impl Fn(&Request) -> bool,
) -> Result<(), TestCaseError> {
    prop_assert!(d.complete);
    for c in &d.newly_allowed {
        prop_assert!(
            !old(&c.example) && new(&c.example),
            "example {:?}",
            c.example
        );
    }
    for c in &d.no_longer_allowed {
        prop_assert!(
            old(&c.example) && !new(&c.example),
            "example {:?}",
            c.example
        );
    }
    for r in requests {
        let was = old(r);
        let is = new(r);
        prop_assert_eq!(
            d.newly_allows(r),
            is && !was,
            "newly allowed? {:?}\n{}",
            r,
            d.text()
        );
        prop_assert_eq!(
            d.no_longer_allows(r),
            was && !is,
            "no longer allowed? {:?}\n{}",
            r,
            d.text()
        );
    }
    prop_assert_eq!(d.grants_new_access(), !d.newly_allowed.is_empty());
    Ok(())
}
