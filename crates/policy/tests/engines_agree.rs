//! Gatehouse, cedar-policy and regorus reach the same decision on every request of the
//! benchmark scenarios (`benches/engines.rs`), at sizes small enough for CI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::{Engines, Mix, PER_MIX};

fn agree(n: usize) {
    let mut e = Engines::new(n);
    assert_eq!(e.assert_agreement(), [PER_MIX; 3]);
    // Every flavour is exercised in every mix it belongs to.
    for (mix, flavours) in [
        (Mix::Allow, &["tag+ip", "tag-variable"][..]),
        (Mix::ExplicitDeny, &["tag+ip", "tag-variable"][..]),
        (
            Mix::ImplicitDeny,
            &["tag", "ip", "tag-variable", "no-statement"][..],
        ),
    ] {
        for f in flavours {
            assert!(
                e.scenario.mix(mix).iter().any(|c| c.flavour == *f),
                "N={n}: no {f} request in {}",
                mix.name()
            );
        }
    }
}

#[test]
fn engines_agree_on_10_statements() {
    agree(10);
}

#[test]
fn engines_agree_on_100_statements() {
    agree(100);
}

#[test]
fn the_policies_are_what_the_scenario_says() {
    let s = common::Scenario::new(10);
    let iam = s.iam_policies();
    assert_eq!(iam.len(), 1);
    assert!(
        iam[0]
            .1
            .contains(r#""Resource":"arn:gatehouse:ai:local:111122223333:model/m-7""#)
    );
    assert!(iam[0].1.contains("${aws:PrincipalTag/team}"));
    let cedar = s.cedar_policies();
    assert_eq!(cedar.lines().count(), 10);
    assert!(cedar.contains(
        r#"permit(principal, action == Action::"GetModel", resource == Model::"m-2") when { context.tags.team == "team-2" && context.source_ip.isInRange(ip("10.128.0.0/10")) };"#
    ));
    assert!(cedar.contains("forbid(principal, action, resource)"));
    let data = s.rego_data();
    assert_eq!(
        data["iam"]["allow"]["ai:InvokeModel"]
            .as_object()
            .map(|o| o.len()),
        Some(3)
    );
}
