//! Gatehouse against cedar-policy and regorus, in the same process, on equivalent policies.
//!
//! For N = 10, 100, 1,000 and 10,000 statements (see `common/mod.rs` for the policies in
//! each language), every engine first decides every request and must reach the decision the
//! request was built for; then each engine decides the requests of each mix (allow hits,
//! explicit-deny hits, implicit denies), one decision per iteration, cycling through the mix.
//! Requests are converted to each engine's own input before timing.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p gatehouse-policy --bench engines -- \
//!     --warm-up-time 1 --measurement-time 3
//! ```
//! `GATEHOUSE_BENCH_N=10,100` limits the scenarios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Engine, Engines, Mix};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn sizes() -> Vec<usize> {
    match std::env::var("GATEHOUSE_BENCH_N") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("GATEHOUSE_BENCH_N: numbers"))
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

/// Times one engine on one mix: each iteration decides the next request of the mix.
fn run<E: Engine>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    engine: &mut E,
    inputs: &[E::Input],
    indexes: &[usize],
    mix: Mix,
) {
    let name = engine.name();
    group.bench_function(BenchmarkId::new(name, mix.name()), |b| {
        let mut k = 0usize;
        b.iter(|| {
            let input = &inputs[indexes[k % indexes.len()]];
            k = k.wrapping_add(1);
            black_box(engine.decide(black_box(input)))
        });
    });
}

fn engines(c: &mut Criterion) {
    for n in sizes() {
        let mut e = Engines::new(n);
        let counts = e.assert_agreement();
        eprintln!(
            "N={n}: all engines agree on {} requests ({} allow, {} explicit deny, {} implicit deny)",
            counts.iter().sum::<usize>(),
            counts[0],
            counts[1],
            counts[2]
        );
        let mut group = c.benchmark_group(format!("engines/N={n}"));
        for mix in Mix::ALL {
            let idx = e.indexes(mix);
            group.sample_size(100);
            run(&mut group, &mut e.gatehouse, &e.gatehouse_inputs, &idx, mix);
            // The peers take milliseconds per decision at large N: fewer, longer samples.
            group.sample_size(if n >= 1_000 { 10 } else { 50 });
            run(&mut group, &mut e.cedar, &e.cedar_inputs, &idx, mix);
            run(&mut group, &mut e.rego, &e.rego_inputs, &idx, mix);
        }
        group.finish();
    }
}

criterion_group!(benches, engines);
criterion_main!(benches);
