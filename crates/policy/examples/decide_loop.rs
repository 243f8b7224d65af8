//! Decides the engine bench's requests in a loop, for instruction-count profiling: wall-clock
//! figures on a shared machine wander, instruction counts do not.
//!
//! ```sh
//! cargo build --profile bench -p gatehouse-policy --example decide_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/decide_loop 10 allow 10000
//! ```
//! Arguments: statements (N), mix (`allow`, `explicit_deny`, `implicit_deny`), decisions.
//! Divide the total instructions by the decisions (setup is excluded with
//! `--toggle-collect=decide_loop::run`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::{Engine, Mix, Scenario};
use std::hint::black_box;

#[inline(never)]
fn run(
    engine: &mut common::Gatehouse,
    inputs: &[gatehouse_policy::Request],
    idx: &[usize],
    k: usize,
) {
    for i in 0..k {
        black_box(engine.decide(black_box(&inputs[idx[i % idx.len()]])));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(10, |a| a.parse().expect("N"));
    let mix = match args.get(2).map_or("allow", String::as_str) {
        "allow" => Mix::Allow,
        "explicit_deny" => Mix::ExplicitDeny,
        "implicit_deny" => Mix::ImplicitDeny,
        other => panic!("unknown mix {other}"),
    };
    let k: usize = args
        .get(3)
        .map_or(10_000, |a| a.parse().expect("decisions"));
    let scenario = Scenario::new(n);
    let mut engine = common::Gatehouse::new(&scenario);
    let inputs: Vec<_> = scenario.cases.iter().map(|c| engine.prepare(c)).collect();
    let idx: Vec<usize> = (0..scenario.cases.len())
        .filter(|i| scenario.cases[*i].mix == mix)
        .collect();
    run(&mut engine, &inputs, &idx, k);
}
