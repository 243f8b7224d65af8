//! How many requests a requests-per-minute budget admits in the worst 60-second span:
//! the gateway's sliding windows ([`Budgets`], driven by an injected clock) against the
//! fixed windows Gatehouse counted in before (a reference implementation of that logic:
//! one counter per calendar minute, reset when the minute changes).
//!
//! Deterministic (no wall clock, a fixed-seed generator), so the figures are exact:
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example budget_windows
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_server::gateway::budget::{Applicable, Budgets, Limits, ScopeKind};
use std::collections::HashMap;

/// The budget: requests per minute.
const LIMIT: u64 = 60;
/// A minute boundary (epoch ms), so that the workloads can aim at it.
const BOUNDARY: i64 = 1_800_000_000_000;

/// The old logic: a counter per fixed minute; a request passes while its minute's
/// counter is under the limit.
#[derive(Default)]
struct FixedWindows {
    counts: HashMap<i64, u64>,
}

impl FixedWindows {
    fn admit(&mut self, now_ms: i64) -> bool {
        let n = self.counts.entry(now_ms.div_euclid(60_000)).or_default();
        if *n < LIMIT {
            *n += 1;
            true
        } else {
            false
        }
    }
}

fn sliding(times: &[i64]) -> Vec<i64> {
    let b = Budgets::default();
    let budget = [Applicable {
        scope: "arn:gatehouse:iam::111122223333:user/bench".into(),
        kind: ScopeKind::Principal,
        limits: Limits {
            requests_per_minute: Some(LIMIT),
            ..Limits::default()
        },
    }];
    times
        .iter()
        .copied()
        .filter(|&t| b.admit(&budget, 0, t).is_ok())
        .collect()
}

fn fixed(times: &[i64]) -> Vec<i64> {
    let mut f = FixedWindows::default();
    times.iter().copied().filter(|&t| f.admit(t)).collect()
}

/// The most admitted in any span of 60 seconds (`[t, t + 60 s)`, t any admission).
fn most_in_any_minute(admitted: &[i64]) -> usize {
    let mut most = 0;
    let mut end = 0;
    for (start, &t) in admitted.iter().enumerate() {
        while end < admitted.len() && admitted[end] < t + 60_000 {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

/// Offered requests (epoch ms, sorted) of each workload.
fn workloads() -> Vec<(&'static str, Vec<i64>)> {
    // The boundary attacker: quiet, then as many as it can in the last second before a
    // minute boundary and again in the first second after it.
    let burst: Vec<i64> = (0..2 * LIMIT as i64)
        .map(|i| BOUNDARY - 1_000 + i * 2_000 / (2 * LIMIT as i64))
        .collect();
    // A steady client offering 10 requests a second for five minutes.
    let steady: Vec<i64> = (0..3_000).map(|i| BOUNDARY - 30_000 + i * 100).collect();
    // Random arrivals, 5 a second on average for five minutes (fixed-seed LCG).
    let mut seed: u64 = 0x5eed;
    let mut t = BOUNDARY - 30_000;
    let mut random = Vec::new();
    while t < BOUNDARY + 270_000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        t += i64::try_from((seed >> 33) % 400).unwrap();
        random.push(t);
    }
    // Bursts of 60 every 30 seconds, each straddling a half minute.
    let bursts: Vec<i64> = (0..10)
        .flat_map(|k| (0..LIMIT as i64).map(move |i| BOUNDARY - 500 + k * 30_000 + i * 16))
        .collect();
    vec![
        (
            "boundary burst (120 offered in the 2 s around a minute boundary)",
            burst,
        ),
        ("steady 10 requests/s for 5 minutes", steady),
        (
            "random arrivals, 5 requests/s on average, 5 minutes",
            random,
        ),
        ("60 at once every 30 s, 5 minutes", bursts),
    ]
}

fn main() {
    println!("limit: {LIMIT} requests per minute");
    println!(
        "| workload | offered | fixed windows: admitted / most in any 60 s | sliding windows: admitted / most in any 60 s |"
    );
    println!("|---|---|---|---|");
    for (name, times) in workloads() {
        let (f, s) = (fixed(&times), sliding(&times));
        println!(
            "| {name} | {} | {} / {} | {} / {} |",
            times.len(),
            f.len(),
            most_in_any_minute(&f),
            s.len(),
            most_in_any_minute(&s)
        );
    }
}
