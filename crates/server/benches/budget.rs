//! What budget enforcement adds to one gateway request, without the HTTP path around it
//! (whose noise on a shared machine is larger than this): finding the budgets that apply
//! to a caller (its own, its role's, its groups', its session's), estimating what the
//! request may cost (its prompt, its maximum), admitting it against all of them with that
//! reservation, and settling the reservation to the tokens the answer used.
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
    // Entries that match nobody here, but for the member of every team: the cost of a
    // longer table, and of many budgets applying at once.
    for i in 0..extra {
        budgets.push(serde_json::json!({"group": format!("arn:gatehouse:iam::*:group/team-{i}"), "tokens_per_minute": BIG}));
    }
    serde_json::from_value(serde_json::json!({ "budgets": budgets })).unwrap()
}

fn bench(c: &mut Criterion) {
    let now_ms = 1_800_000_000_000;
    let request = serde_json::json!({
        "model": "llama-3-8b",
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Summarise the attached quarterly report in three bullet points."}],
        "max_tokens": 256
    });
    let request = request.as_object().unwrap();
    let groups = vec![
        "arn:gatehouse:iam::111122223333:group/ads".to_owned(),
        "arn:gatehouse:iam::111122223333:group/search".to_owned(),
    ];
    let teams: Vec<String> = (0..50)
        .map(|i| format!("arn:gatehouse:iam::111122223333:group/team-{i}"))
        .collect();
    let user = |groups| Subject {
        principal: "arn:gatehouse:iam::111122223333:user/alice",
        role: None,
        groups,
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
    let cases = [
        ("user in 2 groups, 3 entries", 0, user(&groups)),
        ("role session with tag, 3 entries", 0, session),
        ("user in 2 groups, 53 entries", 50, user(&groups)),
        ("role session with tag, 53 entries", 50, session),
        ("user in 50 budgeted groups, 53 entries", 50, user(&teams)),
    ];
    for (name, extra, subject) in cases {
        let s = settings(extra);
        let b = Budgets::default();
        c.bench_function(&format!("budget: {name}"), |bn| {
            bn.iter(|| {
                let apply = budget::applicable(&s.budgets, black_box(&subject)).unwrap();
                let body = black_box(request);
                // Its max_tokens (ai:MaxTokens, computed for the policy anyway) and its prompt.
                let most = budget::prompt_estimate(body) + 256;
                let reservation = b.admit(&apply, most, now_ms).unwrap();
                b.settle(&reservation, 7, now_ms);
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
