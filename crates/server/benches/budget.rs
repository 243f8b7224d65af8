//! What budget enforcement adds to one gateway request, without the HTTP path around it
//! (whose noise on a shared machine is larger than this): finding the budgets that apply
//! to a caller (its own, its role's, its groups', its session's), admitting the request
//! against all of them, and charging the answer's tokens.
//!
//! ```sh
//! cargo bench -p gatehouse-server --bench budget
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_server::gateway::GatewaySettings;
use gatehouse_server::gateway::budget::{self, Budgets, SessionBudget, Subject};
use std::collections::BTreeMap;
use std::hint::black_box;

const BIG: u64 = 1 << 50;

fn settings(extra: usize) -> GatewaySettings {
    let mut budgets = vec![
        serde_json::json!({"principal": "arn:gatehouse:iam::*:user/*", "requests_per_minute": BIG, "tokens_per_day": BIG}),
        serde_json::json!({"group": "arn:gatehouse:iam::*:group/search", "tokens_per_minute": BIG}),
        serde_json::json!({"role": "arn:gatehouse:iam::*:role/agent", "requests_per_minute": BIG}),
    ];
    // Entries that match nobody here: the cost of a longer table.
    for i in 0..extra {
        budgets.push(serde_json::json!({"group": format!("arn:gatehouse:iam::*:group/team-{i}"), "requests_per_minute": BIG}));
    }
    serde_json::from_value(serde_json::json!({ "budgets": budgets })).unwrap()
}

fn bench(c: &mut Criterion) {
    let now = 1_800_000_000;
    let groups = vec![
        "arn:gatehouse:iam::111122223333:group/ads".to_owned(),
        "arn:gatehouse:iam::111122223333:group/search".to_owned(),
    ];
    let user = Subject {
        principal: "arn:gatehouse:iam::111122223333:user/alice",
        role: None,
        groups: &groups,
        session: None,
    };
    let session_budget = SessionBudget {
        key: "ASIAEXAMPLEEXAMPLE01".into(),
        limits: budget::session_limits(&BTreeMap::from([(
            "gatehouse:rpm".to_owned(),
            BIG.to_string(),
        )])),
    };
    let session = Subject {
        principal: "arn:gatehouse:sts::111122223333:assumed-role/agent/s1",
        role: Some("arn:gatehouse:iam::111122223333:role/agent"),
        groups: &[],
        session: Some(&session_budget),
    };
    for (name, extra) in [("3 entries", 0), ("53 entries", 50)] {
        let s = settings(extra);
        for (who, subject) in [
            ("user in 2 groups", &user),
            ("role session with tag", &session),
        ] {
            let b = Budgets::default();
            c.bench_function(&format!("budget: {who}, {name}"), |bn| {
                bn.iter(|| {
                    let apply = budget::applicable(&s.budgets, black_box(subject)).unwrap();
                    b.admit(&apply, now).unwrap();
                    let scopes: Vec<String> = apply.into_iter().map(|a| a.scope).collect();
                    b.charge(&scopes, 7, now);
                })
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
