//! The whole per-datagram pipeline of a receive worker (decode → enrich → default rollup), on
//! real exporters' datagrams: `cargo bench -p flowtel --bench pipeline` reports records per
//! second of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so the figure holds
//! on a shared machine. Templates come first in each capture and stay learnt across
//! iterations, as on a live exporter.

use flowtel_decode::prehash::ExporterKey;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel::config::Config;
use flowtel::pipeline::stats::WorkerStats;
use flowtel::pipeline::{PipelineSpec, WorkerPipeline};

mod support;

fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    let spec = PipelineSpec::from_config(&Config::default()).expect("default pipeline");
    for (name, captures) in support::MIXES {
        let datagrams = support::datagrams(captures);
        // Count the records of one pass (after the templates are known).
        let mut p = WorkerPipeline::new(&spec).expect("pipeline");
        let mut stats = WorkerStats::default();
        for (from, d) in &datagrams {
            p.process(*from, ExporterKey::new(from.ip()), true, d, 1, &mut stats);
        }
        let mut warm = WorkerStats::default();
        for (from, d) in &datagrams {
            p.process(*from, ExporterKey::new(from.ip()), true, d, 2, &mut warm);
        }
        let records = warm.by_protocol().total().records;
        g.throughput(Throughput::Elements(records));
        g.bench_function(*name, |b| {
            let mut now = 3u64;
            b.iter_custom(|iters| {
                let start = cpu_time();
                for _ in 0..iters {
                    for (from, d) in &datagrams {
                        p.process(*from, ExporterKey::new(from.ip()), true, d, now, &mut stats);
                    }
                    now += 1;
                }
                cpu_time().saturating_sub(start)
            });
            black_box(p.flush(now, true, &mut stats));
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
