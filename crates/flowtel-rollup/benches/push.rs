//! Enrich + rollup throughput with the default (Grafana integration) rollup.
//!
//! `cargo bench -p flowtel-rollup --bench push` reports records/s ("elements") for a
//! realistic mix (a few thousand live flows) and for random source addresses (every record a
//! new key, eviction running). Time is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), so the figure is records per CPU-second of one core even when
//! other processes share the machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel_rollup::{EnrichConfig, Enricher, RollupConfig, RollupSet};

#[path = "support/records.rs"]
mod records;
use records::{N, records};

/// CPU time consumed by this thread.
fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("enrich+rollup");
    g.throughput(Throughput::Elements(N as u64));
    for (name, distinct) in [("5k_flows", 5_000u32), ("random_sources", u32::MAX)] {
        let recs = records(distinct);
        g.bench_function(name, |b| {
            let mut enricher = Enricher::new(&EnrichConfig::default());
            let mut set = RollupSet::new(&[RollupConfig::default()]).unwrap();
            b.iter_custom(|iters| {
                let start = cpu_time();
                for _ in 0..iters {
                    for r in &recs {
                        let e = enricher.enrich(r, None);
                        set.push(&e);
                    }
                    black_box(set.rollups()[0].keys_tracked());
                }
                cpu_time().saturating_sub(start)
            });
            black_box(set.flush_all());
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
