//! Enrich + rollup throughput with the default (Grafana integration) rollup.
//!
//! `cargo bench -p flowtel-rollup --bench push` reports records/s ("elements") for a
//! realistic mix (a few thousand live flows) and for random source addresses (every record a
//! new key, eviction running). Records are enriched as the daemon does, a data set's records
//! at a time (`Enricher::enrich_each`). Time is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), so the figure is records per CPU-second of one core even when
//! other processes share the machine. The `+networks` cases add a networks file of 10 000
//! nested prefixes (every record's two addresses looked up), and `+net_dims` also groups by
//! the source and destination network names.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;

use flowtel_rollup::{
    Dimension, EnrichConfig, Enricher, Network, Networks, RollupConfig, RollupSet,
};

#[path = "support/records.rs"]
mod records;
use records::{N, Sets, flows};

/// CPU time consumed by this thread.
fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

/// 10 000 networks: 10.0.0.0/8, its 256 /16s, the /24s of 10.0.0.0/16 and of 10.1.0.0/16
/// (the records' sources), 8.8.0.0/16 and its /24s (their destinations), and /24s elsewhere.
fn networks() -> Arc<Networks> {
    let mut prefixes: Vec<String> = vec!["10.0.0.0/8".into(), "8.8.0.0/16".into()];
    for i in 0..256 {
        prefixes.push(format!("10.{i}.0.0/16"));
        prefixes.push(format!("10.0.{i}.0/24"));
        prefixes.push(format!("10.1.{i}.0/24"));
        prefixes.push(format!("8.8.{i}.0/24"));
    }
    let mut i = 0u32;
    while prefixes.len() < 10_000 {
        let a = 0x2000_0000 + i * 0x100;
        prefixes.push(format!("{}/24", std::net::Ipv4Addr::from(a)));
        i += 1;
    }
    let nets = prefixes
        .iter()
        .map(|p| Network {
            name: format!("net-{p}"),
            prefix: p.parse().unwrap(),
            ..Network::default()
        })
        .collect();
    Arc::new(Networks::new(nets).unwrap())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("enrich+rollup");
    g.throughput(Throughput::Elements(N as u64));
    let table = networks();
    let mut net_dims = RollupConfig::default();
    net_dims
        .dimensions
        .extend([Dimension::SrcNetName, Dimension::DstNetName]);
    let cases = [
        ("5k_flows", 5_000u32, None, RollupConfig::default()),
        ("random_sources", u32::MAX, None, RollupConfig::default()),
        (
            "5k_flows+networks",
            5_000,
            Some(&table),
            RollupConfig::default(),
        ),
        ("5k_flows+net_dims", 5_000, Some(&table), net_dims),
    ];
    for (name, distinct, networks, rollup) in cases {
        let flows = flows(distinct);
        g.bench_function(name, |b| {
            let mut set = RollupSet::new(std::slice::from_ref(&rollup)).unwrap();
            // As the daemon's metrics-only pipeline (countries looked up per emitted series).
            let mut enricher =
                Enricher::new(&EnrichConfig::default()).with_countries(set.needs_countries());
            if let Some(t) = networks {
                enricher = enricher.with_networks(Arc::clone(t));
            }
            let mut sets = Sets::new();
            b.iter_custom(|iters| {
                let start = cpu_time();
                for _ in 0..iters {
                    sets.each(&flows, |records| {
                        enricher.enrich_each(records, None, |e| set.push(e));
                    });
                    black_box(set.rollups()[0].keys_tracked());
                }
                cpu_time().saturating_sub(start)
            });
            black_box(set.flush_all());
        });
    }
    g.finish();

    // The lookup alone: both addresses of every record.
    let mut g = c.benchmark_group("networks");
    g.throughput(Throughput::Elements(2 * N as u64));
    for (name, distinct) in [("lookup_5k_flows", 5_000u32), ("lookup_random", u32::MAX)] {
        let flows = flows(distinct);
        g.bench_function(name, |b| {
            let mut sets = Sets::new();
            b.iter_custom(|iters| {
                let start = cpu_time();
                for _ in 0..iters {
                    sets.each(&flows, |records| {
                        for r in records {
                            black_box(r.src_addr.and_then(|a| table.lookup(a)));
                            black_box(r.dst_addr.and_then(|a| table.lookup(a)));
                        }
                    });
                }
                cpu_time().saturating_sub(start)
            });
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
