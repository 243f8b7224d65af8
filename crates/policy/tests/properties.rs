//! Property tests of the policy engine (issue 2, "Tests"):
//!
//! - (a) serialize ∘ parse is the identity on the model;
//! - (b) adding a `Deny` statement to any policy of any type never turns a deny into `Allow`;
//! - (c) removing a `Deny` statement never turns an `Allow` into a deny;
//! - (d) the indexed `decide` equals the linear reference scan exactly (kind, statements,
//!   missing) for random sets of up to about 40 statements across all policy types;
//! - (e) adding an `Allow` statement to the identity policies never turns `Allow` into a deny.
//!
//! Generators live in `common/mod.rs`, shared with the other integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Scenario, any_document, request, request_with, scenario, statement_with};
use gatehouse_policy::{
    DecisionKind, Effect, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
    parse_policy,
};
use proptest::prelude::*;
use proptest::sample::Index;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking must stay within the file's time budget too.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

/// The decision, with the indexed and the linear scan required to agree on it exactly.
fn decide(scenario: &Scenario, req: &Request) -> DecisionKind {
    let compiled = scenario.compile();
    let eval = compiled.evaluation();
    let indexed = eval.decide(req);
    let linear = eval.decide_linear(req);
    assert_eq!(indexed, linear, "decide != decide_linear for {req:?}");
    indexed.decision
}

proptest! {
    #![proptest_config(config(512))]

    /// (a) `PolicyDocument::parse(&doc.to_json().to_string()) == Ok(doc)`, and the text
    /// parses without errors or with only warnings.
    #[test]
    fn serialize_then_parse_is_identity(doc in any_document()) {
        let text = doc.to_json().to_string();
        let parsed = PolicyDocument::parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&doc), "text: {}", text);
        // Pretty-printed text is the same document.
        let pretty = serde_json::to_string_pretty(&doc.to_json()).unwrap();
        prop_assert_eq!(PolicyDocument::parse(&pretty), Ok(doc.clone()));
        // Display is the same JSON.
        prop_assert_eq!(doc.to_string(), text);
        prop_assert!(parse_policy(&doc.to_string()).document.is_some());
    }

    /// (b) Adding a Deny statement anywhere never turns a deny into Allow.
    #[test]
    fn adding_a_deny_never_allows_more(
        s in scenario(5),
        req in request(),
        which in any::<Index>(),
        at in any::<Index>(),
        deny_plain in statement_with(PolicyType::Identity, Some(Effect::Deny)),
        deny_resource in statement_with(PolicyType::Resource, Some(Effect::Deny)),
    ) {
        let before = decide(&s, &req);
        let mut after = s.clone();
        let mut docs = after.documents_mut();
        prop_assume!(!docs.is_empty());
        let (kind, doc) = docs.swap_remove(which.index(docs.len()));
        let deny = if kind == PolicyType::Resource { deny_resource } else { deny_plain };
        let pos = at.index(doc.statements.len() + 1);
        doc.statements.insert(pos, deny.clone());
        let now = decide(&after, &req);
        prop_assert!(
            before.is_allow() || !now.is_allow(),
            "adding {:?} to a {:?} policy turned {:?} into {:?}", deny, kind, before, now
        );
    }

    /// (c) Removing a Deny statement never turns an Allow into a deny.
    #[test]
    fn removing_a_deny_never_allows_less(
        s in scenario(5),
        req in request(),
        which in any::<Index>(),
    ) {
        let before = decide(&s, &req);
        let mut after = s.clone();
        let mut denies: Vec<(usize, usize)> = Vec::new();
        for (d, (_, doc)) in after.documents_mut().into_iter().enumerate() {
            for (i, st) in doc.statements.iter().enumerate() {
                if st.effect == Effect::Deny {
                    denies.push((d, i));
                }
            }
        }
        prop_assume!(!denies.is_empty());
        let (d, i) = denies[which.index(denies.len())];
        let mut docs = after.documents_mut();
        let removed = docs[d].1.statements.remove(i);
        let now = decide(&after, &req);
        prop_assert!(
            !before.is_allow() || now.is_allow(),
            "removing {:?} turned Allow into {:?}", removed, now
        );
    }

    /// (e) Adding an Allow statement to the identity policies never turns Allow into a deny.
    #[test]
    fn adding_an_identity_allow_never_allows_less(
        s in scenario(5),
        req in request(),
        which in any::<Index>(),
        at in any::<Index>(),
        allow in statement_with(PolicyType::Identity, Some(Effect::Allow)),
    ) {
        let before = decide(&s, &req);
        let mut after = s.clone();
        if after.identity.is_empty() {
            after.identity.push(PolicyDocument {
                version: Some(gatehouse_policy::Version::V2012_10_17),
                id: None,
                statements: vec![allow.clone()],
            });
        } else {
            let n = after.identity.len();
            let doc = &mut after.identity[which.index(n)];
            let pos = at.index(doc.statements.len() + 1);
            doc.statements.insert(pos, allow.clone());
        }
        let now = decide(&after, &req);
        prop_assert!(
            !before.is_allow() || now.is_allow(),
            "adding {:?} turned Allow into {:?}", allow, now
        );
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// (d) The index decides exactly as the linear scan: same kind, same statements, same
    /// missing part; and `explain` reports the same decision.
    #[test]
    fn indexed_equals_linear(s in scenario(7), reqs in prop::collection::vec(request_with(true), 1..=6)) {
        prop_assume!(s.statement_count() <= 48);
        let compiled = s.compile();
        let eval: Evaluation<'_> = compiled.evaluation();
        for req in &reqs {
            let indexed = eval.decide(req);
            let linear = eval.decide_linear(req);
            prop_assert_eq!(&indexed, &linear, "request {:?}", req);
            prop_assert_eq!(eval.explain(req).decision, indexed);
        }
    }

    /// An action written without wildcards matches the same action in a request; for ASCII
    /// names (all of AWS's), in any case.
    #[test]
    fn an_action_matches_itself_in_any_case(
        action in prop_oneof![
            prop::sample::select(common::REQUEST_ACTIONS).prop_map(String::from),
            "[a-z0-9-]{1,6}:[A-Za-z]{1,12}",
            "[a-z0-9]{1,6}:[A-Za-zÀ-ÖØ-öø-ÿ]{1,12}",
        ],
        flips in prop::collection::vec(any::<bool>(), 20),
    ) {
        let asked: String = if action.is_ascii() {
            action
                .chars()
                .zip(flips.iter().cycle())
                .map(|(c, f)| if *f { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect()
        } else {
            action.clone()
        };
        let text = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": action, "Resource": "*"}
        })
        .to_string();
        let doc = PolicyDocument::parse(&text).unwrap();
        let set = PolicySet::new(PolicyType::Identity, [NamedPolicy::new("p", doc)]).unwrap();
        let req = Request::new("arn:gatehouse:iam::111122223333:user/alice", &asked, "*");
        let eval = Evaluation::identity(&set);
        prop_assert!(eval.decide(&req).is_allow(), "{} does not match {}", action, asked);
        prop_assert!(eval.decide_linear(&req).is_allow());
    }
}
